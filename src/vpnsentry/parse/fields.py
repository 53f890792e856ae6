"""Field conversions shared by the parsers (addresses first).

Why here: every vendor names addresses, and each parser writing its own IP check gave three
slightly different ones. Conversions work on distinct values where Python is involved, so
their cost follows the number of different addresses, not the number of lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Reason
from vpnsentry.parse.syslog import split_header


@lru_cache(maxsize=65536)
def canon_ipv6(text: str) -> str | None:
    """Canonical text of an IPv6 address; IPv4-mapped ones as plain IPv4 (that is what
    they are: a dual-stack socket's view of an IPv4 client)."""
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


def canonical_ip(values: pl.Series) -> tuple[pl.Series, int]:
    """Validated, canonical IP strings and the count of non-empty values that were not IPs.

    Works on the distinct values (a log names the same few addresses over and over): IPv4
    is checked with string kernels, IPv6 through ``ipaddress``, once per distinct value.
    """
    text = values.cast(pl.String)
    distinct = pl.DataFrame({"v": text.unique().drop_nulls()})
    octets = pl.col("v").str.split_exact(".", 3).struct
    parts = [octets.field(f"field_{i}").cast(pl.Int32, strict=False) for i in range(4)]
    v4_ok = pl.col("v").str.contains(r"^\d{1,3}(?:\.\d{1,3}){3}$") & pl.all_horizontal(
        [p <= 255 for p in parts]
    )
    v4 = pl.when(v4_ok).then(pl.concat_str([p.cast(pl.String) for p in parts], separator="."))
    distinct = distinct.with_columns(v4.alias("ip"))
    six = distinct.filter(pl.col("ip").is_null() & pl.col("v").str.contains(":", literal=True))
    if six.height:
        v6 = pl.Series([canon_ipv6(v) for v in six["v"]], dtype=pl.String)
        distinct = distinct.update(six.with_columns(v6.alias("ip")), on="v")
    result = text.replace_strict(
        distinct["v"], distinct["ip"], default=None, return_dtype=pl.String
    )
    given = text.is_not_null() & (text != "")
    return result.rename(values.name), int((given & result.is_null()).sum())


# --- vectorized helpers shared by the flow parsers (Zeek, nfdump) -----------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_V4 = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
_H = r"[0-9A-Fa-f]{1,4}"
_V6 = "|".join(
    [
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{1,7}}:",
        rf"(?:{_H}:){{1,6}}:{_H}",
        rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
        rf"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
        rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
        rf"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
        rf"{_H}:(?::{_H}){{1,6}}",
        rf":(?::{_H}){{1,7}}",
        "::",
        # IPv4 in the last 32 bits (::ffff:192.0.2.1, 64:ff9b::192.0.2.1)
        rf"(?:{_H}:){{6}}{_V4}",
        rf"::(?:{_H}:){{0,5}}{_V4}",
        *(rf"(?:{_H}:){{{n}}}:(?:{_H}:){{0,{5 - n}}}{_V4}" for n in range(1, 6)),
    ]
)
#: A textual IPv4 or IPv6 address as inet_ntop and Zeek write them (no zone index).
IP_RE: Final = rf"^(?:{_V4}|{_V6})$"
PORT_MAX: Final = 65535
COUNT_MAX: Final = 2**63 - 1


def valid_ip(text: pl.Expr) -> pl.Expr:
    """``text`` where it is an IPv4 or IPv6 address, else null."""
    return pl.when(text.str.contains(IP_RE)).then(text)


def bounded_int(text: pl.Expr, high: int, dtype: pl.DataType) -> pl.Expr:
    """``text`` as an integer in ``0..high`` of ``dtype``, else null (ports, counters)."""
    value = text.cast(pl.Int64, strict=False)
    return pl.when(value.is_between(0, high)).then(value).cast(dtype)


def count(text: pl.Expr) -> pl.Expr:
    """A byte or packet counter: a non-negative Int64, else null."""
    return bounded_int(text, COUNT_MAX, pl.Int64())


def seconds_to_ns(text: pl.Expr) -> pl.Expr:
    """A non-negative duration in (fractional) seconds as integer nanoseconds, else null."""
    value = text.cast(pl.Float64, strict=False)
    ok = value.is_finite() & (value >= 0) & (value < 1e9)
    return pl.when(ok).then((value * 1e9).round(0)).cast(pl.Int64)


