"""Test helpers: run a parser over a file the way ingest does, row by row in line order; run
the real CLI in a subprocess."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl

from tests.conftest import make_ctx
from vpnsentry.parse.base import ParseContext, get_parser
from vpnsentry.parse.run import ChunkOutput, parse_chunk


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m vpnsentry ARGS`` as a user runs it: output captured, exit code kept."""
    return subprocess.run(
        [sys.executable, "-m", "vpnsentry", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


#: Columns that depend on where and when the test ran, not on the parser.
VOLATILE = {"log.file.path", "event.ingested", "event.original", "log.offset"}


def read_lines(path: Path) -> list[str]:
    """Lines of ``path`` as ingest sees them: UTF-8 with replacement, CR stripped."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat().replace("+00:00", "Z")
    return v


def run_lines(
    fmt: str, lines: list[str], ctx: ParseContext | None = None, *, strict: bool = True
) -> ChunkOutput:
    """Run parser ``fmt`` over ``lines`` as one chunk, the way ingest does.

    ``log.offset`` of each row is its line index, so tests can map rows back to lines.
    """
    return parse_chunk(
        get_parser(fmt),
        pl.Series(lines, dtype=pl.String),
        pl.Series(range(len(lines)), dtype=pl.Int64),
        ctx or make_ctx(),
        first_line=1,
        strict=strict,
    )


def parse_rows(fmt: str, lines: list[str], tz: str = "UTC") -> list[dict[str, Any]]:
    """One dict per input line: its dataset and non-null fields, or its fate."""
    out = run_lines(fmt, lines, make_ctx(tz=tz))
    by_offset: dict[int, dict[str, Any]] = {}
    for name, df in out.tables.items():
        for row in df.to_dicts():
            off = row["log.offset"]
            if name == "quarantine":
                by_offset[off] = {"quarantine": row["error.type"]}
            else:
                rec = {
                    k: _jsonable(v) for k, v in row.items() if v is not None and k not in VOLATILE
                }
                rec["dataset"] = name
                by_offset[off] = rec
    return [by_offset.get(i, {"ignored": True}) for i in range(len(lines))]


def parse_file_rows(fmt: str, path: Path) -> list[dict[str, Any]]:
    """:func:`parse_rows` over a file's lines."""
    return parse_rows(fmt, read_lines(path))
