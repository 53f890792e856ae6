"""check(): reached crown-jewel paths judged against the inventory's policy."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from tests.helpers import run_lines
from tests.posture.segmentation.conftest import LINES, POOL, POOL2, T0
from vpnsentry.enrich.sites import Inventory, parse_inventory
from vpnsentry.errors import UsageError
from vpnsentry.posture import segmentation as seg


def connection(lines: list[str]) -> duckdb.DuckDBPyConnection:
    """A connection whose ``flows`` view holds ``lines`` as the Zeek parser reads them."""
    out = run_lines("zeek_conn", lines)
    assert out.parsed == len(lines) and set(out.tables) == {"flows"}
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.register("_flows", out.tables["flows"].to_arrow())
    con.execute("CREATE VIEW flows AS SELECT * FROM _flows")
    return con


def paths(inv: Inventory, **kw: dt.datetime) -> dict[tuple[str, str | None, int], seg.Reach]:
    got = seg.check(connection(LINES), inv, **kw)
    return {(r.source_net, r.dest_net, r.port): r for r in got}


def test_violations_and_allowed_paths(estate: Inventory) -> None:
    got = paths(estate)
    assert set(got) == {
        ("10.101.0.0/18", "10.10.33.0/24", 22),
        ("10.20.0.0/20", "10.10.33.0/24", 3389),
        ("10.101.0.0/18", "10.10.33.0/24", 445),
        ("10.20.0.0/20", "10.10.33.0/24", 22),
    }
    ssh = got[("10.101.0.0/18", "10.10.33.0/24", 22)]
    assert ssh.violation and ssh.severity == "high"
    assert (ssh.source_kind, ssh.gateway, ssh.connections, ssh.sources, ssh.destinations) == (
        "vpn_pool",
        "vpn-sha-dc01",
        3,
        2,
        1,
    )
    assert ssh.hosts == ("src-tyo01",) and ssh.sample_sources == (POOL, POOL2)
    assert ssh.first_seen == T0 and ssh.last_seen >= T0 + dt.timedelta(minutes=60)
    assert ssh.bytes == (1601 + 5500) + (1602 + 5500) + (1603 + 5500)  # network.bytes: IP bytes
    rdp = got[("10.20.0.0/20", "10.10.33.0/24", 3389)]
    assert rdp.violation and rdp.source_kind == "branch" and rdp.source_site == "sha-br"
    smb = got[("10.101.0.0/18", "10.10.33.0/24", 445)]
    assert not smb.violation and smb.allowed_by == "file-shares" and smb.hosts == ("fs-rd-tyo01",)


def test_period(estate: Inventory) -> None:
    got = paths(estate, since=T0 + dt.timedelta(hours=12), until=T0 + dt.timedelta(days=2))
    assert set(got) == {("10.20.0.0/20", "10.10.33.0/24", 22)}


def test_a_rule_allowing_it_silences_the_violation(estate: Inventory) -> None:
    text = Path(estate.source).read_text(encoding="utf-8")
    text = text.replace(
        "policy:\n",
        "policy:\n  - {name: vpn-admins, from: vpn_pools, to: crown_jewels, ports: [tcp/22]}\n",
    ).replace("groups:\n", "groups:\n  vpn_pools: [role:vpn_pool]\n")
    # the rule allows one client (by CIDR): the other client still violates
    text2 = text.replace("[role:vpn_pool]", f'["cidr:{POOL}/32"]')
    got = seg.check(connection(LINES), parse_inventory(text2, source="e2.yaml"))
    ssh_paths = [r for r in got if r.port == 22 and r.source_kind == "vpn_pool"]
    assert {(r.allowed_by, r.sample_sources) for r in ssh_paths} == {
        ("vpn-admins", (POOL,)),
        (None, (POOL2,)),
    }


def test_ports_option(estate: Inventory) -> None:
    got = seg.check(connection(LINES), estate, ports=[3389])
    assert [(r.source_net, r.port) for r in got] == [("10.20.0.0/20", 3389)]
    with pytest.raises(UsageError):
        seg.check(connection(LINES), estate, ports=[70000])


def test_hostile_addresses_do_not_match_or_crash(estate: Inventory) -> None:
    con = connection(LINES[:1])
    con.execute("DROP VIEW flows")
    con.execute(
        """CREATE VIEW flows AS SELECT * REPLACE ('10.101.0.5''; DROP TABLE x; --' AS "source.ip")
           FROM _flows"""
    )
    assert seg.check(con, estate) == []


def test_group_cycle_is_an_error(estate: Inventory) -> None:
    inv = dataclasses.replace(
        estate, groups={**estate.groups, "a": ("group:b",), "b": ("group:a",)}
    )
    with pytest.raises(UsageError, match="contains itself"):
        seg.group_ranges(inv, "a")


def test_selectors_resolve_to_ranges(estate: Inventory) -> None:
    def one(sel: str) -> list[tuple[int, int]]:
        return seg.group_ranges(estate, sel)

    assert one("internet") == []
    assert one("any") == [(0, 2**32 - 1)]
    assert (0x0A0A2100, 0x0A0A21FF) in one("crown_jewel")  # 10.10.33.0/24
    assert seg.group_ranges(
        dataclasses.replace(estate, groups={"x": ("host:fs-rd-tyo01",)}), "x"
    ) == [(0x0A0A2114, 0x0A0A2114)]
