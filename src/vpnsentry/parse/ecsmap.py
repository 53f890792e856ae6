"""Shared last steps of the key/value and CSV parsers (PAN-OS, Check Point, CEF, LEEF).

Why here: these four formats all end the same way. Their fields are found as text (a CSV
column, a ``key=value`` pair), renamed to ECS, and then the same conversions and the same
contract bookkeeping apply: addresses validated, ports and counters bounded, values that
fail conversion counted and nulled, rows without a timestamp quarantined, each row sent to
its dataset with only that dataset's columns. Writing that once keeps the four consistent.

Key/value formats are turned into columns without a Python loop: the parser cuts each line
into a list of ``key<sep>value`` texts in one pass (a literal split where separators are
unambiguous, ``str.extract_all`` where quoting decides), the pairs are exploded into a long
table (row, key, value), and the keys a mapping reads are pivoted back into columns. The cost
follows the number of pairs, not the number of distinct keys a format defines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import polars as pl

from vpnsentry.ecs import SCHEMAS
from vpnsentry.parse.base import ParseContext, ParseResult, Reason
from vpnsentry.parse.fields import COUNT_MAX, PORT_MAX, canonical_ip, rejects
from vpnsentry.parse.syslog import split_header

#: ECS columns that hold an address, a port or a counter: raw text in, typed and checked out.
IP_FIELDS: Final = (
    "source.ip",
    "destination.ip",
    "source.nat.ip",
    "destination.nat.ip",
    "observer.ip",
    "vpn.tunnel_ip",
)
PORT_FIELDS: Final = ("source.port", "destination.port")
COUNT_FIELDS: Final = (
    "source.bytes",
    "destination.bytes",
    "source.packets",
    "destination.packets",
    "network.bytes",
    "network.packets",
)

#: IANA protocol numbers of the transports firewalls log, for formats that write numbers.
IANA: Final = {
    "1": "icmp",
    "2": "igmp",
    "6": "tcp",
    "17": "udp",
    "47": "gre",
    "50": "esp",
    "51": "ah",
    "58": "ipv6-icmp",
    "132": "sctp",
}


def transport(proto: pl.Expr) -> pl.Expr:
    """``network.transport``: a protocol number through :data:`IANA`, a name lower-cased."""
    low = proto.str.to_lowercase()
    return (
        pl.when(proto.str.contains(r"^\d+$"))
        .then(proto.replace_strict(IANA, default=None, return_dtype=pl.String))
        .otherwise(low)
    )


def absent(text: pl.Expr, *nulls: str) -> pl.Expr:
    """``text`` with empty values and the format's own "none" words (``N/A``) as null."""
    return pl.when(~text.is_in(["", *nulls])).then(text)


