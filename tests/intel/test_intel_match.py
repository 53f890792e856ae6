"""Matching against a real store: validity windows, revocation, CIDR, IPv6, direction,
aggregation, stable ids, hostile values, and name columns when a dataset has them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from vpnsentry import ecs
from vpnsentry.detect.engine import run_one
from vpnsentry.intel import catalog
from vpnsentry.intel.feeds import read_file
from vpnsentry.intel.match import RULES, prepare, run_matching
from vpnsentry.store.store import Store

T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
HEADER = "value,type,source,confidence,valid_from,valid_until,description\n"


def at(hours: float = 0, days: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, hours=hours)


def flow(src: str, dst: str, when: dt.datetime, **kw: Any) -> dict[str, Any]:
    return {
        "@timestamp": when,
        "source.ip": src,
        "destination.ip": dst,
        "source.port": 50000,
        "destination.port": 443,
        "event.module": "zeek_conn",
        **kw,
    }


def make_store(
    tmp_path: Path, flows: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = ()
) -> Store:
    st = Store.open(tmp_path / "store", create=True)
    tables = {}
    for name, rows in (("flows", flows), ("events", events)):
        if rows:
            df = pl.DataFrame([dict(r) for r in rows])
            tables[name] = ecs.conform(df, name)
    with st.writer() as w:
        w.commit(tables, [])
    return st


def add_csv(st: Store, tmp_path: Path, body: str, name: str = "feed.csv") -> catalog.AddCounts:
    path = tmp_path / name
    path.write_text(HEADER + body)
    rows, dup = catalog.normalize_feed(read_file(path))
    return catalog.add(st, rows, dup)


def match(st: Store) -> pl.DataFrame:
    con = st.reader()
    try:
        runs, alerts = run_matching(st, con, at(days=30), strict=True)
    finally:
        con.close()
    assert [r.id for r in runs] == [d.id for d in RULES]
    assert alerts is not None
    return alerts.sort("rule.id", "@timestamp", "alert.key")


def evidence(alert: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(str(alert["alert.evidence"]))


def test_validity_windows(tmp_path: Path) -> None:
    st = make_store(
        tmp_path,
        [
            flow("10.0.0.1", "198.51.100.1", at(days=-40)),  # before valid_from
            flow("10.0.0.2", "198.51.100.1", at()),  # inside
            flow("10.0.0.3", "198.51.100.1", at(days=40)),  # at/after valid_until
            flow("10.0.0.4", "198.51.100.2", at()),  # expired indicator
            flow("10.0.0.5", "198.51.100.3", at()),  # not yet valid
        ],
    )
    add_csv(
        st,
        tmp_path,
        "198.51.100.1,ip,A,80,2025-02-01,2025-04-01,\n"
        "198.51.100.2,ip,A,80,2024-01-01,2024-06-01,\n"
        "198.51.100.3,ip,A,80,2025-06-01,,\n",
    )
    alerts = match(st)
    assert alerts["source.ip"].to_list() == ["10.0.0.2"]
    assert alerts["destination.ip"].to_list() == ["198.51.100.1"]


def test_revocation_and_newer_versions(tmp_path: Path) -> None:
    st = make_store(tmp_path, [flow("10.0.0.2", "198.51.100.1", at())])
    ind = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--11111111-1111-4111-8111-111111111111",
        "created": "2025-01-01T00:00:00Z",
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00Z",
    }

    def add(**kw: Any) -> catalog.AddCounts:
        path = tmp_path / "b.json"
        path.write_text(json.dumps({"type": "bundle", "objects": [{**ind, **kw}]}))
        rows, dup = catalog.normalize_feed(read_file(path))
        return catalog.add(st, rows, dup)

    assert add(modified="2025-01-01T00:00:00Z").new == 1
    assert match(st).height == 1
    assert add(modified="2025-01-01T00:00:00Z").unchanged == 1
    assert add(modified="2025-02-01T00:00:00Z", revoked=True).updated == 1
    assert catalog.indicators(st)["revoked"].to_list() == [True]
    con = st.reader()
    assert run_matching(st, con, at()) == ([], None)  # nothing active left
    con.close()
    # An older export added again does not undo the revocation.
    assert add(modified="2025-01-15T00:00:00Z").older == 1
    assert catalog.indicators(st)["revoked"].to_list() == [True]
    first = catalog.indicators(st)["first_added"][0]
    assert add(modified="2025-03-01T00:00:00Z", valid_until="2025-03-02T00:00:00Z").updated == 1
    after = catalog.indicators(st)
    assert after["first_added"][0] == first and after["revoked"].to_list() == [False]
    assert match(st).is_empty()  # the newer version's window ended before the flow


def test_cidr_overlaps_and_sources(tmp_path: Path) -> None:
    st = make_store(
        tmp_path,
        [
            flow("10.0.0.2", "203.0.113.77", at()),
            flow("10.0.0.2", "203.0.113.78", at(hours=1)),
            flow("10.0.0.3", "203.0.114.1", at()),  # outside both ranges
        ],
    )
    add_csv(st, tmp_path, "203.0.113.0/24,cidr,A,30,,,\n203.0.113.64/26,cidr,B,90,,,\n")
    alerts = match(st)
    by_source = {evidence(a)["indicator"]["source"]: a for a in alerts.iter_rows(named=True)}
    assert set(by_source) == {"A", "B"}  # overlapping ranges both match
    assert by_source["A"]["alert.severity"] == "low"
    assert by_source["B"]["alert.severity"] == "high"
    ev = evidence(by_source["B"])
    assert ev["matched"] == ["203.0.113.77", "203.0.113.78"] and ev["hits"] == 2
    assert ev["indicator"]["norm"] == "203.0.113.64/26"
    assert by_source["B"]["threat.technique.id"] == ["T1071"]
    assert set(by_source["B"]["related.ip"]) == {"203.0.113.77", "203.0.113.78", "10.0.0.2"}


def test_ipv6_exact_and_range(tmp_path: Path) -> None:
    st = make_store(
        tmp_path,
        [
            flow("fd00::5", "2001:db8:bad::10", at()),
            flow("fd00::6", "2001:db8::1", at()),
            flow("fd00::7", "2001:db8::2", at()),
        ],
    )
    add_csv(st, tmp_path, "2001:db8:bad::/48,cidr,A,,,,\n2001:DB8:0::1,ip,A,,,,\n")
    alerts = match(st)
    assert sorted(alerts["destination.ip"]) == ["2001:db8::1", "2001:db8:bad::10"]
    assert set(alerts["alert.severity"]) == {"medium"}  # no confidence given


def test_direction_rules_and_netflow_answers(tmp_path: Path) -> None:
    st = make_store(
        tmp_path,
        [
            # The indicator connects in to a web server: inbound, T1190.
            flow("198.51.100.9", "192.0.2.10", at(), **{"destination.port": 443}),
            # nfdump answer from the C2 server's port 443 to the host's port 50123: outbound.
            flow(
                "198.51.100.7",
                "10.0.0.2",
                at(),
                **{"source.port": 443, "destination.port": 50123, "event.module": "nfdump"},
            ),
        ],
        events=[
            {
                "@timestamp": at(),
                "source.ip": "198.51.100.9",
                "observer.name": "FGT-EDGE",
                "user.name": "admin",
                "event.module": "fortinet_fortigate",
                "event.action": "ssl-login-fail",
            }
        ],
    )
    add_csv(st, tmp_path, "198.51.100.9,ip,A,,,,\n198.51.100.7,ip,A,,,,\n")
    alerts = {a["rule.id"]: a for a in match(st).iter_rows(named=True)}
    assert set(alerts) == {"intel_match_inbound", "intel_match_outbound", "intel_match_vpn"}
    inbound = alerts["intel_match_inbound"]
    assert (inbound["source.ip"], inbound["destination.ip"]) == ("198.51.100.9", "192.0.2.10")
    assert inbound["threat.technique.id"] == ["T1190"]
    out = alerts["intel_match_outbound"]
    assert (out["source.ip"], out["destination.ip"]) == ("10.0.0.2", "198.51.100.7")
    assert out["destination.port"] == 443
    vpn = alerts["intel_match_vpn"]
    assert vpn["threat.technique.id"] == ["T1133"] and vpn["user.name"] == "admin"
    assert "reached FGT-EDGE" in vpn["alert.summary"]
    assert evidence(vpn)["actions"] == ["ssl-login-fail"]


def test_one_alert_per_entity_and_day_with_stable_ids(tmp_path: Path) -> None:
    beacon = [flow("10.0.0.2", "198.51.100.1", at(hours=m / 60)) for m in range(0, 600, 5)]
    beacon += [flow("10.0.0.2", "198.51.100.1", at(days=1, hours=2))]
    beacon += [flow("10.0.0.3", "198.51.100.1", at(hours=3))]
    st = make_store(tmp_path, beacon)
    add_csv(st, tmp_path, "198.51.100.1,ip,A,,,,\n")
    first = match(st)
    assert first.height == 3  # host .2 on two days, host .3 once
    assert sorted(evidence(a)["hits"] for a in first.iter_rows(named=True)) == [1, 1, 120]
    again = match(st)
    assert first["alert.id"].to_list() == again["alert.id"].to_list()


def test_hostile_feed_values_are_data(tmp_path: Path) -> None:
    st = make_store(tmp_path, [flow("10.0.0.2", "198.51.100.1", at())])
    hostile = "x'); DROP TABLE alerts; --\x1b[2J"
    add_csv(st, tmp_path, f'198.51.100.1,ip,"{hostile}",,,,"{hostile}"\n')
    stored = catalog.indicators(st)
    assert stored["source"].to_list() == [hostile]
    alerts = match(st)
    assert evidence(alerts.row(0, named=True))["indicator"]["source"] == hostile
    assert hostile in alerts["alert.summary"][0]


def test_name_columns_when_a_dataset_has_them() -> None:
    """Domains, URLs and hashes match the ECS columns that hold them, where they exist."""
    con = duckdb.connect(":memory:")
    con.execute(
        "CREATE VIEW flows AS SELECT * FROM (VALUES "
        "(TIMESTAMPTZ '2025-03-03 08:00:00+00', '10.0.0.2', '192.0.2.50', 443, "
        "'Update-Check.Example.NET.', 'zeek_conn'), "
        "(TIMESTAMPTZ '2025-03-03 09:00:00+00', '10.0.0.3', '192.0.2.51', 443, "
        "'benign.example', 'zeek_conn')) "
        't("@timestamp", "source.ip", "destination.ip", "destination.port", '
        '"url.domain", "event.module")'
    )
    con.execute(
        'CREATE VIEW events AS SELECT NULL::TIMESTAMPTZ AS "@timestamp", '
        'NULL::VARCHAR AS "source.ip" WHERE false'
    )
    feed = read_file(Path(__file__).parent / "data" / "vendor-bundle.json")
    rows, _ = catalog.normalize_feed(feed)
    prepare(con, rows.with_columns(first_added=pl.lit(T0), updated=pl.lit(T0)))
    out = run_one(RULES[0], con, {})
    assert out["source.ip"].to_list() == ["10.0.0.2"]
    assert json.loads(out["alert.evidence"][0])["fields"] == ["url.domain"]
    con.close()


def test_no_indicators_means_no_rules(tmp_path: Path) -> None:
    st = make_store(tmp_path, [flow("10.0.0.2", "198.51.100.1", at())])
    con = st.reader()
    assert run_matching(st, con, at()) == ([], None)
    con.close()


@pytest.mark.parametrize("body", ["10.0.0.0/8,cidr,A,,,,\n", "0.0.0.0/0,cidr,A,,,,\n"])
def test_own_networks_never_become_indicators(tmp_path: Path, body: str) -> None:
    st = Store.open(tmp_path / "store", create=True)
    assert add_csv(st, tmp_path, body).new == 0
    assert catalog.indicators(st).is_empty()
