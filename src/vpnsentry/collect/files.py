"""Collect: turn paths (files, globs, folders, ``.gz``) into chunks of lines with offsets.

Why chunks of bytes and not ``for line in file``: parsers are vectorized, so we hand them
tens of thousands of lines at once, and a Python loop per line here would cost more than
the parsing. Offsets are byte offsets into the (decompressed) stream; with the file's
identity they are what makes ingestion resumable and idempotent.
"""

from __future__ import annotations

import glob
import hashlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from vpnsentry.arrowviews import view_column
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

    def blocks(self, start: int = 0, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """Decompressed content from byte ``start``, in blocks of about ``size`` bytes.

        A plain file is read up to the size it had when listed: lines appended meanwhile
        are left for the next run, so a growing file is never read half-way into a line.
        Gzip is decompressed incrementally with zlib so that a truncated or corrupt stream
        still yields everything before the damage (``gzip.GzipFile`` raises instead); the
        damage is recorded in ``problems``. Concatenated gzip members are all read.
        """
        if not self.compressed:
            with self.path.open("rb") as fh:
                fh.seek(start)
                left = max(self.size - start, 0)
                while left > 0:
                    block = fh.read(min(size, left))
                    if not block:
                        self.problems.append(
                            ReadProblem(str(self.path), "file shrank or vanished while read")
                        )
                        return
                    left -= len(block)
                    yield block
            return
        skip = start
        for block in self._gunzip(size):
            if skip >= len(block):
                skip -= len(block)
                continue
            yield block[skip:]
            skip = 0

    def _gunzip(self, size: int) -> Iterator[bytes]:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fed = False  # has the current member's decompressor consumed input?
        with self.path.open("rb") as fh:
            while raw := fh.read(max(size // 4, 1)):
                while raw:
                    try:
                        out = d.decompress(raw)
                    except zlib.error as exc:
                        self.problems.append(
                            ReadProblem(str(self.path), f"corrupt gzip data, rest skipped: {exc}")
                        )
                        return
                    fed = True
                    if out:
                        yield out
                    if d.eof:  # a following member, if any, starts in unused_data
                        raw = d.unused_data
                        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        fed = False
                    else:
                        raw = b""
        if fed and not d.eof:
            self.problems.append(
                ReadProblem(str(self.path), "truncated gzip stream: read up to the cut")
            )

    def head(self, n: int = 65536) -> bytes:
        """The first ``n`` decompressed bytes (less if the file is shorter or truncated)."""
        got = bytearray()
        problems = list(self.problems)
        for block in self.blocks(0, max(n, 4096)):
            got += block
            if len(got) >= n:
                break
        self.problems[:] = problems  # sniffing is not reading: report problems once
        return bytes(got[:n])


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
    normal case, is validated in one pass and wrapped as Arrow string views into ``data``
    (no copy of the text, no trimming pass); only invalid input is decoded with
    replacement and re-encoded, which may change byte lengths, so offsets always come from
    the original bytes.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(raw == 10)
    n = len(nl) + (0 if data.endswith(b"\n") or not data else 1)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        starts[1:] = nl[: n - 1] + 1
    if len(data) < 2**31 and _valid_utf8(data):
        ends = np.empty(n, dtype=np.int64)
        ends[: len(nl)] = nl[:n]
        if n > len(nl):
            ends[-1] = len(data)
        return view_column("line", _line_views(raw, starts, ends), raw, None), starts, 0
    text = data.decode("utf-8", errors="replace")
    replaced = max(text.count("\ufffd") - data.count(b"\xef\xbf\xbd"), 0)
    buf = text.encode("utf-8")
    nl2 = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10)
    starts2 = np.zeros(n, dtype=np.int64)
    if n > 1:
        starts2[1:] = nl2[: n - 1] + 1
    lines = pl.Series("line", _string_array(buf, starts2, n))
    return lines.str.strip_suffix("\n").str.strip_suffix("\r"), starts, replaced


def _line_views(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Arrow string views (16 bytes each) of the lines ``raw[starts:ends]`` without a
    trailing CR: the length, then the bytes inline when <= 12, else a 4-byte prefix, buffer
    0 and the offset. Array operations over all lines at once (numpy, no per-line loop)."""
    cr = (ends > starts) & (raw[np.maximum(ends - 1, 0)] == 13)
    lengths = (ends - starts - cr).astype(np.uint32)
    padded = np.concatenate([raw, np.zeros(12, dtype=np.uint8)])
    head = padded[starts[:, None] + np.arange(12)]  # the first 12 bytes (or fewer) of each
    head[np.arange(12) >= lengths[:, None]] = 0
    views = np.zeros((len(starts), 4), dtype=np.uint32)
    views[:, 0] = lengths
    views[:, 1:] = head.view(np.uint32)
    long = lengths > 12
    views[long, 2] = 0
    views[long, 3] = starts[long].astype(np.uint32)
    return views.view(np.uint8).reshape(-1)


def _valid_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (Arrow's validator: one vectorized pass)."""
    whole = pa.LargeStringArray.from_buffers(
        1, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)
    )
    try:
        whole.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _string_array(buf: bytes, starts: np.ndarray, n: int) -> pa.LargeStringArray:
    """Arrow strings over ``buf``: line i spans starts[i] .. starts[i+1] (with its LF)."""
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:n] = starts
    offsets[n] = len(buf)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))


def read_chunks(src: SourceFile, start: int = 0, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Yield chunks of complete lines from byte offset ``start`` of the decompressed stream.

    A final line without a newline is yielded at the end of the input (the file is taken as
    complete as of its listed size; see ``SourceFile.blocks``).
    """
    pos = start
    carry = b""
    for block in src.blocks(start, chunk_bytes):
        data = carry + block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        complete, carry = data[: cut + 1], data[cut + 1 :]
        yield _chunk(complete, pos)
        pos += len(complete)
    if carry:
        yield _chunk(carry, pos)


def _chunk(data: bytes, pos: int) -> Chunk:
    lines, starts, replaced = decode_lines(data)
    return Chunk(
        lines=lines,
        offsets=pl.Series("offset", starts + pos, dtype=pl.Int64),
        start=pos,
        end=pos + len(data),
        nbytes=len(data),
        replaced=replaced,
    )
