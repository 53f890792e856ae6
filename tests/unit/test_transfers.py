"""The compiled ``transfers`` grouping (detect/transfers.py) against the SQL that says the same.

The SQL below is what built ``transfers`` before the grouping was compiled; it stays here as
the specification. Random ``pairs`` rows are drawn from small pools so that groups collide:
both orientations of one host and address, several ports and protocols a day, NULL bytes,
ports and users, addresses that are not canonical IPv4 (no integer form), the company's
gateway and a partner range as external ends.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpnsentry.detect import context, pairs, transfers

REFERENCE_SQL = """
WITH oriented AS (
    SELECT CASE WHEN src_private THEN src ELSE dst END AS host,
           CASE WHEN src_private THEN src_u ELSE dst_u END AS host_u,
           CASE WHEN src_private THEN dst ELSE src END AS ext,
           CASE WHEN src_private THEN dst_u ELSE src_u END AS ext_u,
           day, conns,
           CASE WHEN src_private THEN bytes_out ELSE bytes_in END AS up,
           CASE WHEN src_private THEN bytes_in ELSE bytes_out END AS down,
           CASE WHEN src_private THEN dport END AS port,
           first_ts, last_ts, user_name AS usr
    FROM pairs
    WHERE src_private <> dst_private AND src_u IS NOT NULL AND dst_u IS NOT NULL
)
SELECT any_value(host) AS host, host_u, any_value(ext) AS ext, ext_u, day,
       sum(conns) AS conns, coalesce(sum(up), 0)::BIGINT AS up,
       coalesce(sum(down), 0)::BIGINT AS down, min(port) AS port,
       min(first_ts) AS first_ts, max(last_ts) AS last_ts, max(usr) AS usr
FROM oriented o
WHERE NOT is_gateway_addr(o.ext_u) AND NOT is_partner(o.ext_u)
GROUP BY host_u, ext_u, day
"""

_COLUMNS = "host, host_u, ext, ext_u, day, conns, up, down, port, first_ts, last_ts, usr"

GATEWAY = "198.51.100.1"
PARTNERS = ipaddress.ip_network("192.0.2.0/28")
ADDRESSES = [
    "10.0.0.1",
    "10.0.0.2",
    "192.168.1.10",
    "100.64.0.9",
    "203.0.113.7",
    "8.8.8.8",
    GATEWAY,
    "192.0.2.5",  # a partner
    "192.0.2.99",  # next to the partners, not one
    "2001:db8::1",
    "010.0.0.1",
]
USERS = [None, "alice", "Bob", "zed", "Ärger", "ALICE"]
DAY0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

pair = st.fixed_dictionaries(
    {
        "src": st.sampled_from(ADDRESSES),
        "dst": st.sampled_from(ADDRESSES),
        "dport": st.sampled_from([None, 53, 443, 3389]),
        "proto": st.sampled_from(["tcp", "udp"]),
        "day": st.integers(0, 2),
        "conns": st.integers(1, 5),
        "bytes_out": st.sampled_from([None, 0, 1, 1500, 10**12]),
        "bytes_in": st.sampled_from([None, 0, 7, 10**9]),
        "first": st.integers(0, 86_399),
        "span": st.integers(0, 3_600),
        "user_name": st.sampled_from(USERS),
    }
)


def _u(text: str) -> int | None:
    """The address's integer form when it is canonical IPv4 (what ``pairs.src_u`` holds)."""
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _private(u: int | None) -> bool:
    return u is not None and any(
        u in range(int(n[0]), int(n[-1]) + 1)
        for n in (ipaddress.IPv4Network(c) for c in context._PRIVATE)
    )


