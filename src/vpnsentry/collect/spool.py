"""Collect: the write-ahead spool between the network and the store.

Why a spool: a collector that parses before it writes anything loses what it was holding
when it is killed, and one that writes straight to the store makes senders wait for Parquet.
So every received message is first appended to a segment file (plain ``os.write``, no
user-space buffer), and only then counted; the micro-batch loop (``serve/batch.py``) reads
the segments from the offset the store's manifest says is committed and commits new rows and
the new byte range in one catalog transaction. A segment is deleted only once the store
holds all of it.

Durability, precisely:

* SIGKILL, OOM kill or a crash of the process loses nothing that was counted: ``os.write``
  returned, so the bytes are in the kernel's page cache, which outlives the process.
* Power loss or a kernel crash can lose what was written in the last ``fsync_seconds``
  (group commit: one ``fsync`` of the active segment per interval, default 0.1 s; rotated
  segments are fsynced before they are closed). A record cut by the power loss is
  truncated away at the next start (see :meth:`Spool.recover`).

Segments are named ``<kind>-<ns since epoch>-<random>.spool`` so that names sort in write
order and never repeat, even if the spool folder is deleted while the store is kept: the
name is the identity under which the store's manifest records committed byte ranges.
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: Default segment size before rotation: big enough to keep the number of files (and
#: manifest rows) small, small enough that a fully committed segment is freed soon.
SEGMENT_BYTES = 64 * 1024 * 1024
SEGMENT_SECONDS = 3600.0
SUFFIX = ".spool"


@dataclass(frozen=True)
class SegmentView:
    """What the batch loop may read of a segment: bytes ``[0, end)`` are complete."""

    name: str
    path: Path
    end: int
    active: bool


@dataclass
class _Segment:
    name: str
    path: Path
    fd: int
    size: int
    opened: float


def complete_lines(data: bytes) -> int:
    """Length of the prefix of ``data`` made of complete LF-terminated lines."""
    return data.rfind(b"\n") + 1


class Spool:
    """Append-only, rotating segment files of one kind (``syslog`` or ``netflow``).

    Threads: :meth:`append` is called by the one receiving thread (the event loop);
    :meth:`sync` by the flusher; :meth:`segments`, :meth:`release` and
    :meth:`mark_committed` by the batch loop. Each counter has a single writer.
    """

    def __init__(
        self,
        root: Path,
        kind: str,
        *,
        complete: Callable[[bytes], int] = complete_lines,
        segment_bytes: int = SEGMENT_BYTES,
        segment_seconds: float = SEGMENT_SECONDS,
    ) -> None:
        self.root = root
        self.kind = kind
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self._complete = complete
        self._lock = threading.Lock()
        self._closed: list[SegmentView] = []
        self._active: _Segment | None = None
        self.appended = 0  # bytes appended by this process (receiving thread only)
        self.committed = 0  # bytes the batch loop committed (batch thread only)
        self.base = 0  # uncommitted bytes found at start (set by the batch loop)
        #: (segment name, end offset, receive time) per append, oldest first: the lag.
        self.arrivals: collections.deque[tuple[str, int, float]] = collections.deque()
        root.mkdir(parents=True, exist_ok=True)
        self._dir_fd = os.open(root, os.O_RDONLY)  # fsynced so a new segment's name is durable
        self.recover()

    # -- start ----------------------------------------------------------------------------

    def recover(self) -> None:
        """Adopt the segments left by an earlier run, cutting a torn last record.

        A record can only be torn by a power loss (a killed process finishes its
        ``write``); what follows the last complete record is cut so that the next reader
        never sees half a message.
        """
        for path in sorted(self.root.glob(f"{self.kind}-*{SUFFIX}")):
            data = path.read_bytes()
            keep = self._complete(data)
            if keep < len(data):
                with path.open("r+b") as fh:
                    fh.truncate(keep)
                    os.fsync(fh.fileno())
            if keep:
                self.arrivals.append((path.name, keep, path.stat().st_mtime))
                self._closed.append(SegmentView(path.name, path, keep, active=False))
            else:
                path.unlink()

    # -- receiving thread -----------------------------------------------------------------

    def append(self, data: bytes, now: float) -> None:
        """Write ``data`` (whole records) to the active segment; rotate when it is full."""
        seg = self._active
        if (
            seg is None
            or seg.size >= self.segment_bytes
            or (seg.size and now - seg.opened >= self.segment_seconds)
        ):
            seg = self._rotate(now)
        view = memoryview(data)
        while view:  # a regular file takes it all at once; the loop is for signals
            n = os.write(seg.fd, view)
            view = view[n:]
        seg.size += len(data)
        self.appended += len(data)
        self.arrivals.append((seg.name, seg.size, now))

    def _rotate(self, now: float) -> _Segment:
        name = f"{self.kind}-{time.time_ns():020d}-{secrets.token_hex(4)}{SUFFIX}"
        path = self.root / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        new = _Segment(name, path, fd, 0, now)
        with self._lock:
            old = self._active
            if old is not None:
                os.fsync(old.fd)
                os.close(old.fd)
                self._closed.append(SegmentView(old.name, old.path, old.size, active=False))
            self._active = new
        os.fsync(self._dir_fd)
        return new

    # -- flusher --------------------------------------------------------------------------

    def sync(self) -> None:
        """fsync the active segment (group commit: called every ``fsync_seconds``)."""
        with self._lock:
            if self._active is not None:
                os.fsync(self._active.fd)

    def close(self) -> None:
        """fsync and close the active segment (it stays for the next start if uncommitted)."""
        with self._lock:
            seg, self._active = self._active, None
            if seg is not None:
                os.fsync(seg.fd)
                os.close(seg.fd)
                self._closed.append(SegmentView(seg.name, seg.path, seg.size, active=False))
            if self._dir_fd >= 0:
                os.close(self._dir_fd)
                self._dir_fd = -1

    # -- batch loop -----------------------------------------------------------------------

    def segments(self) -> list[SegmentView]:
        """Every retained segment in write order, with the end of its complete records."""
        with self._lock:
            views = list(self._closed)
            seg = self._active
            if seg is not None:
                views.append(SegmentView(seg.name, seg.path, seg.size, active=True))
        return views

    def release(self, name: str) -> None:
        """Delete a closed segment whose every byte the store has committed."""
        with self._lock:
            keep = [v for v in self._closed if v.name != name]
            if len(keep) == len(self._closed):
                return
            self._closed = keep
        (self.root / name).unlink(missing_ok=True)

    def mark_committed(self, name: str, end: int, nbytes: int) -> None:
        """Account ``nbytes`` up to ``end`` of segment ``name`` as in the store."""
        self.committed += nbytes
        while self.arrivals:  # names sort in write order
            try:
                seg, off, _ = self.arrivals[0]
            except IndexError:
                break
            if seg < name or (seg == name and off <= end):
                self.arrivals.popleft()
            else:
                break

    def backlog(self) -> int:
        """Bytes received but not yet committed to the store."""
        return self.base + self.appended - self.committed

    def lag(self, now: float) -> float:
        """Age in seconds of the oldest message not yet in the store (0 when none)."""
        try:
            return max(now - self.arrivals[0][2], 0.0)
        except IndexError:
            return 0.0

    def disk_bytes(self) -> int:
        """Bytes held by retained segments."""
        return sum(v.end for v in self.segments())
