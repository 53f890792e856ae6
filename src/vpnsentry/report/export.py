"""Machine-readable output next to the HTML report: NDJSON with ECS names, and STIX 2.1.

* ``alerts.ndjson``: one alert per line, the store's ECS field names (``@timestamp``,
  ``rule.id``, ``user.name``, ``source.ip``, ``threat.technique.id``...), ``alert.evidence``
  as a JSON object, ``event.kind: alert`` and ``incident.id`` when the alert is part of one.
* ``incidents.ndjson``: one incident per line, :func:`vpnsentry.correlate.model.incident_to_dict`
  with the ATT&CK technique names.
* ``stix-bundle.json``: a STIX 2.1 bundle for a threat-intelligence platform (the mapping is
  in docs/report.md). Ids are deterministic (UUIDv5), so a rerun updates the same objects
  instead of creating new ones; ``ipv4-addr``/``ipv6-addr``/``domain-name`` ids follow the
  STIX rule for cyber-observables (UUIDv5 of the canonical ``{"value": ...}``). The bundle
  is parsed with the ``stix2`` reference library before it is written.

Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from vpnsentry.correlate.model import Incident, incident_to_dict

#: The STIX 2.1 namespace for deterministic cyber-observable ids (spec section 2.9).
SCO_NAMESPACE: Final = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
#: Our namespace for the other objects' deterministic ids.
VPNSENTRY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vpnsentry:stix")
_TECHNIQUE: Final = re.compile(r"^T\d{4}(?:\.\d{3})?$")
#: A DNS name we are willing to put in a STIX pattern: letters, digits, hyphens, dots.
_DOMAIN: Final = re.compile(
    r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)
#: Evidence keys whose values may name an external domain (none of the built-in detections
#: emits one yet; a detection that learns DNS/TLS names only has to use one of these).
DOMAIN_KEYS: Final = ("destination.domain", "url.domain", "domain", "domains")

REPORT_HTML: Final = "report.html"
ALERTS_NDJSON: Final = "alerts.ndjson"
INCIDENTS_NDJSON: Final = "incidents.ndjson"
STIX_BUNDLE: Final = "stix-bundle.json"


@dataclass(frozen=True)
class ReportFiles:
    """Where each output went."""

    html: Path
    alerts: Path
    incidents: Path
    stix: Path

    def all(self) -> list[Path]:
        return [self.html, self.alerts, self.incidents, self.stix]


def _iso(t: Any) -> Any:
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return t


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file next to it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- NDJSON -------------------------------------------------------------------------------------


def alert_records(
    alerts: pl.DataFrame, incidents: Sequence[Incident] = ()
) -> Iterable[dict[str, Any]]:
    """Alerts as ECS-named JSON objects (nulls left out, evidence parsed)."""
    owner = {a: inc.id for inc in incidents for a in inc.alert_ids}
    for row in alerts.iter_rows(named=True):
        rec: dict[str, Any] = {"@timestamp": _iso(row.get("@timestamp")), "event.kind": "alert"}
        for k, v in row.items():
            if v is None or k == "@timestamp":
                continue
            if k == "alert.evidence" and isinstance(v, str):
                with contextlib.suppress(ValueError):
                    v = json.loads(v)
            rec[k] = _iso(v)
        inc_id = owner.get(str(row.get("alert.id")))
        if inc_id is not None:
            rec["incident.id"] = inc_id
        yield rec


def incident_records(incidents: Sequence[Incident]) -> Iterable[dict[str, Any]]:
    """Incidents as ECS-named JSON objects (``incident_to_dict`` plus technique names)."""
    from vpnsentry.correlate.attack import CAVEAT, technique_name

    for inc in incidents:
        rec = incident_to_dict(inc, {t: technique_name(t) for t in inc.techniques})
        if inc.attribution:
            rec["incident.attribution_caveat"] = CAVEAT
        yield rec


def ndjson(records: Iterable[dict[str, Any]]) -> str:
    return "".join(
        json.dumps(r, ensure_ascii=False, default=str, separators=(",", ":")) + "\n"
        for r in records
    )


# -- STIX 2.1 -------------------------------------------------------------------------------------


def stix_time(t: dt.datetime) -> str:
    """``2025-03-05T18:43:01.000Z`` (STIX timestamps are UTC with a Z)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _sid(kind: str, *key: str) -> str:
    return f"{kind}--{uuid.uuid5(VPNSENTRY_NAMESPACE, '|'.join((kind, *key)))}"


