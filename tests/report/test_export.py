"""NDJSON with ECS names and a STIX 2.1 bundle that the stix2 library accepts as is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import stix2
from stix2patterns.validator import validate as validate_pattern

from tests.report import sample
from vpnsentry.report import export
from vpnsentry.report.html import render


def _write(tmp_path: Path) -> export.ReportFiles:
    data = sample.report_input()
    return export.write_report(
        tmp_path / "rep",
        render(data),
        data.incidents,
        data.alerts,
        now=sample.NOW,
    )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_files_written_atomically(tmp_path: Path) -> None:
    files = _write(tmp_path)
    assert [p.name for p in files.all()] == [
        "report.html",
        "alerts.ndjson",
        "incidents.ndjson",
        "stix-bundle.json",
    ]
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == sorted(
        p.name for p in files.all()
    )  # no temporary files left
    assert oct(files.html.stat().st_mode & 0o044) != "0o0"  # readable like any other file


def test_alerts_ndjson_has_ecs_names(tmp_path: Path) -> None:
    recs = {r["alert.id"]: r for r in _lines(_write(tmp_path).alerts)}
    assert set(recs) == {"a1", "a2", "a3", "a4", "a5", "a6", "b1", "s1"}
    a2 = recs["a2"]
    for key in (
        "@timestamp",
        "event.end",
        "event.created",
        "rule.id",
        "rule.name",
        "alert.severity",
        "event.risk_score",
        "threat.tactic.id",
        "threat.technique.id",
        "user.name",
        "source.ip",
        "destination.ip",
        "host.name",
        "source.geo.country_iso_code",
        "alert.summary",
        "alert.evidence",
    ):
        assert key in a2, key
    assert a2["event.kind"] == "alert"
    assert a2["@timestamp"] == "2025-03-03T18:09:00Z"
    assert a2["threat.technique.id"] == ["T1133", "T1078"]
    assert a2["user.name"] == sample.SCRIPT  # data stays data: exact, unescaped
    assert a2["host.name"] == sample.ANSI_HOST
    assert isinstance(a2["alert.evidence"], dict) and a2["alert.evidence"]["bidi"] == sample.BIDI
    assert a2["incident.id"] == "INC-c3a25aec5d87"
    assert recs["b1"]["incident.id"] == "INC-27cb38380cc4"
    assert recs["s1"]["alert.suppressed"] is True and "incident.id" not in recs["s1"]
    assert "user.name" not in recs["a4"]  # nulls are left out


def test_incidents_ndjson(tmp_path: Path) -> None:
    recs = _lines(_write(tmp_path).incidents)
    assert [r["incident.id"] for r in recs] == ["INC-c3a25aec5d87", "INC-27cb38380cc4"]
    crit = recs[0]
    assert crit["event.kind"] == "incident"
    assert crit["@timestamp"] == "2025-03-03T16:09:00Z"
    assert crit["threat.technique.id"][:2] == ["T1190", "T1133"]
    assert crit["threat.technique.name"][0] == "Exploit Public-Facing Application"
    assert crit["network.bytes"] == 225745588
    assert crit["related.user"] == [sample.SCRIPT]
    assert "not an attribution" in crit["incident.attribution_caveat"]
    assert "incident.attribution_caveat" not in recs[1]


def test_stix_bundle_validates_with_stix2(tmp_path: Path) -> None:
    raw = json.loads(_write(tmp_path).stix.read_text("utf-8"))
    bundle = stix2.parse(raw, allow_custom=False)
    assert bundle.type == "bundle"
    objs = raw["objects"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        stix2.parse(o, allow_custom=False)
        by_type.setdefault(o["type"], []).append(o)
    assert [o["name"] for o in by_type["identity"]] == ["vpnsentry"]
    # Indicators: every valid external address (v4 and v6) and the one clean domain; the
    # hostile "address" and "domain" are left out.
    patterns = sorted(o["pattern"] for o in by_type["indicator"])
    assert "[ipv4-addr:value = '149.28.98.229']" in patterns
    assert "[ipv6-addr:value = '2001:db8::66']" in patterns
    assert "[domain-name:value = 'exfil.example.net']" in patterns
    assert "[ipv4-addr:value = '86.135.110.8']" in patterns
    assert len(patterns) == 6  # 4 addresses and 1 domain of the critical incident, 1 of the low
    for p in patterns:
        assert validate_pattern(p, stix_version="2.1")
    assert {o["value"] for o in by_type["ipv4-addr"]} >= {"5.9.7.203", "149.28.98.229"}
    assert len(by_type["observed-data"]) == 2
    # ATT&CK techniques as attack-patterns with the MITRE ids; the malformed one is dropped.
    ext = {o["external_references"][0]["external_id"]: o for o in by_type["attack-pattern"]}
    assert set(ext) == {"T1190", "T1133", "T1078", "T1021.002", "T1071.001", "T1048", "T1567"}
    ref = ext["T1021.002"]["external_references"][0]
    assert ref["source_name"] == "mitre-attack"
    assert ref["url"] == "https://attack.mitre.org/techniques/T1021/002/"
    assert ext["T1021.002"]["name"] == "Remote Services: SMB/Windows Admin Shares"
    rels = by_type["relationship"]
    assert {r["relationship_type"] for r in rels} == {"indicates"}
    ids = {o["id"]: o["type"] for o in objs}
    assert all(ids[r["source_ref"]] == "indicator" for r in rels)
    assert all(ids[r["target_ref"]] == "attack-pattern" for r in rels)
    reports = {o["external_references"][0]["external_id"]: o for o in by_type["report"]}
    assert set(reports) == {"INC-c3a25aec5d87", "INC-27cb38380cc4"}
    assert all(r in ids for rep in reports.values() for r in rep["object_refs"])
    assert reports["INC-c3a25aec5d87"]["name"] == sample.CRITICAL_TITLE


def test_stix_ids_are_deterministic() -> None:
    incs = sample.incidents()
    a = export.stix_bundle(incs, sample.alerts_frame(), now=sample.NOW)
    b = export.stix_bundle(list(reversed(incs)), sample.alerts_frame(), now=sample.NOW)
    assert {o["id"] for o in a["objects"]} == {o["id"] for o in b["objects"]}
    assert a["id"] == b["id"]
    # Cyber-observable ids follow the STIX rule, so other producers' ids for it match.
    sco = next(o for o in a["objects"] if o.get("value") == "149.28.98.229")
    assert sco["id"] == stix2.IPv4Address(value="149.28.98.229").id


def test_stix_empty() -> None:
    bundle = export.stix_bundle([], None, now=sample.NOW)
    stix2.parse(bundle, allow_custom=False)
    assert [o["type"] for o in bundle["objects"]] == ["identity"]
