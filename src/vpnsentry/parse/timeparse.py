"""Vectorized timestamp conversion shared by the parsers.

All functions take and return Polars expressions, so a parser converts a whole chunk's
timestamps in one pass. Results are ``Datetime("us", "UTC")``; unparsable or impossible
values become null, which ``run.py`` turns into a ``bad_timestamp`` quarantine entry.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS

MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    )
}

#: Earliest timestamp accepted as real. Anything before is a broken clock or a broken line.
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
#: How far in the future a timestamp may be before it counts as impossible.
FUTURE_SLACK = dt.timedelta(days=366)

_NAIVE_FMT = "%Y-%m-%d %H:%M:%S%.f"


def local_to_utc(naive: pl.Expr, tz: str) -> pl.Expr:
    """Interpret a naive ``Datetime`` expression as wall time in ``tz`` and convert to UTC.

    A wall time that does not exist (spring-forward gap) becomes null; an ambiguous one
    (fall-back hour) takes the earlier instant, the usual convention of log tools.
    """
    return (
        naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(UTC_TS)
    )


def offset_minutes(offset: pl.Expr) -> pl.Expr:
    """Minutes east of UTC from ``Z``, ``+09:00``, ``+0900``, ``-07``; null when absent."""
    o = offset.str.replace(":", "", literal=True)
    sign = pl.when(o.str.starts_with("-")).then(-1).otherwise(1)
    hh = o.str.slice(1, 2).cast(pl.Int32, strict=False)
    mm = pl.when(o.str.len_chars() >= 5).then(o.str.slice(3, 2).cast(pl.Int32, strict=False))
    mins = sign * (hh * 60 + mm.fill_null(0))
    return pl.when(o == "Z").then(pl.lit(0, pl.Int32)).otherwise(mins)


def with_offset(naive: pl.Expr, offset: pl.Expr, tz: str) -> pl.Expr:
    """UTC from a naive datetime plus an optional UTC offset string; ``tz`` when no offset."""
    mins = offset_minutes(offset)
    explicit = (naive - pl.duration(minutes=mins)).dt.replace_time_zone("UTC").cast(UTC_TS)
    return (
        pl.when(offset.is_not_null() & (offset != ""))
        .then(explicit)
        .otherwise(local_to_utc(naive, tz))
    )


def parse_iso(text: pl.Expr, tz: str) -> pl.Expr:
    """ISO 8601 / RFC 3339 timestamps (``T`` or space, optional fraction, optional offset)."""
    parts = text.str.extract_groups(
        r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
    )
    naive = pl.concat_str(
        [
            parts.struct.field("1"),
            pl.lit(" "),
            parts.struct.field("2"),
            parts.struct.field("3").str.slice(0, 7).fill_null(""),
        ]
    ).str.strptime(pl.Datetime("us"), _NAIVE_FMT, strict=False)
    return with_offset(naive, parts.struct.field("4"), tz)


def parse_naive(text: pl.Expr, fmt: str, tz: str) -> pl.Expr:
    """Timestamps without a zone, in strftime ``fmt``, as wall time in ``tz``."""
    return local_to_utc(text.str.strptime(pl.Datetime("us"), fmt, strict=False), tz)


def parse_bsd(
    month: pl.Expr, day: pl.Expr, year: pl.Expr, clock: pl.Expr, tz: str, now: dt.datetime
) -> pl.Expr:
    """RFC 3164 parts (``Oct``, ``9``, optional year, ``12:34:56[.fff]``) to UTC.

    Syslog without a year gets ``year``; a result more than two days ahead of ``now`` is
    moved one year back, so December lines read in January land in the right year.

    Evaluated in stages over the whole column (``map_batches``): as one expression, the
    parsed time would be re-parsed for each of its five references (an eager expression is
    evaluated once per reference); staged, each step runs once, the month name read by
    ``%b`` without mapping and re-formatting.
    """
    parts = pl.struct(
        month.alias("m"), day.alias("d"), year.cast(pl.String).alias("y"), clock.alias("c")
    )
    return parts.map_batches(lambda s: _bsd(s, tz, now), return_dtype=UTC_TS)


def _bsd(parts: pl.Series, tz: str, now: dt.datetime) -> pl.Series:
    """``parse_bsd`` on a struct Series of its parts, one plain column per stage."""
    limit = pl.lit(now + dt.timedelta(days=2)).cast(UTC_TS)
    naive, ts, back = pl.col("naive"), pl.col("ts"), pl.col("back")
    df = (
        parts.struct.unnest()
        .select(
            pl.concat_str(["y", pl.lit(" "), "m", pl.lit(" "), "d", pl.lit(" "), "c"])
            .str.strptime(pl.Datetime("us"), "%Y %b %d %H:%M:%S%.f", strict=False)
            .alias("naive")
        )
        .with_columns(local_to_utc(naive, tz).alias("ts"), naive.dt.offset_by("-1y").alias("back"))
    )
    # The year before; Feb 29 has none (a re-parse of the text with that year says so too).
    earlier = pl.when(back.dt.day() == naive.dt.day()).then(local_to_utc(back, tz))
    return df.select(pl.when(ts > limit).then(earlier).otherwise(ts)).to_series()


def epoch(value: pl.Expr) -> pl.Expr:
    """Unix epoch as seconds, ms, us or ns (told apart by magnitude, as FortiOS varies)."""
    v = value.cast(pl.Float64, strict=False)
    us = (
        pl.when(v > 1e17)
        .then(v / 1e3)
        .when(v > 1e14)
        .then(v)
        .when(v > 1e11)
        .then(v * 1e3)
        .otherwise(v * 1e6)
    )
    return us.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(UTC_TS)


def plausible(ts: pl.Expr, now: dt.datetime) -> pl.Expr:
    """``ts`` where it lies between 1990 and a year from ``now``; null (impossible) otherwise."""
    lo = pl.lit(EARLIEST).cast(UTC_TS)
    hi = pl.lit(now + FUTURE_SLACK).cast(UTC_TS)
    return pl.when(ts.is_between(lo, hi)).then(ts)


_ISO_PARTS: Final = (
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
)


def iso_to_utc(text: pl.Series, tz: str, now: dt.datetime) -> pl.Series:
    """``plausible(parse_iso(text, tz), now)``, evaluated in stages.

    Why: as one expression, ``parse_iso`` re-runs its regex for every reference to a part
    (about 30 times with ``plausible``); on a chunk that cost more than all the rest of a
    parser. Here the regex runs once and each later step reads plain columns.
    """
    parts = (
        pl.DataFrame({"t": text.cast(pl.String)})
        .select(pl.col("t").str.extract_groups(_ISO_PARTS).alias("p"))
        .unnest("p")
    )
    naive = parts.select(
        pl.concat_str(
            [pl.col("1"), pl.lit(" "), pl.col("2"), pl.col("3").str.slice(0, 7).fill_null("")]
        )
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False)
        .alias("naive"),
        pl.col("4").alias("off"),
    )
    utc = naive.select(with_offset(pl.col("naive"), pl.col("off"), tz).alias("ts"))
    return utc.select(plausible(pl.col("ts"), now)).to_series().rename(text.name)
