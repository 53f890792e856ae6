"""Shared building blocks of the simulator: event table schemas, time, hashing, addresses.

Everything is columnar. Generators produce Polars frames of *events* (a network flow, a VPN
session, a failed login, an admin action) with true UTC times in integer microseconds; writers
turn a whole frame into vendor lines at once. Per-entity randomness that must not depend on the
order of generation (a user's home address in a given week) comes from a counter-based hash,
:func:`mix`, rather than from a sequential generator.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

US: Final = 1_000_000  # microseconds per second
MINUTE: Final = 60 * US
HOUR: Final = 3600 * US
DAY: Final = 86400 * US

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: No attack step: the row is benign.
BENIGN: Final = -1

#: Zeek connection states a generated flow can have (codes 0..4 of the ``state`` Enum).
TCP_STATES: Final = ("SF", "S0", "REJ", "RSTO", "RSTR")
#: Why an Enum: writers turn the state into vendor words by table lookup on its code.
STATE: Final = pl.Enum(TCP_STATES)

#: One network connection, as every flow source (gateway traffic log, Zeek, NetFlow) sees
#: it. ``state`` is Zeek's conn_state; bytes are payload bytes per direction.
FLOW_SCHEMA: Final[dict[str, pl.DataType]] = {
    "ts": pl.Int64(),
    "dur": pl.Int64(),
    "src": pl.UInt32(),
    "sport": pl.Int32(),
    "dst": pl.UInt32(),
    "dport": pl.Int32(),
    "proto": pl.UInt8(),
    "svc": pl.String(),
    "svc_id": pl.UInt16(),  # index of ``svc`` in events.SERVICE_NAMES, for table lookups
    "ob": pl.Int64(),
    "rb": pl.Int64(),
    "op": pl.Int64(),
    "rp": pl.Int64(),
    "state": STATE,
    "user": pl.String(),
    "tag": pl.Int32(),
}

#: One VPN session on a gateway, from login to logout. ``end`` past the window means the
#: session is still up when the logs stop.
SESSION_SCHEMA: Final[dict[str, pl.DataType]] = {
    "gw": pl.Int16(),
    "user": pl.String(),
    "group": pl.String(),  # VPN group / group policy the user lands in
    "src": pl.UInt32(),
    "sport": pl.Int32(),
    "tunnel": pl.UInt32(),
    "start": pl.Int64(),
    "end": pl.Int64(),
    "out_bytes": pl.Int64(),  # client -> gateway
    "in_bytes": pl.Int64(),  # gateway -> client
    "sid": pl.Int64(),  # the gateway's own session / tunnel id
    "reason": pl.String(),  # why it ended: user, idle, timeout
    "tag": pl.Int32(),
}

#: A rejected VPN login. ``reason``: bad_password, expired, unknown_user, locked.
FAIL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "gw": pl.Int16(),
    "user": pl.String(),
    "src": pl.UInt32(),
    "sport": pl.Int32(),
    "ts": pl.Int64(),
    "reason": pl.String(),
    "tag": pl.Int32(),
}

#: An administrator's action on a gateway. ``kind``: login_ok, login_fail, config, command.
#: For ``config``: ``action`` (Add, Edit, Delete), ``path``, ``obj``, ``attr``; for
#: ``command``: the CLI text in ``attr``.
ADMIN_SCHEMA: Final[dict[str, pl.DataType]] = {
    "gw": pl.Int16(),
    "ts": pl.Int64(),
    "user": pl.String(),
    "src": pl.UInt32(),
    "kind": pl.String(),
    "action": pl.String(),
    "path": pl.String(),
    "obj": pl.String(),
    "attr": pl.String(),
    "tag": pl.Int32(),
}

#: A TLS connection to the VPN portal that never authenticates (probe, scanner, exploit).
PORTAL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "gw": pl.Int16(),
    "ts": pl.Int64(),
    "src": pl.UInt32(),
    "sport": pl.Int32(),
    "tag": pl.Int32(),
}

#: A stretch of time in which a gateway's logs never reach the collector (logging disabled
#: or the log deleted on the box). Lines of that gateway inside the gap are not written.
GAP_SCHEMA: Final[dict[str, pl.DataType]] = {
    "gw": pl.Int16(),
    "start": pl.Int64(),
    "end": pl.Int64(),
    "tag": pl.Int32(),
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A frame with ``schema`` and no rows."""
    return pl.DataFrame(schema=schema)


