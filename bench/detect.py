"""Benchmark: the whole detection pack over a store, for the claim "30 days, 10,000 users
(~100 million rows) in under 3 minutes, peak RSS under 8 GB".

Builds the estate once if ``--store`` does not exist yet (simulate every scenario, ingest;
slow: that is the ingest benchmark's business, not this one's), then runs ``vpnsentry detect
--json`` on a copy-free store ``--runs`` times as a subprocess and reports the median run:
wall seconds, CPU seconds (user + sys of the child, which matter on a shared machine) and
peak RSS from ``os.wait4``, rows in the store, and the slowest detections. Prints a Markdown
row for BENCHMARKS.md.

    .venv/bin/python bench/detect.py --store /tmp/bench-10k/store [--days 30 --users 10000]
                                     [--runs 3] [--sites <sim>/sites.yaml]

``--sites`` names the inventory when the store is a copy away from its ``sim`` folder (detect
writes its alerts into the store, so measure on a copy rather than the original).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float
    rss_mb: float
    rules: list[dict[str, object]]
    prepare: float
    tables: dict[str, float]  # each shared table's own build seconds
    load: float  # 1-minute load average when the run ended (the machine is shared)


def _vpnsentry() -> str:
    exe = Path(sys.executable).with_name("vpnsentry")
    return str(exe) if exe.exists() else "vpnsentry"


def _build(store: Path, days: int, users: int) -> Path:
    sim = store.parent / "sim"
    if not (sim / "ground_truth.json").exists():
        out = subprocess.run(
            [_vpnsentry(), "simulate", "--list-scenarios", "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        cmd = [_vpnsentry(), "simulate", "--out", str(sim), "--days", str(days)]
        cmd += ["--users", str(users), "--seed", "1"]
        for row in json.loads(out):
            cmd += ["--scenario", row["name"]]
        subprocess.run(cmd, check=True)
    cmd = [_vpnsentry(), "ingest", str(sim / "logs"), "--store", str(store)]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode not in (0, 1):  # 1: the simulator's garbled lines were quarantined
        raise SystemExit(f"ingest failed with {proc.returncode}")
    return sim


def _rows(store: Path) -> int:
    out = subprocess.run(
        [_vpnsentry(), "stats", "--store", str(store), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sum(int(r["rows"]) for r in json.loads(out)["dataset"] if r["dataset"] != "quarantine")


def _once(store: Path, sites: Path) -> Run:
    cmd = [_vpnsentry(), "detect", "--store", str(store), "--sites", str(sites), "--json"]
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"detect failed: {err}")
    result = json.loads(out)
    cpu = usage.ru_utime + usage.ru_stime
    rules = result["rules"]
    prepare = float(result["prepare_seconds"])
    tables = {k: float(v) for k, v in result["table_seconds"].items()}
    return Run(seconds, cpu, usage.ru_maxrss / 1024, rules, prepare, tables, os.getloadavg()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sites", type=Path, help="inventory (default: <store>/../sim/sites.yaml)")
    args = ap.parse_args()
    store: Path = args.store
    sim = store.parent / "sim"
    if not (store / "catalog.duckdb").exists():
        sim = _build(store, args.days, args.users)
    rows = _rows(store)
    sites: Path = args.sites or sim / "sites.yaml"
    runs = [_once(store, sites) for _ in range(args.runs)]
    med = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]
    slow = sorted(med.rules, key=lambda r: -float(r["seconds"]))[:10]  # type: ignore[arg-type]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"store: {store} ({rows:,} rows)")
    for r in runs:
        print(
            f"  run: {r.seconds:.1f}s wall, {r.cpu:.1f}s CPU, {r.rss_mb:,.0f} MB peak RSS, "
            f"shared tables {r.prepare:.1f}s ("
            + ", ".join(f"{k} {v:.1f}" for k, v in r.tables.items())
            + f"), load average {r.load:.1f} at the end"
        )
    print(
        "slowest detections (median run): "
        + ", ".join(f"{r['id']} {float(r['seconds']):.1f}s" for r in slow)
    )  # type: ignore[arg-type]
    print(
        f"| detect, all {len(med.rules)} detections | {rows:,} rows | {med.seconds:.1f} s "
        f"(median of {len(runs)}; spread {statistics.pstdev([r.seconds for r in runs]):.1f}) | "
        f"{med.cpu:.1f} s CPU | {med.rss_mb:,.0f} MB |"
    )


if __name__ == "__main__":
    main()
