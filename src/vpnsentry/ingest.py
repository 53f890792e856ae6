"""The ingest stage: collect → sniff → parse → store, with accounting that adds up.

For every file: lines read = parsed + quarantined + ignored (headers, blank) + duplicates
(lines of ranges already in the store, which are not read again). ``RunStats`` carries the
numbers per file and in total and decides the exit code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from vpnsentry.collect.files import (
    HEAD_BYTES,
    Chunk,
    FileIdentity,
    SourceFile,
    expand,
    identity,
    read_chunks,
)
from vpnsentry.errors import ExitCode, UsageError
from vpnsentry.parse.base import ParseContext, Parser, get_parser, registry
from vpnsentry.parse.run import ChunkOutput, parse_chunk
from vpnsentry.parse.sniff import sniff
from vpnsentry.store.store import Range, Store, Writer

#: Rows buffered before a commit: big enough for few, well-compressed parts, small enough
#: to keep peak memory far under the 2 GB budget. ``VPNSENTRY_COMMIT_ROWS`` lowers it on
#: small machines (and lets the crash test commit often).
COMMIT_ROWS = int(os.environ.get("VPNSENTRY_COMMIT_ROWS", "250000"))
COMMIT_BYTES = 64 * 1024 * 1024
#: Chunks parsed at once (``VPNSENTRY_PARSE_THREADS``): one per core, at most four.
PARSE_THREADS = int(os.environ.get("VPNSENTRY_PARSE_THREADS", str(min(4, os.cpu_count() or 1))))


#: The line counters of a file, in the order reports show them: lines read this run =
#: parsed + quarantined + ignored; duplicates were not read again.
COUNTERS = ("lines", "parsed", "quarantined", "ignored", "duplicates")


@dataclass
class FileStats:
    """Accounting for one input file."""

    path: str
    format: str
    lines: int = 0  # lines read this run (duplicates are not read)
    parsed: int = 0
    quarantined: int = 0
    ignored: int = 0
    duplicates: int = 0  # lines already in the store from an earlier run
    bytes: int = 0
    replaced_bytes: int = 0  # undecodable bytes turned into U+FFFD
    dropped_values: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Every line of the file this run accounted for."""
        return self.lines + self.duplicates


@dataclass
class RunStats:
    """Accounting for one ingest run; ``exit_code`` follows errors.ExitCode."""

    files: list[FileStats] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    rows_written: int = 0
    seconds: float = 0.0

    def sum(self, name: str) -> int:
        """Total of one FileStats counter over all files."""
        return sum(int(getattr(f, name)) for f in self.files)

    def totals(self) -> dict[str, int]:
        """Every line counter summed over all files, in ``COUNTERS`` order."""
        return {k: self.sum(k) for k in COUNTERS}

    @property
    def exit_code(self) -> ExitCode:
        """PARTIAL when anything was quarantined, unreadable or missing, else OK."""
        if self.missing or any(f.quarantined or f.problems for f in self.files):
            return ExitCode.PARTIAL
        return ExitCode.OK


Progress = Callable[[int, int], None]  # (bytes done, rows parsed) increments


@dataclass
class _Batch:
    """Parsed chunks waiting for one commit, with the file ranges they came from.

    Tables are kept as lists and concatenated once at commit time: concatenating per chunk
    would copy the growing batch again for every chunk.
    """

    writer: Writer
    pool: ThreadPoolExecutor
    stats: RunStats
    tables: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    ranges: list[Range] = field(default_factory=list)
    nbytes: int = 0
    rows: int = 0
    pending: Future[int] | None = None

    def add(self, out: ChunkOutput, rng: Range, nbytes: int) -> None:
        for name, df in out.tables.items():
            self.tables.setdefault(name, []).append(df)
            self.rows += len(df)
        self.writer.claim(rng)
        self.ranges.append(rng)
        self.nbytes += nbytes

    def flush(self, *, last: bool = False) -> None:
        """Hand the batch to the writer thread, after the previous commit has finished.

        Writing Parquet overlaps with reading and parsing the next batch; commits stay in
        order and at most two batches are in memory.
        """
        self.wait()
        if self.ranges:
            tables = {k: pl.concat(v, rechunk=False) for k, v in self.tables.items()}
            self.pending = self.pool.submit(self.writer.commit, tables, self.ranges)
        self.tables, self.ranges, self.nbytes, self.rows = {}, [], 0, 0
        if last:
            self.wait()

    def wait(self) -> None:
        """Wait for the commit in flight (re-raising its error, if any)."""
        if self.pending is not None:
            self.stats.rows_written += self.pending.result()
            self.pending = None


def ingest(
    paths: list[str],
    store_root: Path,
    *,
    fmt: str = "auto",
    tz: str = "UTC",
    strict: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[list[SourceFile]], None] | None = None,
) -> RunStats:
    """Ingest ``paths`` into the store at ``store_root``; idempotent and resumable."""
    forced: Parser | None = None
    if fmt != "auto":
        if fmt not in registry():
            raise UsageError(
                f"unknown format {fmt!r}; `vpnsentry formats` lists them: " + ", ".join(registry())
            )
        forced = get_parser(fmt)
    _check_tz(tz)
    started = time.monotonic()
    files, missing = expand(paths)
    if on_start:
        on_start(files)
    stats = RunStats(missing=missing)
    store = Store.open(store_root, create=True)
    with store.writer() as writer, ThreadPoolExecutor(1, "vpnsentry-commit") as pool:
        lengths = writer.head_lengths()
        batch = _Batch(writer, pool, stats)
        try:
            for src in files:
                fstats = _ingest_file(src, lengths, forced, tz, strict, batch, writer, progress)
                stats.files.append(fstats)
            batch.flush(last=True)
        finally:
            if batch.pending is not None and not batch.pending.done():
                batch.pending.cancel()
    stats.seconds = time.monotonic() - started
    return stats


