"""Correlate: group alerts into incidents that follow the attacker's movement."""