def frame(schema: dict[str, pl.DataType], **cols: object) -> pl.DataFrame:
    """A frame from column arrays (scalars broadcast), cast to ``schema`` in its order."""
    n = max((len(v) for v in cols.values() if isinstance(v, np.ndarray | list)), default=0)
    data: dict[str, object] = {}
    for name, dtype in schema.items():
        v = cols.get(name)
        if isinstance(v, np.ndarray | list):
            data[name] = pl.Series(name, v).cast(dtype)
        else:
            data[name] = pl.Series(name, [v] * n, dtype=dtype)
    unknown = set(cols) - set(schema)
    if unknown:
        raise KeyError(f"columns not in schema: {sorted(unknown)}")
    return pl.DataFrame(data)


@dataclass(frozen=True)
class Window:
    """The simulated period: ``days`` UTC days from ``start`` 00:00 UTC."""

    start: dt.date
    days: int

    @property
    def t0(self) -> int:
        """Window start in UTC microseconds."""
        return day_start(self.start)

    @property
    def t1(self) -> int:
        """Window end (exclusive) in UTC microseconds."""
        return self.t0 + self.days * DAY

    def date(self, i: int) -> dt.date:
        return self.start + dt.timedelta(days=i)


def day_start(day: dt.date) -> int:
    """00:00 UTC of ``day`` in microseconds since the epoch."""
    return (day - dt.date(1970, 1, 1)).days * DAY


def local_midnight(day: dt.date, tz: str) -> int:
    """00:00 local time of ``day`` in ``tz``, as UTC microseconds."""
    import zoneinfo

    t = dt.datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(tz))
    return int(t.timestamp()) * US


