"""End-to-end: ``python -m vpnsentry hunt`` over a small simulated breach.

Once only: a rerun costs another detect pass; ``--json`` and the summary's wording are
tested in-process in tests/report/test_cli_hunt.py, and idempotence is ingest's and detect's
own tests' business.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import run_cli as run
from vpnsentry.detect.base import detections

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 8 days and 12 users are enough for the whole breach (exploit, lateral movement, C2,
    # staging, exfiltration) to be simulated and detected, and keep this test short.
    out = tmp_path_factory.mktemp("hunt") / "sim"
    proc = run(
        "simulate",
        "--out",
        str(out),
        "--days",
        "8",
        "--users",
        "12",
        "--scenario",
        "vpn-appliance-breach",
        "--seed",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_hunt_writes_the_report(sim: Path) -> None:
    store, rep = sim.parent / "store", sim.parent / "report"
    args = ["hunt", str(sim / "logs"), "--store", str(store), "--sites", str(sim / "sites.yaml")]
    proc = run(*args, "--out", str(rep))
    # The simulator garbles a few lines on purpose: quarantined, so exit 1 as for `ingest`.
    assert proc.returncode == 1, proc.stderr
    assert "quarantined (exit 1)" in proc.stderr
    lines = proc.stdout.splitlines()
    assert re.match(r"ingest: \d+ files, [\d,]+ lines parsed, [1-9]\d* quarantined", lines[0])
    assert any(ln.startswith(f"detect: {len(detections())} detections, ") for ln in lines)
    inc_line = next(ln for ln in lines if ln.startswith("incidents: "))
    assert "critical" in inc_line
    first = next(ln for ln in lines if ln.startswith("  1. "))
    assert "critical" in first and "VPN gateway vpn-sha-dc01" in first
    assert f"report: {rep / 'report.html'}" in lines
    for name in ("report.html", "alerts.ndjson", "incidents.ndjson", "stix-bundle.json"):
        assert (rep / name).stat().st_size > 0, name
    page = (rep / "report.html").read_text("utf-8")
    assert "Content-Security-Policy" in page and "<svg" in page and "<script" not in page
    incidents = [json.loads(x) for x in (rep / "incidents.ndjson").read_text().splitlines()]
    assert incidents[0]["incident.severity"] == "critical"
    assert incidents[0]["incident.title"] in page
    alerts = [json.loads(x) for x in (rep / "alerts.ndjson").read_text().splitlines()]
    assert {"@timestamp", "rule.id", "threat.technique.id"} <= set(alerts[0])
    bundle = json.loads((rep / "stix-bundle.json").read_text("utf-8"))
    assert bundle["type"] == "bundle"
    assert sum(o["type"] == "report" for o in bundle["objects"]) == len(incidents)
