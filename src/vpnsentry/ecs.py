"""Our subset of the Elastic Common Schema (ECS), in one place.

Every column a parser may produce is declared here with its Polars type, so that parsers,
the store and (later) detections agree on names and types without a second list anywhere.
Columns are stored flat with their dotted ECS names (``"source.ip"``); in SQL they are quoted:
``SELECT "source.ip" FROM events``.

Where ECS has no field for a VPN concept we use the custom ``vpn.*`` set below. ECS reserves
no ``vpn`` field set, so these names cannot collide with a future ECS release.

Deliberate simplifications, documented so nobody mistakes them for ECS bugs:

* ``event.category`` and ``event.type`` are arrays in ECS; we store the single most specific
  value as a string. Detections filter on one value; the conformance test compares our value
  against membership in Elastic's array.
* IP addresses are strings in their canonical textual form; they are validated by the
  parsers (an unparsable address is dropped and counted, the row kept).
"""

from __future__ import annotations

from typing import Final

import polars as pl

UTC_TS: Final = pl.Datetime("us", "UTC")

#: Datasets of the store. ``events``: what gateways say about logins, sessions, admins and
#: themselves. ``flows``: network connections (firewall traffic logs, Zeek, NetFlow).
#: ``quarantine``: lines that could not be parsed, with the reason.
DATASETS: Final = ("events", "flows", "quarantine")

#: Custom fields with no ECS equivalent. Documented in docs/schema.md.
VPN_FIELDS: Final[dict[str, pl.DataType]] = {
    "vpn.tunnel_ip": pl.String(),  # address assigned to the client inside the tunnel
    "vpn.session_id": pl.String(),  # gateway's own session identifier, when it logs one
    "vpn.tunnel_type": pl.String(),  # ssl, ipsec, ikev2, openvpn, wireguard, clientless
    "vpn.group": pl.String(),  # tunnel group / realm / connection profile / portal
    "vpn.client_version": pl.String(),  # client software and version
    "vpn.client_os": pl.String(),  # client operating system as the gateway reports it
}

#: Columns every dataset row carries.
COMMON: Final[dict[str, pl.DataType]] = {
    "@timestamp": UTC_TS,
    "event.dataset": pl.String(),  # <format>.<kind>, e.g. fortinet_fortigate.event
    "event.module": pl.String(),  # the format name, e.g. fortinet_fortigate
    "observer.name": pl.String(),  # the device that logged (devname, syslog host, sensor)
    "observer.vendor": pl.String(),
    "observer.product": pl.String(),
    "observer.type": pl.String(),  # firewall, vpn, sensor
    "log.file.path": pl.String(),
    "log.offset": pl.Int64(),  # byte offset of the line in the (decompressed) file
    "event.ingested": UTC_TS,
}

_NETWORK: Final[dict[str, pl.DataType]] = {
    "source.ip": pl.String(),
    "source.port": pl.Int32(),
    "source.bytes": pl.Int64(),
    "source.packets": pl.Int64(),
    "source.nat.ip": pl.String(),
    "destination.ip": pl.String(),
    "destination.port": pl.Int32(),
    "destination.bytes": pl.Int64(),
    "destination.packets": pl.Int64(),
    "destination.nat.ip": pl.String(),
    "network.transport": pl.String(),  # tcp, udp, icmp ... lower case
    "network.protocol": pl.String(),  # application protocol: dns, http, ssl ...
    "network.bytes": pl.Int64(),
    "network.packets": pl.Int64(),
    "network.direction": pl.String(),
}

EVENTS: Final[dict[str, pl.DataType]] = {
    **COMMON,
    "event.kind": pl.String(),
    "event.category": pl.String(),  # authentication, session, network, configuration, host
    "event.type": pl.String(),  # start, end, info, change, denied, allowed, connection
    "event.action": pl.String(),
    "event.outcome": pl.String(),  # success, failure, unknown
    "event.code": pl.String(),  # vendor message id (ASA 113039, FortiGate logid)
    "event.reason": pl.String(),
    "event.severity": pl.Int32(),
    "event.duration": pl.Int64(),  # nanoseconds, as ECS says
    "event.start": UTC_TS,  # when the session began, for snapshot rows (OpenVPN status)
    "event.timezone": pl.String(),
    "log.level": pl.String(),
    "message": pl.String(),
    "observer.ip": pl.String(),
    "observer.serial_number": pl.String(),
    "host.hostname": pl.String(),  # client host name as reported by the gateway
    "user.name": pl.String(),
    "user.domain": pl.String(),
    "user.roles": pl.String(),
    "group.name": pl.String(),
    "user_agent.original": pl.String(),
    "rule.name": pl.String(),
    "rule.description": pl.String(),
    **_NETWORK,
    **VPN_FIELDS,
    "event.original": pl.String(),
}

