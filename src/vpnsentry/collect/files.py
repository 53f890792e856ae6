"""Collect: turn paths (files, globs, folders, ``.gz``) into chunks of lines with offsets.

Why chunks of bytes and not ``for line in file``: parsers are vectorized, so we hand them
tens of thousands of lines at once, and a Python loop per line here would cost more than
the parsing. Offsets are byte offsets into the (decompressed) stream; with the file's
identity they are what makes ingestion resumable and idempotent.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from vpnsentry.errors import InputError

#: Bytes read per chunk. Large enough to amortise per-chunk overhead in the parsers, small
#: enough that a chunk's tables stay far below the memory budget.
CHUNK_BYTES = 16 * 1024 * 1024
#: How much of a file's start identifies it (see :func:`identity`).
HEAD_BYTES = 4096
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class FileIdentity:
    """A file's identity by content, so renames and rotation don't cause re-ingestion.

    ``head_sha`` hashes the first ``head_len`` bytes (up to ``HEAD_BYTES``) of the
    decompressed content. A file that grows keeps its identity once it holds HEAD_BYTES;
    a smaller file that grows is a new identity (its old lines are re-read but recognised
    as duplicates by the store only if it had reached HEAD_BYTES — documented limitation).
    """

    head_sha: str
    head_len: int


@dataclass
class Chunk:
    """Lines of one read, with their byte offsets and counts for the run statistics."""

    lines: pl.Series
    offsets: pl.Series  # Int64 byte offset of each line's first byte
    start: int  # byte offset of the first line
    end: int  # byte offset just past the last complete line (next chunk starts here)
    nbytes: int
    replaced: int  # undecodable bytes replaced by U+FFFD


@dataclass
class ReadProblem:
    """A non-fatal problem reading a file (truncated gzip, file shrank while read)."""

    path: str
    message: str


@dataclass
class SourceFile:
    """One input file, resolved and opened lazily."""

    path: Path
    size: int
    compressed: bool
    problems: list[ReadProblem] = field(default_factory=list)

    def open(self) -> BinaryIO:
        """A binary stream of the decompressed content."""
        if self.compressed:
            return gzip.GzipFile(self.path, "rb")  # type: ignore[return-value]
        return self.path.open("rb")

    def head(self, n: int = 65536) -> bytes:
        """The first ``n`` decompressed bytes (less if the file is shorter or truncated)."""
        with self.open() as fh:
            try:
                return fh.read(n)
            except (EOFError, OSError, zlib.error):
                return b""


def expand(paths: list[str]) -> tuple[list[SourceFile], list[str]]:
    """Resolve files, globs and folders (recursively) to readable files, in a stable order.

    Returns the files and the list of inputs that matched nothing (reported, not fatal,
    unless nothing at all is found, which raises InputError).
    """
    found: dict[Path, None] = {}
    missing: list[str] = []
    for raw in paths:
        p = Path(raw)
        matches: list[Path]
        if p.is_dir():
            matches = sorted(q for q in p.rglob("*") if q.is_file())
        elif p.is_file():
            matches = [p]
        else:
            matches = sorted(Path(m) for m in glob.glob(raw, recursive=True) if Path(m).is_file())
        if not matches:
            missing.append(raw)
        for m in matches:
            found[m.resolve()] = None
    if not found:
        raise InputError(f"no input files found in: {', '.join(paths)}")
    files = []
    for path in found:
        with path.open("rb") as fh:
            magic = fh.read(2)
        files.append(SourceFile(path, path.stat().st_size, magic == _GZIP_MAGIC))
    return files, missing


def identity(src: SourceFile, head_len: int = HEAD_BYTES) -> FileIdentity:
    """Content identity over the first ``head_len`` decompressed bytes."""
    head = src.head(head_len)
    return FileIdentity(hashlib.sha256(head).hexdigest(), len(head))


def decode_lines(data: bytes) -> tuple[pl.Series, np.ndarray, int]:
    """Split ``data`` (complete lines) into a String Series without building Python strings.

    Returns the lines (terminating LF/CRLF removed), each line's start offset within
    ``data``, and how many undecodable bytes were replaced by U+FFFD. Valid UTF-8, the
    normal case, is wrapped as an Arrow string array in place (one pass to find newlines,
    one to validate); only invalid input is decoded with replacement and re-encoded, which
    may change byte lengths, so offsets always come from the original bytes.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(raw == 10)
    n = len(nl) + (0 if data.endswith(b"\n") or not data else 1)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        starts[1:] = nl[: n - 1] + 1
    replaced = 0
    try:
        arr = _string_array(data, starts, n)
        arr.validate(full=True)
    except pa.ArrowInvalid:
        text = data.decode("utf-8", errors="replace")
        replaced = max(text.count("\ufffd") - data.count(b"\xef\xbf\xbd"), 0)
        buf = text.encode("utf-8")
        nl2 = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
        starts2 = np.zeros(n, dtype=np.int64)
        if n > 1:
            starts2[1:] = nl2[: n - 1] + 1
        arr = _string_array(buf, starts2, n)
    trimmed = pc.utf8_rtrim(arr, characters="\r\n")
    return pl.Series("line", trimmed), starts, replaced


