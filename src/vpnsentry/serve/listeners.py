"""Listeners: asyncio protocols that write what they receive to the spool, then count it.

TCP and TLS connections share one :class:`Backpressure`: when the spool holds more than its
bound of bytes the store has not committed, every connection stops reading
(``pause_reading``), so the kernel's receive window fills and TCP flow control slows the
senders; nothing is dropped. Reading resumes below half the bound. UDP cannot be slowed:
its sockets get a large ``SO_RCVBUF`` and the kernel's drop counter for each socket is read
from ``/proc/net/udp`` and reported (``vpnsentry_dropped_total``), never silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from vpnsentry.collect.spool import Spool
from vpnsentry.collect.syslog import StreamFramer, datagram
from vpnsentry.serve.config import Listen
from vpnsentry.serve.metrics import Metrics


class Backpressure:
    """Pauses and resumes reading on every TCP/TLS connection as the spool backlog moves."""

    def __init__(self, spool: Spool, bound: int, metrics: Metrics) -> None:
        self.spool = spool
        self.bound = bound
        self.metrics = metrics
        self.paused = False
        self.draining = False  # shutting down: read what senders already sent, ignore the bound
        self.last_data = 0.0  # monotonic time of the last read from any connection
        self.transports: set[asyncio.Transport] = set()

    def check(self) -> None:
        """Pause when over the bound; resume when under half of it (hysteresis)."""
        backlog = self.spool.backlog()
        if not self.paused and backlog > self.bound and not self.draining:
            self.paused = True
            for t in self.transports:
                t.pause_reading()
        elif self.paused and (backlog <= self.bound // 2 or self.draining):
            self.paused = False
            for t in self.transports:
                if not t.is_closing():
                    t.resume_reading()
        self.metrics.set("vpnsentry_backpressure", int(self.paused))


class SyslogStream(asyncio.Protocol):
    """One syslog TCP or TLS connection."""

    def __init__(self, spool: Spool, metrics: Metrics, bp: Backpressure, listener: str) -> None:
        self.spool = spool
        self.metrics = metrics
        self.bp = bp
        self.listener = listener
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.bp.transports.add(transport)
        self.metrics.inc("vpnsentry_connections", 1)
        if self.bp.paused:
            transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.bp.last_data = time.monotonic()
        self._store(*self.framer.feed(data))
        self.bp.check()

    def eof_received(self) -> bool | None:
        self._store(*self.framer.finish())
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._store(*self.framer.finish())
        if self.transport is not None:
            self.bp.transports.discard(self.transport)
        self.metrics.inc("vpnsentry_connections", -1)

    def _store(self, lines: bytes, count: int) -> None:
        if lines:
            self.spool.append(lines, time.time())
        if count:
            self.metrics.inc("vpnsentry_received_total", count, listener=self.listener)
        if self.framer.oversize:
            self.metrics.inc("vpnsentry_oversize_total", self.framer.oversize)
            self.framer.oversize = 0
        if self.framer.framing_errors:
            self.metrics.inc("vpnsentry_framing_errors_total", self.framer.framing_errors)
            self.framer.framing_errors = 0


#: Turns a datagram, its sender's address and port and the receive time into spool bytes.
Encoder = Callable[[bytes, str, int, float], bytes]


def syslog_datagram(data: bytes, host: str, port: int, now: float) -> bytes:
    """Syslog over UDP (RFC 5426): one datagram is one message, one spool line."""
    return datagram(data)


class Datagrams(asyncio.DatagramProtocol):
    """A UDP listener: each datagram is encoded for its spool, written, then counted.

    Syslog keeps the message text (:func:`syslog_datagram`); NetFlow/IPFIX keeps the raw
    datagram with its exporter (:func:`vpnsentry.collect.netflow.record`).
    """

    def __init__(self, spool: Spool, metrics: Metrics, listener: str, encode: Encoder) -> None:
        self.spool = spool
        self.metrics = metrics
        self.listener = listener
        self.encode = encode

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        now = time.time()
        host, port = str(addr[0]).split("%")[0], int(str(addr[1]))
        self.spool.append(self.encode(data, host, port, now), now)
        self.metrics.inc("vpnsentry_received_total", 1, listener=self.listener)


def udp_socket(where: Listen, rcvbuf: int) -> socket.socket:
    """A bound UDP socket with a large receive buffer (what the kernel allows)."""
    family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    with contextlib.suppress(OSError):  # root may exceed net.core.rmem_max
        sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
    sock.bind((where.host, where.port))
    sock.setblocking(False)
    return sock


def kernel_drops(sock: socket.socket) -> int | None:
    """The kernel's drop counter of a UDP socket (``/proc/net/udp[6]``, by inode)."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            text = Path(table).read_text()
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 13 and cols[9] == inode:
                return int(cols[-1])
    return None
