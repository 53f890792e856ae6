"""``vpnsentry sigma check`` and ``sigma run`` through the real CLI in a subprocess.

check: every rule file of the SigmaHQ copy in ../shared/sigma is accounted for (converted, or
skipped with a reason). run: fixture logs ingested into a temporary store, the built-in pack
run, ``alerts`` shows the Sigma alerts, ``correlate`` folds them into incidents and ``suppress
add`` takes Sigma and threat-intel rule ids (not made-up ones).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SHARED
from tests.helpers import run_cli as cli
from vpnsentry.store.store import Store

FIXTURES = Path(__file__).parent / "fixtures"

# Subprocesses: ~6 CLI start-ups, 20-60 s on a loaded 2-core machine.
pytestmark = pytest.mark.slow


def test_check_accounts_for_every_sigmahq_rule() -> None:
    folder = SHARED / "sigma"
    proc = cli("sigma", "check", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    files = {str(p) for p in folder.rglob("*") if p.suffix in (".yml", ".yaml")}
    assert {r["path"] for r in rows} == files
    for r in rows:
        assert r["status"] in ("converted", "skipped")
        assert r["reason"], r
        assert set(r) >= {"path", "id", "status", "reason", "title"}
    status = {r["id"]: (r["status"], r["reason"]) for r in rows}
    # FortiGate rules use vendor fields we extract from the raw line: converted
    assert status["cd0a4943-0edd-42cf-b50c-06f77a10d4c1"][0] == "converted"
    # the store has no web proxy logs
    proxy = [r for r in rows if "/proxy_generic/" in r["path"]]
    assert proxy and all(r["reason"].startswith("unknown log source category=proxy") for r in proxy)
    # an unmapped field is named
    assert status["d7fb8f0e-bd5f-45c2-b467-19571c490d7e"] == (
        "skipped",
        "TransformationError: unmapped field 'blocked' for log source firewall",
    )


def test_check_reports_broken_and_non_rule_files(tmp_path: Path) -> None:
    (tmp_path / "notes.yml").write_text("owner: soc\nreview: weekly\n")
    (tmp_path / "broken.yaml").write_text("title: [unclosed\n")
    (tmp_path / "legacy.yml").write_text(
        "title: legacy count\nid: 6b2b1d9a-1111-4b8e-9f0e-0e5f2c1d3a41\nlogsource:\n"
        "  product: fortigate\ndetection:\n  sel:\n    logid: '0101039426'\n"
        "  timeframe: 5m\n  condition: sel | count() by srcip > 5\n"
    )
    (tmp_path / "two.yml").write_text(
        'title: "a [red]b"\nlogsource: {product: openvpn}\n'
        "detection: {s: {user.name: x}, condition: s}\n---\n"
        "title: b\nlogsource: {product: openvpn}\ndetection: {s: {nope: x}, condition: s}\n"
    )
    proc = cli("sigma", "check", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {
        (Path(r["path"]).name, r["title"]): r for r in map(json.loads, proc.stdout.splitlines())
    }
    assert rows[("notes.yml", "")]["reason"].startswith("not a Sigma rule")
    assert rows[("broken.yaml", "")]["reason"].startswith("unreadable")
    assert "pipe syntax" in rows[("legacy.yml", "legacy count")]["reason"]
    assert rows[("two.yml", "a [red]b")]["status"] == "converted"
    assert rows[("two.yml", "b")]["reason"].endswith("unmapped field 'nope' for log source openvpn")


def test_run_alerts_correlate_and_suppress(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    logs = [str(p) for p in sorted(FIXTURES.glob("*.log"))]
    proc = cli("ingest", *logs, "--store", store)
    assert proc.returncode == 0, proc.stderr
    proc = cli("sigma", "run", "--store", store, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    # one store scan per log source: FortiGate, ASA, OpenVPN events and Zeek conn flows
    assert summary["scans"] == 4
    assert summary["skipped"] == []
    ran = {r["title"]: r for r in summary["rules"]}
    assert ran["FortiGate SSL VPN Brute Force From One Address"]["alerts"] == 1
    assert ran["FortiGate SSL VPN Login Failed"]["matches"] == 13
    proc = cli("alerts", "--store", store, "--json")
    assert proc.returncode == 0, proc.stderr
    alerts = [json.loads(x) for x in proc.stdout.splitlines()]
    sigma = [a for a in alerts if a["rule.id"].startswith("sigma:")]
    assert len(sigma) == summary["new"] == 10
    proc = cli("correlate", "--store", store, "--json")
    assert proc.returncode == 0, proc.stderr
    linked = {a for inc in Store.open(Path(store), create=False).incidents() for a in inc.alert_ids}
    assert linked & {a["alert.id"] for a in sigma}
    at = ("--store", store)
    # Sigma and threat-intel alerts can be suppressed by rule like built-in ones.
    target = next(a for a in sigma if a["source.ip"])
    entity = f"source.ip={target['source.ip']}"
    proc = cli("suppress", "add", target["rule.id"], "--entity", entity, "--reason", "lab", *at)
    assert proc.returncode == 0, proc.stderr
    assert "it matches 0 stored" not in proc.stdout
    proc = cli("alerts", "--json", *at)
    assert target["alert.id"] not in {json.loads(x)["alert.id"] for x in proc.stdout.splitlines()}
    proc = cli(
        "suppress", "add", "intel_match_vpn", "--entity", "ip=192.0.2.1", "--reason", "x", *at
    )
    assert proc.returncode == 0, proc.stderr
    proc = cli("suppress", "add", "sigma-typo", "--entity", entity, "--reason", "x", *at)
    assert proc.returncode == 2
    assert "no rule 'sigma-typo'" in proc.stderr
