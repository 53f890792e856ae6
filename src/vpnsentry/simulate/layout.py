"""Line layouts: lines assembled as bytes by one compiled kernel, and the per-file byte work.

Why: a busy log source writes a million lines a day, each of twenty-odd pieces (addresses,
ports, counters, times, words from small vocabularies). Joining them as strings costs one
string column per piece and a pass per piece; a :class:`Layout` instead lists the pieces
(literal text, decimal integers, zero-padded digits, dotted-quad addresses, picks from
string tables by integer code, fixed-width byte fields, optional runs) and a numba kernel
writes all lines of a batch in two passes over the rows (lengths, then bytes) into one
buffer. :class:`Lines` carries such a buffer with each line's sort key and attack tag until
its day's file is written: rows are routed, sorted and gathered by integer index, and the
file is one ``write``.

numba is imported lazily (the first render compiles the kernels or loads them from numba's
on-disk cache), so CLI start-up does not pay for it.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

#: Alignment of buffer, length and offset that ``O_DIRECT`` writes need (a page covers every
#: block size in use).
PAGE: Final = 4096
_DIRECT: Final = getattr(os, "O_DIRECT", 0)

# Op codes of the kernel; each op is (code, a, b).
_LIT: Final = 0  # blob[a : a + b]
_NUM: Final = 1  # column a as a decimal integer
_PICK: Final = 2  # entry (code in column a) of the table whose offsets start at toff[b]
_BIG: Final = 7  # entry (code in column a) of big table b (passed to the kernel as is)
#: Tables larger than this are handed to the kernel as they are rather than copied into the
#: layout's byte blob (a day of formatted seconds is megabytes); the kernel has this many.
_BIG_BYTES: Final = 1 << 16
_BIG_SLOTS: Final = 3
_PAD: Final = 3  # column a as b zero-padded digits (value taken modulo 10**b)
_IP: Final = 4  # column a (an IPv4 address as an integer) as a dotted quad
_FIXED: Final = 5  # b bytes from column a of the fixed-width byte matrix
_SKIP: Final = 6  # when column a is 0, skip the next b ops


@dataclass(frozen=True, eq=False)
class Table:
    """Strings as one byte buffer plus offsets, for :meth:`Layout.pick`."""

    data: U8
    offs: I64

    def __len__(self) -> int:
        return len(self.offs) - 1

    @staticmethod
    def of(values: Sequence[str]) -> Table:
        """A table of the given strings (UTF-8)."""
        encoded = [v.encode("utf-8") for v in values]
        offs = np.zeros(len(encoded) + 1, dtype=np.int64)
        offs[1:] = np.cumsum([len(e) for e in encoded])
        return Table(np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offs)

    @staticmethod
    def join(tables: Sequence[Table]) -> Table:
        """The entries of ``tables`` one after the other."""
        if len(tables) == 1:
            return tables[0]
        shift = np.cumsum([0] + [len(t.data) for t in tables[:-1]])
        offs = [tables[0].offs[:1]] + [t.offs[1:] + k for t, k in zip(tables, shift, strict=True)]
        return Table(np.concatenate([t.data for t in tables]), np.concatenate(offs))

    @functools.cached_property
    def widest(self) -> int:
        """The length of the longest entry."""
        return int(np.diff(self.offs).max(initial=0))

    @staticmethod
    def from_series(s: pl.Series) -> Table:
        """A table of a String Series' values (nulls as empty strings), without a loop."""
        data, offs = _arrow_bytes(s.fill_null("").to_arrow())
        return Table(data, offs)


def vocab(s: pl.Series, fmt: str = "{}", null: str = "") -> tuple[Table, I64]:
    """The distinct values of a String Series as a table (each through ``fmt``; a null is
    ``null``), and every row's code in it: a word column as :meth:`Layout.pick` takes it."""
    uniq = s.drop_nulls().unique().sort()
    table = Table.of([null, *(fmt.format(v) for v in uniq.to_list())])
    if not len(uniq):
        return table, np.zeros(len(s), dtype=np.int64)
    codes = uniq.search_sorted(s.fill_null(uniq[0])).to_numpy().astype(np.int64) + 1
    return table, np.where(s.is_null().to_numpy(), 0, codes)


