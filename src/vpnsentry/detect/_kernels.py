"""The numba kernels behind :mod:`vpnsentry.detect.pairs` and :mod:`vpnsentry.detect.transfers`
(imported only when needed).

Why compiled: the ``pairs`` table groups every flow of the store (a month of a large estate
is ~70 million rows) into per-sensor groups that are nearly as many as the rows, because
almost every Internet destination is distinct. DuckDB's hash aggregate over six keys and
nine aggregates paid ~2.5 µs per row there; one pass that keeps a group's keys and
aggregates side by side in one row of an int64 matrix (one cache line or two per probe,
not one per aggregate) pays a fraction of it. The groups outgrow every cache, so each
grouping loop prefetches the index slot and group row of rows a few steps ahead
(:func:`_prefetch`): the misses overlap instead of queueing.

Group rows (``GROUP_WIDTH`` int64 columns, see the ``C_*`` indices):

* keys: source and destination as ``addr`` keys (a canonical IPv4 address as its 32-bit
  value, any other text as ``OTHER + id``), ``day * 2**34 + port code`` (the port plus
  ``2**31``, ``NULL_PORT`` when absent) and ``protocol code * 2**32 + sensor code`` (codes
  are 1-based dictionary positions, 0 for NULL);
* aggregates: row counts of both directions (``fwd + rev * 2**32``), bytes out, in and
  total (``NULL`` = ``INT64_MIN`` until a value is seen; sums saturate at the int64
  bounds instead of wrapping), first and last time (epoch µs), longest duration, and the
  user: an id in order of first sight (0 = NULL) compared by ``user_rank[id]``, the
  names' byte order, so the kept user is the largest name, as SQL's ``max`` says. Ranks
  are recomputed when names are added; adding names never reorders earlier ones.
"""

from __future__ import annotations

from typing import Any, Final

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

NULL: Final = np.iinfo(np.int64).min
_MAX: Final = np.iinfo(np.int64).max
NULL_PORT: Final = 1 << 33
DAY_SHIFT: Final = 34
OTHER: Final = 1 << 32  # address keys at or above it index the non-IPv4 texts

#: Rows ahead of the one being added whose index slot, and (half as far ahead) whose group
#: row, are prefetched.
AHEAD: Final = 16

C_SRC, C_DST, C_DAY_PORT, C_PROTO_SENSOR, C_COUNTS = 0, 1, 2, 3, 4
C_OUT, C_IN, C_TOTAL, C_FIRST, C_LAST, C_DUR, C_USER = 5, 6, 7, 8, 9, 10, 11
GROUP_WIDTH: Final = 12


@numba.njit(cache=True, nogil=True)
def ip4_keys(offsets: Any, data: Any, out: Any) -> None:
    """``out[i]``: the 32-bit value of string ``i`` when it is a canonical dotted quad
    (four decimal octets 0-255, no leading zeros, nothing else), else -1. Canonical only,
    so that key and text stay one-to-one: ``01.2.3.4`` stays text, as SQL sees it."""
    for i in range(len(offsets) - 1):
        p = offsets[i]
        end = offsets[i + 1]
        value = 0
        octets = 0
        ok = True
        while ok and p < end and octets < 4:
            q = p
            v = 0
            while q < end and q - p < 3 and 48 <= data[q] <= 57:
                v = v * 10 + (data[q] - 48)
                q += 1
            if q == p or v > 255 or (q - p > 1 and data[p] == 48):
                ok = False
                break
            value = value * 256 + v
            octets += 1
            if octets < 4:
                if q < end and data[q] == 46:
                    q += 1
                else:
                    ok = False
            p = q
        out[i] = value if ok and octets == 4 and p == end else -1


