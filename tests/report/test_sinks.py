"""Live alert outputs against real sockets: an HTTP receiver that fails, syslog listeners.

The alerts are the report tests' hostile sample (ANSI escapes, script tags, bidi controls,
9,000-character values), so every output is also checked for what must not get through.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from tests.report.sample import ANSI_HOST, alerts_frame
from vpnsentry.report.sinks import CefSyslogSink, JsonLinesSink, WebhookSink, cef


class Receiver(ThreadingHTTPServer):
    """Answers the first ``fail`` POSTs with ``status``, then 200; keeps what it accepted."""

    def __init__(self, fail: int, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail = fail
        self.status = status
        self.seen = 0
        self.accepted: list[dict[str, object]] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.seen += 1
            ok = self.server.seen > self.server.fail
            if ok:
                self.server.accepted.append(json.loads(body))
        self.send_response(200 if ok else self.server.status)
        if not ok and self.server.status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    fail, status = request.param
    srv = Receiver(fail, status)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: Receiver) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/hook"


def _dead(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("receiver", [(3, 503), (2, 429)], indirect=True)
def test_webhook_retries_until_the_receiver_accepts(receiver: Receiver, tmp_path: Path) -> None:
    alerts = alerts_frame()
    sink = WebhookSink("webhook", tmp_path / "dead.ndjson", url=_url(receiver), backoff=0.01)
    sink.send(alerts)
    sink.close(timeout=20)
    assert sink.delivered == alerts.height and sink.failed == 0
    assert sorted(str(r["alert.id"]) for r in receiver.accepted) == sorted(alerts["alert.id"])
    assert receiver.seen == alerts.height + receiver.fail
    assert not (tmp_path / "dead.ndjson").exists()


@pytest.mark.parametrize("receiver", [(1, 400)], indirect=True)
def test_webhook_refusal_goes_to_dead_letter_without_retries(
    receiver: Receiver, tmp_path: Path
) -> None:
    alerts = alerts_frame()
    dead = tmp_path / "dead.ndjson"
    sink = WebhookSink("webhook", dead, url=_url(receiver), backoff=0.01)
    sink.send(alerts)
    sink.close(timeout=20)
    lines = _dead(dead)
    assert len(lines) == 1 and sink.failed == 1 and sink.delivered == alerts.height - 1
    assert lines[0]["attempts"] == 1 and "HTTP 400" in str(lines[0]["reason"])
    assert isinstance(lines[0]["alert"], dict) and lines[0]["alert"]["alert.id"]


def test_webhook_unreachable_loses_nothing(tmp_path: Path) -> None:
    """Nobody listens: retries exhaust, or shutdown comes first; every alert is dead-lettered."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    alerts = alerts_frame()
    dead = tmp_path / "dead.ndjson"
    sink = WebhookSink("webhook", dead, url=f"http://127.0.0.1:{port}/", retries=50, backoff=0.05)
    sink.send(alerts)
    sink.close(timeout=0.3)
    lines = _dead(dead)
    assert sorted(str(x["alert"]["alert.id"]) for x in lines) == sorted(alerts["alert.id"])  # type: ignore[index]
    assert sink.delivered == 0 and sink.failed == alerts.height
    assert all(re.search(r"refused|shutdown", str(x["reason"])) for x in lines)