def _arrow_bytes(arr: pa.Array | pa.ChunkedArray) -> tuple[U8, I64]:
    """(bytes, offsets) of an Arrow string array, rebased to start at 0."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    arr = arr.cast(pa.large_string())
    n = len(arr)
    _, obuf, dbuf = arr.buffers()
    offs = np.frombuffer(obuf, dtype=np.int64)[arr.offset : arr.offset + n + 1].copy()
    base = int(offs[0]) if n else 0
    end = int(offs[-1]) if n else 0
    data = (
        np.frombuffer(dbuf, dtype=np.uint8)[base:end].copy()
        if dbuf is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return data, offs - base


class Layout:
    """The pieces of ``n`` lines, in order; :meth:`render` writes them all at once.

    Column arguments are arrays of length ``n`` (or scalars, broadcast).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._ops: list[tuple[int, int, int]] = []
        self._cols: list[npt.NDArray[Any]] = []
        self._mats: list[U8] = []
        self._width = 0
        self._blob: list[bytes] = []
        self._blob_len = 0
        self._toff: list[I64] = []
        self._toff_len = 0
        self._tables: list[tuple[Table, int]] = []  # each table once, with its base in toff
        self._big: list[Table] = []
        self._maxlen = 0  # an upper bound of a line's length
        self._sealed = 0  # ops before this index are not extended (an optional run ended)

    def _col(self, values: npt.ArrayLike) -> int:
        arr = np.asarray(values)
        if arr.ndim == 0:
            arr = np.full(self.n, arr, dtype=np.int64)
        if len(arr) != self.n:
            raise ValueError(f"column of {len(arr)} values for {self.n} lines")
        self._cols.append(arr)
        return len(self._cols) - 1

    def _bytes(self, raw: bytes) -> int:
        at = self._blob_len
        self._blob.append(raw)
        self._blob_len += len(raw)
        return at

    def text(self, s: str) -> Layout:
        """Literal text."""
        raw = s.encode("utf-8")
        if raw:
            last = self._ops[-1] if len(self._ops) > self._sealed else None
            if last and last[0] == _LIT and self._blob_len == last[1] + last[2]:
                _, a, b = self._ops.pop()
                self._ops.append((_LIT, a, b + len(raw)))
                self._bytes(raw)
            else:
                self._ops.append((_LIT, self._bytes(raw), len(raw)))
            self._maxlen += len(raw)
        return self

    def num(self, values: npt.ArrayLike) -> Layout:
        """Integers in decimal (a minus sign when negative)."""
        col = self._col(values)
        self._ops.append((_NUM, col, 0))
        arr = self._cols[col]
        # The widest value of this batch bounds the field (the buffer is sized by the bound).
        widest = max(abs(int(arr.max())), abs(int(arr.min()))) if len(arr) else 0
        self._maxlen += len(str(widest)) + (1 if len(arr) and int(arr.min()) < 0 else 0)
        return self

    def pad(self, values: npt.ArrayLike, width: int) -> Layout:
        """Non-negative integers as exactly ``width`` digits, zero-padded."""
        self._ops.append((_PAD, self._col(values), width))
        self._maxlen += width
        return self

    def ip(self, values: npt.ArrayLike) -> Layout:
        """IPv4 addresses (integers) as dotted quads."""
        self._ops.append((_IP, self._col(values), 0))
        self._maxlen += 15
        return self

    def pick(self, table: Table | Sequence[str], codes: npt.ArrayLike) -> Layout:
        """``table[code]`` per line; codes are checked against the table's size."""
        tab = table if isinstance(table, Table) else Table.of(table)
        c = np.asarray(codes)
        if c.ndim and len(c) and (int(c.min()) < 0 or int(c.max()) >= len(tab)):
            raise IndexError(f"codes {int(c.min())}..{int(c.max())} outside a table of {len(tab)}")
        if c.ndim == 0 and not 0 <= int(c) < len(tab):
            raise IndexError(f"code {int(c)} outside a table of {len(tab)}")
        self._maxlen += tab.widest
        slot = next((k for k, t in enumerate(self._big) if t is tab), -1)
        if slot < 0 and len(tab.data) > _BIG_BYTES and len(self._big) < _BIG_SLOTS:
            self._big.append(tab)
            slot = len(self._big) - 1
        if slot >= 0:
            self._ops.append((_BIG, self._col(c), slot))
            return self
        base = next((b for t, b in self._tables if t is tab), -1)
        if base < 0:
            base = self._toff_len
            self._toff.append(tab.offs + self._bytes(tab.data.tobytes()))
            self._toff_len += len(tab.offs)
            self._tables.append((tab, base))
        self._ops.append((_PICK, self._col(c), base))
        return self

    def fixed(self, mat: U8) -> Layout:
        """Each line's row of an (n, width) ASCII byte matrix."""
        if mat.shape[0] != self.n:
            raise ValueError(f"matrix of {mat.shape[0]} rows for {self.n} lines")
        self._ops.append((_FIXED, self._width, mat.shape[1]))
        self._maxlen += mat.shape[1]
        self._mats.append(mat.astype(np.uint8, copy=False))
        self._width += mat.shape[1]
        return self

    def optional(self, present: npt.ArrayLike, build: Callable[[Layout], object]) -> Layout:
        """The pieces ``build`` adds, only on lines where ``present`` is true."""
        at = len(self._ops)
        self._ops.append((_SKIP, self._col(np.asarray(present).astype(np.int64)), 0))
        self._sealed = len(self._ops)
        build(self)
        self._ops[at] = (_SKIP, self._ops[at][1], len(self._ops) - at - 1)
        self._sealed = len(self._ops)
        return self

    def render(self) -> tuple[U8, I64]:
        """(bytes, offsets): line ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``."""
        ops = np.array(self._ops, dtype=np.int64).reshape(-1, 3)
        cols = (
            np.stack([c.astype(np.int64, copy=False) for c in self._cols], axis=1)
            if self._cols
            else np.zeros((self.n, 0), dtype=np.int64)
        )
        mats = (
            np.ascontiguousarray(np.concatenate(self._mats, axis=1))
            if self._mats
            else np.zeros((self.n, 0), dtype=np.uint8)
        )
        # Writable like every other input, so the kernel has one compiled signature.
        blob = np.frombuffer(bytearray(b"".join(self._blob)), dtype=np.uint8)
        toff = np.concatenate(self._toff) if self._toff else np.zeros(1, dtype=np.int64)
        big = [*self._big, *[Table.of([""])] * (_BIG_SLOTS - len(self._big))]
        return _kernels().render(  # type: ignore[no-any-return]
            (ops[:, 0].copy(), ops[:, 1].copy(), ops[:, 2].copy()),
            (cols, mats, blob, toff),
            (big[0].data, big[0].offs, big[1].data, big[1].offs, big[2].data, big[2].offs),
            self._maxlen,
        )


