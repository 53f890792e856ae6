"""The numba kernels behind :mod:`vpnsentry.simulate.layout` (imported only when needed).

Each kernel runs over whole arrays: :func:`render` interprets a layout's op list for every
row (a pass for lengths, a pass for bytes), :func:`gather` copies lines by index into one
buffer. Op codes are those of ``layout.py``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def _memcpy_bytes(typingctx: Any, dst: Any, dst_at: Any, src: Any, src_at: Any, size: Any) -> Any:
    """``dst[dst_at:dst_at + size] = src[src_at:src_at + size]`` as one ``memcpy`` (a byte
    loop or a slice assignment costs several times more for the short runs of a line)."""
    sig = types.void(dst, types.intp, src, types.intp, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        d, d_at, s, s_at, n = args
        d_arr = context.make_array(signature.args[0])(context, builder, d)
        s_arr = context.make_array(signature.args[2])(context, builder, s)
        d_ptr = builder.gep(d_arr.data, [d_at])
        s_ptr = builder.gep(s_arr.data, [s_at])
        cgutils.raw_memcpy(builder, d_ptr, s_ptr, n, 1)  # type: ignore[no-untyped-call]
        return context.get_dummy_value()

    return sig, codegen


_memcpy: Any = _memcpy_bytes  # called with the arguments after ``typingctx``


#: "00" to "99": numbers are written two digits per division.
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint8)
_OCTET = np.frombuffer("".join(f"{i:03d}." for i in range(256)).encode(), dtype=np.uint8)
_P10 = np.array([10**k for k in range(1, 20)], dtype=np.uint64)


@numba.njit(cache=True, nogil=True, inline="always")
def _ndigits(u: Any) -> int:
    """Decimal digits of the unsigned ``u``."""
    n = 1
    while n < 20 and u >= _P10[n - 1]:
        n += 1
    return n


@numba.njit(cache=True, nogil=True, inline="always")
def _put_uint(out: Any, at: int, u: Any, width: int) -> None:
    """The unsigned ``u`` as ``width`` digits ending at ``at + width``, two at a time
    (unsigned division by a constant compiles to a multiplication)."""
    k = at + width
    while k - at >= 2:
        q = u // np.uint64(100)
        r = (u - q * np.uint64(100)) * np.uint64(2)
        out[k - 2] = _PAIRS[r]
        out[k - 1] = _PAIRS[r + np.uint64(1)]
        u = q
        k -= 2
    if k > at:
        out[at] = np.uint8(48 + u % np.uint64(10))


@numba.njit(cache=True, nogil=True, inline="always")
def _copy_entry(out: Any, at: int, data: Any, offs: Any, e: int) -> int:
    s, t = offs[e], offs[e + 1]
    _memcpy(out, at, data, s, t - s)
    return at + t - s  # type: ignore[no-any-return]


@numba.njit(cache=True, nogil=True)
def render(ops: Any, inputs: Any, big: Any, maxlen: int) -> Any:
    """Every row's line as bytes, and the offsets of the lines.

    ``ops``: (kind, a, b) arrays; ``inputs``: the integer columns (rows, columns), the
    fixed-width byte matrix, the blob of literals and small tables, the tables' offsets;
    ``big``: three big tables as (bytes, offsets) pairs; ``maxlen``: a bound on a line's
    length. One pass over the rows.
    """
    kind, arg_a, arg_b = ops
    cols, mats, blob, toff = inputs
    big0, off0, big1, off1, big2, off2 = big
    n = cols.shape[0]
    k = len(kind)
    offs = np.zeros(n + 1, dtype=np.int64)
    # Room for the longest possible lines: pages past what is written are never touched,
    # so the bound costs address space only.
    out = np.empty(n * maxlen, dtype=np.uint8)
    at = 0
    for i in range(n):
        j = 0
        while j < k:
            op = kind[j]
            a = arg_a[j]
            b = arg_b[j]
            if op == 0:
                _memcpy(out, at, blob, a, b)
                at += b
            elif op == 1:
                v = cols[i, a]
                if v < 0:
                    out[at] = 45  # '-'
                    at += 1
                    v = -v
                u = np.uint64(v)
                w = _ndigits(u)
                _put_uint(out, at, u, w)
                at += w
            elif op == 2:
                e = b + cols[i, a]
                s, t = toff[e], toff[e + 1]
                _memcpy(out, at, blob, s, t - s)
                at += t - s
            elif op == 3:
                _put_uint(out, at, np.uint64(cols[i, a]), b)
                at += b
            elif op == 4:
                v = cols[i, a]
                for shift in (24, 16, 8, 0):
                    octet = (v >> shift) & 255
                    if octet >= 100:
                        out[at] = _OCTET[octet * 4]
                        at += 1
                    if octet >= 10:
                        out[at] = _OCTET[octet * 4 + 1]
                        at += 1
                    out[at] = _OCTET[octet * 4 + 2]
                    out[at + 1] = 46  # '.'
                    at += 2
                at -= 1  # no dot after the last octet
            elif op == 5:
                for q in range(b):
                    out[at + q] = mats[i, a + q]
                at += b
            elif op == 6:
                if cols[i, a] == 0:
                    j += b
            elif op == 7:
                e = cols[i, a]
                if b == 0:
                    at = _copy_entry(out, at, big0, off0, e)
                elif b == 1:
                    at = _copy_entry(out, at, big1, off1, e)
                else:
                    at = _copy_entry(out, at, big2, off2, e)
            j += 1
        offs[i + 1] = at
    return out[:at], offs


@numba.njit(cache=True, nogil=True)
def place(data: Any, offs: Any, idx: Any, dest: Any, out: Any) -> None:
    """Copy line ``idx[i]`` of ``data`` and a newline to ``out[dest[i]:]`` (skip if -1)."""
    for i in range(len(idx)):
        at = dest[i]
        if at < 0:
            continue
        r = idx[i]
        s = offs[r]
        size = offs[r + 1] - s
        _memcpy(out, at, data, s, size)
        out[at + size] = 10
