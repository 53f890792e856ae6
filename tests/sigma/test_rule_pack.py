"""The shipped rule pack and a subset of real SigmaHQ rules over real-format log lines.

tests/sigma/fixtures/ holds, per vendor, lines each rule must match and look-alikes it must
not (a login from inside, logging re-enabled, a tunnel without failures, failures below the
threshold, a rejected login whose text mentions a command). The store is built by the real
ingest, so the rules meet the columns our parsers actually produce.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import SHARED
from vpnsentry.detect.sigma import runner
from vpnsentry.detect.sigma.compile import BUILTIN, RuleSet, load
from vpnsentry.ingest import ingest
from vpnsentry.store.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
SIGMAHQ = SHARED / "sigma" / "rules" / "network"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("sigma") / "store"
    stats = ingest([str(p) for p in sorted(FIXTURES.glob("*.log"))], root, strict=True)
    assert stats.totals()["quarantined"] == 0
    return Store.open(root, create=False)


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    rs = load([BUILTIN, SIGMAHQ / "fortinet", SIGMAHQ / "cisco" / "aaa"])
    assert all(e.status == "converted" for e in rs.entries), rs.entries
    return rs


@pytest.fixture(scope="module")
def alerts(store: Store, ruleset: RuleSet) -> pl.DataFrame:
    rs = ruleset
    runner.run(store, rs.rules, rs.correlations)
    first = store.alerts()
    runner.run(store, rs.rules, rs.correlations)  # a rerun updates, never duplicates
    again = store.alerts()
    assert sorted(again["alert.id"]) == sorted(first["alert.id"])
    return again


def found(alerts: pl.DataFrame, title: str) -> list[tuple[str | None, str | None]]:
    rows = alerts.filter(pl.col("rule.name") == title).sort("source.ip", nulls_last=True)
    return list(zip(rows["source.ip"], rows["user.name"], strict=True))


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # public source alerts; the same login from 10.0.0.5 does not
        ("FortiGate Administrator Login From a Public Address", [("198.51.100.23", "admin")]),
        # enable->disable alerts; disable->enable does not
        ("FortiGate Log Forwarding or Logging Disabled", [("198.51.100.23", "admin")]),
        # 10 failures in 10 minutes from .50; 3 from .60 do not
        ("FortiGate SSL VPN Brute Force From One Address", [("203.0.113.50", "user9")]),
        # failures then a tunnel from .50; a tunnel alone from .70 does not
        (
            "FortiGate SSL VPN Tunnel Up After Failed Logins From the Same Address",
            [("203.0.113.50", "user9")],
        ),
        # DefaultRAGroup alerts; GP-Corp-Users does not
        ("Cisco ASA AnyConnect Session in a Default Tunnel Group", [("198.51.100.9", "eve")]),
        # "no logging enable" and "clear logging buffer" (one alert: same user, device, day);
        # "logging enable" does not
        ("Cisco ASA Logging Disabled or Cleared From the CLI", [(None, "netadmin")]),
        # privilege 15 alerts; privilege 3 does not
        ("Cisco ASA Local User With Privilege 15 Created", [(None, "netadmin")]),
        # 5 verify errors in 5 minutes from .13; 2 from .14 do not
        ("OpenVPN TLS Certificate Verification Failures Burst", [("203.0.113.13", "mallory")]),
        # 5 users from .12; 5 failures of one user from .15 do not
        ("OpenVPN Password Spray (Many Users From One Address)", [("203.0.113.12", "erin")]),
        # established RDP from outside; inside source, S0 state and port 443 do not
        (
            "Inbound Admin Protocol Session From the Internet to an Internal Host",
            [("198.51.100.77", None)],
        ),
        # SigmaHQ rules, unchanged: Add system.admin alerts, Edit system.admin does not
        ("FortiGate - New Administrator Account Created", [("198.51.100.23", "admin")]),
        # SigmaHQ cisco/aaa keywords meet ASA command messages only: the rejected login whose
        # reason text says "clear logging" does not match
        ("Cisco Clear Logs", [(None, "netadmin")]),
        ("Cisco Disabling Logging", [(None, "netadmin")]),
    ],
)
def test_rule_matches_and_look_alikes_do_not(
    alerts: pl.DataFrame, title: str, expected: list[tuple[str | None, str | None]]
) -> None:
    assert found(alerts, title) == expected


def test_building_blocks_raise_no_alerts_of_their_own(alerts: pl.DataFrame) -> None:
    titles = set(alerts["rule.name"])
    assert "FortiGate SSL VPN Login Failed" not in titles
    assert "OpenVPN Authentication Failed" not in titles


def test_alert_shape(alerts: pl.DataFrame) -> None:
    row = alerts.filter(pl.col("rule.name").str.starts_with("FortiGate Administrator")).row(
        0, named=True
    )
    assert row["rule.id"].startswith("sigma:")
    assert row["alert.severity"] == "high"
    assert row["threat.tactic.id"] == ["TA0001"]
    assert row["threat.technique.id"] == ["T1133", "T1078"]
    assert row["observer.name"] == "FGT-EDGE"
    assert "198.51.100.23" in row["related.ip"]
    assert "logged in successfully" in row["alert.evidence"]


def test_pack_metadata_is_complete() -> None:
    import yaml

    for path in sorted(BUILTIN.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for key in ("title", "id", "status", "level", "tags", "falsepositives", "references"):
            assert doc.get(key), f"{path.name}: {key}"
        assert any(t.startswith("attack.t") for t in doc["tags"]), path.name


def test_shared_pass_matches_exactly_what_one_query_per_rule_matches(
    store: Store, ruleset: RuleSet
) -> None:
    # The shared pass reads working columns (lower-cased text, FortiGate fields extracted from
    # the raw line, ip4 of addresses) computed once for a whole log source; each rule alone
    # computes its own from the store. Both must give the same rows and the same alerts.
    con = runner.connect(store)
    shared = runner.match_rules(con, ruleset.rules, None, None)
    alone = runner.match_rules(con, ruleset.rules, None, None, shared=False)
    con.close()
    assert sum(f.height for f in alone.values()) > 20  # the fixtures do match
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for i, rule in enumerate(ruleset.rules):
        a, b = shared[i], alone[i]
        assert a.sort(a.columns).equals(b.sort(b.columns)), rule.meta.title
        assert runner.alerts_for_rule(rule, a, now).equals(runner.alerts_for_rule(rule, b, now))


def test_the_time_window_applies_to_the_shared_pass(store: Store, ruleset: RuleSet) -> None:
    con = runner.connect(store)
    everything = runner.match_rules(con, ruleset.rules, None, None)
    stamps = pl.concat([f["@timestamp"] for f in everything.values() if f.height])
    since = stamps.sort()[stamps.len() // 2]
    later = runner.match_rules(con, ruleset.rules, since, None)
    con.close()
    kept = sum(f.height for f in later.values())
    assert 0 < kept < sum(f.height for f in everything.values())
    assert all(f.is_empty() or f["@timestamp"].min() >= since for f in later.values())