@dataclass
class Lines:
    """Rendered lines of one log source: bytes, offsets, sort key and attack tag per line.

    ``extra`` holds per-line integer columns a file footer needs (nfdump's summary).
    """

    data: U8
    offs: I64
    order: I64
    tag: npt.NDArray[np.int32]
    extra: dict[str, I64] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.order)

    @staticmethod
    def empty() -> Lines:
        return Lines(
            np.zeros(0, dtype=np.uint8),
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
        )

    @staticmethod
    def of(layout: Layout, order: npt.ArrayLike, tag: npt.ArrayLike, **extra: I64) -> Lines:
        """Render ``layout``; ``order`` and ``tag`` per line (scalars broadcast)."""
        data, offs = layout.render()
        n = layout.n
        return Lines(
            data,
            offs,
            np.broadcast_to(np.asarray(order, dtype=np.int64), (n,)).copy(),
            np.broadcast_to(np.asarray(tag, dtype=np.int32), (n,)).copy(),
            extra,
        )

    @staticmethod
    def from_frame(df: pl.DataFrame) -> Lines:
        """A writer's frame of ``_order``, ``line``, ``tag`` (other Int columns: extra)."""
        if not len(df):
            return Lines.empty()
        data, offs = _arrow_bytes(df["line"].to_arrow())
        extra = {c: df[c].to_numpy().astype(np.int64) for c in df.columns if c.startswith("_")}
        order = extra.pop("_order")
        return Lines(data, offs, order, df["tag"].to_numpy().astype(np.int32), extra)

    def text(self, i: int) -> str:
        """Line ``i`` as text (for the few lines a collector garbles)."""
        return bytes(self.data[self.offs[i] : self.offs[i + 1]]).decode("utf-8")


