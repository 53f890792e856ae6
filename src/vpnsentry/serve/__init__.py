"""Serve: the long-lived collector (``vpnsentry serve``).

``config`` reads settings, ``listeners`` receive syslog and NetFlow into the spool,
``batch`` moves spooled messages into the store exactly once, ``metrics`` exposes counters
in the Prometheus text format, and ``service`` wires them together with signal handling.
"""
