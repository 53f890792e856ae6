"""``pairs``' place columns (net, site, role, country, AS organisation) are ENUMs
(detect/context.py) and must behave as the texts they were: same values, byte order when
sorted or compared, VARCHAR comparisons and joins with values they do not hold, strings
when they leave DuckDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import polars as pl
import pytest
from tests.detect.conftest import memory_views, ts

from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context
from vpnsentry.enrich.sites import Inventory


def _host(inv: Inventory, site_id: str) -> str:
    """An address in the site's first subnet."""
    site = next(s for s in inv.sites if s.id == site_id)
    return str(site.subnets[0].cidr[10])


@pytest.fixture
def con(bundled_inventory: Inventory) -> Iterator[duckdb.DuckDBPyConnection]:
    # first seen in an order unlike byte order: an ENUM declared in first-seen order would
    # sort tyo-hq before bkk-br
    sites = sorted((s.id for s in bundled_inventory.sites), reverse=True)
    t = ts(days=1, hours=9)
    rows = [
        {
            "@timestamp": t + dt.timedelta(minutes=i),
            "source.ip": _host(bundled_inventory, site),
            "destination.ip": dst,
            "destination.port": 443,
            "network.transport": "tcp",
            "source.bytes": 1000,
            "destination.bytes": 2000,
            "observer.name": "fw-1",
            "event.module": "fortinet_fortigate",
        }
        for i, site in enumerate(sites)
        for dst in ("8.8.8.8", "1.1.1.1", _host(bundled_inventory, sites[0]))
    ]
    c = memory_views(flows=rows)
    Context(c, bundled_inventory, Config()).need(["pairs"])
    yield c
    c.close()


def test_places_sort_and_compare_as_their_texts(con: duckdb.DuckDBPyConnection) -> None:
    got = [r[0] for r in con.sql("SELECT DISTINCT src_site FROM pairs ORDER BY 1").fetchall()]
    assert len(got) > 3 and got == sorted(got)
    listed = con.sql("SELECT list(DISTINCT src_site ORDER BY src_site) FROM pairs").fetchall()
    assert listed[0][0] == got
    assert con.sql("SELECT min(src_site), max(src_site) FROM pairs").fetchall() == [
        (got[0], got[-1])
    ]
    # a text the ENUM does not hold compares as unequal instead of failing the cast
    none = con.sql("SELECT count(*) FROM pairs WHERE src_site = 'no-such-site'").fetchall()
    assert none == [(0,)]
    one = con.sql(f"SELECT count(*) FROM pairs WHERE src_site IN ('nope', '{got[0]}')")
    assert one.fetchall()[0][0] > 0
    # joins with VARCHAR columns, and the same ENUM on both ends
    joined = con.sql(
        "SELECT count(*) FROM pairs p JOIN (SELECT 'nope' AS s UNION ALL SELECT ?) v "
        "ON v.s = p.src_site",
        params=[got[1]],
    ).fetchall()
    assert joined[0][0] == 3
    same = con.sql("SELECT count(*) FROM pairs WHERE src_site = dst_site").fetchall()
    assert same == [(1,)]  # sites[0] to its own host


def test_places_hold_the_texts(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.sql(
        "SELECT dst, dst_country, dst_org, dst_site, dst_role, dst_net, src_net, "
        "concat_ws('|', src_site, dst_site) AS both FROM pairs ORDER BY src, dst"
    ).pl()
    ext = rows.filter(pl.col("dst") == "8.8.8.8")
    assert ext["dst_country"].cast(pl.String).to_list()[0] == "US"
    assert ext["dst_site"].null_count() == len(ext)
    internal = rows.filter(pl.col("dst_site").is_not_null())
    assert internal["dst_net"].cast(pl.String).str.contains("/").all()
    assert internal["both"].str.contains("|", literal=True).all()
    assert rows["src_net"].null_count() == 0