def _string_array(buf: bytes, starts: np.ndarray, n: int) -> pa.LargeStringArray:
    """Arrow strings over ``buf``: line i spans starts[i] .. starts[i+1] (with its LF)."""
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:n] = starts
    offsets[n] = len(buf)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def read_chunks(src: SourceFile, start: int = 0, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Yield chunks of complete lines from byte offset ``start`` of the decompressed stream.

    The size of a plain file is taken when reading starts: lines appended during the read
    are left for the next run (which continues from the recorded offset), so a file that
    grows while read is never read half-way through a line. A truncated gzip stream yields
    what could be decompressed and records a problem.
    """
    limit = src.size if not src.compressed else None
    with src.open() as fh:
        try:
            _skip(fh, start)
        except (EOFError, OSError, zlib.error) as exc:
            src.problems.append(ReadProblem(str(src.path), f"cannot read: {exc}"))
            return
        pos = start
        carry = b""
        eof = False
        while not eof:
            want = (
                chunk_bytes if limit is None else min(chunk_bytes, max(limit - pos - len(carry), 0))
            )
            try:
                block = fh.read(want) if want else b""
            except (EOFError, OSError, zlib.error) as exc:
                src.problems.append(
                    ReadProblem(str(src.path), f"truncated or corrupt input: {exc}")
                )
                block = b""
            eof = not block
            data = carry + block
            if not data:
                break
            cut = data.rfind(b"\n")
            if eof:
                complete, carry = data, b""
            elif cut < 0:
                carry = data
                continue
            else:
                complete, carry = data[: cut + 1], data[cut + 1 :]
            lines, starts, replaced = decode_lines(complete)
            yield Chunk(
                lines=lines,
                offsets=pl.Series("offset", starts + pos, dtype=pl.Int64),
                start=pos,
                end=pos + len(complete),
                nbytes=len(complete),
                replaced=replaced,
            )
            pos += len(complete)
    if limit is not None:
        try:
            now = os.stat(src.path).st_size
        except OSError:
            now = -1
        if now < limit:
            src.problems.append(
                ReadProblem(str(src.path), "file shrank or vanished while being read")
            )


def _skip(fh: BinaryIO, n: int) -> None:
    """Advance a stream by ``n`` bytes (seek for plain files, read-and-drop for gzip)."""
    if n <= 0:
        return
    if fh.seekable() and not isinstance(fh, gzip.GzipFile):
        fh.seek(n)
        return
    left = n
    while left:
        got = fh.read(min(left, 1 << 20))
        if not got:
            raise EOFError(f"stream ends before offset {n}")
        left -= len(got)
