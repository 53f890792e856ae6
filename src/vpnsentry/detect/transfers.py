"""``transfers``: ``pairs`` between an internal and an external address per (internal host,
external address, UTC day), oriented on the internal end whichever end opened.

Columns: host, host_u, ext, ext_u, day, conns, up (bytes the host sent), down, port (the
smallest service port of the host's outbound pairs, NULL when it only answered), first_ts,
last_ts, usr (the largest user name a firewall attributed the traffic to). The company's
own gateway addresses and ``partners`` are left out as external ends. What the
exfiltration detections count, and what ``transfer_nets`` (rarity of a /24) is counted
from.

Why not SQL: almost every pair is its own transfer (a host rarely reaches one Internet
address on two ports or protocols the same day), so DuckDB's hash aggregate over three
keys and eight aggregates made as many groups as rows and spilled: 38 CPU-s and ~3 GB
written to disk for 15M pairs. Here DuckDB only orients and filters (a projection) and a
compiled pass (:func:`vpnsentry.detect._kernels.add_transfers`) groups integer keys. Byte
sums saturate at the int64 bounds, where the SQL's cast failed on attacker-written
counts. ``tests/unit/test_transfers.py`` holds the result to the SQL that says the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa

from vpnsentry.detect.pairs import (
    BATCH_ROWS,
    _addr_texts,
    _Dictionary,
    _ints,
    column_slices,
    partitions_for,
    store_parts,
)

#: ``pairs`` oriented on the internal end, the company's gateways and partners left out.
_ORIENTED_SQL: Final = """
SELECT CASE WHEN src_private THEN src_u ELSE dst_u END::BIGINT AS host_u,
       ext_u::BIGINT AS ext_u, epoch_us(day) AS day, conns,
       CASE WHEN src_private THEN bytes_out ELSE bytes_in END AS up,
       CASE WHEN src_private THEN bytes_in ELSE bytes_out END AS down,
       CASE WHEN src_private THEN dport END AS port,
       epoch_us(first_ts) AS first_ts, epoch_us(last_ts) AS last_ts, user_name AS usr
FROM (SELECT *, CASE WHEN src_private THEN dst_u ELSE src_u END AS ext_u FROM pairs)
WHERE src_private <> dst_private AND src_u IS NOT NULL AND dst_u IS NOT NULL
  AND NOT is_gateway_addr(ext_u) AND NOT is_partner(ext_u)
"""


def build_transfers(con: duckdb.DuckDBPyConnection, threads: int = 0) -> None:
    """Create the table ``transfers`` from ``pairs`` (and the ``is_gateway_addr`` and
    ``is_partner`` macros) in ``con``: the groups split in ``threads`` hash partitions
    (default: one per core), each filled by its own thread while the next batch is read."""
    from vpnsentry.detect import _kernels as k

    parts = partitions_for(threads)
    # room for every pair in each partition (the filter keeps fewer): pages never written
    # cost no memory, and counting a table's rows reads no data
    count = int(con.sql("SELECT count(*) FROM pairs").fetchall()[0][0])
    rows = [np.empty((max(count, 1), k.TRANSFER_WIDTH), dtype=np.int64) for _ in range(parts)]
    size = 1 << int(max(2 * count, 2) - 1).bit_length()
    index = [np.full(size, -1, dtype=np.int32) for _ in range(parts)]
    n = [0] * parts
    users = _Dictionary()
    with ThreadPoolExecutor(parts) as pool:
        pending: list[Future[int]] = []
        for batch in con.sql(_ORIENTED_SQL).to_arrow_reader(BATCH_ROWS):
            b = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
            args = (
                _ints(b["host_u"], 0),
                _ints(b["ext_u"], 0),
                _ints(b["day"], 0),
                _ints(b["conns"], 0),
                _ints(b["up"], k.NULL),
                _ints(b["down"], k.NULL),
                _ints(b["port"], k.NO_PORT),
                _ints(b["first_ts"], 0),
                _ints(b["last_ts"], 0),
                users.codes(b["usr"]),
                users.ranks(),
            )
            n = [f.result() for f in pending] or n
            pending = [
                pool.submit(k.add_transfers, *args, p, parts, index[p], rows[p], n[p])
                for p in range(parts)
            ]
        n = [f.result() for f in pending] or n
    del index
    names = users.names()

    def tables() -> Iterator[pa.Table]:
        for p in range(parts):
            groups, rows[p] = rows[p][: n[p]], np.empty((0, k.TRANSFER_WIDTH), dtype=np.int64)
            yield from column_slices(groups, lambda cols: _table(cols, names, k), k)

    store_parts(con, "transfers", tables())


def _table(cols: np.ndarray, names: pa.Array, k: Any) -> pa.Table:
    """The groups (one row of ``cols`` per value) as the ``transfers`` columns (``names``:
    the user names by id)."""
    none = (np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.uint8))
    ts = pa.timestamp("us", tz="UTC")
    port = cols[k.T_PORT]
    user = cols[k.T_USER]
    return pa.table(
        {
            "host": _addr_texts(cols[k.T_HOST], none, k),
            "host_u": cols[k.T_HOST].view(np.uint64),  # IPv4 values: never negative
            "ext": _addr_texts(cols[k.T_EXT], none, k),
            "ext_u": cols[k.T_EXT].view(np.uint64),
            "day": pa.array(cols[k.T_DAY]).cast(ts),
            "conns": cols[k.T_CONNS],
            "up": cols[k.T_UP],
            "down": cols[k.T_DOWN],
            "port": pa.array(
                np.where(port == k.NO_PORT, 0, port).astype(np.int32), mask=port == k.NO_PORT
            ),
            "first_ts": pa.array(cols[k.T_FIRST]).cast(ts),
            "last_ts": pa.array(cols[k.T_LAST]).cast(ts),
            "usr": names.take(pa.array(user - 1, mask=user == 0)),
        }
    )