FLOWS: Final[dict[str, pl.DataType]] = {
    **COMMON,
    "event.end": UTC_TS,
    "event.duration": pl.Int64(),  # nanoseconds
    "event.action": pl.String(),
    "event.outcome": pl.String(),
    "event.code": pl.String(),
    **_NETWORK,
    "network.community_id": pl.String(),
    "flow.state": pl.String(),  # custom: Zeek conn_state / firewall session end reason
    "flow.id": pl.String(),  # custom: Zeek uid, firewall session id
    "user.name": pl.String(),  # when the firewall attributes the flow to a user
    "rule.name": pl.String(),
    "observer.ip": pl.String(),  # the flow exporter's address (NetFlow/IPFIX router, nfdump "ra")
    "observer.ingress.interface.name": pl.String(),
    "observer.egress.interface.name": pl.String(),
}

QUARANTINE: Final[dict[str, pl.DataType]] = {
    "@timestamp": UTC_TS,  # when it was quarantined
    "event.module": pl.String(),  # format that was tried ("unknown" when none sniffed)
    "log.file.path": pl.String(),
    "log.file.line": pl.Int64(),  # 1-based line number in the (decompressed) file
    "log.offset": pl.Int64(),
    "error.type": pl.String(),  # reason code, see vpnsentry.parse.base.Reason
    "error.message": pl.String(),
    "event.original": pl.String(),  # capped at ORIGINAL_CAP characters
}

#: Alerts the detections raise. Not a Parquet dataset: alerts are few, are rewritten when
#: detections rerun, and carry analyst state (suppression), so they live in the store catalog.
#: ECS arrays (``threat.technique.id``, ``related.ip``) are lists here, as in ECS. The custom
#: ``alert.*`` set holds what ECS has no field for; documented in docs/detections.md.
ALERTS: Final[dict[str, pl.DataType]] = {
    "alert.id": pl.String(),  # stable: hash of rule.id and alert.key, so reruns update in place
    "@timestamp": UTC_TS,  # first evidence
    "event.end": UTC_TS,  # last evidence
    "event.created": UTC_TS,  # when a detect run first raised it (kept across reruns)
    "rule.id": pl.String(),
    "rule.name": pl.String(),
    "alert.severity": pl.String(),  # low, medium, high, critical
    "event.risk_score": pl.Float64(),  # 0-100, from severity and the detection's own score
    "threat.tactic.id": pl.List(pl.String()),
    "threat.tactic.name": pl.List(pl.String()),
    "threat.technique.id": pl.List(pl.String()),
    "alert.key": pl.String(),  # the entity key the detection groups by (part of the id)
    "alert.summary": pl.String(),  # one sentence for the analyst; built from log fields
    "alert.evidence": pl.String(),  # JSON object: counts, samples, baseline values
    "user.name": pl.String(),
    "source.ip": pl.String(),
    "source.geo.country_iso_code": pl.String(),
    "source.as.number": pl.Int64(),
    "source.as.organization.name": pl.String(),
    "destination.ip": pl.String(),
    "destination.port": pl.Int32(),
    "host.name": pl.String(),
    "observer.name": pl.String(),
    "network.bytes": pl.Int64(),  # bytes the alert is about (an upload, a transfer)
    "related.ip": pl.List(pl.String()),
    "related.user": pl.List(pl.String()),
    "related.hosts": pl.List(pl.String()),
    "alert.suppressed": pl.Boolean(),
    "alert.suppression": pl.String(),  # the reason (and suppression id) when suppressed
}

SCHEMAS: Final[dict[str, dict[str, pl.DataType]]] = {
    "events": EVENTS,
    "flows": FLOWS,
    "quarantine": QUARANTINE,
}

#: Longest raw text kept in quarantine rows; the rest is cut (the offset finds the original).
ORIGINAL_CAP: Final = 4096


def conform(df: pl.DataFrame, dataset: str) -> pl.DataFrame:
    """Return ``df`` with exactly the dataset's columns, in schema order and types.

    Missing columns become typed nulls; unknown columns are an error, because a typo in a
    parser's column name would otherwise silently drop data.
    """
    schema = SCHEMAS[dataset]
    unknown = [c for c in df.columns if c not in schema and not c.startswith("_")]
    if unknown:
        raise KeyError(f"columns not in the {dataset} schema: {', '.join(sorted(unknown))}")
    exprs = [
        (
            pl.col(name).cast(dtype, strict=False) if name in df.columns else pl.lit(None, dtype)
        ).alias(name)
        for name, dtype in schema.items()
    ]
    return df.select(exprs)
