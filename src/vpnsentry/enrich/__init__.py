"""Enrich: add context to events by joins, never loops (geo/ASN, site inventory, sessions).

``sites`` defines the site inventory schema: the one description of the company's sites,
subnets, gateways and allowed flows that both the simulator and the detections read.
"""