def iso(us: int) -> str:
    """UTC microseconds as ISO 8601 with a Z, second precision (for ground truth)."""
    return dt.datetime.fromtimestamp(us / US, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reuse_freed_memory() -> None:
    """Make glibc keep freed memory for the next allocation instead of returning it.

    Why: the simulator allocates and frees buffers of tens to hundreds of megabytes per log
    source and day. glibc maps every block above 32 MB afresh and unmaps it when freed, and
    first touching a page costs about five times as much as writing it again (measured on
    the project's 2-core VM: 300-byte lines into fresh pages 1.9 µs each, into reused ones
    60 ns). Raising the mmap and trim thresholds to 1-2 GB keeps the process's pages; the
    price is that its resident size does not shrink until it exits. One arena for all
    threads, because a thread's own arena maps every block over 64 MB afresh whatever the
    threshold (the formatting threads' line buffers are hundreds of MB; measured ~5% faster
    over 10 days x 10,000 users, ~300 MB more resident). A no-op without glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    mallopt(m_mmap_threshold, 1 << 30)
    mallopt(m_trim_threshold, (1 << 31) - 1)
    mallopt(m_arena_max, 1)


# --------------------------------------------------------------------------- hashing

_M1: Final = np.uint64(0xBF58476D1CE4E5B9)
_M2: Final = np.uint64(0x94D049BB133111EB)
_GOLD: Final = np.uint64(0x9E3779B97F4A7C15)


def mix(*keys: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """A well-mixed 64-bit hash of the keys (splitmix64 chained), elementwise.

    Used where a value must depend only on *what* it is for (user 17, week 3) and not on
    how many random numbers were drawn before it, so adding a scenario never changes the
    benign traffic of the same seed.
    """
    h = np.zeros(np.broadcast(*[np.asarray(k) for k in keys]).shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            h = h ^ np.asarray(k).astype(np.uint64)
            h = h + _GOLD
            h = (h ^ (h >> np.uint64(30))) * _M1
            h = (h ^ (h >> np.uint64(27))) * _M2
            h = h ^ (h >> np.uint64(31))
    return h


def unit(h: npt.NDArray[np.uint64]) -> F64:
    """Hash values to floats uniform in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# --------------------------------------------------------------------------- addresses


def ip_u32(addr: str | ipaddress.IPv4Address) -> int:
    """An IPv4 address as an int."""
    return int(ipaddress.IPv4Address(addr))


@functools.cache
def text_table(kind: str, suffix: str = "", prefix: str = "") -> pl.Series:
    """A lookup table of rendered numbers, each between ``prefix`` and ``suffix``.

    Why tables: Polars pays per piece and per row when it joins strings, and casting an
    integer costs about as much as a piece, so a value from a small domain is rendered once
    here and lines gather it by index (one piece instead of a cast, a pad and a separator).
    ``kind``: ``hi`` ("a.b." for every 16-bit value: the upper half of an address), ``lo``
    ("c.d", the lower half), ``dec`` (0-65535: ports), ``ms`` (000-999: milliseconds).
    """
    if kind == "hi":
        values = [f"{prefix}{i >> 8}.{i & 255}.{suffix}" for i in range(65536)]
    elif kind == "lo":
        values = [f"{prefix}{i >> 8}.{i & 255}{suffix}" for i in range(65536)]
    elif kind == "dec":
        values = [f"{prefix}{i}{suffix}" for i in range(65536)]
    elif kind == "ms":
        width = 3
        i = np.arange(10**width, dtype=np.int64)
        digits = (i[:, None] // 10 ** np.arange(width - 1, -1, -1)) % 10 + ord("0")
        head = np.tile(np.frombuffer(prefix.encode(), dtype=np.uint8), (len(i), 1))
        tail = np.tile(np.frombuffer(suffix.encode(), dtype=np.uint8), (len(i), 1))
        mat = np.concatenate([head, digits.astype(np.uint8), tail], axis=1)
        return fixed_width_text(mat).alias(kind)
    else:
        raise ValueError(f"unknown table {kind!r}")
    return pl.Series(kind, values, dtype=pl.String)


def ip_parts(col: str | pl.Expr, suffix: str = "") -> list[pl.Expr]:
    """A UInt32 address column as two ``concat_str`` pieces of dotted-quad text + ``suffix``."""
    x = (pl.col(col) if isinstance(col, str) else col).cast(pl.UInt32)
    return [
        pl.lit(text_table("hi")).gather(x // 65536),
        pl.lit(text_table("lo", suffix)).gather(x % 65536),
    ]


def ip_text(col: str | pl.Expr) -> pl.Expr:
    """A UInt32 address column as dotted-quad text (vectorized, by 16-bit table lookups)."""
    return pl.concat_str(ip_parts(col))


def port_text(col: str | pl.Expr, suffix: str = "") -> pl.Expr:
    """A port (0-65535) column as text + ``suffix``, by table lookup."""
    x = pl.col(col) if isinstance(col, str) else col
    return pl.lit(text_table("dec", suffix)).gather(x.cast(pl.UInt32))


def in_prefixes(prefixes: list[ipaddress.IPv4Network], h: npt.NDArray[np.uint64]) -> U32:
    """Addresses spread over ``prefixes`` (weighted by size) chosen by hash values ``h``.

    Host parts ending in .0 or .255 are nudged inwards, as those are rarely handed to hosts.
    """
    sizes = np.array([p.num_addresses for p in prefixes], dtype=np.float64)
    bases = np.array([int(p.network_address) for p in prefixes], dtype=np.uint64)
    cum = np.cumsum(sizes) / sizes.sum()
    which = np.minimum(np.searchsorted(cum, unit(h), side="right"), len(prefixes) - 1)
    off = (mix(h, 7) % sizes[which].astype(np.uint64)).astype(np.uint64)
    ip = bases[which] + off
    last = ip & np.uint64(255)
    ip = np.where(last == 0, ip + 1, np.where(last == 255, ip - 1, ip))
    return ip.astype(np.uint32)


def fixed_width_text(mat: npt.NDArray[np.uint8]) -> pl.Series:
    """Rows of an ASCII byte matrix as a String Series, without a Python loop."""
    n, w = mat.shape
    data = pa.py_buffer(np.ascontiguousarray(mat).tobytes())
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * w).tobytes())
    arr = pa.Array.from_buffers(pa.string(), n, [None, offsets, data])
    return pl.Series(pl.from_arrow(arr))


_B62: Final = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)


_HEX: Final = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_digits(h: npt.NDArray[np.uint64], width: int) -> npt.NDArray[np.uint8]:
    """The low ``width`` hex digits of each hash, most significant first, as ASCII bytes."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return _HEX[((h[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]


def base62(h: npt.NDArray[np.uint64], width: int) -> npt.NDArray[np.uint8]:
    """``width`` base-62 digits of each hash as an ASCII byte matrix (n, width)."""
    out = np.empty((len(h), width), dtype=np.uint8)
    x = h.copy()
    for i in range(width):
        if i == 10:
            x = mix(h, 99)  # 64 bits hold ~10.7 base-62 digits; take more from a second hash
        out[:, i] = _B62[(x % np.uint64(62)).astype(np.intp)]
        x = x // np.uint64(62)
    return out
