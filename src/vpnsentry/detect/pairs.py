"""``_pairs``: flows per day and (source, destination, service port, transport), in one
streamed pass over ``conversations`` (the context's view of ``flows``).

Three things make raw flow rows disagree about one conversation:

* several sensors log it (the gateway's traffic log, NetFlow, Zeek): sums are taken per
  sensor, then the largest sensor's view is kept;
* NetFlow is one-way: the answer is its own record from the service port to the client's
  ephemeral port. Such records (nfdump files or NetFlow/IPFIX received live, whose source
  port is below the destination port) are turned around, so they add to the same row as
  the request, their bytes counted as ``bytes_in``; without this, every answer would be a
  row of its own and the table would be as large as the flows;
* ASA logs a flow twice (built, teardown) and only the teardown carries bytes and
  duration, so "flow-creation" rows are left out. ASA's ``network.bytes`` has no
  direction: it goes to ``bytes_total`` and never into ``bytes_out``, so a download is not
  mistaken for an upload.

Why not SQL: the grouping was the largest cost of a detection run. Almost every Internet
destination is distinct, so a month of flows makes nearly as many groups as rows, and
DuckDB's hash aggregate over six text and integer keys with nine aggregates cost ~2.5 µs a
row at 70 million rows. Here DuckDB only reads (~0.4 µs a row); canonical IPv4 addresses
become 32-bit keys, the few text columns dictionary positions, and a compiled pass
(:mod:`vpnsentry.detect._kernels`) groups. ``tests/unit/test_pairs.py`` holds the result to
the SQL that says the same on random flows. ``day`` is the UTC day.

Memory: one int64 row of 12 values per (sensor, conversation, day) group, ~100 bytes, for
the whole store at once (rows are read in whatever order the scan gives).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, NamedTuple

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vpnsentry.arrowviews import string_buffers

#: Rows read per batch from DuckDB.
BATCH_ROWS: Final = 1 << 20
#: Groups turned into columns and handed to DuckDB at a time.
SLICE_ROWS: Final = 1 << 21
#: Fewest groups a partition makes room for at first.
MIN_GROUPS: Final = 1024
_DAY_US: Final = 86_400_000_000

_FLOWS_SQL: Final = """
SELECT "source.ip" AS s, "destination.ip" AS d, "source.port" AS sp, "destination.port" AS dp,
       "network.transport" AS proto, epoch_us("@timestamp") AS ts,
       coalesce("observer.name", "observer.ip", "event.module") AS sensor,
       "source.bytes" AS sb, "destination.bytes" AS db, "network.bytes" AS nb,
       "event.duration" AS dur, "user.name" AS usr,
       coalesce("event.module" IN ('nfdump', 'netflow')
                AND "source.port" < "destination.port", false) AS rev
FROM conversations
WHERE "source.ip" IS NOT NULL AND "destination.ip" IS NOT NULL
  AND "event.action" IS DISTINCT FROM 'flow-creation' AND "@timestamp" IS NOT NULL
"""


class _Dictionary:
    """Text -> id (1-based, 0 for NULL), growing batch by batch: one Python step per
    distinct text of a batch, never one per row."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._ranks = np.zeros(1, dtype=np.int64)

    def codes(self, arr: pa.Array) -> np.ndarray:
        enc = pc.dictionary_encode(arr)
        ids = np.array(
            [0] + [self.ids.setdefault(t, len(self.ids) + 1) for t in enc.dictionary.to_pylist()],
            dtype=np.int64,
        )
        # position 0 of ``ids`` stands for NULL
        return np.asarray(ids[pc.fill_null(pc.add(enc.indices, 1), 0).to_numpy()], np.int64)

    def names(self) -> pa.Array:
        """The texts in id order (id ``i`` at position ``i - 1``)."""
        return pa.array(list(self.ids), type=pa.string())

    def ranks(self) -> np.ndarray:
        """``ranks[id]``: the text's place in byte order, 0 for NULL; sorted again only
        when texts were added since the last call."""
        if len(self._ranks) != len(self.ids) + 1:
            self._ranks = np.zeros(len(self.ids) + 1, dtype=np.int64)
            order = pc.sort_indices(self.names()).to_numpy()
            self._ranks[order + 1] = np.arange(1, len(order) + 1)
        return self._ranks


class _Addresses:
    """Address text -> key: canonical IPv4 by value, anything else ``OTHER`` + its id in
    a dictionary (IPv6 is rare in these logs; a store full of it pays per distinct text)."""

    def __init__(self) -> None:
        self.other = _Dictionary()

    def keys(self, arr: pa.Array, k: Any) -> np.ndarray:
        offsets, data = string_buffers(arr)
        out = np.empty(len(arr), dtype=np.int64)
        k.ip4_keys(offsets, data, out)
        rest = np.flatnonzero(out < 0)
        if len(rest):
            out[rest] = k.OTHER - 1 + self.other.codes(arr.take(pa.array(rest)))
        return out


