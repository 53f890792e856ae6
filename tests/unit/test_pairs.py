"""The compiled ``_pairs`` grouping (detect/pairs.py) against the SQL that says the same.

The SQL below is what built ``_pairs`` before the grouping was compiled; it stays here as the
specification. Random flows are drawn from small pools so that groups collide: several
sensors per conversation, NetFlow answers to turn around, NULLs in every nullable column,
addresses that are not canonical IPv4 (IPv6, leading zeros, out-of-range octets, spaces),
user names whose byte order differs from their first-seen order, days before 1970.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpnsentry import ecs
from vpnsentry.arrowviews import string_buffers
from vpnsentry.detect import pairs

REFERENCE_SQL = """
WITH raw AS (
    SELECT *, coalesce(module IN ('nfdump', 'netflow') AND sp < dp, false) AS rev
    FROM (
        SELECT "source.ip" AS s, "destination.ip" AS d, "source.port" AS sp,
               "destination.port" AS dp, "network.transport" AS proto, "@timestamp" AS ts,
               "event.module" AS module,
               coalesce("observer.name", "observer.ip", "event.module") AS sensor,
               "source.bytes" AS sb, "destination.bytes" AS db, "network.bytes" AS nb,
               "event.duration" AS dur, "user.name" AS usr
        FROM conversations
        WHERE "source.ip" IS NOT NULL AND "destination.ip" IS NOT NULL
          AND "event.action" IS DISTINCT FROM 'flow-creation'
    )
), per_sensor AS (
    SELECT CASE WHEN rev THEN d ELSE s END AS src, CASE WHEN rev THEN s ELSE d END AS dst,
           CASE WHEN rev THEN sp ELSE dp END AS dport, proto,
           date_trunc('day', ts) AS day, sensor,
           greatest(count(*) FILTER (WHERE NOT rev), count(*) FILTER (WHERE rev)) AS conns,
           sum(CASE WHEN rev THEN db ELSE sb END) AS bytes_out,
           sum(CASE WHEN rev THEN sb ELSE db END) AS bytes_in,
           sum(nb) AS bytes_total,
           min(ts) AS first_ts, max(ts) AS last_ts, max(dur) AS max_duration,
           max(usr) AS user_name
    FROM raw GROUP BY ALL
)
SELECT src, dst, dport, proto, day, max(conns) AS conns, max(bytes_out)::BIGINT AS bytes_out,
       max(bytes_in)::BIGINT AS bytes_in, max(bytes_total)::BIGINT AS bytes_total,
       min(first_ts) AS first_ts, max(last_ts) AS last_ts,
       max(max_duration) AS max_duration, count(*) AS sensors, max(user_name) AS user_name
