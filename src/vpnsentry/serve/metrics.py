"""Counters and gauges, served as Prometheus text exposition format 0.0.4 on ``/metrics``.

One :class:`Metrics` object is shared by the listeners, the batch loop and whatever runs in
the batch hooks (streaming detection increments ``vpnsentry_alerts_total`` through
:meth:`Metrics.inc`). Every name is declared in :data:`DECLARED` with its type and help, so
an exposition always has its HELP and TYPE lines and a typo fails loudly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from vpnsentry.serve.config import Listen

DECLARED: Final[dict[str, tuple[str, str]]] = {
    "vpnsentry_received_total": (
        "counter",
        "Messages (syslog) or datagrams (NetFlow) received and written to the spool.",
    ),
    "vpnsentry_parsed_total": ("counter", "Rows committed to the store, by dataset."),
    "vpnsentry_quarantined_total": (
        "counter",
        "Messages or flow sets quarantined with a reason, by kind.",
    ),
    "vpnsentry_dropped_total": (
        "counter",
        "Datagrams the kernel dropped because the socket "
        "buffer was full (/proc/net/udp), by listener.",
    ),
    "vpnsentry_oversize_total": ("counter", "Syslog messages cut to the maximum length."),
    "vpnsentry_framing_errors_total": (
        "counter",
        "TCP connections whose octet counting broke and fell back to LF framing.",
    ),
    "vpnsentry_netflow_no_template_total": (
        "counter",
        "NetFlow/IPFIX data sets quarantined because their template never arrived.",
    ),
    "vpnsentry_batches_total": ("counter", "Micro-batches committed to the store."),
    "vpnsentry_hook_errors_total": ("counter", "Batch hooks that raised."),
    "vpnsentry_alerts_total": ("counter", "Alerts raised by streaming detection."),
    "vpnsentry_alerts_delivered_total": ("counter", "Alerts an output delivered, by output."),
    "vpnsentry_alerts_dead_lettered_total": (
        "counter",
        "Alerts an output gave up on (written to the dead-letter file), by output.",
    ),
    "vpnsentry_detect_seconds": (
        "gauge",
        "Seconds the last detection run took, by tier (live: every batch; full: scheduled).",
    ),
    "vpnsentry_spool_bytes": ("gauge", "Bytes held in spool segments, by kind."),
    "vpnsentry_spool_backlog_bytes": ("gauge", "Spooled bytes not yet in the store, by kind."),
    "vpnsentry_lag_seconds": ("gauge", "Age of the oldest message not yet in the store."),
    "vpnsentry_backpressure": ("gauge", "1 while TCP reading is paused for the store."),
    "vpnsentry_connections": ("gauge", "Open syslog TCP/TLS connections."),
}

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """Thread-safe named counters and gauges; gauges may be computed at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], float] = {}
        self._probes: list[Callable[[], None]] = []

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        """Add ``value`` to counter ``name`` (a name from DECLARED)."""
        key = (_declared(name), tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + value

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set gauge (or externally counted counter) ``name`` to ``value``."""
        key = (_declared(name), tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = value

    def get(self, name: str, **labels: str) -> float:
        """Current value (0 when never set); sums over labels when none are given."""
        with self._lock:
            if labels:
                return self._values.get((name, tuple(sorted(labels.items()))), 0)
            return sum(v for (n, _), v in self._values.items() if n == name)

    def probe(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` before each exposition (it refreshes gauges with :meth:`set`)."""
        self._probes.append(fn)

    def render(self) -> str:
        """The exposition text."""
        for fn in self._probes:
            fn()
        with self._lock:
            values = dict(self._values)
        lines: list[str] = []
        for name, (kind, text) in DECLARED.items():
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            series = sorted((lb, v) for (n, lb), v in values.items() if n == name)
            if not series and not any(n == name for n, _ in values):
                series = [((), 0.0)]
            for lb, v in series:
                lab = ",".join(f'{k}="{_escape(val)}"' for k, val in lb)
                lines.append(f"{name}{{{lab}}} {v:g}" if lab else f"{name} {v:g}")
        return "\n".join(lines) + "\n"


def _declared(name: str) -> str:
    if name not in DECLARED:
        raise KeyError(f"metric {name!r} is not declared in serve/metrics.py")
    return name


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def serve_metrics(metrics: Metrics, where: Listen) -> ThreadingHTTPServer:
    """Start the ``/metrics`` HTTP server in a daemon thread; returns it (for the port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not news: no access log on stderr."""

    server = ThreadingHTTPServer((where.host, where.port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="vpnsentry-metrics", daemon=True).start()
    return server
