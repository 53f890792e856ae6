"""Syslog over UDP, TCP (both RFC 6587 framings) and TLS into a real ``vpnsentry serve``.

The oracle is the file ingest: the rows serve stores for real vendor lines must equal, column
for column (less where and when they were read), what ``vpnsentry ingest`` makes of the same
lines from files.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from collections import Counter
from pathlib import Path

from tests.e2e.test_ingest_cli import cli
from tests.serve.helpers import Serve, golden_lines, octet_frame, query, stop_quietly

VOLATILE = ("log.file.path", "log.offset", "event.ingested")
SENT = {
    "tcp-lf": [
        ("fortinet_fortigate", "vpn_ssl_docs"),
        ("fortinet_fortigate", "corpus_fortios_7_6"),
    ],
    "udp": [("cisco_asa", "anyconnect-session")],
    "tcp-octet": [("openvpn", "syslog-rfc5424")],
    "tls": [("cisco_asa", "ikev2"), ("openvpn", "syslog-rfc3339")],
}


def _cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _rows(store: Path, dataset: str) -> Counter[str]:
    rows = query(store, f"SELECT * FROM {dataset}")
    return Counter(
        json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True) for r in rows
    )


def test_every_transport_stores_what_file_ingest_would(tmp_path: Path) -> None:
    cert, key = _cert(tmp_path)
    store = tmp_path / "live"
    serve = Serve(
        store,
        "--syslog-udp", "127.0.0.1:0", "--syslog-tcp", "127.0.0.1:0",
        "--syslog-tls", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key),
        "--metrics", "127.0.0.1:0", "--batch-seconds", "0.2",
    )  # fmt: skip
    try:
        lines = {k: [ln for f, c in v for ln in golden_lines(f, c)] for k, v in SENT.items()}
        with socket.create_connection(("127.0.0.1", serve.ports["syslog-tcp"])) as s:
            s.sendall(b"".join(ln + b"\n" for ln in lines["tcp-lf"]))
        with socket.create_connection(("127.0.0.1", serve.ports["syslog-tcp"])) as s:
            stream = b"".join(octet_frame(ln) for ln in lines["tcp-octet"])
            for i in range(0, len(stream), 97):  # frames cut at arbitrary points
                s.sendall(stream[i : i + 97])
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for ln in lines["udp"]:
            udp.sendto(ln, ("127.0.0.1", serve.ports["syslog-udp"]))
        udp.close()
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        with (
            socket.create_connection(("127.0.0.1", serve.ports["syslog-tls"])) as raw,
            ctx.wrap_socket(raw) as tls,
        ):
            tls.sendall(b"".join(octet_frame(ln) for ln in lines["tls"]))
        sent = sum(len(v) for v in lines.values())
        metrics_seen = _wait_received(serve, sent)
        stopped = serve.stop()
    finally:
        stop_quietly(serve.proc)
    assert metrics_seen == sent
    assert stopped["received"] == sent

    files = tmp_path / "files"
    files.mkdir()
    for name, cases in SENT.items():
        for fmt, case in cases:
            (files / f"{name}-{case}.log").write_bytes(b"\n".join(golden_lines(fmt, case)) + b"\n")
    ref = tmp_path / "ref"
    cli("ingest", "--json", "--store", str(ref), str(files))
    for dataset in ("events", "flows"):
        assert _rows(store, dataset) == _rows(ref, dataset), dataset
    live_q = query(store, 'SELECT "error.type", "log.file.line" FROM quarantine')
    ref_q = query(ref, 'SELECT "error.type" FROM quarantine')
    assert len(live_q) == len(ref_q)
    stored = sum(sum(_rows(store, d).values()) for d in ("events", "flows", "quarantine"))
    assert stored == sent - len([ln for v in lines.values() for ln in v if not ln.strip()])
    assert not list((store / ".spool").glob("syslog-*")), "committed segments are deleted"


def _wait_received(serve: Serve, n: int) -> float:
    import time

    deadline = time.monotonic() + 30
    got = 0.0
    while time.monotonic() < deadline:
        got = serve.total("vpnsentry_received_total")
        if got >= n:
            break
        time.sleep(0.1)
    return got


def test_messages_no_parser_knows_are_quarantined_with_a_reason(tmp_path: Path) -> None:
    store = tmp_path / "s"
    serve = Serve(store, "--syslog-tcp", "127.0.0.1:0", "--batch-seconds", "0.2")
    try:
        hostile = [
            b"<13>Oct 11 22:14:15 host app: hello\x1b[31m red '); DROP TABLE events;--",
            b"<13>1 2026-11-30T10:00:00Z host app - - - multi#line",
            b"\xff\xfe not utf-8 at all",
        ]
        frames = [octet_frame(hostile[0]), octet_frame(b"<13>1 2026-11-30T10:00:00Z host app"
                  b" - - - multi\nline\r\n"), octet_frame(hostile[2])]  # fmt: skip
        with socket.create_connection(("127.0.0.1", serve.ports["syslog-tcp"])) as s:
            s.sendall(b"".join(frames))
        stopped = serve.stop()
    finally:
        stop_quietly(serve.proc)
    assert stopped["received"] == 3
    rows = query(store, 'SELECT * FROM quarantine ORDER BY "log.offset"')
    assert [r["error.type"] for r in rows] == ["unknown_format"] * 3
    assert rows[1]["event.original"].endswith("multi#012line")  # LF escaped, one line
    assert rows[2]["event.original"].startswith("\ufffd")
    assert [r["log.file.line"] for r in rows] == [1, 2, 3]
