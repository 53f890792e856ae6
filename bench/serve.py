"""Benchmark: `vpnsentry serve` under sustained load on loopback, for zero loss and memory.

A real ``vpnsentry serve`` process gets, for ``--seconds``:

* syslog over TCP (LF framing) at ``--rate`` messages/s: FortiGate SSL-VPN lines (a real
  FortiOS 7.x event line), each carrying its send time and a sequence number in ``user``;
* NetFlow v9 over UDP at ``--flows`` flows/s: 30 IPv4 flows per datagram, template re-sent
  every 64 datagrams, as a router does.

Meanwhile the serve process's RSS is sampled from /proc. Then SIGTERM (drain), and the store
is counted: rows in == messages and flows sent (zero loss) and no sequence number twice.
Latency is arrival to commit: ``event.ingested`` (stamped when the batch is parsed, just
before its commit) minus the send time in the message. ``--find-max`` raises the syslog rate
by 25% steps until a run loses data or ends with the spool more than 2 s behind.

    .venv/bin/python bench/serve.py [--rate 50000] [--flows 20000] [--seconds 20] [--find-max]

Prints a Markdown table for BENCHMARKS.md and writes bench/out/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

OUT = Path(__file__).resolve().parent / "out"
LINE = (
    'date={date} time={time} devname="FGT-EDGE" devid="FGVM020000000001" logid="0101039949"'
    ' type="event" subtype="vpn" level="information" vd="root" eventtime={ns}'
    ' tz="+0000" logdesc="SSL VPN tunnel down" action="tunnel-down" tunneltype="ssl-tunnel"'
    ' tunnelid=1 remip=198.51.100.7 tunnelip=10.212.134.200 user="{user}" group="vpn"'
    ' dst_host="N/A" reason="N/A" duration=81 sentbyte=12800 rcvdbyte=25600'
    ' msg="SSL tunnel shutdown"'
)
V9_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (22, 4), (21, 4)]
FLOWS_PER_DATAGRAM = 30


def _syslog(port: int, rate: int, seconds: float, sent: list[int]) -> None:
    """LF-framed lines at ``rate``/s in blocks of 1/20 s; ``user`` = b<send ns>-<seq>."""
    block = max(rate // 20, 1)
    seq = 0
    with socket.create_connection(("127.0.0.1", port)) as s:
        start = time.monotonic()
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * rate) + block
            while seq < due:
                # One template render per block, then only the user field per line: the
                # sender must cost far less than the collector it measures (2 shared cores).
                ns = time.time_ns()
                t = time.gmtime(ns // 1_000_000_000)
                date, clock = time.strftime("%Y-%m-%d", t), time.strftime("%H:%M:%S", t)
                head, tail = LINE.format(date=date, time=clock, ns=ns, user="\0").split("\0")
                lines = "".join([f"{head}b{ns}-{i}{tail}\n" for i in range(seq, seq + block)])
                s.sendall(lines.encode())
                seq += block
            time.sleep(max(start + seq / rate - time.monotonic() - 0.05, 0))
    sent.append(seq)


def _netflow(port: int, rate: int, seconds: float, sent: list[int]) -> None:
    """NetFlow v9 datagrams of 30 flows at ``rate`` flows/s, template every 64 datagrams."""
    template = struct.pack(">HH", 256, len(V9_FIELDS)) + b"".join(
        struct.pack(">HH", *f) for f in V9_FIELDS
    )
    tset = struct.pack(">HH", 0, len(template) + 4) + template
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = 0
    datagrams = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        recs = b"".join(
            struct.pack(
                ">IIHHBIIII",
                0xC0000200 + (i & 0xFF),
                0xC6336400 + (i >> 8 & 0xFF),
                i & 0xFFFF,
                443,
                6,
                1000,
                5,
                50_000,
                60_000,
            )
            for i in range(n, n + FLOWS_PER_DATAGRAM)
        )
        body = struct.pack(">HH", 256, len(recs) + 4) + recs
        sets = (tset if datagrams % 64 == 0 else b"") + body
        header = struct.pack(">HHIIII", 9, 2, 60_000, int(time.time()), datagrams, 1)
        sock.sendto(header + sets, ("127.0.0.1", port))
        n += FLOWS_PER_DATAGRAM
        datagrams += 1
        time.sleep(max(start + n / rate - time.monotonic(), 0))
    sock.close()
    sent.append(n)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(rate: int, flows: int, seconds: float, work: Path) -> dict[str, Any]:
    """One load run into a fresh store under ``work``; returns the measurements."""
    store = work / f"store-{rate}-{flows}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpnsentry", "serve", "--json", "--no-detect", "--store",
         str(store), "--syslog-tcp", "127.0.0.1:0", "--netflow", "127.0.0.1:0",
         "--batch-seconds", "0.5"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    ports: dict[str, int] = {}
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "listening":
            ports[event["listener"]] = event["port"]
        if event["event"] == "ready":
            break
    sent_lines: list[int] = []
    sent_flows: list[int] = []
    threads = [
        threading.Thread(target=_syslog, args=(ports["syslog-tcp"], rate, seconds, sent_lines)),
        threading.Thread(target=_netflow, args=(ports["netflow"], flows, seconds, sent_flows)),
    ]
    rss: list[int] = []
    started = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss.append(_rss(proc.pid))
        time.sleep(0.2)
    send_seconds = time.monotonic() - started
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    proc.communicate(timeout=600)
    drain = time.monotonic() - t0
    con = duckdb.connect()
    events = f"read_parquet('{store}/events/*/*.parquet')"
    stored, distinct, p50, p95, p99, pmax = con.execute(
        f"""SELECT count(*), count(DISTINCT "user.name"),
        quantile_cont(lat, 0.5), quantile_cont(lat, 0.95), quantile_cont(lat, 0.99), max(lat)
        FROM (SELECT "user.name", (epoch_ns("event.ingested")
              - CAST(split_part(substr("user.name", 2), '-', 1) AS BIGINT)) / 1e9 AS lat
              FROM {events})"""
    ).fetchone() or (0, 0, None, None, None, None)
    flows_stored = (
        con.execute(f"SELECT count(*) FROM read_parquet('{store}/flows/*/*.parquet')").fetchone()
        or (0,)
    )[0]
    return {
        "rate": rate,
        "flows_rate": flows,
        "seconds": round(send_seconds, 2),
        "sent": sent_lines[0],
        "stored": stored,
        "distinct": distinct,
        "flows_sent": sent_flows[0],
        "flows_stored": flows_stored,
        "achieved_rate": round(sent_lines[0] / send_seconds),
        "achieved_flows": round(sent_flows[0] / send_seconds),
        "latency_p50": p50,
        "latency_p95": p95,
        "latency_p99": p99,
        "latency_max": pmax,
        "drain_seconds": round(drain, 2),
        "rss_max_mib": round(max(rss, default=0) / 2**20, 1),
        "zero_loss": stored == distinct == sent_lines[0] and flows_stored == sent_flows[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=50_000, help="syslog messages/s over TCP")
    ap.add_argument("--flows", type=int, default=20_000, help="NetFlow v9 flows/s")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--find-max", action="store_true", help="raise --rate until it fails")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="vpnsentry-bench-serve-") as tmp:
        rate = args.rate
        while True:
            res = run(rate, args.flows, args.seconds, Path(tmp))
            results.append(res)
            print(json.dumps(res), flush=True)
            ok = res["zero_loss"] and (res["latency_p99"] or 0) < 2.0
            if not args.find_max or not ok:
                break
            rate = int(rate * 1.25)
    OUT.mkdir(exist_ok=True)
    (OUT / "serve.json").write_text(json.dumps(results, indent=2))
    print(f"\nmachine: {os.cpu_count()} CPUs\n")
    print("| syslog msg/s (sent) | flows/s (sent) | zero loss | latency p50 / p95 / p99 / max "
          "(s) | drain at stop (s) | peak RSS (MiB) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for r in results:
        lat = " / ".join(f"{r[k]:.2f}" for k in ("latency_p50", "latency_p95", "latency_p99",
                                                  "latency_max") if r[k] is not None)  # fmt: skip
        print(f"| {r['achieved_rate']:,} | {r['achieved_flows']:,} | {r['zero_loss']} | {lat} | "
              f"{r['drain_seconds']} | {r['rss_max_mib']} |")  # fmt: skip


if __name__ == "__main__":
    main()
