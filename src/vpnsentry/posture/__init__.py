"""Posture audit: find what would let an attacker in before one tries.

``config/`` reads VPN configuration files (OpenVPN, strongSwan, WireGuard, FortiGate, Cisco
ASA) and checks them against public hardening guidance; the firmware and segmentation
checks live next to it. Nothing here needs the store except the segmentation check.
"""