def _pairs(rows: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A connection with ``pairs`` holding ``rows`` and the macros ``transfers`` uses."""
    recs = []
    for r in rows:
        su, du = _u(r["src"]), _u(r["dst"])
        day = DAY0 + dt.timedelta(days=r["day"])
        first = day + dt.timedelta(seconds=r["first"])
        recs.append(
            {
                **{c: r[c] for c in ("src", "dst", "dport", "proto", "conns", "user_name")},
                **{c: r[c] for c in ("bytes_out", "bytes_in")},
                "src_u": su,
                "dst_u": du,
                "src_private": _private(su),
                "dst_private": _private(du),
                "day": day,
                "first_ts": first,
                "last_ts": first + dt.timedelta(seconds=r["span"]),
            }
        )
    frame = pl.DataFrame(
        recs,
        schema={
            "src": pl.String,
            "dst": pl.String,
            "dport": pl.Int32,
            "proto": pl.String,
            "conns": pl.Int64,
            "user_name": pl.String,
            "bytes_out": pl.Int64,
            "bytes_in": pl.Int64,
            "src_u": pl.UInt64,
            "dst_u": pl.UInt64,
            "src_private": pl.Boolean,
            "dst_private": pl.Boolean,
            "day": pl.Datetime("us", "UTC"),
            "first_ts": pl.Datetime("us", "UTC"),
            "last_ts": pl.Datetime("us", "UTC"),
        },
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_p", frame.to_arrow())
    con.execute("CREATE TABLE pairs AS SELECT * FROM _p")
    gw = int(ipaddress.IPv4Address(GATEWAY))
    lo, hi = int(PARTNERS[0]), int(PARTNERS[-1])
    con.execute(f"CREATE MACRO is_gateway_addr(u) AS coalesce(u IN ({gw}), false)")
    con.execute(f"CREATE MACRO is_partner(u) AS coalesce(u BETWEEN {lo} AND {hi}, false)")
    return con


def _both(con: duckdb.DuckDBPyConnection, threads: int) -> tuple[list[Any], list[Any]]:
    transfers.build_transfers(con, threads)
    got = con.sql(f"SELECT {_COLUMNS} FROM transfers ORDER BY ALL").fetchall()
    want = con.sql(f"SELECT {_COLUMNS} FROM ({REFERENCE_SQL}) ORDER BY ALL").fetchall()
    return got, want


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(pair, min_size=1, max_size=60), threads=st.sampled_from([1, 2, 3]))
def test_same_transfers_as_the_sql(rows: list[dict[str, Any]], threads: int) -> None:
    got, want = _both(_pairs(rows), threads)
    assert got == want


def test_many_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs read in many small batches, users first seen in later batches, groups handed
    to DuckDB in many slices (the last one short): the same."""
    monkeypatch.setattr(transfers, "BATCH_ROWS", 16)
    monkeypatch.setattr(pairs, "SLICE_ROWS", 7)
    rows = [
        {
            "src": f"10.0.0.{i % 7}",
            "dst": f"203.0.113.{i % 11}" if i % 3 else f"198.51.100.{i % 5 + 10}",
            "dport": 443 + i % 2,
            "proto": "tcp",
            "day": i % 3,
            "conns": 1 + i % 4,
            "bytes_out": i * 10,
            "bytes_in": None if i % 5 else i,
            "first": i * 37 % 86_000,
            "span": i,
            "user_name": USERS[(i * 7) % len(USERS)] if i > 200 else None,
        }
        for i in range(600)
    ]
    got, want = _both(_pairs(rows), 2)
    assert len(want) > 100
    assert got == want


def test_no_pairs() -> None:
    con = _pairs([])
    transfers.build_transfers(con)
    assert con.sql("SELECT count(*) FROM transfers").fetchall() == [(0,)]


def test_byte_sums_saturate() -> None:
    """Attacker-written byte counts add up to the int64 bound, not an error or a wrap."""
    row = {
        "src": "10.0.0.1",
        "dst": "203.0.113.7",
        "dport": 443,
        "proto": "tcp",
        "day": 0,
        "conns": 1,
        "bytes_out": 2**62,
        "bytes_in": None,
        "first": 0,
        "span": 0,
        "user_name": None,
    }
    con = _pairs([row, {**row, "proto": "udp"}, {**row, "dport": 53}])
    transfers.build_transfers(con)
    assert con.sql("SELECT up, down FROM transfers").fetchall() == [(2**63 - 1, 0)]