def _addr_texts(keys: np.ndarray, other: tuple[np.ndarray, np.ndarray], k: Any) -> pa.Array:
    """Address keys back to text; ``other``: the buffers of the non-IPv4 texts by id."""
    offsets = np.empty(len(keys) + 1, dtype=np.int64)
    data = k.format_addrs(keys, *other, offsets)
    return pa.LargeStringArray.from_buffers(len(keys), pa.py_buffer(offsets), pa.py_buffer(data))


def _ints(arr: pa.Array, null: int) -> np.ndarray:
    """``arr`` as int64 with ``null`` for NULL."""
    return np.asarray(pc.fill_null(arr.cast(pa.int64()), null).to_numpy(), dtype=np.int64)


class _Partition:
    """One hash partition's per-sensor groups: a matrix and its open-addressing index."""

    def __init__(self, k: Any, expected: int) -> None:
        self.k = k
        # sized for the expected rows up front: pages never written cost no memory, and a
        # grown copy holds the matrix twice for a moment
        self.rows = np.empty((expected, k.GROUP_WIDTH), dtype=np.int64)
        size = 1 << int(2 * expected - 1).bit_length()
        self.index = np.full(size, -1, dtype=np.int32)
        self.n = 0

    def reserve(self, need: int) -> None:
        """Room for ``need`` more groups: the index stays under half full."""
        k, n = self.k, self.n
        if len(self.rows) < n + need:
            bigger = np.empty((max(2 * len(self.rows), n + need), k.GROUP_WIDTH), np.int64)
            bigger[:n] = self.rows[:n]
            self.rows = bigger
        if len(self.index) < 2 * (n + need):
            self.index = np.full(1 << int(2 * (n + need) - 1).bit_length(), -1, dtype=np.int32)
            k.rehash(self.rows, n, self.index)

    def fold(self, ranks: np.ndarray) -> np.ndarray:
        """The partition's pairs, one row each in the group layout (see
        ``fold_sensors``); the groups are gone afterwards."""
        k = self.k
        self.index.fill(-1)  # kept at least twice as long as the groups
        m = k.fold_sensors(self.rows, self.n, ranks, self.index)
        self.index = np.empty(0, dtype=np.int32)
        folded, self.rows = self.rows[:m], np.empty((0, k.GROUP_WIDTH), dtype=np.int64)
        return folded


def build_pairs(con: duckdb.DuckDBPyConnection, threads: int = 0) -> None:
    """Group ``conversations`` into the temporary table ``_pairs``: the columns of
    ``pairs`` that come from flows, and ``src_k``/``dst_k``, the address keys (IPv4
    value, or >= 2**32 for other text).

    The groups are split in ``threads`` hash partitions (default: one per core), each
    filled and folded by its own thread while the next batch is read; each partition's
    pairs go into DuckDB (which spills when it must) before the next is converted."""
    from vpnsentry.detect import _kernels as k

    parts = partitions_for(threads)
    count = int(con.sql("SELECT count(*) FROM conversations").fetchall()[0][0])
    partitions = [_Partition(k, _first_size(count, parts)) for _ in range(parts)]
    addrs, protos, sensors, users = _Addresses(), _Dictionary(), _Dictionary(), _Dictionary()
    reader = con.sql(_FLOWS_SQL).to_arrow_reader(BATCH_ROWS)
    with ThreadPoolExecutor(parts) as pool:
        pending: list[Future[int]] = []
        for batch in reader:
            b = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
            rev = b["rev"].to_numpy(zero_copy_only=False)
            s, d = addrs.keys(b["s"], k), addrs.keys(b["d"], k)
            sp, dp = _ints(b["sp"], k.NULL), _ints(b["dp"], k.NULL)
            port = np.where(rev, sp, dp)
            port = np.where(port == k.NULL, k.NULL_PORT, port + (1 << 31))
            ts = _ints(b["ts"], 0)
            sb, db = _ints(b["sb"], k.NULL), _ints(b["db"], k.NULL)
            args = (
                np.where(rev, d, s),
                np.where(rev, s, d),
                (np.floor_divide(ts, _DAY_US) << k.DAY_SHIFT) | port,
                (protos.codes(b["proto"]) << 32) | sensors.codes(b["sensor"]),
                rev,
                np.where(rev, db, sb),
                np.where(rev, sb, db),
                _ints(b["nb"], k.NULL),
                ts,
                _ints(b["dur"], k.NULL),
                users.codes(b["usr"]),
                users.ranks(),
            )
            _settle(partitions, pending)  # the previous batch, added while this one was read
            for p, part in enumerate(partitions):
                part.reserve(len(rev))
                pending.append(pool.submit(_add, k, args, p, parts, part))
        _settle(partitions, pending)
        ranks = users.ranks()
        folded = list(pool.map(lambda part: part.fold(ranks), partitions))
    del partitions
    names = _Names(string_buffers(addrs.other.names()), protos.names(), users.names())

    def tables() -> Iterator[pa.Table]:
        for i in range(len(folded)):
            rows, folded[i] = folded[i], np.empty((0, k.GROUP_WIDTH), dtype=np.int64)
            yield from column_slices(rows, lambda cols: _table(cols, names, k), k)

    store_parts(con, "_pairs", tables(), temp=True)


