"""The incident: what correlation produces and every report renders.

Kept in its own module so the correlation logic and the renderers (terminal, HTML, NDJSON,
STIX) depend on one shape and not on each other. Times are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PathEdge:
    """One first-seen step of the attacker's movement: ``src`` reached ``dst``."""

    src: str  # address (or gateway name) the movement came from
    dst: str  # address it reached
    first_seen: dt.datetime
    port: int | None = None
    rule_id: str = ""  # the detection that saw it
    src_label: str = ""  # "vpn-sha-dc01 (gateway, Shanghai DC)", "10.20.0.30 (workstation, sha-br)"
    dst_label: str = ""


@dataclass(frozen=True)
class Attribution:
    """Overlap of the incident's techniques with a known group's: a hint, never a verdict."""

    group_id: str  # G0098
    name: str  # BlackTech
    shared: tuple[str, ...]  # technique ids in both
    group_techniques: int  # how many techniques the group profile has
    score: float  # Jaccard-like overlap 0..1


@dataclass(frozen=True)
class Incident:
    """A group of alerts about one intrusion, in the order the attacker moved."""

    id: str  # stable across reruns: "INC-" + hash of the incident's founding alert id
    title: str  # says what happened: "VPN gateway vpn-sha-dc01 compromised; data sent to ..."
    severity: str  # low, medium, high, critical
    confidence: float  # 0..1
    risk_score: float  # 0..100
    first_seen: dt.datetime  # first evidence
    last_seen: dt.datetime  # last evidence
    detected_at: dt.datetime  # earliest event.created of its alerts
    dwell_seconds: float  # detected_at - first_seen
    tactics: tuple[tuple[str, str], ...]  # (TA id, name) in kill-chain order
    techniques: tuple[str, ...]  # in order of first appearance
    alert_ids: tuple[str, ...]  # in time order
    rules: tuple[str, ...]  # detections involved
    users: tuple[str, ...]
    hosts: tuple[str, ...]  # internal addresses / host names involved
    external: tuple[str, ...]  # attacker-side public addresses (sources, C2, exfil targets)
    gateways: tuple[str, ...]
    sites: tuple[str, ...]
    bytes_out: int  # bytes that left, summed over exfiltration alerts
    destinations: tuple[str, ...]  # where the bytes went
    path: tuple[PathEdge, ...] = ()
    attribution: tuple[Attribution, ...] = ()
    summary: str = ""  # a paragraph for the report
    extra: dict[str, object] = field(default_factory=dict)
    #: When this incident id was first stored by a correlate run (kept across reruns); None
    #: until stored. Set by ``Store.incidents()``.
    opened_at: dt.datetime | None = None


# -- serialisation ---------------------------------------------------------------------------
#
# ECS names where ECS has them (``@timestamp``, ``event.*``, ``threat.*``, ``network.bytes``),
# the custom ``incident.*`` set otherwise. ``incident_to_dict`` is what incidents.ndjson holds
# and what the store keeps; ``incident_from_dict`` reads it back (unknown keys are ignored, so
# a newer writer's output still loads).


def _ts(t: dt.datetime | None) -> str | None:
    return None if t is None else t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_ts(s: Any) -> dt.datetime:
    t = dt.datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _edge_to_dict(e: PathEdge) -> dict[str, Any]:
    return {
        "@timestamp": _ts(e.first_seen),
        "source": e.src,
        "source.label": e.src_label,
        "destination": e.dst,
        "destination.label": e.dst_label,
        "destination.port": e.port,
        "rule.id": e.rule_id,
    }


def _edge_from_dict(d: dict[str, Any]) -> PathEdge:
    port = d.get("destination.port")
    return PathEdge(
        src=str(d["source"]),
        dst=str(d["destination"]),
        first_seen=_parse_ts(d["@timestamp"]),
        port=None if port is None else int(port),
        rule_id=str(d.get("rule.id") or ""),
        src_label=str(d.get("source.label") or ""),
        dst_label=str(d.get("destination.label") or ""),
    )