def epoch_to_utc(text: pl.Expr) -> pl.Expr:
    """Epoch seconds (with fraction) or, above 1e11, epoch milliseconds, to UTC; else null."""
    value = text.cast(pl.Float64, strict=False)
    scale = pl.when(value < 1e11).then(pl.lit(1e6)).otherwise(pl.lit(1e3))
    us = (value * scale).round(0).cast(pl.Int64, strict=False)
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(UTC_TS)


def rejects(rows: pl.DataFrame, reason: Reason, detail: pl.Expr | str) -> pl.DataFrame:
    """Rows of ``rows`` (column ``_row``) as ``ParseResult.rejected`` entries."""
    text = pl.lit(detail) if isinstance(detail, str) else detail
    return rows.select(
        pl.col("_row").cast(pl.UInt32),
        pl.lit(reason.value).alias("reason"),
        text.cast(pl.String).alias("detail"),
    )


def keep_rows(df: pl.DataFrame, keep: pl.Expr) -> pl.DataFrame:
    """``df.filter(keep)``, without copying every string column when all rows are kept."""
    mask = df.select(keep).to_series()
    return df if mask.all() else df.filter(mask)


def split_delimited(
    part: pl.DataFrame,
    sep: str,
    names: tuple[str, ...],
    wanted: Sequence[str],
    nulls: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``part["_line"]`` into the ``names`` of its header, keeping the ``wanted`` ones.

    Returns (rows with ``_row`` and the wanted fields as strings, rejected rows). Values in
    ``nulls`` become null; a wanted name the header lacks is an all-null column. A line with
    fewer fields than the header is truncated; one with more does not match the header.
    One ``str.split`` to a list (measured faster than ``splitn`` to a struct: one string
    buffer instead of one column per field), on the streaming engine so it uses all cores.
    """
    parts = pl.col("_parts")

    def field(name: str) -> pl.Expr:
        if name not in names:
            return pl.lit(None, pl.String).alias(name)
        value = parts.list.get(names.index(name), null_on_oob=True)
        return pl.when(value.is_in(list(nulls))).then(None).otherwise(value).alias(name)

    split = (
        part.lazy()
        .with_columns(pl.col("_line").str.split(sep).alias("_parts"))
        .select("_row", parts.list.len().alias("_n"), *(field(name) for name in wanted))
        .collect(engine="streaming")
    )
    n = pl.col("_n")
    detail = pl.format("{} fields, the header names {}", n, pl.lit(len(names)))
    wrong = pl.concat(
        [
            rejects(split.filter(n < len(names)), Reason.TRUNCATED, detail),
            rejects(split.filter(n > len(names)), Reason.NO_MATCH, detail),
        ]
    )
    good = keep_rows(split, n == len(names)).select("_row", *wanted)
    return good, wrong


def build_flows(
    raw: pl.DataFrame,
    checked: Mapping[str, tuple[str, pl.Expr]],
    derived: Sequence[Mapping[str, pl.Expr]],
    *,
    dataset: str,
    ts_detail: pl.Expr,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """The ``flows`` table from ``raw`` string fields (null where the log had no value).

    ``checked`` maps an ECS column to (its raw column, its conversion): a raw value that is
    present but converts to null is a dropped value, counted as the parser contract asks.
    ``derived`` are stages of further columns; each stage may use the columns before it, and
    one of them must be ``@timestamp``. Rows without ``@timestamp`` are rejected as
    ``bad_timestamp`` with ``ts_detail``. Columns starting with ``_`` are working columns.
    Returns (flows, rejected, dropped values).
    """
    lazy = raw.lazy().with_columns(**{name: expr for name, (_, expr) in checked.items()})
    for stage in derived:
        lazy = lazy.with_columns(**stage)
    df = lazy.collect(engine="streaming")
    lost = [
        (pl.col(src).is_not_null() & pl.col(name).is_null()).sum()
        for name, (src, _) in checked.items()
    ]
    dropped = int(df.select(pl.sum_horizontal(lost)).item())
    no_ts = rejects(df.filter(pl.col("@timestamp").is_null()), Reason.BAD_TIMESTAMP, ts_detail)
    columns = [c for c in (*checked, *(c for s in derived for c in s)) if not c.startswith("_")]
    flows = keep_rows(df, pl.col("@timestamp").is_not_null()).select(
        "_row",
        *columns,
        pl.lit(dataset).alias("event.dataset"),
        pl.lit("sensor").alias("observer.type"),
    )
    return flows, no_ts, dropped


# --- helpers shared by the syslog gateway parsers (Pulse, Citrix, SonicWall) -------------------


#: ``parse_iso``'s grammar: date, ``T`` or space, clock, fraction, offset.
def canonical_ips(
    df: pl.DataFrame, columns: Mapping[str, str], absent: Sequence[str] = ()
) -> tuple[pl.DataFrame, int]:
    """``df`` with canonical addresses for ``{raw column: ECS column}`` (see
    :func:`canonical_ip`), and how many given values were not addresses. Values in
    ``absent`` (a vendor's "unset" address such as ``0.0.0.0``) are null, not losses."""
    lost = 0
    out: list[pl.Series] = []
    for raw, target in columns.items():
        text = df[raw].replace(dict.fromkeys(absent)) if absent else df[raw]
        ips, bad = canonical_ip(text)
        lost += bad
        out.append(ips.alias(target))
    return df.with_columns(out), lost


Build = Callable[[pl.DataFrame], tuple[pl.DataFrame, int]]


def events_and_flows(
    df: pl.DataFrame, is_flow: pl.Expr, events: Build, flows: Build, ts_detail: str
) -> tuple[dict[str, pl.DataFrame], list[pl.DataFrame], int]:
    """Build the ``events`` and ``flows`` tables from the rows ``is_flow`` does not/does
    select, reject the rows left without ``@timestamp`` (``bad_timestamp``, ``ts_detail``).
    Returns (tables, rejected frames, dropped values)."""
    tables: dict[str, pl.DataFrame] = {}
    rejected: list[pl.DataFrame] = []
    dropped = 0
    mask = df.select(is_flow.fill_null(False)).to_series()
    for name, part, build in (
        ("events", df.filter(~mask), events),
        ("flows", df.filter(mask), flows),
    ):
        if not len(part):
            continue
        table, lost = build(part)
        dropped += lost
        no_ts = table.filter(pl.col("@timestamp").is_null())
        rejected.append(rejects(no_ts, Reason.BAD_TIMESTAMP, ts_detail))
        table = keep_rows(table, pl.col("@timestamp").is_not_null())
        if len(table):
            tables[name] = table
    return tables, rejected, dropped


def split_header_if_any(lines: pl.Series, ctx: ParseContext, plain: str) -> pl.DataFrame:
    """:func:`~vpnsentry.parse.syslog.split_header`, run only on the lines that may have more
    header than a ``<PRI>``.

    A line whose ``<PRI>`` (if any) is followed by whitespace or by ``plain`` (a regex
    for how the vendor's own message opens, which must not be able to open an RFC 5424,
    RFC 3164 or ISO header: ``1 ``, a month name, ``YYYY-``) has no other header, so its
    fields are known without the header regex, which costs as much as a vendor parser's
    own pass over the line. Same columns and values as ``split_header``.
    """
    parts = (
        pl.DataFrame({"_line": lines})
        .with_columns(
            pl.col("_line")
            .str.extract_groups(rf"^(?P<tag><(?P<pri>\d{{1,3}})>)?(?P<plain>\s|{plain})")
            .alias("g")
        )
        .unnest("g")
    )
    out = parts.select(
        pl.lit(None, UTC_TS).alias("_sys_ts"),
        *(pl.lit(None, pl.String).alias(c) for c in ("_sys_host", "_sys_app", "_sys_pid")),
        pl.col("pri").cast(pl.Int32, strict=False).alias("_sys_pri"),
        pl.col("_line").str.slice(pl.col("tag").str.len_chars().fill_null(0)).alias("_body"),
    )
    at = parts["plain"].is_null().arg_true()
    if at.is_empty():
        return out
    head = split_header(lines.gather(at), ctx)
    return out.with_columns(out[c].scatter(at, head[c]) for c in out.columns)
