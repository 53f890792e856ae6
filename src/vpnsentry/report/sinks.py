"""Alert outputs for live mode: stdout, a webhook, and syslog CEF to a SIEM.

Every sink takes a frame of new alerts (the store's alert columns) and delivers one record
per alert: the same ECS-named objects as ``alerts.ndjson`` (:func:`export.alert_records`).

Delivery must not hold up detection, and must not lose an alert silently. So the network
sinks queue alerts and send them from their own thread; the webhook retries what may
succeed later (connection errors, timeouts, 5xx, 429 with ``Retry-After``) with exponential
backoff and writes what it finally could not deliver, with the reason, to a dead-letter
NDJSON file; alerts still queued when the service stops go there too. Counters
(``delivered``, ``failed``) feed the service's metrics.

CEF (ArcSight Common Event Format, rev. 25) is escaped by its rules: ``\\`` and ``|`` in
header fields, ``\\`` and ``=`` in extension values, line breaks as ``\\n``/``\\r``. Other
control characters are replaced: alert fields carry attacker-chosen text (user names, URLs)
and a SIEM's console must not receive terminal escapes through us.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Protocol

import polars as pl

from vpnsentry import __version__
from vpnsentry.report.export import alert_records

#: Our severity names on CEF's 0-10 scale (CEF: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high).
CEF_SEVERITY: Final = {"low": 3, "medium": 5, "high": 8, "critical": 10}
#: Controls other than the line breaks CEF escapes itself.
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")
_STOP: Final = object()


class Sink(Protocol):
    """Where new alerts go; ``delivered``/``failed`` count alerts (failed: dead-lettered)."""

    name: str
    delivered: int
    failed: int

    def send(self, alerts: pl.DataFrame) -> None: ...

    def close(self) -> None: ...


# -- stdout ----------------------------------------------------------------------------------


@dataclass
class JsonLinesSink:
    """One JSON object per alert and line, flushed at once (for a pipe or a journal)."""

    stream: IO[str]
    name: str = "stdout"
    delivered: int = 0
    failed: int = 0  # a write error is the service's own failure, not a dead letter

    def send(self, alerts: pl.DataFrame) -> None:
        for rec in alert_records(alerts):
            # ensure_ascii: attacker text stays \\u-escaped, never raw controls on a terminal.
            self.stream.write(json.dumps(rec, default=str, separators=(",", ":")) + "\n")
            self.delivered += 1
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


# -- the queue and thread the network sinks share -------------------------------------------


@dataclass
class _Worker(ABC):
    """A queue drained by one thread; ``deliver`` sends one record or raises."""

    name: str
    dead_letter: Path | None
    delivered: int = 0
    failed: int = 0
    _queue: queue.Queue[object] = field(default_factory=queue.Queue, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _closing: threading.Event = field(default_factory=threading.Event, init=False)
    _dl_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def send(self, alerts: pl.DataFrame) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        for rec in alert_records(alerts):
            self._queue.put(rec)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued within ``timeout``; dead-letter the rest."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._closing.set()
            self._thread.join(5.0)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, dict):
                self._dead(item, "not delivered before shutdown", 0)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, dict)
            try:
                self.deliver(item)
            except _GiveUp as exc:
                self._dead(item, exc.reason, exc.attempts)
            else:
                self.delivered += 1

    @abstractmethod
    def deliver(self, record: dict[str, Any]) -> int:
        """Send one record; return the attempts it took, or raise :class:`_GiveUp`."""

    def _dead(self, record: dict[str, Any], reason: str, attempts: int) -> None:
        self.failed += 1
        if self.dead_letter is None:
            return
        line = json.dumps(
            {
                "failed_at": dt.datetime.now(dt.UTC).isoformat(),
                "sink": self.name,
                "reason": reason,
                "attempts": attempts,
                "alert": record,
            },
            default=str,
            separators=(",", ":"),
        )
        with self._dl_lock:
            self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
            with self.dead_letter.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


class _GiveUp(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


# -- webhook --------------------------------------------------------------------------------


@dataclass
class WebhookSink(_Worker):
    """POST each alert as a JSON object to ``url``, retrying what may succeed later."""

    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    retries: int = 5  # attempts after the first
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    max_backoff: float = 60.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"webhook URL must be http:// or https://: {self.url!r}")

    def deliver(self, record: dict[str, Any]) -> int:
        body = json.dumps(record, default=str, separators=(",", ":")).encode()
        wait = self.backoff
        reason = ""
        for attempt in range(1, self.retries + 2):
            req = urllib.request.Request(  # noqa: S310 - scheme checked in __post_init__
                self.url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": f"vpnsentry/{__version__}",
                    **self.headers,
                },
            )
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    resp.read()
                return attempt
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    raise _GiveUp(
                        reason + " (not retried: the receiver refuses it)", attempt
                    ) from None
                header = exc.headers.get("Retry-After") if exc.headers else None
                if header and header.strip().isdigit():
                    retry_after = min(float(header), self.max_backoff)
            except (urllib.error.URLError, OSError) as exc:
                reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt > self.retries or self._closing.is_set():
                break
            time.sleep(retry_after if retry_after is not None else wait)
            wait = min(wait * 2, self.max_backoff)
        raise _GiveUp(reason, attempt)


# -- syslog CEF --------------------------------------------------------------------------------


def _cef_header(value: object) -> str:
    text = _CONTROL.sub("?", str(value)).replace("\r", " ").replace("\n", " ")
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(value: object) -> str:
    text = _CONTROL.sub("?", str(value))
    text = text.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def _ms(value: object) -> str | None:
    if isinstance(value, dt.datetime):
        return str(int(value.timestamp() * 1000))
    if isinstance(value, str):
        try:
            return str(int(dt.datetime.fromisoformat(value).timestamp() * 1000))
        except ValueError:
            return None
    return None


def cef(record: Mapping[str, Any]) -> str:
    """One alert record as a CEF event (without syslog header)."""
    ext: list[tuple[str, object]] = []

    def add(key: str, value: object) -> None:
        if value is not None and value not in ("", []):
            ext.append((key, value))

    add("rt", _ms(record.get("@timestamp")))
    add("end", _ms(record.get("event.end")))
    add("externalId", record.get("alert.id"))
    add("suser", record.get("user.name"))
    add("src", record.get("source.ip"))
    add("dst", record.get("destination.ip"))
    add("dpt", record.get("destination.port"))
    add("dvchost", record.get("observer.name"))
    add("shost", record.get("host.name"))
    add("out", record.get("network.bytes"))
    add("cat", ",".join(record.get("threat.tactic.name") or []))
    for n, (label, value) in enumerate(
        (
            ("techniques", ",".join(record.get("threat.technique.id") or [])),
            ("incident", record.get("incident.id")),
            ("country", record.get("source.geo.country_iso_code")),
        ),
        start=1,
    ):
        if value:
            add(f"cs{n}Label", label)
            add(f"cs{n}", value)
    add("msg", record.get("alert.summary"))
    sev = CEF_SEVERITY.get(str(record.get("alert.severity")), 5)
    head = "|".join(
        _cef_header(v)
        for v in (
            "CEF:0",
            "vpnsentry",
            "vpnsentry",
            __version__,
            record.get("rule.id", ""),
            record.get("rule.name", ""),
            sev,
        )
    )
    return head + "|" + " ".join(f"{k}={_cef_value(v)}" for k, v in ext)


@dataclass
class CefSyslogSink(_Worker):
    """Alerts as CEF in RFC 5424 syslog messages to a SIEM, over UDP or TCP.

    TCP uses RFC 6587 octet counting (a message may then hold any byte) and reconnects
    with backoff; UDP sends one datagram per alert, capped at ``max_udp`` bytes.
    """

    host: str = "127.0.0.1"
    port: int = 514
    protocol: str = "udp"
    hostname: str = field(default_factory=socket.gethostname)
    facility: int = 10  # security/authorization (authpriv)
    retries: int = 5
    backoff: float = 1.0
    max_udp: int = 8192
    _sock: socket.socket | None = field(default=None, init=False)

    def frame(self, record: Mapping[str, Any]) -> bytes:
        sev = {"low": 5, "medium": 4, "high": 3, "critical": 2}.get(
            str(record.get("alert.severity")), 4
        )
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        host = re.sub(r"[^!-~]", "-", self.hostname)[:255] or "-"
        msg = f"<{self.facility * 8 + sev}>1 {now} {host} vpnsentry - alert - {cef(record)}"
        data = msg.encode("utf-8")
        if self.protocol == "tcp":
            return str(len(data)).encode() + b" " + data
        return data[: self.max_udp]

    def deliver(self, record: dict[str, Any]) -> int:
        data = self.frame(record)
        wait = self.backoff
        reason = ""
        for attempt in range(1, self.retries + 2):
            try:
                if self.protocol == "udp":
                    with socket.socket(_family(self.host), socket.SOCK_DGRAM) as s:
                        s.sendto(data, (self.host, self.port))
                else:
                    if self._sock is None:
                        self._sock = socket.create_connection((self.host, self.port), timeout=10)
                    self._sock.sendall(data)
                return attempt
            except OSError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if self._sock is not None:
                    self._sock.close()
                    self._sock = None
            if attempt > self.retries or self._closing.is_set():
                break
            time.sleep(wait)
            wait = min(wait * 2, 60.0)
        raise _GiveUp(reason, attempt)

    def close(self, timeout: float = 10.0) -> None:
        super().close(timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
