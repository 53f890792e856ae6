"""Benchmark: `vpnsentry simulate` end to end, for the claim "at least 1,000,000 lines/s".

Runs ``vpnsentry simulate`` as a subprocess (30 days, 2,000 users, every scenario, seed 1 by
default) ``--runs`` times into fresh folders and reports the median run: lines written,
wall seconds, lines/s, MB/s of output, CPU seconds (user + sys of the child, which matter on
a shared machine where wall time also measures the neighbours) and peak RSS, all from
``os.wait4``. Prints a Markdown row for BENCHMARKS.md.

    .venv/bin/python bench/simulate.py [--days N] [--users N] [--runs R] [--sites S]
                                       [--workers W] [--keep]

``--sites`` and ``--workers`` are passed on: a YAML file or a bundled estate's name
(``multi-vendor``); writer processes (CPU seconds then count every process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    lines: int
    nbytes: int
    seconds: float
    cpu: float
    rss_mb: float


def _vpnsentry() -> str:
    exe = Path(sys.executable).with_name("vpnsentry")
    return str(exe) if exe.exists() else "vpnsentry"


def _scenarios() -> list[str]:
    out = subprocess.run(
        [_vpnsentry(), "simulate", "--list-scenarios", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [row["name"] for row in json.loads(out)]


def _once(out: Path, days: int, users: int, scenarios: list[str], sites: str, workers: int) -> Run:
    cmd = [_vpnsentry(), "simulate", "--out", str(out), "--days", str(days)]
    cmd += ["--users", str(users), "--seed", "1", "--sites", sites, "--workers", str(workers)]
    for name in scenarios:
        cmd += ["--scenario", name]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"simulate failed ({status}):\n{err}")
    lines = nbytes = 0
    for path in (out / "logs").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            lines += data.count(b"\n")
            nbytes += len(data)
    return Run(lines, nbytes, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sites", default="default", help="estate YAML or bundled estate name")
    ap.add_argument("--workers", type=int, default=1, help="writer processes")
    ap.add_argument("--keep", action="store_true", help="keep the output of the last run")
    args = ap.parse_args()
    scenarios = _scenarios()
    runs: list[Run] = []
    base = Path(tempfile.mkdtemp(prefix="vpnsentry-bench-sim-"))
    try:
        for i in range(args.runs):
            out = base / f"run{i}"
            run = _once(out, args.days, args.users, scenarios, args.sites, args.workers)
            runs.append(run)
            print(
                f"run {i + 1}: {run.lines:,} lines in {run.seconds:.1f}s "
                f"({run.lines / run.seconds:,.0f} lines/s, CPU {run.cpu:.1f}s, "
                f"peak RSS {run.rss_mb:,.0f} MB)",
                file=sys.stderr,
            )
            if not args.keep or i < args.runs - 1:
                shutil.rmtree(out)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    med = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    cpu = statistics.median(r.cpu for r in runs)
    print(
        "| simulate | days | users | lines | seconds | lines/s | MB/s | CPU s | lines/CPU-s "
        "| peak RSS MB | machine |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| all scenarios, {args.sites} estate, {args.workers} worker(s) "
        f"| {args.days} | {args.users:,} "
        f"| {med.lines:,} | {med.seconds:.1f} "
        f"| {med.lines / med.seconds:,.0f} | {med.nbytes / 1e6 / med.seconds:,.0f} "
        f"| {cpu:.1f} | {med.lines / cpu:,.0f} | {med.rss_mb:,.0f} "
        f"| {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} |"
    )
    if args.keep:
        print(f"output kept in {base}", file=sys.stderr)


if __name__ == "__main__":
    main()
