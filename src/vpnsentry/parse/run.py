"""Run a parser over a chunk and enforce the parser contract.

This is the only module that catches parser exceptions. A parser that raises on a chunk is
retried on halves of it, so one hostile line costs one quarantined line, not the chunk.
Whatever happens, every input line ends in exactly one of: a dataset table, quarantine
(with a reason), or ignored (header/blank). The counts are returned so callers can show
that they add up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from vpnsentry import ecs
from vpnsentry.errors import ParserContractError
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason

#: Lines longer than this (UTF-8 bytes) are quarantined unparsed: no real gateway writes
#: them, and a regex over a 10 MB attacker-made line is a denial of service, not an event.
MAX_LINE_BYTES = 64 * 1024

_REJECTED_SCHEMA = {"_row": pl.UInt32, "reason": pl.String, "detail": pl.String}


@dataclass
class ChunkOutput:
    """Conformed tables for the store plus the accounting of one chunk."""

    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    parsed: int = 0
    quarantined: int = 0
    ignored: int = 0
    dropped_values: int = 0


def parse_chunk(
    parser: Parser | None,
    lines: pl.Series,
    offsets: pl.Series,
    ctx: ParseContext,
    *,
    first_line: int,
    strict: bool = False,
) -> ChunkOutput:
    """Parse ``lines`` (with their byte ``offsets``; line numbers from ``first_line``).

    ``parser`` None means the file's format is unknown: every non-blank line is quarantined
    as ``unknown_format``. With ``strict`` a parser exception or contract breach is raised
    instead of quarantined (tests and ``--strict``).
    """
    n = len(lines)
    frame = pl.DataFrame(
        {
            "_row": pl.int_range(0, n, dtype=pl.UInt32, eager=True),
            "_line": lines,
        }
    )
    line = pl.col("_line")
    flags = frame.select(
        (line.str.len_bytes() > MAX_LINE_BYTES).alias("long"),
        line.str.contains("\x00", literal=True).alias("nul"),
        line.str.contains(r"^\s*$").alias("blank"),
    )
    blank = frame.filter(flags["blank"])
    too_long = frame.filter(flags["long"])
    binary = frame.filter(flags["nul"] & ~flags["long"])
    pre_rejected = pl.concat(
        [
            too_long.select(
                "_row",
                pl.lit(Reason.LINE_TOO_LONG.value).alias("reason"),
                pl.format("line of {} characters", pl.col("_line").str.len_chars()).alias("detail"),
            ),
            binary.select(
                "_row",
                pl.lit(Reason.BINARY.value).alias("reason"),
                pl.lit("NUL bytes in line").alias("detail"),
            ),
        ]
    )
    skip = flags["blank"] | flags["long"] | flags["nul"]
    todo = frame.filter(~skip) if skip.any() else frame

    result = ParseResult()
    if parser is None:
        result.rejected = todo.select(
            "_row",
            pl.lit(Reason.UNKNOWN_FORMAT.value).alias("reason"),
            pl.lit("no parser recognised this file").alias("detail"),
        )
    elif len(todo):
        result = _parse_remapped(parser, todo, ctx, strict=strict)

    return _assemble(parser, frame, offsets, ctx, result, pre_rejected, blank, first_line, strict)


def _parse_remapped(
    parser: Parser, todo: pl.DataFrame, ctx: ParseContext, *, strict: bool
) -> ParseResult:
    """Call the parser on ``todo`` and map its row indexes back to the chunk's."""
    rows = todo["_row"]
    try:
        res = parser.parse(todo["_line"], ctx)
        _check_contract(parser, res, len(todo))
    except Exception as exc:
        if strict:
            raise
        if len(todo) == 1:
            return ParseResult(
                rejected=pl.DataFrame(
                    {
                        "_row": rows,
                        "reason": [Reason.PARSER_ERROR.value],
                        "detail": [f"{type(exc).__name__}: {exc}"[:500]],
                    },
                    schema=_REJECTED_SCHEMA,
                )
            )
        half = len(todo) // 2
        left = _parse_remapped(parser, todo[:half], ctx, strict=strict)
        right = _parse_remapped(parser, todo[half:], ctx, strict=strict)
        return _combine(left, right)

    def remap(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(rows.gather(df["_row"]).alias("_row"))

    return ParseResult(
        tables={k: remap(v) for k, v in res.tables.items()},
        rejected=remap(res.rejected.cast(_REJECTED_SCHEMA)),  # type: ignore[arg-type]
        ignored_rows=rows.gather(res.ignored_rows).to_list() if res.ignored_rows else [],
        dropped_values=res.dropped_values,
    )


def _combine(a: ParseResult, b: ParseResult) -> ParseResult:
    tables = dict(a.tables)
    for k, v in b.tables.items():
        tables[k] = pl.concat([tables[k], v], how="diagonal_relaxed") if k in tables else v
    return ParseResult(
        tables=tables,
        rejected=pl.concat([a.rejected, b.rejected]),
        ignored_rows=a.ignored_rows + b.ignored_rows,
        dropped_values=a.dropped_values + b.dropped_values,
    )


def _check_contract(parser: Parser, res: ParseResult, n: int) -> None:
    """Every row exactly once, known datasets, ``@timestamp`` present in every table."""
    seen: list[pl.Series] = [res.rejected["_row"].cast(pl.UInt32)]
    for name, df in res.tables.items():
        if name not in parser.datasets:
            raise ParserContractError(f"{parser.name} produced undeclared dataset {name!r}")
        if "@timestamp" not in df.columns or "_row" not in df.columns:
            raise ParserContractError(f"{parser.name}: {name} table lacks @timestamp or _row")
        seen.append(df["_row"].cast(pl.UInt32))
    seen.append(pl.Series(res.ignored_rows, dtype=pl.UInt32))
    allrows = pl.concat(seen)
    if len(allrows) != n or allrows.n_unique() != n or (n and allrows.max() != n - 1):
        raise ParserContractError(
            f"{parser.name} accounted for {len(allrows)} rows ({allrows.n_unique()} distinct)"
            f" of {n}"
        )


def _assemble(
    parser: Parser | None,
    frame: pl.DataFrame,
    offsets: pl.Series,
    ctx: ParseContext,
    res: ParseResult,
    pre_rejected: pl.DataFrame,
    blank: pl.DataFrame,
    first_line: int,
    strict: bool,
) -> ChunkOutput:
    """Attach file columns, move rows without timestamp to quarantine, conform schemas."""
    module = parser.name if parser else "unknown"
    now = pl.lit(dt.datetime.now(dt.UTC)).cast(ecs.UTC_TS)
    out = ChunkOutput(ignored=len(blank) + len(res.ignored_rows))
    rejected = [pre_rejected.cast(_REJECTED_SCHEMA), res.rejected.cast(_REJECTED_SCHEMA)]  # type: ignore[arg-type]
    offs = offsets.cast(pl.Int64)
    for name, df in res.tables.items():
        no_ts = df.filter(pl.col("@timestamp").is_null())
        if len(no_ts):
            if strict:
                raise ParserContractError(f"{module}: {len(no_ts)} rows without @timestamp")
            rejected.append(
                no_ts.select(
                    pl.col("_row").cast(pl.UInt32),
                    pl.lit(Reason.BAD_TIMESTAMP.value).alias("reason"),
                    pl.lit("no valid timestamp").alias("detail"),
                )
            )
            df = df.filter(pl.col("@timestamp").is_not_null())
        assert parser is not None
        df = df.with_columns(
            pl.lit(parser.vendor).alias("observer.vendor")
            if "observer.vendor" not in df.columns
            else pl.col("observer.vendor"),
            pl.lit(parser.product).alias("observer.product")
            if "observer.product" not in df.columns
            else pl.col("observer.product"),
            pl.lit(module).alias("event.module"),
            pl.lit(ctx.path).alias("log.file.path"),
            offs.gather(df["_row"]).alias("log.offset"),
            now.alias("event.ingested"),
        )
        if "event.original" in ecs.SCHEMAS[name] and "event.original" not in df.columns:
            df = df.with_columns(frame["_line"].gather(df["_row"]).alias("event.original"))
        out.parsed += len(df)
        out.tables[name] = ecs.conform(df, name)
    rej = pl.concat(rejected)
    out.quarantined = len(rej)
    out.dropped_values = res.dropped_values
    if len(rej):
        rej = rej.join(frame, on="_row", how="left")
        q = rej.select(
            now.alias("@timestamp"),
            pl.lit(module).alias("event.module"),
            pl.lit(ctx.path).alias("log.file.path"),
            (pl.col("_row").cast(pl.Int64) + first_line).alias("log.file.line"),
            offs.gather(rej["_row"]).alias("log.offset"),
            pl.col("reason").alias("error.type"),
            pl.col("detail").alias("error.message"),
            pl.col("_line").str.slice(0, ecs.ORIGINAL_CAP).alias("event.original"),
        )
        out.tables["quarantine"] = ecs.conform(q, "quarantine")
    return out
