"""End-to-end through the real CLI: ingest real-format logs, add feeds, match, see alerts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2
from tests.helpers import run_cli as run

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.slow  # a full detect run: the other tests here are the fast ones


def test_ingest_add_match_alerts(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    proc = run("ingest", str(DATA / "gateway.log"), str(DATA / "conn.log"), "--store", store)
    assert proc.returncode == 0, proc.stderr
    ident = stix2.Identity(name="Example ISAC", identity_class="organization")
    c2 = stix2.Indicator(
        name="C2 server",
        pattern="[ipv4-addr:value = '198.51.100.77']",
        pattern_type="stix",
        valid_from="2025-01-01T00:00:00Z",
        valid_until="2026-01-01T00:00:00Z",
        created_by_ref=ident.id,
        confidence=90,
    )
    bundle = tmp_path / "isac.json"
    bundle.write_text(stix2.Bundle(ident, c2).serialize(pretty=True))
    hostile = tmp_path / "hostile.csv"
    hostile.write_text(
        'value,type,source\n198.51.100.250,ip,"evil\x1b[31mred\x07"\nnot-an-ip,ip,x\n'
    )
    proc = run("intel", "add", str(bundle), str(DATA / "acme.csv"), str(hostile), "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "evil" not in proc.stdout
    assert "skipped line 3: not-an-ip: not an IP address" in proc.stdout
    proc = run("intel", "add", str(DATA / "acme.csv"), "--store", store, "--json")
    report = json.loads(proc.stdout)["files"][0]
    assert (report["new"], report["unchanged"]) == (0, 2)  # re-adding duplicates nothing

    proc = run("intel", "list", "--store", store, "--json")
    listed = {(r["source"], r["type"]): r for r in map(json.loads, proc.stdout.splitlines())}
    assert listed[("Example ISAC", "ipv4")]["indicators"] == 1
    assert listed[("ACME CERT", "ipv6")]["ranges"] == 1
    proc = run("intel", "list", "--values", "--store", store)
    assert "evil\\x1b[31mred\\x07" in proc.stdout and "\x1b" not in proc.stdout

    proc = run("intel", "match", "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert "3 new, 0 updated, 0 removed alerts" in proc.stdout
    proc = run("alerts", "--store", store, "--json")
    alerts = {
        a["rule.id"] + " " + a["source.ip"]: a for a in map(json.loads, proc.stdout.splitlines())
    }
    assert set(alerts) == {
        "intel_match_outbound 10.20.1.5",
        "intel_match_outbound 10.20.1.7",
        "intel_match_vpn 203.0.113.254",
    }
    c2_alert = alerts["intel_match_outbound 10.20.1.5"]
    assert c2_alert["alert.evidence"]["indicator"]["source"] == "Example ISAC"
    assert c2_alert["alert.evidence"]["indicator"]["confidence"] == 90
    assert c2_alert["alert.evidence"]["hits"] == 3  # the flow of November 2024 predates it
    assert c2_alert["alert.severity"] == "high"
    vpn = alerts["intel_match_vpn 203.0.113.254"]
    assert vpn["observer.name"] == "FGT-EDGE" and vpn["threat.technique.id"] == ["T1133"]

    # A full detect run matches the indicators too, updating the same alerts in place.
    proc = run("detect", "--store", store, "--json")
    rules = {r["id"]: r for r in json.loads(proc.stdout)["rules"]}
    assert rules["intel_match_outbound"]["alerts"] == 2
    assert json.loads(proc.stdout)["updated"] >= 3