def _prefetch_typer(typingctx: Any, arr: Any, i: Any) -> Any:
    """Ask the CPU to start loading element ``i`` of the 1-D array ``arr`` into its caches
    (LLVM's ``llvm.prefetch``: a hint, never a fault, whatever the address).

    Why: the groupings here are memory-latency bound. Groups are nearly as many as rows
    (gigabytes), so each row's index slot and group row are two cache misses, and the
    loop waits for each in turn (~300 ns a row on this VM). Prefetching a few rows ahead
    overlaps the misses (~80 ns a row, same result)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(i, types.Integer):
        return None

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        at = builder.gep(ary.data, [context.cast(builder, args[1], sig.args[1], types.intp)])
        byte_ptr, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_ptr], ir.FunctionType(ir.VoidType(), [byte_ptr] + [i32] * 3)
        )
        # write access, highest locality, data cache
        flags = [ir.Constant(i32, v) for v in (1, 3, 1)]
        builder.call(fn, [builder.bitcast(at, byte_ptr), *flags])
        return context.get_dummy_value()

    return types.void(arr, i), codegen


_prefetch: Any = intrinsic(_prefetch_typer)


@numba.njit(cache=True, nogil=True, inline="always")
def _ahead(index: Any, flat: Any, width: int, slots: Any, j: int, count: int) -> None:
    """Prefetch for row ``j + AHEAD`` its index slot and for row ``j + AHEAD // 2`` its
    group row (``flat``: the matrix as one array of ``width``-value rows), whose slot
    was prefetched half a lap ago; ``slots``: the rows' first probe slots."""
    if j + AHEAD < count:
        _prefetch(index, slots[j + AHEAD])
    if j + AHEAD // 2 < count:
        g = index[slots[j + AHEAD // 2]]
        if g >= 0:
            _prefetch(flat, g * width)
            _prefetch(flat, g * width + width - 1)  # a row may straddle two cache lines


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(h: Any, v: Any) -> Any:
    """One splitmix64-style round of ``v`` into ``h`` (uint64 arithmetic wraps)."""
    x = (h ^ np.uint64(v)) * np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return x ^ (x >> np.uint64(29))


@numba.njit(cache=True, nogil=True, inline="always")
def _add(cur: Any, v: Any) -> Any:
    """NULL-aware sum that saturates: an attacker-written byte count must not wrap."""
    if v == NULL:
        return cur
    if cur == NULL:
        return v
    # tested before adding: LLVM may assume a signed sum does not overflow
    if v > 0 and cur > _MAX - v:
        return _MAX
    if v < 0 and cur < NULL + 1 - v:
        return NULL + 1
    return cur + v


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_hash(src: Any, dst: Any, day_port: Any, proto: Any) -> Any:
    """Hash of a pair's keys: bits 48 and up pick the partition, the low bits the slot."""
    return _mix(_mix(_mix(_mix(np.uint64(0), src), dst), day_port), proto)


@numba.njit(cache=True, nogil=True, inline="always")
def _group(
    m: Any, index: Any, slot: Any, n: int, k0: Any, k1: Any, k2: Any, k3: Any, shift: int
) -> Any:
    """Probe ``index`` from ``slot`` for the group of keys ``k0..k3`` (``k3`` compared above
    bit ``shift``) in matrix ``m``; open it as row ``n`` when absent (aggregates at their
    neutral values). Returns (row, new group count)."""
    mask = np.uint64(len(index) - 1)
    while True:
        g = index[slot]
        if g < 0:
            index[slot] = n
            m[n, C_SRC] = k0
            m[n, C_DST] = k1
            m[n, C_DAY_PORT] = k2
            m[n, C_PROTO_SENSOR] = k3
            m[n, C_COUNTS] = 0
            for c in (C_OUT, C_IN, C_TOTAL, C_LAST, C_DUR):
                m[n, c] = NULL
            m[n, C_FIRST] = _MAX
            m[n, C_USER] = 0
            return n, n + 1
        if (
            m[g, C_SRC] == k0
            and m[g, C_DST] == k1
            and m[g, C_DAY_PORT] == k2
            and m[g, C_PROTO_SENSOR] >> shift == k3 >> shift
        ):
            return g, n
        slot = (slot + np.uint64(1)) & mask


@numba.njit(cache=True, nogil=True)
def rehash(rows: Any, n: int, index: Any) -> None:
    """Fill the empty ``index`` (all -1, a power of two long) with groups ``0..n-1``."""
    mask = np.uint64(len(index) - 1)
    for g in range(n):
        k3 = rows[g, C_PROTO_SENSOR]
        h = _mix(_pair_hash(rows[g, C_SRC], rows[g, C_DST], rows[g, C_DAY_PORT], k3 >> 32), k3)
        slot = h & mask
        while index[slot] >= 0:
            slot = (slot + np.uint64(1)) & mask
        index[slot] = g


@numba.njit(cache=True, nogil=True)
def add_rows(
    src: Any,
    dst: Any,
    day_port: Any,
    proto_sensor: Any,
    rev: Any,
    out_b: Any,
    in_b: Any,
    total_b: Any,
    ts: Any,
    dur: Any,
    user: Any,
    user_rank: Any,
    part: int,
    parts: int,
    index: Any,
    rows: Any,
    n: int,
) -> int:
    """Add the rows of a batch that fall in partition ``part`` of ``parts`` (by pair hash,
    so that all sensors of a pair share a partition and partitions fold on their own) to
    its per-sensor groups; return the partition's new group count.

    Inputs are oriented already (a turned-around NetFlow answer has its source and
    destination swapped and ``rev`` set). ``user`` holds ids (0 = NULL), ``user_rank``
    their byte order. The caller keeps ``index`` under half full and ``rows`` long enough
    for every row of the batch to open a group."""
    mask = np.uint64(len(index) - 1)
    np_parts = np.uint64(parts)
    # the partition's rows and their first slots, then the rows with lookahead
    mine = np.empty(len(src), dtype=np.int64)
    slots = np.empty(len(src), dtype=np.uint64)
    count = 0
    for i in range(len(src)):
        hp = _pair_hash(src[i], dst[i], day_port[i], proto_sensor[i] >> 32)
        if (hp >> np.uint64(48)) % np_parts == part:
            mine[count] = i
            slots[count] = _mix(hp, proto_sensor[i]) & mask
            count += 1
    flat = rows.reshape(-1)
    for j in range(count):
        _ahead(index, flat, GROUP_WIDTH, slots, j, count)
        i = mine[j]
        k0, k1, k2, k3 = src[i], dst[i], day_port[i], proto_sensor[i]
        g, n = _group(rows, index, slots[j], n, k0, k1, k2, k3, 0)
        rows[g, C_COUNTS] += (1 << 32) if rev[i] else 1
        rows[g, C_OUT] = _add(rows[g, C_OUT], out_b[i])
        rows[g, C_IN] = _add(rows[g, C_IN], in_b[i])
        rows[g, C_TOTAL] = _add(rows[g, C_TOTAL], total_b[i])
        rows[g, C_FIRST] = min(rows[g, C_FIRST], ts[i])
        rows[g, C_LAST] = max(rows[g, C_LAST], ts[i])
        rows[g, C_DUR] = max(rows[g, C_DUR], dur[i])
        if user_rank[user[i]] > user_rank[rows[g, C_USER]]:
            rows[g, C_USER] = user[i]
    return n


@numba.njit(cache=True, nogil=True)
def fold_sensors(rows: Any, n: int, user_rank: Any, index: Any) -> int:
    """Fold the per-sensor groups ``rows[:n]`` into pairs (the same keys without the
    sensor), in place: return the number of pairs ``m``, now ``rows[:m]``. A pair row has
    the group layout with ``C_COUNTS`` holding the largest sensor's connection count,
    ``C_PROTO_SENSOR`` the protocol code and the number of sensors (``proto * 2**32 +
    sensors``); bytes, times, duration and user are the largest (first time: smallest) over
    the sensors. ``index``: all -1, a power of two of at least ``2 * n`` slots.

    In place because pair ``p`` is opened at the count of pairs so far, never past the
    group being folded: its row is a group already folded, or the current one (whose
    values are read first). The groups' matrix is the largest allocation of a run; a second
    one for the pairs held ~1.4 GB more during the fold on a 71M-row store (two partitions
    of ~7.5M pairs, 96 bytes each)."""
    mask = np.uint64(len(index) - 1)
    slots = np.empty(n, dtype=np.uint64)
    for g in range(n):
        k3 = rows[g, C_PROTO_SENSOR] >> 32
        slots[g] = _pair_hash(rows[g, C_SRC], rows[g, C_DST], rows[g, C_DAY_PORT], k3) & mask
    flat = rows.reshape(-1)
    m = 0
    for g in range(n):
        _ahead(index, flat, GROUP_WIDTH, slots, g, n)
        k0, k1, k2 = rows[g, C_SRC], rows[g, C_DST], rows[g, C_DAY_PORT]
        proto = rows[g, C_PROTO_SENSOR] >> 32
        counts = rows[g, C_COUNTS]
        conns = max(counts & 0xFFFFFFFF, counts >> 32)
        b_out, b_in, b_total = rows[g, C_OUT], rows[g, C_IN], rows[g, C_TOTAL]
        first, last, dur, user = rows[g, C_FIRST], rows[g, C_LAST], rows[g, C_DUR], rows[g, C_USER]
        p, m = _group(rows, index, slots[g], m, k0, k1, k2, proto << 32, 32)
        rows[p, C_PROTO_SENSOR] += 1
        rows[p, C_COUNTS] = max(rows[p, C_COUNTS], conns)
        rows[p, C_OUT] = max(rows[p, C_OUT], b_out)
        rows[p, C_IN] = max(rows[p, C_IN], b_in)
        rows[p, C_TOTAL] = max(rows[p, C_TOTAL], b_total)
        rows[p, C_LAST] = max(rows[p, C_LAST], last)
        rows[p, C_DUR] = max(rows[p, C_DUR], dur)
        rows[p, C_FIRST] = min(rows[p, C_FIRST], first)
        if user_rank[user] > user_rank[rows[p, C_USER]]:
            rows[p, C_USER] = user
    return m


@numba.njit(cache=True, nogil=True)
def format_addrs(keys: Any, other_offsets: Any, other_data: Any, offsets: Any) -> Any:
    """Address keys back to text: Arrow string ``offsets`` (filled in) and the data bytes
    (returned). IPv4 keys are written as dotted quads, others copied from the ``other``
    strings (Arrow offsets and data) at index ``key - OTHER``."""
    size = 0
    for i in range(len(keys)):
        k = keys[i]
        if k >= OTHER:
            j = k - OTHER
            size += other_offsets[j + 1] - other_offsets[j]
        else:
            size += 15
    data = np.empty(size, dtype=np.uint8)
    at = 0
    offsets[0] = 0
    for i in range(len(keys)):
        k = keys[i]
        if k >= OTHER:
            j = k - OTHER
            for q in range(other_offsets[j], other_offsets[j + 1]):
                data[at] = other_data[q]
                at += 1
        else:
            for shift in (24, 16, 8, 0):
                v = (k >> shift) & 255
                if v >= 100:
                    data[at] = 48 + v // 100
                    at += 1
                if v >= 10:
                    data[at] = 48 + (v // 10) % 10
                    at += 1
                data[at] = 48 + v % 10
                at += 1
                if shift:
                    data[at] = 46
                    at += 1
        offsets[i + 1] = at
    return data[:at]


# -- transfers (detect/transfers.py) ------------------------------------------------------

#: Transfer group rows: keys host, external address (32-bit values) and day (epoch µs);
#: connections, bytes up and down (0 until a value is seen), the smallest service port
#: (``_MAX`` = none), first and last time, user id (compared by rank as above).
T_HOST, T_EXT, T_DAY, T_CONNS, T_UP, T_DOWN, T_PORT, T_FIRST, T_LAST, T_USER = range(10)
TRANSFER_WIDTH: Final = 10
NO_PORT: Final = _MAX


@numba.njit(cache=True, nogil=True)
def add_transfers(
    host: Any,
    ext: Any,
    day: Any,
    conns: Any,
    up: Any,
    down: Any,
    port: Any,
    first: Any,
    last: Any,
    user: Any,
    user_rank: Any,
    part: int,
    parts: int,
    index: Any,
    rows: Any,
    n: int,
) -> int:
    """Add the rows of a batch of oriented pairs that fall in partition ``part`` of
    ``parts`` (by key hash) to its (host, external address, day) groups in ``rows``; return
    the partition's new group count. ``up``/``down`` use ``NULL`` for no value, ``port``
    ``NO_PORT``; the caller keeps ``index`` under half full and ``rows`` long enough for
    every row to open a group."""
    mask = np.uint64(len(index) - 1)
    np_parts = np.uint64(parts)
    mine = np.empty(len(host), dtype=np.int64)
    slots = np.empty(len(host), dtype=np.uint64)
    count = 0
    for i in range(len(host)):
        h = _mix(_mix(_mix(np.uint64(0), host[i]), ext[i]), day[i])
        if (h >> np.uint64(48)) % np_parts == part:
            mine[count] = i
            slots[count] = h & mask
            count += 1
    flat = rows.reshape(-1)
    for j in range(count):
        _ahead(index, flat, TRANSFER_WIDTH, slots, j, count)
        i = mine[j]
        k0, k1, k2 = host[i], ext[i], day[i]
        slot = slots[j]
        while True:
            g = index[slot]
            if g < 0:
                g = n
                index[slot] = g
                n += 1
                rows[g, T_HOST] = k0
                rows[g, T_EXT] = k1
                rows[g, T_DAY] = k2
                rows[g, T_CONNS] = 0
                rows[g, T_UP] = 0
                rows[g, T_DOWN] = 0
                rows[g, T_PORT] = NO_PORT
                rows[g, T_FIRST] = _MAX
                rows[g, T_LAST] = NULL
                rows[g, T_USER] = 0
                break
            if rows[g, T_HOST] == k0 and rows[g, T_EXT] == k1 and rows[g, T_DAY] == k2:
                break
            slot = (slot + np.uint64(1)) & mask
        rows[g, T_CONNS] = _add(rows[g, T_CONNS], conns[i])
        rows[g, T_UP] = _add(rows[g, T_UP], up[i])
        rows[g, T_DOWN] = _add(rows[g, T_DOWN], down[i])
        rows[g, T_PORT] = min(rows[g, T_PORT], port[i])
        rows[g, T_FIRST] = min(rows[g, T_FIRST], first[i])
        rows[g, T_LAST] = max(rows[g, T_LAST], last[i])
        if user_rank[user[i]] > user_rank[rows[g, T_USER]]:
            rows[g, T_USER] = user[i]
    return n


@numba.njit(cache=True, nogil=True)
def columns(rows: Any) -> Any:
    """``rows`` (groups x values) as one contiguous array per value (values x groups).

    Why a loop: numpy's copy of the transposed view reads with a stride of the row width
    and cost ~2 s for 13M groups of 10 values; this reads the rows in order and writes
    each column in order."""
    n, width = rows.shape
    out = np.empty((width, n), dtype=rows.dtype)
    for i in range(n):
        for c in range(width):
            out[c, i] = rows[i, c]
    return out
