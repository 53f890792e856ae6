"""Run the real ``vpnsentry serve`` in a subprocess on ephemeral loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO, Any

from vpnsentry.store.store import Store

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "parse"


class Serve:
    """A running ``vpnsentry serve --json``; ``ports`` maps listener kind to its port.

    Detection is off (``--no-detect``): these tests are about collection; streaming detection
    is tested against a real gateway in tests/live.
    """

    def __init__(self, store: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.store = store
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vpnsentry",
                "serve",
                "--json",
                "--no-detect",
                "--store",
                str(store),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, **(env or {})),
        )
        self.ports: dict[str, int] = {}
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event["event"] == "listening":
                self.ports[event["listener"]] = event["port"]
            if event["event"] == "ready":
                break
        else:
            raise AssertionError(f"serve did not start: {self._stderr()}")

    def metrics(self) -> dict[str, float]:
        """Scrape /metrics; series name with labels -> value (HELP/TYPE checked present)."""
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = resp.read().decode()
        values: dict[str, float] = {}
        typed = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                typed.add(line.split()[2])
            elif line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                assert series.split("{")[0] in typed, f"no TYPE line before {series}"
                values[series] = float(value)
        return values

    def total(self, name: str) -> float:
        """A metric summed over its label sets."""
        return sum(v for k, v in self.metrics().items() if k.split("{")[0] == name)

    def stop(self) -> dict[str, Any]:
        """SIGTERM, wait, and return the final ``stopped`` status line."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        events = [json.loads(x) for x in out.splitlines() if x.strip()]
        assert events[-1]["event"] == "stopped", out
        return events[-1]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=60)

    def _stderr(self) -> str:
        stream: IO[str] | None = self.proc.stderr
        self.proc.kill()
        return stream.read() if stream else ""


def query(store: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of a SELECT over the store (read in-process: the CLI under test is serve)."""
    con = Store.open(store, create=False).reader()
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description or ()]
        return [
            json.loads(json.dumps(dict(zip(cols, r, strict=True)), default=str))
            for r in cur.fetchall()
        ]
    finally:
        con.close()


def golden_lines(fmt: str, case: str) -> list[bytes]:
    """Non-blank lines of a golden parser sample, as bytes."""
    data = (GOLDEN / fmt / f"{case}.log").read_bytes()
    return [x.rstrip(b"\r") for x in data.split(b"\n") if x.strip()]


def octet_frame(msg: bytes) -> bytes:
    """RFC 6587 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(msg)).encode() + b" " + msg


def stop_quietly(proc: subprocess.Popen[str]) -> None:
    """Kill a serve process a failed test left running."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