def _resolve_identity(
    src: SourceFile, writer: Writer, lengths: list[int]
) -> tuple[FileIdentity, int, int, str | None]:
    """The identity to record this file under, and where to resume (end, lines, format).

    A file first seen while shorter than HEAD_BYTES was recorded under a shorter identity;
    we look for it first so that a small file that grew resumes instead of starting over.
    """
    full = identity(src)
    head = src.head(full.head_len)
    for length in sorted({*lengths, full.head_len}):
        if length > full.head_len:
            break
        cand = FileIdentity(hashlib.sha256(head[:length]).hexdigest(), length)
        done = writer.done(cand.head_sha, cand.head_len)
        if done is not None:
            return cand, done.end, done.lines, done.format
    return full, 0, 0, None


def _ingest_file(
    src: SourceFile,
    lengths: list[int],
    forced: Parser | None,
    tz: str,
    strict: bool,
    batch: _Batch,
    writer: Writer,
    progress: Progress | None,
) -> FileStats:
    ident, start, done_lines, known_fmt = _resolve_identity(src, writer, lengths)
    parser: Parser | None
    if forced is not None:
        parser = forced
    elif known_fmt is not None and known_fmt != "unknown":
        parser = get_parser(known_fmt)
    else:
        parser = sniff(src.head()).parser
    name = parser.name if parser else "unknown"
    fstats = FileStats(str(src.path), name, duplicates=done_lines)
    if ident.head_len == 0:  # empty, or unreadable from its first byte
        fstats.problems.extend(p.message for p in src.problems)
        return fstats
    ctx = ParseContext(path=str(src.path), tz=tz)
    if ident.head_len < HEAD_BYTES and ident.head_len not in lengths:
        lengths.append(ident.head_len)
        lengths.sort()
    for chunk, out in _parsed(src, start, parser, ctx, done_lines + 1, strict):
        n = len(chunk.lines)
        fstats.lines += n
        fstats.parsed += out.parsed
        fstats.quarantined += out.quarantined
        fstats.ignored += out.ignored
        fstats.bytes += chunk.nbytes
        fstats.replaced_bytes += chunk.replaced
        fstats.dropped_values += out.dropped_values
        batch.add(
            out,
            Range(ident.head_sha, ident.head_len, str(src.path), name, chunk.start, chunk.end, n),
            chunk.nbytes,
        )
        if progress:
            progress(chunk.nbytes, out.parsed)
        if batch.rows >= COMMIT_ROWS or batch.nbytes >= COMMIT_BYTES:
            batch.flush()
    fstats.problems.extend(p.message for p in src.problems)
    if fstats.replaced_bytes:
        fstats.problems.append(f"{fstats.replaced_bytes} undecodable bytes replaced by U+FFFD")
    return fstats


def _parsed(
    src: SourceFile,
    start: int,
    parser: Parser | None,
    ctx: ParseContext,
    first_line: int,
    strict: bool,
) -> Iterator[tuple[Chunk, ChunkOutput]]:
    """The file's chunks from ``start`` with their parse results, in file order.

    Chunks are parsed on ``PARSE_THREADS`` threads while the next ones are read: the
    tokenizer kernels and Polars release the GIL, so a 2-core machine parses two chunks at
    once. At most ``PARSE_THREADS + 1`` chunks are in flight, which bounds memory. A
    ``stateful`` parser's chunks are parsed by one thread, in file order: a chunk parsed
    while the one before it still was would not see the header or connections that one
    leaves in ``ctx.state`` (every nfdump line past the first chunk was quarantined so).
    """
    threads = 1 if parser is not None and parser.stateful else PARSE_THREADS
    with ThreadPoolExecutor(threads, "vpnsentry-parse") as pool:
        pending: deque[tuple[Chunk, Future[ChunkOutput]]] = deque()
        line_no = first_line
        try:
            for chunk in read_chunks(src, start):
                fut = pool.submit(
                    parse_chunk,
                    parser,
                    chunk.lines,
                    chunk.offsets,
                    ctx,
                    first_line=line_no,
                    strict=strict,
                )
                pending.append((chunk, fut))
                line_no += len(chunk.lines)
                if len(pending) > threads:
                    done, fut = pending.popleft()
                    yield done, fut.result()
            while pending:
                done, fut = pending.popleft()
                yield done, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


def _check_tz(tz: str) -> None:
    """Fail early, with a clear message, on a time zone name Polars does not know."""
    try:
        pl.Series([dt.datetime(2020, 1, 1)]).dt.replace_time_zone(tz)
    except Exception as exc:
        raise UsageError(f"unknown time zone {tz!r} (use an IANA name like Asia/Tokyo)") from exc
