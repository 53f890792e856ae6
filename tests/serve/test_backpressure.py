"""A store that falls behind slows TCP senders (reading pauses) and loses nothing."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from tests.e2e.test_ingest_cli import FORTI
from tests.serve.helpers import Serve, query, stop_quietly

LINES = 8_000
BOUND = 256 * 1024


def test_tcp_reading_pauses_over_the_spool_bound_and_nothing_is_lost(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    # A tiny backlog bound and rare commits: the store is "slow" next to the sender.
    config.write_text(f'syslog_tcp = ["127.0.0.1:0"]\nmetrics = "127.0.0.1:0"\n'
                      f"spool_max_bytes = {BOUND}\nbatch_seconds = 0.5\n")  # fmt: skip
    serve = Serve(tmp_path / "store", "--config", str(config))
    data = "".join(FORTI.format(s=i % 60, user=f"bp{i}") + "\n" for i in range(LINES)).encode()

    def send() -> None:
        with socket.create_connection(("127.0.0.1", serve.ports["syslog-tcp"])) as s:
            s.sendall(data)

    try:
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        paused, backlog_max = 0.0, 0.0
        deadline = time.monotonic() + 120
        received = 0.0
        while received < LINES and time.monotonic() < deadline:  # until all is read
            m = serve.metrics()
            received = m.get('vpnsentry_received_total{listener="syslog-tcp/127.0.0.1:0"}', 0)
            paused = max(paused, m["vpnsentry_backpressure"])
            backlog_max = max(backlog_max, m['vpnsentry_spool_backlog_bytes{kind="syslog"}'])
            time.sleep(0.05)
        sender.join()
        stopped = serve.stop()  # connections are read until quiet before they close
    finally:
        stop_quietly(serve.proc)
    assert paused == 1.0, "reading never paused although the spool was over its bound"
    # Over the bound by at most what was already read when the pause began.
    assert backlog_max <= BOUND + 4 * 1024 * 1024
    assert len(data) > 4 * BOUND
    assert stopped["received"] == LINES
    rows = query(store := tmp_path / "store", 'SELECT count(DISTINCT "user.name") AS n, '
                 "count(*) AS c FROM events")  # fmt: skip
    assert rows == [{"n": LINES, "c": LINES}], store
