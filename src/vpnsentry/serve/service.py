"""The service: listeners on an asyncio loop, the batch loop and the fsync flusher in threads.

Threads and why: receiving is I/O, so one event loop holds every socket; parsing and Parquet
writing are Polars/DuckDB work that releases the GIL, so the batch loop runs beside it
without stalling reads; the group-commit ``fsync`` gets a thread of its own so a slow disk
delays neither. Shutdown (SIGTERM or SIGINT): stop accepting, close connections (a last
LF-less message still counts), close the spool, let the batch loop drain it into the store,
close the store, return. With systemd's ``NOTIFY_SOCKET`` set it reports READY and STOPPING
(``Type=notify``), with a plain datagram, no library.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vpnsentry.collect import netflow
from vpnsentry.collect.spool import Spool
from vpnsentry.serve.batch import BatchHook, BatchLoop
from vpnsentry.serve.config import Listen, ServeConfig
from vpnsentry.serve.listeners import (
    Backpressure,
    Datagrams,
    SyslogStream,
    kernel_drops,
    syslog_datagram,
    udp_socket,
)
from vpnsentry.serve.metrics import Metrics, serve_metrics
from vpnsentry.store.store import Store

#: How often the loop checks backpressure (resume) and the kernel's UDP drop counters.
_TICK = 0.05
_DROPS_EVERY = 1.0
#: At shutdown, connections are read until they have been quiet for _QUIET seconds (what
#: senders had already sent is taken), for at most _GRACE seconds, then closed.
_QUIET = 0.3
_GRACE = 10.0


@dataclass
class Summary:
    """What a run did, for the final status line."""

    received: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    dropped: int = 0


class Service:
    """``vpnsentry serve``: construct with the settings and batch hooks, then :meth:`run`."""

    def __init__(
        self,
        cfg: ServeConfig,
        hooks: list[BatchHook] | None = None,
        *,
        announce: Callable[[dict[str, Any]], None] = lambda _: None,
        log: Callable[[str], None] = lambda _: None,
        metrics: Metrics | None = None,
    ) -> None:
        self.cfg = cfg
        self.hooks = list(hooks or [])
        self.announce = announce
        self.log = log
        self.metrics = metrics or Metrics()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._udp: list[tuple[str, socket.socket]] = []

    def run(self) -> Summary:
        """Serve until SIGTERM/SIGINT; then drain the spool into the store and return."""
        cfg = self.cfg
        store = Store.open(cfg.store, create=True)
        with store.writer() as writer:
            spool_dir = cfg.spool_dir
            self.syslog = Spool(spool_dir, "syslog", segment_bytes=cfg.segment_bytes)
            self.flows = Spool(
                spool_dir,
                "netflow",
                complete=netflow.complete_records,
                segment_bytes=cfg.segment_bytes,
            )
            self.batch = BatchLoop(
                writer, self.syslog, self.flows, self.metrics, self.hooks, tz=cfg.tz, log=self.log
            )
            self._probes()
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self._serve(loop))
            finally:
                loop.close()
            if self._failure is not None:
                raise self._failure
        m = self.metrics
        return Summary(
            received=int(m.get("vpnsentry_received_total")),
            rows={
                d: int(m.get("vpnsentry_parsed_total", dataset=d))
                for d in ("events", "flows", "quarantine")
            },
            batches=int(m.get("vpnsentry_batches_total")),
            dropped=int(m.get("vpnsentry_dropped_total")),
        )

    # -- the loop -------------------------------------------------------------------------

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.cfg
        bp = Backpressure(self.syslog, cfg.spool_max_bytes, self.metrics)
        servers: list[asyncio.Server] = []
        udp: list[asyncio.BaseTransport] = []
        tls = _tls_context(cfg) if cfg.syslog_tls else None
        for kind, where in [("syslog-tcp", w) for w in cfg.syslog_tcp] + [
            ("syslog-tls", w) for w in cfg.syslog_tls
        ]:
            name = f"{kind}/{where}"
            server = await loop.create_server(
                lambda n=name: SyslogStream(self.syslog, self.metrics, bp, n),
                where.host,
                where.port,
                ssl=tls if kind == "syslog-tls" else None,
                reuse_address=True,
            )
            servers.append(server)
            self._announce(kind, where, server.sockets[0])
        for kind, where in [("syslog-udp", w) for w in cfg.syslog_udp] + [
            ("netflow", w) for w in cfg.netflow
        ]:
            sock = udp_socket(where, cfg.udp_rcvbuf)
            name = f"{kind}/{where}"
            spool, encode = (
                (self.flows, netflow.record)
                if kind == "netflow"
                else (self.syslog, syslog_datagram)
            )
            transport, _ = await loop.create_datagram_endpoint(
                lambda s=spool, n=name, e=encode: Datagrams(s, self.metrics, n, e),  # type: ignore[misc]
                sock=sock,
            )
            udp.append(transport)
            self._udp.append((name, sock))
            self._announce(kind, where, sock)
        http = serve_metrics(self.metrics, cfg.metrics) if cfg.metrics else None
        if http is not None and cfg.metrics is not None:
            self._announce("metrics", cfg.metrics, http.socket)
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        threads = [
            threading.Thread(target=self._flusher, name="vpnsentry-fsync", daemon=True),
            threading.Thread(
                target=self._batches, args=(loop, stopping), name="vpnsentry-batch", daemon=True
            ),
        ]
        for t in threads:
            t.start()
        self.announce({"event": "ready", "spool": str(cfg.spool_dir), "store": str(cfg.store)})
        _sd_notify("READY=1")
        last_drops = 0.0
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), _TICK)
            bp.check()
            if time.monotonic() - last_drops >= _DROPS_EVERY:
                self._drops()
                last_drops = time.monotonic()
        _sd_notify("STOPPING=1")
        self.announce({"event": "stopping"})
        for server in servers:
            server.close()
        bp.draining = True
        bp.check()
        began = time.monotonic()
        while bp.transports and time.monotonic() - began < _GRACE:
            await asyncio.sleep(_TICK)
            if time.monotonic() - max(bp.last_data, began) >= _QUIET:
                break
        for conn in list(bp.transports):
            conn.close()
        await asyncio.sleep(0.05)  # let connection_lost spool what the framers still hold
        for server in servers:
            await server.wait_closed()
        for tr in udp:
            tr.close()
        self._drops()
        self.syslog.close()
        self.flows.close()
        self._stop.set()
        await asyncio.to_thread(threads[1].join)
        threads[0].join(timeout=5)
        if http is not None:
            http.shutdown()

    def _announce(self, kind: str, where: Listen, sock: Any) -> None:
        host, port = sock.getsockname()[:2]
        self.announce(
            {
                "event": "listening",
                "listener": kind,
                "address": host,
                "port": port,
                "requested": str(where),
            }
        )

    # -- threads --------------------------------------------------------------------------

    def _flusher(self) -> None:
        """Group commit: fsync the active segments every ``fsync_seconds``."""
        while not self._stop.wait(self.cfg.fsync_seconds):
            self.syslog.sync()
            self.flows.sync()

    def _batches(self, loop: asyncio.AbstractEventLoop, stopping: asyncio.Event) -> None:
        """Commit a batch every ``batch_seconds`` (at once while behind); drain at stop."""
        try:
            while True:
                started = time.monotonic()
                draining = self._stop.is_set()
                info = self.batch.run_once()
                if draining and info is None:
                    return
                if info is None or info.messages == 0:
                    self._stop.wait(max(self.cfg.batch_seconds - (time.monotonic() - started), 0))
                elif time.monotonic() - started < self.cfg.batch_seconds and not draining:
                    self._stop.wait(self.cfg.batch_seconds - (time.monotonic() - started))
        except BaseException as exc:  # the store failed: stop serving, report it
            self._failure = exc
            loop.call_soon_threadsafe(stopping.set)

    def _drops(self) -> None:
        for name, sock in self._udp:
            if sock.fileno() < 0:
                continue
            drops = kernel_drops(sock)
            if drops is None:
                continue
            before = self.metrics.get("vpnsentry_dropped_total", listener=name)
            if drops > before:
                self.log(
                    f"{name}: the kernel dropped {int(drops - before)} datagrams "
                    "(socket buffer full; raise udp_rcvbuf or net.core.rmem_max)"
                )
                self.metrics.set("vpnsentry_dropped_total", drops, listener=name)

    def _probes(self) -> None:
        def refresh() -> None:
            now = time.time()
            for kind, spool in (("syslog", self.syslog), ("netflow", self.flows)):
                self.metrics.set("vpnsentry_spool_bytes", spool.disk_bytes(), kind=kind)
                self.metrics.set("vpnsentry_spool_backlog_bytes", spool.backlog(), kind=kind)
                self.metrics.set("vpnsentry_lag_seconds", spool.lag(now), kind=kind)

        self.metrics.probe(refresh)


def _tls_context(cfg: ServeConfig) -> ssl.SSLContext:
    """Server context per RFC 5425: TLS 1.2 or later, the configured certificate."""
    from vpnsentry.errors import UsageError

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load TLS certificate/key: {exc}") from exc
    return ctx


def _sd_notify(state: str) -> None:
    """Tell systemd (``Type=notify``) about our state, if it is listening."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(state.encode())
        except OSError:
            pass