def test_webhook_refuses_non_http_urls(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookSink("webhook", None, url="file:///etc/passwd")


def test_json_lines_are_ascii_and_complete() -> None:
    buf = io.StringIO()
    alerts = alerts_frame()
    JsonLinesSink(buf).send(alerts)
    lines = buf.getvalue().splitlines()
    assert len(lines) == alerts.height
    assert all(line.isascii() and "\x1b" not in line for line in lines)
    hosts = {json.loads(x).get("host.name") for x in lines}
    assert ANSI_HOST in hosts  # escaped on the wire, intact once decoded


# -- CEF ------------------------------------------------------------------------------------

_EXT_KEY = re.compile(r"(?:^| )([A-Za-z0-9]+)=")


def parse_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """A strict reader of what we write: 7 header fields (\\| \\\\ escapes), then key=value."""
    header: list[str] = []
    cur = ""
    i = 0
    while len(header) < 7:
        c = text[i]
        if c == "\\":
            cur += text[i + 1]
            i += 2
            continue
        if c == "|":
            header.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    ext_text = text[i:]
    keys = [(m.group(1), m.start(1), m.end()) for m in _EXT_KEY.finditer(ext_text)]
    # Unescaped '=' only ever follows a key: values escape theirs.
    ext: dict[str, str] = {}
    for n, (k, _, end) in enumerate(keys):
        stop = keys[n + 1][1] - 1 if n + 1 < len(keys) else len(ext_text)
        raw = ext_text[end:stop]
        assert not re.search(r"(?<!\\)=", raw.replace("\\\\", "")), raw
        ext[k] = (
            raw.replace("\\\\", "\x00")
            .replace("\\=", "=")
            .replace("\\n", "\n")
            .replace("\\r", "\r")
            .replace("\x00", "\\")
        )
    return header, ext


def hostile_record() -> dict[str, object]:
    return {
        "@timestamp": "2025-03-03T16:09:00+00:00",
        "alert.id": "abc123",
        "rule.id": "auth|brute\\force",
        "rule.name": "Brute | force\nnext",
        "alert.severity": "high",
        "user.name": "eve=admin\\x",
        "source.ip": "198.51.100.7",
        "alert.summary": "line1\nline2 a=b \x1b[31mred\x1b[0m | pipe \\ back",
        "threat.technique.id": ["T1110", "T1110.001"],
        "threat.tactic.name": ["Credential Access"],
    }


def test_cef_escapes_header_and_extension() -> None:
    text = cef(hostile_record())
    assert "\n" not in text and "\x1b" not in text
    header, ext = parse_cef(text)
    assert header[:4] == ["CEF:0", "vpnsentry", "vpnsentry", header[3]]
    assert header[4] == "auth|brute\\force" and header[5] == "Brute | force next"
    assert header[6] == "8"
    assert ext["suser"] == "eve=admin\\x"
    assert ext["msg"] == "line1\nline2 a=b ?[31mred?[0m | pipe \\ back"
    assert ext["cs1Label"] == "techniques" and ext["cs1"] == "T1110,T1110.001"
    assert ext["rt"] == "1741018140000" and ext["src"] == "198.51.100.7"


def _listen(kind: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        s.listen()
    s.settimeout(10)
    return s


def test_cef_over_udp_and_tcp(tmp_path: Path) -> None:
    alerts = alerts_frame()
    with _listen(socket.SOCK_DGRAM) as udp, _listen(socket.SOCK_STREAM) as tcp:
        u = CefSyslogSink("cef-udp", None, host="127.0.0.1", port=udp.getsockname()[1])
        t = CefSyslogSink(
            "cef-tcp", None, host="127.0.0.1", port=tcp.getsockname()[1], protocol="tcp"
        )
        u.send(alerts)
        t.send(alerts)
        datagrams = [udp.recv(65536) for _ in range(alerts.height)]
        conn, _ = tcp.accept()
        conn.settimeout(10)
        stream = b""
        messages: list[bytes] = []
        while len(messages) < alerts.height:
            stream += conn.recv(65536)
            while b" " in stream:
                n, rest = stream.split(b" ", 1)
                if len(rest) < int(n):
                    break
                messages.append(rest[: int(n)])
                stream = rest[int(n) :]
        conn.close()
        u.close()
        t.close()
    for msg in [*datagrams, *messages]:
        text = msg.decode()
        assert re.match(r"<8[2-5]>1 \d{4}-\d\d-\d\dT\S+Z \S+ vpnsentry - alert - CEF:0\|", text)
        assert "\x1b" not in text and "\n" not in text and "\u202e" not in text
        parse_cef(text.split(" - alert - ", 1)[1])
    ids = pl.Series(
        [parse_cef(m.decode().split(" - alert - ", 1)[1])[1]["externalId"] for m in messages]
    )
    assert sorted(ids) == sorted(alerts["alert.id"])
    assert u.delivered == t.delivered == alerts.height
    assert all(len(d) <= 8192 for d in datagrams)