def headed(lines: pl.Series, ctx: ParseContext) -> pl.DataFrame:
    """``_row`` and the syslog header columns (:func:`split_header`) of a chunk."""
    rows = pl.DataFrame({"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True)})
    return rows.hstack(split_header(lines, ctx))


def keep(
    frame: pl.DataFrame, ok: pl.Expr, reason: Reason, detail: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows of ``frame`` where ``ok``, the others as rejects with ``reason``)."""
    mask = frame.select(ok.fill_null(False)).to_series()
    return frame.filter(mask), rejects(frame.filter(~mask), reason, detail)


def split_header_fields(
    frame: pl.DataFrame, text: str, n: int, detail: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame`` with ``field_0``..``field_{n-1}``: column ``text`` split on its first
    ``n - 1`` pipes (CEF and LEEF headers), and the rows with fewer fields as truncated."""
    split = frame.with_columns(pl.col(text).str.splitn("|", n).alias("_h")).unnest("_h")
    return keep(split, pl.col(f"field_{n - 1}").is_not_null(), Reason.TRUNCATED, detail)


def classification(
    category: pl.Expr, etype: pl.Expr, action: pl.Expr, failed: pl.Expr
) -> list[pl.Expr]:
    """``event.kind/category/type/action/outcome``; ``failed`` null is an unknown outcome."""
    return [
        pl.lit("event").alias("event.kind"),
        category.alias("event.category"),
        etype.alias("event.type"),
        action.alias("event.action"),
        pl.when(failed)
        .then(pl.lit("failure"))
        .when(~failed)
        .then(pl.lit("success"))
        .alias("event.outcome"),
    ]


def pairs_to_columns(
    rows: pl.DataFrame,
    pairs: str,
    split: str,
    wanted: Sequence[str],
    aliases: Mapping[str, str] | None = None,
    clean: Callable[[pl.Expr], pl.Expr] | None = None,
) -> pl.DataFrame:
    """Columns ``wanted`` (strings, null when absent) from list column ``pairs`` of ``rows``.

    Each list element is one ``key<sep>value`` text. ``split`` is either the literal
    separator (one character: split at its first occurrence, a literal kernel) or a regex
    with named groups ``k`` and ``v`` for formats whose separator varies. The first
    occurrence of a key in a line wins (a repeated key cannot override what the device
    wrote first). ``aliases`` renames keys first (CEF's
    full names to its short ones); ``clean`` transforms the values (escapes), once on the
    pairs rather than once per wanted column. Returns ``rows`` with the new columns.
    """
    key = pl.col("k").str.strip_chars()  # keys never carry white space; LEEF's may lead
    key = key.replace(dict(aliases)) if aliases else key
    if len(split) == 1:
        kv = pl.col("_p").str.splitn(split, 2).struct.rename_fields(["k", "v"])
    else:
        kv = pl.col("_p").str.extract_groups(split)
    long = (
        rows.lazy()
        .select("_row", pl.col(pairs).alias("_p"))
        .explode("_p")
        .filter(pl.col("_p").is_not_null())
        .select("_row", kv.alias("_kv"))
        .unnest("_kv")
        .with_columns(key.alias("k"))
        .filter(pl.col("k").is_in(list(wanted)))
        .unique(["_row", "k"], keep="first", maintain_order=True)
        .with_columns(clean(pl.col("v")).alias("v") if clean else pl.col("v"))
        .collect()
    )
    if long.height:
        wide = long.pivot(on="k", index="_row", values="v")
    else:
        wide = pl.DataFrame(schema={"_row": rows.schema["_row"]})
    missing = [pl.lit(None, pl.String).alias(k) for k in wanted if k not in wide.columns]
    wide = wide.with_columns(missing).select("_row", *wanted)
    return rows.join(wide, on="_row", how="left", maintain_order="left")


def finish(df: pl.DataFrame, datasets: Sequence[str], ts_detail: str) -> ParseResult:
    """The parse result from ``df``: ``_row``, ``_dataset`` and ECS-named columns.

    Address, port and counter columns (:data:`IP_FIELDS` ...) arrive as text and are
    checked here; a present value that fails is nulled and counted in ``dropped_values``.
    Rows without ``@timestamp`` are rejected as ``bad_timestamp`` with ``ts_detail``.
    Each row goes to its ``_dataset`` (one of ``datasets``) with that schema's columns.
    """
    dropped = 0
    fixes: list[pl.Series] = []
    for name in IP_FIELDS:
        if name in df.columns:
            ips, bad = canonical_ip(df[name])
            dropped += bad
            fixes.append(ips.alias(name))
    df = df.with_columns(fixes)
    numbers = [(n, PORT_MAX, pl.Int32()) for n in PORT_FIELDS] + [
        (n, COUNT_MAX, pl.Int64()) for n in COUNT_FIELDS
    ]
    checks = []
    for name, high, dtype in numbers:
        if name in df.columns:
            raw = pl.col(name).cast(pl.String)
            value = raw.cast(pl.Int64, strict=False)
            ok = pl.when(value.is_between(0, high)).then(value).cast(dtype)
            checks.append((name, raw, ok))
    if checks:
        lost = [((raw.is_not_null() & (raw != "")) & ok.is_null()).sum() for _, raw, ok in checks]
        dropped += int(df.select(pl.sum_horizontal(lost)).item())
        df = df.with_columns(ok.alias(name) for name, _, ok in checks)
    no_ts = pl.col("@timestamp").is_null()
    result = ParseResult(rejected=rejects(df.filter(no_ts), Reason.BAD_TIMESTAMP, ts_detail))
    result.dropped_values = dropped
    good = df.filter(~no_ts)
    for dataset in datasets:
        part = good.filter(pl.col("_dataset") == dataset)
        if part.height:
            schema = SCHEMAS[dataset]
            result.tables[dataset] = part.select("_row", *(c for c in df.columns if c in schema))
    return result
