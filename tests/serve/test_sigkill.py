"""SIGKILL ``vpnsentry serve`` mid-stream, restart, and find everything received exactly once."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from pathlib import Path

from tests.e2e.test_ingest_cli import FORTI
from tests.serve.helpers import Serve, query, stop_quietly

ROUNDS = 2


def _v5(ident: int) -> bytes:
    """A NetFlow v5 datagram whose one flow carries ``ident`` in its source address."""
    now = int(time.time())
    header = struct.pack(">HHIIIIBBH", 5, 1, 1000, now, 0, ident, 0, 0, 0)
    rec = struct.pack(
        ">IIIHHIIIIHHBBBBHHBBH", 0x0A000000 + ident, 0xC0000201, 0, 0, 0, 1, 60, 900, 950,
        1234, 80, 0, 0x02, 6, 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    return header + rec


class Sender(threading.Thread):
    """Sends syslog over TCP and NetFlow over UDP as fast as it can until told or cut."""

    def __init__(self, serve: Serve, first: int) -> None:
        super().__init__(daemon=True)
        self.serve, self.next, self.stop = serve, first, threading.Event()

    def run(self) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            with socket.create_connection(("127.0.0.1", self.serve.ports["syslog-tcp"])) as tcp:
                while not self.stop.is_set():
                    ids = range(self.next, self.next + 200)
                    data = "".join(FORTI.format(s=i % 60, user=f"id{i}") + "\n" for i in ids)
                    tcp.sendall(data.encode())
                    for i in ids[::20]:
                        udp.sendto(_v5(i), ("127.0.0.1", self.serve.ports["netflow"]))
                    self.next += 200
                    time.sleep(0.01)  # about 20,000 lines/s: a stream, not a flood
        except OSError:
            pass  # the collector was killed under us
        finally:
            udp.close()


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    rng = random.Random(20261130)
    first = 0
    floors: list[tuple[int, int, int]] = []  # (first id, syslog received, flows received)
    args = ("--syslog-tcp", "127.0.0.1:0", "--netflow", "127.0.0.1:0", "--metrics",
            "127.0.0.1:0", "--batch-seconds", "0.3")  # fmt: skip
    for round_ in range(ROUNDS + 1):
        serve = Serve(store, *args)
        try:
            sender = Sender(serve, first)
            sender.start()
            time.sleep(rng.uniform(0.5, 1.5))
            metrics = serve.metrics()
            received = {k.split('"')[1].split("/")[0]: v for k, v in metrics.items()
                        if k.startswith("vpnsentry_received_total{")}  # fmt: skip
            if round_ < ROUNDS:
                serve.kill()
            else:
                sender.stop.set()
                sender.join()
                serve.stop()
            sender.stop.set()
            sender.join()
        finally:
            stop_quietly(serve.proc)
        floors.append((first, int(received.get("syslog-tcp", 0)), int(received["netflow"])))
        first = sender.next + 1_000_000  # ids of the next round never touch this one's

    users = query(store, 'SELECT "user.name" AS u, count(*) AS n FROM events GROUP BY 1')
    assert all(r["n"] == 1 for r in users), "a message was stored twice"
    ids = sorted(int(r["u"][2:]) for r in users)
    flows = query(store, 'SELECT "source.ip" AS ip, count(*) AS n FROM flows GROUP BY 1')
    assert all(r["n"] == 1 for r in flows), "a flow was stored twice"
    flow_ids = sorted(int.from_bytes(socket.inet_aton(r["ip"])) - 0x0A000000 for r in flows)
    for k, (start, syslog_floor, flow_floor) in enumerate(floors):
        end = floors[k + 1][0] if k + 1 < len(floors) else 1 << 62
        got = [i for i in ids if start <= i < end]
        # TCP delivers a prefix of the stream: what was received is ids start..start+n-1.
        assert got == list(range(start, start + len(got))), f"gap in round {k}"
        assert len(got) >= syslog_floor > 0, (k, len(got), syslog_floor)
        got_flows = [i for i in flow_ids if start <= i < end]
        assert len(got_flows) >= flow_floor > 0, (k, len(got_flows), flow_floor)
        assert got_flows == list(range(start, start + 20 * len(got_flows), 20))
    assert not query(store, "SELECT * FROM quarantine")
