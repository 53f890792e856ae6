"""SIGKILL an ingest at random moments, rerun, and find every line exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.test_ingest_cli import FORTI, cli

LINES_PER_FILE = 60_000
FILES = 3


def test_sigkill_at_any_point_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    for f in range(FILES):
        with (data / f"fgt-{f}.log").open("w") as fh:
            for i in range(LINES_PER_FILE):
                fh.write(FORTI.format(s=i % 60, user=f"user{f}-{i}") + "\n")
    store = tmp_path / "store"
    env = dict(os.environ, VPNSENTRY_COMMIT_ROWS="7000")
    rng = random.Random(20260628)
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vpnsentry",
                "ingest",
                "--json",
                "--store",
                str(store),
                str(data),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(0.8, 3.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    assert kills >= 1, "ingest finished before it could be killed; make the input larger"
    final = cli("ingest", "--json", "--store", str(store), str(data))
    assert final.returncode == 0, final.stderr
    total = FILES * LINES_PER_FILE
    rep = json.loads(final.stdout)["totals"]
    assert rep["lines"] + rep["duplicates"] == total
    q = cli(
        "query",
        "--json",
        'SELECT count(*) AS n, count(DISTINCT ("log.file.path", "log.offset")) AS d FROM events',
        "--store",
        str(store),
    )
    row = json.loads(q.stdout)
    assert row == {"n": total, "d": total}
    leftovers = [p for p in store.rglob("*.tmp")]
    assert not leftovers