FROM per_sensor GROUP BY src, dst, dport, proto, day
"""

_COLUMNS = (
    "src, dst, dport, proto, day, conns, bytes_out, bytes_in, bytes_total, first_ts, last_ts, "
    "max_duration, sensors, user_name"
)

ADDRESSES = [
    "10.0.0.1",
    "10.0.0.2",
    "192.168.1.10",
    "203.0.113.7",
    "0.0.0.0",
    "255.255.255.255",
    "2001:db8::1",
    "010.0.0.1",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    " 1.2.3.4",
    "",
]
USERS = [None, "alice", "Bob", "zed", "Ärger", "alice@corp", "ALICE"]
BASE = dt.datetime(1969, 12, 30, 22, tzinfo=dt.UTC)

flow = st.fixed_dictionaries(
    {
        "source.ip": st.sampled_from([*ADDRESSES, None]),
        "destination.ip": st.sampled_from(ADDRESSES),
        "source.port": st.sampled_from([None, 53, 443, 50000, 0]),
        "destination.port": st.sampled_from([None, 53, 443, 50000, 65535]),
        "network.transport": st.sampled_from([None, "tcp", "udp"]),
        "@timestamp": st.integers(0, 4 * 86400).map(lambda s: BASE + dt.timedelta(seconds=s)),
        "event.module": st.sampled_from(["nfdump", "netflow", "zeek_conn", "cisco_asa"]),
        "event.action": st.sampled_from([None, "flow-creation", "flow-end"]),
        "observer.name": st.sampled_from([None, "fw-1", "zeek-hq"]),
        "observer.ip": st.sampled_from([None, "10.9.9.9"]),
        "source.bytes": st.sampled_from([None, 0, 1, 1500, 10**12]),
        "destination.bytes": st.sampled_from([None, 0, 7, 10**9]),
        "network.bytes": st.sampled_from([None, 100, -5]),
        "event.duration": st.sampled_from([None, 0, 10**9, 3 * 10**12]),
        "user.name": st.sampled_from(USERS),
    }
)


def _conversations(rows: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """A connection whose ``conversations`` table holds ``rows`` as flows."""
    schema = {c: ecs.FLOWS[c] for c in (rows[0] if rows else ())}
    frame = ecs.conform(pl.DataFrame(rows, schema=schema), "flows")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_flows", frame.to_arrow())
    con.execute("CREATE TABLE conversations AS SELECT * FROM _flows")
    return con


def _both(con: duckdb.DuckDBPyConnection, threads: int) -> tuple[list[Any], list[Any]]:
    pairs.build_pairs(con, threads)
    got = con.sql(f"SELECT {_COLUMNS} FROM _pairs ORDER BY ALL").fetchall()
    want = con.sql(f"SELECT {_COLUMNS} FROM ({REFERENCE_SQL}) ORDER BY ALL").fetchall()
    return got, want


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(flow, min_size=1, max_size=60), threads=st.sampled_from([1, 2, 3]))
def test_same_pairs_as_the_sql(rows: list[dict[str, Any]], threads: int) -> None:
    got, want = _both(_conversations(rows), threads)
    assert got == want


def test_batches_growth_and_rehash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small batches into tiny first tables: every matrix grows and every index is
    rebuilt several times, the pairs go to DuckDB in many slices, and the result is still
    the SQL's."""
    monkeypatch.setattr(pairs, "BATCH_ROWS", 64)
    monkeypatch.setattr(pairs, "SLICE_ROWS", 13)
    monkeypatch.setattr(pairs, "_first_size", lambda count, parts: 4)
    rng = np.random.default_rng(7)
    rows = [
        {
            "source.ip": f"10.0.{rng.integers(0, 4)}.{rng.integers(0, 60)}",
            "destination.ip": str(
                rng.choice(["2001:db8::7", f"198.51.100.{rng.integers(0, 200)}"])
            ),
            "source.port": int(rng.integers(1000, 1010)),
            "destination.port": int(rng.choice([443, 445, 3389])),
            "network.transport": "tcp",
            "@timestamp": BASE + dt.timedelta(hours=int(rng.integers(0, 96))),
            "event.module": str(rng.choice(["nfdump", "zeek_conn"])),
            "observer.name": str(rng.choice(["a", "b", "c"])),
            "source.bytes": int(rng.integers(0, 10**6)),
            "user.name": str(rng.choice(["u1", "u2", "u3"])),
        }
        for _ in range(3000)
    ]
    got, want = _both(_conversations(rows), 2)
    assert len(want) > 1000
    assert got == want


def test_no_flows() -> None:
    con = _conversations([])
    pairs.build_pairs(con)
    assert con.sql("SELECT count(*) FROM _pairs").fetchall() == [(0,)]


def test_address_keys_are_one_to_one_with_text() -> None:
    """Canonical dotted quads become their value; everything else is text by id."""
    from vpnsentry.detect import _kernels as k

    addrs = pairs._Addresses()
    import pyarrow as pa

    texts = ["1.2.3.4", "01.2.3.4", "1.2.3.4 ", "255.255.255.255", "2001:db8::1", "1.2.3.4"]
    keys = addrs.keys(pa.array(texts), k)
    assert keys[0] == keys[5] == (1 << 24) + (2 << 16) + (3 << 8) + 4
    assert keys[3] == (1 << 32) - 1
    assert len({int(x) for x in keys}) == 5
    other = string_buffers(addrs.other.names())
    assert pairs._addr_texts(keys, other, k).to_pylist() == texts


@pytest.mark.parametrize(("big", "bound"), [(2**62, 2**63 - 1), (-(2**62), -(2**63) + 1)])
def test_sums_saturate_instead_of_wrapping(big: int, bound: int) -> None:
    """Byte counts are attacker-written: huge ones must not add up to the other sign."""
    rows = [
        {
            "source.ip": "10.0.0.1",
            "destination.ip": "203.0.113.9",
            "destination.port": 443,
            "@timestamp": BASE,
            "event.module": "zeek_conn",
            "source.bytes": b,
        }
        for b in (big, big, big)
    ]
    con = _conversations(rows)
    pairs.build_pairs(con)
    assert con.sql("SELECT bytes_out FROM _pairs").fetchall() == [(bound,)]
