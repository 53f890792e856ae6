"""A real exporter: softflowd reads a pcap we write and exports NetFlow v5, v9 and IPFIX to
a real ``vpnsentry serve``; the flows in the store must be the pcap's, per version."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.serve.helpers import Serve, query, stop_quietly
from tests.serve.pcap import Packet, ip_length, write_pcap

pytestmark = pytest.mark.skipif(shutil.which("softflowd") is None, reason="softflowd missing")

VERSIONS = {"5": "netflow_v5", "9": "netflow_v9", "10": "ipfix"}


def _packets(t: float) -> list[Packet]:
    c, s, dns = "192.0.2.10", "198.51.100.20", "198.51.100.53"
    return [
        Packet(t, c, s, 6, 40001, 443, 0, 0x02),
        Packet(t + 0.1, s, c, 6, 443, 40001, 0, 0x12),
        Packet(t + 0.2, c, s, 6, 40001, 443, 100, 0x18),
        Packet(t + 0.3, s, c, 6, 443, 40001, 1200, 0x18),
        Packet(t + 1.0, c, s, 6, 40001, 443, 0, 0x11),
        Packet(t + 2.0, "192.0.2.11", dns, 17, 5353, 53, 30),
        Packet(t + 2.5, "192.0.2.11", dns, 17, 5353, 53, 34),
    ]


def test_softflowd_v5_v9_ipfix_flows_match_the_pcap(tmp_path: Path) -> None:
    t0 = float(int(time.time()) - 600)
    packets = _packets(t0)
    # softflowd 1.1 mangles absolute -r/-c paths (and then hangs): relative ones in a cwd.
    ctl = Path(tempfile.mkdtemp(prefix="sf", dir="/tmp"))
    pcap = ctl / "traffic.pcap"
    write_pcap(pcap, packets)
    expected: dict[tuple[str, int, str, int], tuple[int, int, float]] = {}
    for p in packets:
        key = (p.src, p.sport, p.dst, p.dport)
        n, b, first = expected.get(key, (0, 0, p.t))
        expected[key] = (n + 1, b + ip_length(p), min(first, p.t))
    # softflowd keeps one flow per connection: both directions start at its first packet.
    for (a, ap, b_, bp), (n, b, first) in list(expected.items()):
        back = expected.get((b_, bp, a, ap))
        expected[(a, ap, b_, bp)] = (n, b, min(first, back[2]) if back else first)
    store = tmp_path / "store"
    serve = Serve(store, "--netflow", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                  "--batch-seconds", "0.2")  # fmt: skip
    try:
        for version in VERSIONS:
            subprocess.run(
                ["softflowd", "-d", "-r", pcap.name, "-v", version,
                 "-n", f"127.0.0.1:{serve.ports['netflow']}", "-c", "ctl", "-p", "pid"],
                check=True, capture_output=True, timeout=60, cwd=ctl,
            )  # fmt: skip
        stopped = serve.stop()
    finally:
        stop_quietly(serve.proc)
        shutil.rmtree(ctl, ignore_errors=True)
    assert stopped["received"] >= 3
    rows = query(store, "SELECT * FROM flows")
    assert not query(store, "SELECT * FROM quarantine")
    for code in VERSIONS.values():
        got = {
            (r["source.ip"], r["source.port"], r["destination.ip"], r["destination.port"]): r
            for r in rows
            if r["event.code"] == code
        }
        assert set(got) == set(expected), code
        for key, (n, b, first) in expected.items():
            r = got[key]
            assert (r["source.packets"], r["source.bytes"]) == (n, b), (code, key)
            assert r["network.transport"] == ("tcp" if key[3] in (443, 40001) else "udp")
            assert r["observer.ip"] == "127.0.0.1"
            # times are milliseconds; a NetFlow v9 header gives the export time in whole
            # seconds only (v5 adds nanoseconds, softflowd's IPFIX sends absolute times), so
            # a v9 start rebuilt from the uptime fields is early by up to a second
            ts = dt.datetime.fromisoformat(str(r["@timestamp"])).timestamp()
            early = 1.01 if code == "netflow_v9" else 0.01
            assert -early <= ts - first <= 0.01, (code, key, r["@timestamp"])
    tcp = [r for r in rows if r["source.port"] == 40001]
    assert {r["flow.state"] for r in tcp} == {"...AP.SF"}
