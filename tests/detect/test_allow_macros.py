"""The allow-list and gateway-address macros of the detection context (detect/context.py):
the same answers as a lookup in ``allow_nets``/``gateways``, inline or (long lists) looked up."""

from __future__ import annotations

import ipaddress

import duckdb
import pytest

from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context
from vpnsentry.enrich.sites import parse_inventory
from vpnsentry.simulate import default_estate_text

PROBES = [
    "10.1.2.3",
    "10.1.2.0",
    "10.1.2.255",
    "10.1.3.0",
    "192.0.2.7",
    "198.51.100.1",
    "203.0.113.200",
    "8.8.8.8",
]


def _u(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@pytest.mark.parametrize("extra", [0, 70])
def test_macros_agree_with_the_tables(extra: int) -> None:
    """Few ranges are written inline, more than 64 are looked up: same answers either way,
    NULL is never a member."""
    partners = ("10.1.2.0/24", "192.0.2.7", *(f"172.31.{i}.0/24" for i in range(extra)))
    config = Config(allow={"partners": partners, "scanners": ("198.51.100.0/30",)})
    inv = parse_inventory(default_estate_text())
    con = duckdb.connect()
    Context(con, inv, config)
    gateways = con.sql(
        "SELECT DISTINCT a FROM (SELECT outside_u AS a FROM gateways UNION ALL "
        "SELECT inside_u FROM gateways UNION ALL SELECT management_u FROM gateways) "
        "WHERE a IS NOT NULL"
    ).fetchall()
    assert gateways
    edges = con.sql("SELECT lo, hi, hi + 1 FROM allow_nets").fetchall()
    assert {"backup_hosts", "scanners"} <= {r[0] for r in con.sql("FROM allow_nets").fetchall()}
    probes = [_u(p) for p in PROBES] + [int(r[0]) for r in gateways]
    probes += [int(v) for row in edges for v in row] + [None]
    for u in probes:
        got = con.execute(
            "SELECT is_partner($u::UBIGINT), is_scanner($u::UBIGINT), "
            "is_backup_host($u::UBIGINT), is_admin_host($u::UBIGINT), "
            "is_gateway_addr($u::UBIGINT)",
            {"u": u},
        ).fetchall()[0]
        want = con.execute(
            "SELECT "
            + ", ".join(
                f"EXISTS (SELECT 1 FROM allow_nets a WHERE a.kind = '{k}' "
                "AND $u::UBIGINT BETWEEN a.lo AND a.hi)"
                for k in ("partners", "scanners", "backup_hosts", "admin_hosts")
            )
            + ", EXISTS (SELECT 1 FROM gateways g WHERE $u::UBIGINT IN "
            "(g.outside_u, g.inside_u, g.management_u))",
            {"u": u},
        ).fetchall()[0]
        assert got == want, u
    members = con.execute(
        "SELECT count(*) FILTER (WHERE is_partner(u)), count(*) FILTER (WHERE is_gateway_addr(u)) "
        "FROM unnest($p::UBIGINT[]) t(u)",
        {"p": [_u(p) for p in PROBES] + [int(r[0]) for r in gateways]},
    ).fetchall()[0]
    assert members[0] == 4 and members[1] == len(gateways)