def column_slices(
    rows: np.ndarray, table: Callable[[np.ndarray], pa.Table], k: Any
) -> Iterator[pa.Table]:
    """``table`` of ``rows`` (groups) turned into columns ``SLICE_ROWS`` at a time (at
    least one, maybe empty): a whole partition's columns next to its groups set the peak
    memory of building ``transfers``, the detection run's peak, while DuckDB already held
    ``pairs``."""
    for lo in range(0, max(len(rows), 1), SLICE_ROWS):
        yield table(k.columns(rows[lo : lo + SLICE_ROWS]))


def store_parts(
    con: duckdb.DuckDBPyConnection, name: str, parts: Iterable[pa.Table], *, temp: bool = False
) -> None:
    """Create the table ``name`` from ``parts`` (at least one), one at a time: each part's
    Arrow memory can go once DuckDB holds its rows (and DuckDB spills when it must)."""
    for i, part in enumerate(parts):
        con.register("_part", part)
        con.execute(
            f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE {name} AS SELECT * FROM _part"
            if i == 0
            else f"INSERT INTO {name} SELECT * FROM _part"
        )
        con.unregister("_part")
        del part  # not held while the next part is made


def partitions_for(threads: int) -> int:
    """Hash partitions (and threads) of a compiled grouping: ``threads``, or one per core,
    at most 4."""
    return threads or max(1, min(os.cpu_count() or 1, 4))


def _first_size(count: int, parts: int) -> int:
    """Groups a partition makes room for up front: its share of the rows and 10% (the hash
    spreads pairs evenly; at most one group per row)."""
    return count // parts + count // (10 * parts) + MIN_GROUPS


def _add(k: Any, args: tuple[np.ndarray, ...], p: int, parts: int, part: _Partition) -> int:
    """Add a batch's rows of partition ``p`` (runs without the GIL)."""
    return int(k.add_rows(*args, p, parts, part.index, part.rows, part.n))


def _settle(partitions: list[_Partition], pending: list[Future[int]]) -> None:
    """Wait for the batch in flight (if any) and take the partitions' new group counts."""
    for part, fut in zip(partitions, pending, strict=False):
        part.n = fut.result()
    pending.clear()


class _Names(NamedTuple):
    """The dictionaries' texts once all rows are read, shared by every partition's table."""

    other_addrs: tuple[np.ndarray, np.ndarray]  # buffers of the non-IPv4 address texts
    protos: pa.Array
    users: pa.Array


def _table(cols: np.ndarray, names: _Names, k: Any) -> pa.Table:
    """The pairs (one row of ``cols`` per value: Arrow takes them without a copy) as Arrow
    columns, NULL where the sentinels say so."""

    def nullable(col: int) -> pa.Array:
        return pa.array(cols[col], mask=cols[col] == k.NULL)

    def named(codes: np.ndarray, texts: pa.Array) -> pa.Array:
        return texts.take(pa.array(codes - 1, mask=codes == 0))

    port = cols[k.C_DAY_PORT] & ((1 << k.DAY_SHIFT) - 1)
    ts = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "src": _addr_texts(cols[k.C_SRC], names.other_addrs, k),
            "dst": _addr_texts(cols[k.C_DST], names.other_addrs, k),
            "src_k": cols[k.C_SRC],
            "dst_k": cols[k.C_DST],
            "dport": pa.array((port - (1 << 31)).astype(np.int32), mask=port == k.NULL_PORT),
            "proto": named(cols[k.C_PROTO_SENSOR] >> 32, names.protos),
            "day": pa.array((cols[k.C_DAY_PORT] >> k.DAY_SHIFT) * _DAY_US).cast(ts),
            "conns": cols[k.C_COUNTS],
            "bytes_out": nullable(k.C_OUT),
            "bytes_in": nullable(k.C_IN),
            "bytes_total": nullable(k.C_TOTAL),
            "first_ts": pa.array(cols[k.C_FIRST]).cast(ts),
            "last_ts": pa.array(cols[k.C_LAST]).cast(ts),
            "max_duration": nullable(k.C_DUR),
            "sensors": cols[k.C_PROTO_SENSOR] & 0xFFFFFFFF,
            "user_name": named(cols[k.C_USER], names.users),
        }
    )
