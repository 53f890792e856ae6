"""End to end, for real: an OpenVPN gateway's syslog and NetFlow into ``vpnsentry serve``.

Network namespaces hold the gateway (Debian's ``openvpn``, ``rsyslogd`` forwarding its log
over TCP, ``softflowd`` exporting NetFlow v9 of the tunnel), two client machines and an
internal server (see ``lab.py``). Alice and Bob log in with good passwords; Mallory, holding
a client certificate, guesses passwords; Bob, once connected, probes 30 ports of the internal
server while Alice downloads a file from it. The alerts must come out of the running
service (its stdout, as a SIEM pipe would read them), name the right people (Bob's tunnel
address attributed to Bob through the session the gateway logged), and arrive within 5
seconds of their evidence.

The store starts with one earlier day of flow history (a Zeek conn.log), as any store that
has been running does: the fan-out detection does not judge the first day of data.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.live.lab import INTERNAL_HOST, NETFLOW_PORT, PASSWORDS, SYSLOG_PORT, Lab, missing_tools

pytestmark = pytest.mark.skipif(
    bool(missing_tools()), reason=f"the lab needs {', '.join(missing_tools())}"
)

LATENCY = 5.0  # seconds from evidence to alert (the bound for per-event detections)
_ZEEK_FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration orig_bytes "
    "resp_bytes conn_state local_orig local_resp missed_bytes history orig_pkts orig_ip_bytes "
    "resp_pkts resp_ip_bytes tunnel_parents"
)


def _history(path: Path) -> None:
    """Yesterday: an internal host used a file share (a Zeek conn.log, TSV as Zeek writes it)."""
    ts = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).timestamp()
    rows = [
        f"{ts + i * 60:.6f}\tC{i:017d}\t10.20.0.3\t{50000 + i}\t{INTERNAL_HOST}\t445\ttcp\tsmb\t"
        "1.5\t1200\t5400\tSF\tT\tT\t0\tShADadFf\t12\t1700\t10\t5900\t-"
        for i in range(5)
    ]
    path.write_text(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#path\tconn\n#fields\t"
        + _ZEEK_FIELDS.replace(" ", "\t")
        + "\n#types\t"
        + "\t".join(["string"] * 21)
        + "\n"
        + "\n".join(rows)
        + "\n"
    )


class AlertReader:
    """Reads the service's stdout file as it grows: alert JSON lines, with arrival times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.alerts: list[tuple[float, dict[str, Any]]] = []

    def poll(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        for line in data[self.pos : end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a status line
            if isinstance(rec, dict) and rec.get("event.kind") == "alert":
                self.alerts.append((time.monotonic(), rec))
        self.pos = end

    def wait(self, rule: str, seconds: float, **match: str) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + seconds
        while True:
            self.poll()
            for when, rec in self.alerts:
                if rec["rule.id"] == rule and all(rec.get(k) == v for k, v in match.items()):
                    return when, rec
            if time.monotonic() > deadline:
                seen = [(r["rule.id"], r.get("user.name")) for _, r in self.alerts]
                raise AssertionError(f"no {rule} alert {match} within {seconds}s; saw {seen}")
            time.sleep(0.05)


def _listening(out: Path, n: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while out.read_text(errors="replace").count("listening") < n:
        if time.monotonic() > deadline:
            raise AssertionError("serve did not start: " + out.read_text(errors="replace")[-2000:])
        time.sleep(0.1)


def _probe_ports(lab: Lab, role: str, ports: range) -> None:
    """TCP connection attempts from inside the client namespace (through the tunnel)."""
    code = (
        "import socket,sys\n"
        "for p in range(int(sys.argv[2]), int(sys.argv[3])):\n"
        "    s = socket.socket(); s.settimeout(0.5)\n"
        "    try: s.connect((sys.argv[1], p))\n"
        "    except OSError: pass\n"
        "    finally: s.close()\n"
    )
    subprocess.run(
        lab.exec(role, sys.executable, "-c", code, INTERNAL_HOST, str(ports.start),
                 str(ports.stop)),
        check=True, timeout=60,
    )  # fmt: skip


def _metrics(lab: Lab) -> str:
    """The service's /metrics, fetched from inside the gateway's namespace."""
    return subprocess.run(
        lab.exec("gw", sys.executable, "-c", "import urllib.request as u; print(u.urlopen("
                 "'http://127.0.0.1:9108/metrics', timeout=5).read().decode())"),
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout  # fmt: skip


def _netflow_received(lab: Lab) -> int:
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in _metrics(lab).splitlines()
        if line.startswith("vpnsentry_received_total") and "netflow" in line
    )


def test_live_alerts_from_a_real_openvpn_gateway(tmp_path: Path) -> None:
    store = tmp_path / "store"
    history = tmp_path / "conn.log"
    _history(history)
    vpnsentry = [sys.executable, "-m", "vpnsentry"]
    subprocess.run([*vpnsentry, "ingest", str(history), "--store", str(store)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    work = tmp_path / "lab"
    work.mkdir()
    with Lab(work) as lab:
        serve = lab.start(
            "gw", *vpnsentry, "serve", "--store", str(store), "--json",
            "--syslog-tcp", f"127.0.0.1:{SYSLOG_PORT}", "--netflow", f"127.0.0.1:{NETFLOW_PORT}",
            "--metrics", "127.0.0.1:9108", "--batch-seconds", "0.5", "--alerts-stdout",
            log="serve.out",
        )  # fmt: skip
        _listening(work / "serve.out", 3, 60)
        lab.forward_logs()
        lab.export_flows()
        alerts = AlertReader(work / "serve.out")

        lab.connect("c1", "alice", PASSWORDS["alice"], wait=True)
        lab.connect("c2", "bob", PASSWORDS["bob"], wait=True)
        bob_ip = lab.tunnel_ip("c2")

        # Mallory guesses: each attempt is one refused OpenVPN login.
        for i in range(6):
            lab.connect("c1", "mallory", f"guess-{i}", wait=False)
            evidence = time.monotonic()
        when, brute = alerts.wait("auth_brute_force", 60, **{"user.name": "mallory"})
        assert brute["source.ip"] == "198.51.100.2"
        assert brute["observer.name"] == "vpn-gw-lab"
        # The 5th failure makes the burst; the alert may come before the 6th attempt ends.
        assert when - evidence < LATENCY, f"brute force alert after {when - evidence:.1f}s"

        # Bob scans the internal server through his tunnel; Alice downloads a handbook
        # meanwhile and softflowd exports. The evidence arrives when the collector counts
        # the first NetFlow datagram.
        _probe_ports(lab, "c2", range(1, 31))
        lab.flush_flows("c1")
        deadline = time.monotonic() + 30
        while _netflow_received(lab) == 0:
            assert time.monotonic() < deadline, "no NetFlow arrived"
            time.sleep(0.05)
        evidence = time.monotonic()
        when, scan = alerts.wait("lateral_fan_out", 60, **{"source.ip": bob_ip})
        assert scan["user.name"] == "bob"
        assert when - evidence < LATENCY, f"fan-out alert after {when - evidence:.1f}s"

        metrics = _metrics(lab)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0

    assert "vpnsentry_received_total" in metrics
    # Nothing Alice or Bob did legitimately raised an alert about them, but the scan.
    rules = {(r["rule.id"], r.get("user.name")) for _, r in alerts.alerts}
    assert ("auth_brute_force", "alice") not in rules and ("auth_brute_force", "bob") not in rules
    # The same alerts are in the store, once each, with the same ids as batch mode.
    out = subprocess.run(
        [*vpnsentry, "alerts", "--store", str(store), "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    ids = [json.loads(line)["alert.id"] for line in out.splitlines() if line.strip()]
    assert brute["alert.id"] in ids and scan["alert.id"] in ids and len(ids) == len(set(ids))