def incident_to_dict(
    inc: Incident, technique_names: dict[str, str] | None = None
) -> dict[str, Any]:
    """The incident as one JSON object (for incidents.ndjson and the store's payload).

    ``technique_names`` (id -> ATT&CK name) adds ``threat.technique.name``.
    """
    out: dict[str, Any] = {
        "@timestamp": _ts(inc.first_seen),
        "event.kind": "incident",
        "incident.id": inc.id,
        "incident.title": inc.title,
        "incident.summary": inc.summary,
        "incident.severity": inc.severity,
        "incident.confidence": inc.confidence,
        "event.risk_score": inc.risk_score,
        "event.start": _ts(inc.first_seen),
        "event.end": _ts(inc.last_seen),
        "event.created": _ts(inc.detected_at),
        "incident.dwell_seconds": inc.dwell_seconds,
        "threat.tactic.id": [t for t, _ in inc.tactics],
        "threat.tactic.name": [n for _, n in inc.tactics],
        "threat.technique.id": list(inc.techniques),
    }
    if technique_names is not None:
        out["threat.technique.name"] = [technique_names.get(t, "") for t in inc.techniques]
    out.update(
        {
            "incident.alert_ids": list(inc.alert_ids),
            "incident.alert_count": len(inc.alert_ids),
            "rule.id": list(inc.rules),
            "related.user": list(inc.users),
            "incident.hosts": list(inc.hosts),
            "incident.external": list(inc.external),
            "incident.gateways": list(inc.gateways),
            "incident.sites": list(inc.sites),
            "network.bytes": inc.bytes_out,
            "destination.ip": list(inc.destinations),
            "incident.path": [_edge_to_dict(e) for e in inc.path],
            "incident.attribution": [
                {
                    "threat.group.id": a.group_id,
                    "threat.group.name": a.name,
                    "shared_techniques": list(a.shared),
                    "group_techniques": a.group_techniques,
                    "score": a.score,
                }
                for a in inc.attribution
            ],
            "incident.extra": inc.extra,
        }
    )
    if inc.opened_at is not None:
        out["incident.opened_at"] = _ts(inc.opened_at)
    return out


def incident_from_dict(d: dict[str, Any]) -> Incident:
    """Inverse of :func:`incident_to_dict`."""
    opened = d.get("incident.opened_at")
    return Incident(
        id=str(d["incident.id"]),
        title=str(d["incident.title"]),
        severity=str(d["incident.severity"]),
        confidence=float(d["incident.confidence"]),
        risk_score=float(d["event.risk_score"]),
        first_seen=_parse_ts(d["event.start"]),
        last_seen=_parse_ts(d["event.end"]),
        detected_at=_parse_ts(d["event.created"]),
        dwell_seconds=float(d["incident.dwell_seconds"]),
        tactics=tuple(
            (str(i), str(n))
            for i, n in zip(d["threat.tactic.id"], d["threat.tactic.name"], strict=True)
        ),
        techniques=tuple(str(t) for t in d["threat.technique.id"]),
        alert_ids=tuple(str(a) for a in d["incident.alert_ids"]),
        rules=tuple(str(r) for r in d["rule.id"]),
        users=tuple(str(u) for u in d["related.user"]),
        hosts=tuple(str(h) for h in d["incident.hosts"]),
        external=tuple(str(x) for x in d["incident.external"]),
        gateways=tuple(str(g) for g in d["incident.gateways"]),
        sites=tuple(str(s) for s in d["incident.sites"]),
        bytes_out=int(d["network.bytes"]),
        destinations=tuple(str(x) for x in d["destination.ip"]),
        path=tuple(_edge_from_dict(e) for e in d.get("incident.path") or ()),
        attribution=tuple(
            Attribution(
                group_id=str(a["threat.group.id"]),
                name=str(a["threat.group.name"]),
                shared=tuple(str(t) for t in a["shared_techniques"]),
                group_techniques=int(a["group_techniques"]),
                score=float(a["score"]),
            )
            for a in d.get("incident.attribution") or ()
        ),
        summary=str(d.get("incident.summary") or ""),
        extra=dict(d.get("incident.extra") or {}),
        opened_at=None if opened is None else _parse_ts(opened),
    )
