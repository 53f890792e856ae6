"""``vpnsentry hunt`` output in-process: the summary, --json, exit codes, hostile titles.

The stages themselves are stubbed (the e2e test runs them for real); this checks what the
command makes of their result.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.report import sample
from vpnsentry import hunt as hunt_mod
from vpnsentry.cli import app
from vpnsentry.detect.engine import DetectResult, RuleRun
from vpnsentry.errors import UsageError
from vpnsentry.ingest import FileStats, RunStats
from vpnsentry.report.export import ReportFiles
from vpnsentry.report.html import Overview, ranked
from vpnsentry.store.store import AlertCounts, IncidentCounts


def fake_result(out: Path, *, quarantined: int = 0, failed: bool = False) -> hunt_mod.HuntResult:
    incs = ranked(sample.incidents())
    # A title quoting a log value with a terminal escape in it.
    incs[0] = dataclasses.replace(incs[0], title=f"VPN login as {sample.ANSI_HOST} [red]x[/red]")
    rules = [RuleRun("auth_hosting_asn", 2, 0.1)]
    if failed:
        rules.append(RuleRun("c2_beaconing", 0, 0.1, "BinderException: boom"))
    return hunt_mod.HuntResult(
        ingest=RunStats(
            files=[
                FileStats("a.log", "fortinet_fortigate", lines=10, parsed=10 - quarantined),
                FileStats("b.log", "zeek_conn", quarantined=quarantined),
            ]
        ),
        detect=DetectResult(
            rules=rules, counts=AlertCounts(7, 0, 0), by_severity={"critical": 2, "low": 1}
        ),
        incidents=incs,
        incident_counts=IncidentCounts(2, 0, 0, 0),
        active_alerts=7,
        overview=Overview(),
        files=ReportFiles(
            out / "report.html",
            out / "alerts.ndjson",
            out / "incidents.ndjson",
            out / "stix-bundle.json",
        ),
        seconds={"ingest": 1.0, "detect": 2.0, "correlate": 0.1, "report": 0.2},
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def fake(paths: list[str], store: Path, **kw: Any) -> hunt_mod.HuntResult:
        seen.append({"paths": paths, "store": store, **kw})
        for stage in hunt_mod.STAGES:  # the progress callback copes with every stage
            kw["progress"](stage, 0, None, "")
            kw["progress"](stage, 1, 1, "x")
        return fake_result(kw["out_dir"])

    monkeypatch.setattr(hunt_mod, "hunt", fake)
    return seen


def test_summary(calls: list[dict[str, Any]], tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["hunt", "logs/", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "r")],
    )
    assert res.exit_code == 0, res.output
    assert calls[0]["paths"] == ["logs/"]
    assert calls[0]["out_dir"] == tmp_path / "r"
    assert calls[0]["tz"] == "UTC" and calls[0]["sites"] is None
    out = res.stdout
    assert "incidents: 2 (1 critical, 1 low)" in out
    assert "1. critical INC-c3a25aec5d87" in out
    assert "\\x1b[31mEVIL-HOST\\x1b[0m [red]x[/red]" in out  # escaped, and not markup
    assert "\x1b" not in out
    assert "2. low" in out and sample.LOW_TITLE in out
    assert f"report: {tmp_path / 'r' / 'report.html'}" in out
    assert "detect: 1 detections, 7 active alerts" in out


def test_json_and_partial_exit(
    calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def partial(paths: list[str], store: Path, **kw: Any) -> hunt_mod.HuntResult:
        return fake_result(kw["out_dir"], quarantined=3, failed=True)

    monkeypatch.setattr(hunt_mod, "hunt", partial)
    res = CliRunner().invoke(app, ["hunt", "x", "--json", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 1
    assert doc["ingest"]["totals"]["quarantined"] == 3
    assert doc["detect"]["failed"] == ["c2_beaconing"]
    assert doc["incidents"]["by_severity"] == {"critical": 1, "low": 1}
    assert doc["incidents"]["top"][0]["id"] == "INC-c3a25aec5d87"
    assert doc["report"]["stix"] == str(tmp_path / "r" / "stix-bundle.json")

    res = CliRunner().invoke(app, ["hunt", "x", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert "3 lines could not be parsed and were quarantined (exit 1)" in res.stderr
    assert "detection c2_beaconing failed" in res.stderr


def test_bad_sites_fail_before_ingest(tmp_path: Path) -> None:
    bad = tmp_path / "sites.yaml"
    bad.write_text("sites: [\n", encoding="utf-8")
    store = tmp_path / "store"
    res = CliRunner().invoke(app, ["hunt", "nothing", "--store", str(store), "--sites", str(bad)])
    # (main() turns UsageError into exit 2; the test runner calls the app directly.)
    assert isinstance(res.exception, UsageError), res.exception
    assert "invalid YAML" in str(res.exception)
    assert not store.exists()  # nothing was ingested