def _sco_id(kind: str, value: str) -> str:
    canonical = json.dumps({"value": value}, separators=(",", ":"), ensure_ascii=False)
    return f"{kind}--{uuid.uuid5(SCO_NAMESPACE, canonical)}"


def _address(text: str) -> tuple[str, str] | None:
    """(STIX type, canonical value) of an address, or None if ``text`` is not one."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    return ("ipv4-addr" if addr.version == 4 else "ipv6-addr"), str(addr)


def incident_domains(inc: Incident, alerts: pl.DataFrame) -> list[str]:
    """External DNS names the incident's alerts name in their evidence (see DOMAIN_KEYS)."""
    if alerts.is_empty() or "alert.evidence" not in alerts.columns:
        return []
    mine = alerts.filter(pl.col("alert.id").is_in(list(inc.alert_ids)))
    found: list[str] = []
    for raw in mine.get_column("alert.evidence"):
        try:
            ev = json.loads(raw or "{}")
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        for key in DOMAIN_KEYS:
            vals = ev.get(key)
            for v in vals if isinstance(vals, list) else [vals]:
                name = str(v or "").strip().lower().rstrip(".")
                if _DOMAIN.match(name) and name not in found:
                    found.append(name)
    return found


def stix_bundle(
    incidents: Sequence[Incident],
    alerts: pl.DataFrame | None = None,
    *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The incidents as a STIX 2.1 bundle (see docs/report.md for the mapping)."""
    from vpnsentry.correlate.attack import technique_name

    t = stix_time(now or dt.datetime.now(dt.UTC))
    common = {"spec_version": "2.1", "created": t, "modified": t}
    identity_id = _sid("identity", "vpnsentry")
    objects: dict[str, dict[str, Any]] = {
        identity_id: {
            "type": "identity",
            "id": identity_id,
            **common,
            "name": "vpnsentry",
            "identity_class": "system",
            "description": "vpnsentry: intrusions through corporate VPNs, found in VPN "
            "gateway logs and network flows.",
        }
    }
    mine = {**common, "created_by_ref": identity_id}

    def add(obj: dict[str, Any]) -> str:
        objects.setdefault(obj["id"], obj)
        return str(obj["id"])

    for inc in incidents:
        conf = max(0, min(100, round(inc.confidence * 100)))
        ref = {"source_name": "vpnsentry", "external_id": inc.id}
        refs: list[str] = [identity_id]
        patterns: list[str] = []
        for tech in inc.techniques:
            if not _TECHNIQUE.match(tech):
                continue
            parent, _, sub = tech.partition(".")
            url = f"https://attack.mitre.org/techniques/{parent}/" + (f"{sub}/" if sub else "")
            ap = add(
                {
                    "type": "attack-pattern",
                    "id": _sid("attack-pattern", tech),
                    **common,
                    "name": technique_name(tech) or tech,
                    "external_references": [
                        {"source_name": "mitre-attack", "external_id": tech, "url": url}
                    ],
                }
            )
            patterns.append(ap)
            refs.append(ap)
        observables: list[tuple[str, str]] = []
        for text in inc.external:
            hit = _address(text)
            if hit is not None and hit not in observables:
                observables.append(hit)
        domains = incident_domains(inc, alerts) if alerts is not None else []
        observables += [("domain-name", d) for d in domains]
        sco_refs: list[str] = []
        for kind, value in observables:
            sco = add(
                {"type": kind, "spec_version": "2.1", "id": _sco_id(kind, value), "value": value}
            )
            sco_refs.append(sco)
            ind = add(
                {
                    "type": "indicator",
                    "id": _sid("indicator", inc.id, kind, value),
                    **mine,
                    "name": f"{value} ({'address' if kind != 'domain-name' else 'domain'} "
                    f"of the attacker side of {inc.id})",
                    "description": f"Seen in vpnsentry incident {inc.id}: {inc.title}",
                    "indicator_types": [
                        "malicious-activity"
                        if inc.severity in ("high", "critical")
                        else "anomalous-activity"
                    ],
                    "pattern": f"[{kind}:value = '{value}']",
                    "pattern_type": "stix",
                    "pattern_version": "2.1",
                    "valid_from": stix_time(inc.first_seen),
                    "confidence": conf,
                    "external_references": [ref],
                }
            )
            refs.append(ind)
            for ap in patterns:
                refs.append(
                    add(
                        {
                            "type": "relationship",
                            "id": _sid("relationship", ind, "indicates", ap),
                            **mine,
                            "relationship_type": "indicates",
                            "source_ref": ind,
                            "target_ref": ap,
                        }
                    )
                )
        if sco_refs:
            refs.append(
                add(
                    {
                        "type": "observed-data",
                        "id": _sid("observed-data", inc.id),
                        **mine,
                        "first_observed": stix_time(inc.first_seen),
                        "last_observed": stix_time(max(inc.last_seen, inc.first_seen)),
                        "number_observed": max(1, len(inc.alert_ids)),
                        "object_refs": sco_refs,
                        "confidence": conf,
                        "external_references": [ref],
                    }
                )
            )
            refs.extend(sco_refs)
        add(
            {
                "type": "report",
                "id": _sid("report", inc.id),
                **mine,
                "name": inc.title or inc.id,
                "description": inc.summary or inc.title,
                "report_types": ["threat-report"],
                "published": t,
                "object_refs": list(dict.fromkeys(refs)),
                "confidence": conf,
                "labels": [f"severity-{inc.severity}"],
                "external_references": [
                    {**ref, "description": f"severity {inc.severity}, risk {inc.risk_score:g}"}
                ],
            }
        )
    ids = ",".join(sorted(objects))
    return {
        "type": "bundle",
        "id": f"bundle--{uuid.uuid5(VPNSENTRY_NAMESPACE, ids)}",
        "objects": list(objects.values()),
    }


def check_stix(bundle: dict[str, Any]) -> None:
    """Parse ``bundle`` with the STIX 2.1 reference library (no custom content allowed).

    A failure is a bug in :func:`stix_bundle` (its inputs are validated), so it is not
    caught: better no bundle than one a threat-intelligence platform rejects or misreads.
    """
    import stix2  # type: ignore[import-untyped]

    stix2.parse(bundle, allow_custom=False)


# -- everything at once -------------------------------------------------------------------------


def write_report(
    out_dir: Path,
    html_text: str,
    incidents: Sequence[Incident],
    alerts: pl.DataFrame,
    *,
    now: dt.datetime | None = None,
) -> ReportFiles:
    """Write report.html, alerts.ndjson, incidents.ndjson and stix-bundle.json to ``out_dir``.

    Incidents are written most severe first, as the report ranks them.
    """
    from vpnsentry.report.html import ranked

    incidents = ranked(incidents)
    files = ReportFiles(
        html=out_dir / REPORT_HTML,
        alerts=out_dir / ALERTS_NDJSON,
        incidents=out_dir / INCIDENTS_NDJSON,
        stix=out_dir / STIX_BUNDLE,
    )
    write_text(files.alerts, ndjson(alert_records(alerts, incidents)))
    write_text(files.incidents, ndjson(incident_records(incidents)))
    bundle = stix_bundle(incidents, alerts, now=now)
    check_stix(bundle)
    write_text(files.stix, json.dumps(bundle, ensure_ascii=False, indent=1) + "\n")
    write_text(files.html, html_text)
    return files