class FileBuffer:
    """Assembles a file (header, lines from several :class:`Lines`, footer) in one grow-only,
    page-aligned buffer.

    Why reuse one buffer: on a virtual machine a fresh page costs more than the copy into
    it, and a day's file is hundreds of megabytes. Each line is copied once, from where it
    was rendered to its place in the file. Page-aligned so that :func:`write_file` can hand
    it to the disk without the kernel copying it into the page cache.
    """

    def __init__(self) -> None:
        self.buf = np.empty(0, dtype=np.uint8)

    def _room(self, total: int) -> None:
        if len(self.buf) < total:
            size = max(total, len(self.buf) * 3 // 2)
            raw = np.empty(size + PAGE, dtype=np.uint8)
            skip = -raw.ctypes.data % PAGE
            self.buf = raw[skip : skip + size]

    def assemble(
        self,
        picks: Sequence[tuple[Lines, I64]],
        perm: I64,
        replace: dict[int, str],
        head: bytes = b"",
        tail: bytes = b"",
    ) -> memoryview:
        """``head``, then the selected lines (``picks``: lines and row indices), line ``k``
        of the file being selected row ``perm[k]`` (counting through ``picks`` in order),
        each ending in a newline, then ``tail``. ``replace`` maps lines (0-based) to the text
        written there instead."""
        sizes = np.concatenate([p.offs[i + 1] - p.offs[i] for p, i in picks]) + 1
        new = {k: (v + "\n").encode("utf-8") for k, v in replace.items()}
        file_sizes = sizes[perm]
        for k, raw in new.items():
            file_sizes[k] = len(raw)
        at = np.empty(len(perm) + 1, dtype=np.int64)
        at[0] = len(head)
        np.cumsum(file_sizes, out=at[1:])
        at[1:] += len(head)
        total = int(at[-1]) + len(tail)
        self._room(total)
        self.buf[: len(head)] = np.frombuffer(head, dtype=np.uint8)
        self.buf[int(at[-1]) : total] = np.frombuffer(tail, dtype=np.uint8)
        dest = np.empty(len(perm), dtype=np.int64)
        dest[perm] = at[:-1]
        for k in new:
            dest[perm[k]] = -1
        first = 0
        for lines, idx in picks:
            part = dest[first : first + len(idx)]
            _kernels().place(lines.data, lines.offs, idx.astype(np.int64), part, self.buf)
            first += len(idx)
        for k, raw in new.items():
            self.buf[at[k] : at[k] + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        return self.buf[:total].data


def write_file(path: Path, data: memoryview) -> None:
    """Write ``data`` (page-aligned, as :class:`FileBuffer` gives it) as the file ``path``.

    Why not ``open().write()``: on the project's VM, writing into the page cache costs about
    1.7 CPU-seconds per GB (the kernel copies into freshly mapped pages), a fifth of the
    simulator's CPU. With ``O_DIRECT`` the disk reads the buffer itself (~0.1 CPU-s per GB)
    and the writer thread waits for the device instead of taking a core from the
    formatters. The whole pages go that way, the last partial page through the page cache.
    Where the file system refuses ``O_DIRECT`` (tmpfs; no such flag on macOS) it is a plain
    write.
    """
    bulk = len(data) - len(data) % PAGE if _DIRECT else 0
    fd = -1
    if bulk:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _DIRECT, 0o644)
        except OSError:
            bulk = 0
    if fd < 0:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        done = 0
        if bulk:
            try:
                while done < bulk:
                    done += os.write(fd, data[done:bulk])
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_DIRECT)
            os.lseek(fd, done, os.SEEK_SET)
        while done < len(data):
            done += os.write(fd, data[done:])
    finally:
        os.close(fd)


@functools.cache
def _kernels() -> Any:
    """The numba kernels, compiled (or loaded from numba's cache) on first use."""
    from vpnsentry.simulate import _kernels as k

    return k
