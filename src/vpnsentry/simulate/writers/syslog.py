"""How syslog-borne lines are framed in the collector's files, and time formatting.

A gateway sends a message; what lands in the file depends on the collector. The styles below
are the ones met in practice (and in the shared corpus):

* ``rfc3339``: rsyslog's ``RSYSLOG_FileFormat``: arrival time with microseconds and the
  sender's address, then the message (``2026-04-03T00:31:09.976660+00:00 192.168.2.1 date=…``).
* ``bsd``: rsyslog's traditional file format: ``Mar  3 16:00:01 10.50.250.1 date=…``.
* ``pri``: the raw datagram as received (a collector that stores what it gets), starting with
  ``<PRI>``; Cisco ASA messages then carry the device's own ``logging timestamp``.
* ``rfc5424``: ``<PRI>1 2025-03-03T10:00:01.123+09:00 host app - - - message``.
* ``file``: no syslog framing at all (a program's own log file, e.g. OpenVPN's ``--log``).

Collector arrival times are true time plus a small network delay; device timestamps are true
time plus the device's clock skew. Both are seconds at most, as on a healthy network.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from collections import OrderedDict
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import US, text_table
from vpnsentry.simulate.layout import Layout, Table
from vpnsentry.simulate.writers import Device

_DAY_S: Final = 86400
_CACHE: OrderedDict[tuple[str, str, int], pl.Series] = OrderedDict()
_CACHE_DAYS: Final = 96
#: Lines per day below which direct formatting beats building a day's table.
_TABLE_MIN: Final = 40_000


def when(us: pl.Expr, tz: str = "UTC") -> pl.Expr:
    """UTC microseconds as a zone-aware datetime in ``tz``."""
    t = pl.from_epoch(us, time_unit="us").dt.replace_time_zone("UTC")
    return t if tz == "UTC" else t.dt.convert_time_zone(tz)


#: Log sources are formatted on several threads (``simulate/output.py``); the caches of
#: formatted days are shared.
_LOCK = threading.RLock()


def _day_table(fmt: str, tz: str, day: int) -> pl.Series:
    """``fmt`` for every second of UTC day ``day`` (days since the epoch), cached."""
    with _LOCK:
        return _day_table_locked(fmt, tz, day)


def _day_table_locked(fmt: str, tz: str, day: int) -> pl.Series:
    key = (fmt, tz, day)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    secs = pl.int_range(day * _DAY_S, (day + 1) * _DAY_S, eager=True, dtype=pl.Int64)
    table = pl.select(when(pl.lit(secs) * 1_000_000, tz).dt.strftime(fmt)).to_series()
    _CACHE[key] = table
    if len(_CACHE) > _CACHE_DAYS:
        _CACHE.popitem(last=False)
    return table


def strf(df: pl.DataFrame, us: pl.Expr, fmt: str, tz: str = "UTC") -> pl.Series:
    """Format UTC microseconds ``us`` (evaluated on ``df``) to whole seconds with ``fmt``.

    Why tables: a day has 86,400 seconds but a busy log a million lines, so each second is
    formatted once per format and zone, and lines pick theirs by index.
    """
    secs = df.select((us // 1_000_000).alias("s")).to_series().to_numpy()
    if not len(secs):
        return pl.Series([], dtype=pl.String)
    d0, d1 = int(secs.min()) // _DAY_S, int(secs.max()) // _DAY_S
    days = range(d0, d1 + 1)
    cached = all((fmt, tz, d) in _CACHE for d in days)
    if not cached and (len(secs) < _TABLE_MIN * len(days) or len(days) > 40):
        # Few lines (or sessions up for weeks): formatting them is cheaper than a table.
        return df.select(when(us, tz).dt.strftime(fmt)).to_series()
    table = pl.concat([_day_table(fmt, tz, d) for d in days])
    return table.gather(pl.Series(secs - d0 * _DAY_S, dtype=pl.UInt32))


_TABLES: OrderedDict[tuple[str, str, int], Table] = OrderedDict()
_JOINED: OrderedDict[tuple[str, str, int, int], Table] = OrderedDict()


def _days_bytes(fmt: str, tz: str, d0: int, d1: int) -> Table:
    """:func:`_day_table` of days ``d0``..``d1`` as one :class:`Table`; each day is
    formatted and converted once, and the last few joined ranges are kept (the batches of a
    day span the same two or three UTC days)."""
    with _LOCK:
        return _days_bytes_locked(fmt, tz, d0, d1)


def _days_bytes_locked(fmt: str, tz: str, d0: int, d1: int) -> Table:
    key = (fmt, tz, d0, d1)
    hit = _JOINED.get(key)
    if hit is not None:
        _JOINED.move_to_end(key)
        return hit
    days = []
    for d in range(d0, d1 + 1):
        day_key = (fmt, tz, d)
        table = _TABLES.get(day_key)
        if table is None:
            table = _TABLES[day_key] = Table.from_series(_day_table(fmt, tz, d))
            if len(_TABLES) > _CACHE_DAYS:
                _TABLES.popitem(last=False)
        _TABLES.move_to_end(day_key)
        days.append(table)
    joined = _JOINED[key] = Table.join(days)
    if len(_JOINED) > 16:
        _JOINED.popitem(last=False)
    return joined


def _clock_only(fmt: str) -> bool:
    """Whether ``fmt`` uses no directive but hours, minutes and seconds."""
    return set(re.findall(r"%.", fmt)) <= {"%H", "%M", "%S", "%%"}


@functools.cache
def _clock(fmt: str) -> Table:
    """``fmt`` (time of day only) for each of the 86,400 seconds of a day."""
    return Table.from_series(_day_table(fmt, "UTC", 0))


def stamp(lay: Layout, us: npt.NDArray[np.int64], fmt: str, tz: str = "UTC") -> Layout:
    """Add UTC microseconds ``us`` formatted to whole seconds with ``fmt`` to ``lay``.

    In UTC, a format whose time of day comes last (``%b %d %Y %H:%M:%S …``) is two picks:
    the date part from the few days spanned, the rest from one table of a day's 86,400
    seconds made once. Otherwise, as in :func:`strf`, a busy day's lines pick from a table
    of its formatted seconds (cached as bytes), and a few lines, or times spread over more
    than a few days, format their distinct seconds only.
    """
    secs = us // US
    if not len(secs):
        return lay.pick(Table.of([""]), secs)
    d0, d1 = int(secs.min()) // _DAY_S, int(secs.max()) // _DAY_S
    split = fmt.find("%H")
    if tz == "UTC" and split >= 0 and _clock_only(fmt[split:]) and d1 - d0 <= 400:
        day = secs // _DAY_S
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        dates = [(epoch + dt.timedelta(days=d)).strftime(fmt[:split]) for d in range(d0, d1 + 1)]
        lay.pick(dates, day - d0)
        return lay.pick(_clock(fmt[split:]), secs - day * _DAY_S)
    cached = all((fmt, tz, d) in _TABLES for d in range(d0, d1 + 1))
    if d1 - d0 < 3 and (cached or len(secs) >= _TABLE_MIN * (d1 - d0 + 1)):
        return lay.pick(_days_bytes(fmt, tz, d0, d1), secs - d0 * _DAY_S)
    uniq, codes = np.unique(secs, return_inverse=True)
    text = pl.select(when(pl.lit(pl.Series(uniq * US)), tz).dt.strftime(fmt)).to_series()
    return lay.pick(Table.from_series(text), codes.reshape(-1))


def frame_layout(
    lay: Layout,
    dev: Device,
    *,
    arrival: npt.NDArray[np.int64],
    device_ts: npt.NDArray[np.int64],
    pri: int,
    app: str = "-",
) -> Layout:
    """The pieces of :func:`frame_parts` added to a :class:`Layout` (numpy times)."""
    style = dev.header
    if style == "rfc3339":
        stamp(lay, arrival, "%Y-%m-%dT%H:%M:%S").text(".").pad(arrival % US, 6)
        return lay.text(f"+00:00 {dev.ip} ")
    if style == "bsd":
        return stamp(lay, arrival, f"%b %e %H:%M:%S {escape(dev.ip)} ")
    if style == "pri":
        return lay.text(f"<{pri}>")
    if style == "rfc5424":
        lay.text(f"<{pri}>1 ")
        stamp(lay, device_ts, "%Y-%m-%dT%H:%M:%S", dev.tz).text(".").pad(device_ts % US // 1000, 3)
        return stamp(lay, device_ts, f"%:z {escape(dev.hostname)} {escape(app)} - - - ", dev.tz)
    if style == "file":
        return lay
    raise ValueError(f"unknown header style {style!r}")


def frame_parts(
    df: pl.DataFrame,
    dev: Device,
    *,
    arrival: pl.Expr,
    device_ts: pl.Expr,
    pri: int,
    app: str = "-",
) -> list[pl.Expr]:
    """The ``concat_str`` pieces that go before a message body in ``dev.header`` style.

    ``arrival`` is when the collector received the line (UTC microseconds), ``device_ts``
    the device's own clock reading, used by the RFC 5424 header the device writes itself.
    Pieces rather than a string, so a writer joins header and body in one pass.
    """
    style = dev.header
    if style == "rfc3339":
        return [
            pl.lit(strf(df, arrival, "%Y-%m-%dT%H:%M:%S")),
            pl.lit("."),
            (arrival % 1_000_000).cast(pl.String).str.zfill(6),
            pl.lit(f"+00:00 {dev.ip} "),
        ]
    if style == "bsd":
        return [pl.lit(strf(df, arrival, f"%b %e %H:%M:%S {escape(dev.ip)} "))]
    if style == "pri":
        return [pl.lit(f"<{pri}>")]
    if style == "rfc5424":
        return [
            pl.lit(f"<{pri}>1 "),
            pl.lit(strf(df, device_ts, "%Y-%m-%dT%H:%M:%S", dev.tz)),
            pl.lit(text_table("ms", "", ".")).gather(device_ts % 1_000_000 // 1000),
            pl.lit(strf(df, device_ts, f"%:z {escape(dev.hostname)} {escape(app)} - - - ", dev.tz)),
        ]
    if style == "file":
        return []
    raise ValueError(f"unknown header style {style!r}")


def frame(
    df: pl.DataFrame,
    body: pl.Expr,
    dev: Device,
    *,
    arrival: pl.Expr,
    device_ts: pl.Expr,
    pri: int,
    app: str = "-",
) -> pl.Series:
    """``body`` (evaluated on ``df``) framed in ``dev.header`` style; see :func:`frame_parts`."""
    parts = frame_parts(df, dev, arrival=arrival, device_ts=device_ts, pri=pri, app=app)
    return df.select(pl.concat_str([*parts, body]).alias("line")).to_series()


def escape(text: str) -> str:
    """Literal text inside a strftime format."""
    return text.replace("%", "%%")
