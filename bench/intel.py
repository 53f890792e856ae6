"""Benchmark: threat-intelligence matching at store scale, for the claim "100,000 indicators
(1,000 of them CIDR ranges) against 10 million flow rows is a join, not a loop".

Synthesizes a store quickly instead of simulating logs (the ingest benchmark measures
parsing): ``--days`` day partitions of flows, written with numpy and Polars through the
store's own ``Writer.commit`` (so the Parquet layout is the real one). Each row is one of
``--hosts`` internal hosts (10.x) talking to one of 500,000 public destinations (chosen from
11.0.0.0-99.255.255.255, no private ranges) on 443/80/53. The feed is a real CSV list: single
addresses, a tenth of them from the destination pool so that there are matches, and ``/24``
ranges. Then it times ``intel add`` (parse, normalize, upsert) and the matching itself
(``run_matching``: distinct addresses, the joins, grouping, alert rows) and prints a
Markdown row for BENCHMARKS.md.

    .venv/bin/python bench/intel.py [--rows 10000000] [--indicators 100000] [--cidrs 1000]
                                    [--out /tmp/bench-intel]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from vpnsentry import ecs
from vpnsentry.intel import catalog
from vpnsentry.intel.feeds import read_file
from vpnsentry.intel.match import run_matching
from vpnsentry.store.store import Store

START = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
POOL = 500_000


def dotted(u: np.ndarray) -> pl.Series:
    s = pl.Series(u.astype(np.uint32)).cast(pl.Int64)
    parts = [((s // 2**k) % 256).cast(pl.String) for k in (24, 16, 8, 0)]
    return pl.select(pl.concat_str(parts, separator=".")).to_series()


def synthesize(store: Store, rows: int, days: int, hosts: int, pool: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    per_day = rows // days
    with store.writer() as w:
        for d in range(days):
            secs = rng.integers(0, 86_400, per_day)
            base = int((START + dt.timedelta(days=d)).timestamp()) * 1_000_000
            ts = pl.Series((base + secs * 1_000_000).astype(np.int64)).cast(ecs.UTC_TS)
            frame = pl.DataFrame(
                {
                    "@timestamp": ts,
                    "source.ip": dotted(0x0A000000 + rng.integers(1, hosts + 1, per_day)),
                    "destination.ip": dotted(pool[rng.integers(0, POOL, per_day)]),
                    "source.port": rng.integers(1024, 65535, per_day).astype(np.int32),
                    "destination.port": rng.choice(np.array([443, 80, 53], np.int32), per_day),
                    "source.bytes": rng.integers(100, 10_000, per_day),
                    "destination.bytes": rng.integers(100, 100_000, per_day),
                    "event.module": pl.Series(["zeek_conn"]).gather(np.zeros(per_day, np.int64)),
                }
            )
            w.commit({"flows": ecs.conform(frame, "flows")}, [])


def feed(path: Path, n: int, cidrs: int, pool: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    singles = n - cidrs
    hits = pool[rng.integers(0, POOL, singles // 10)]
    rest = rng.integers(0x65000000, 0x7F000000, singles - hits.size)  # 101.0.0.0-126.x
    nets = rng.integers(0x0B000000 >> 8, 0x64000000 >> 8, cidrs) << 8
    rows = pl.DataFrame(
        {
            "value": pl.concat(
                [dotted(np.concatenate([hits, rest])), dotted(nets) + "/24"], how="vertical"
            ),
            "type": ["ip"] * singles + ["cidr"] * cidrs,
            "source": "bench-feed",
            "confidence": rng.integers(10, 100, n),
        }
    )
    rows.write_csv(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=5_000)
    ap.add_argument("--indicators", type=int, default=100_000)
    ap.add_argument("--cidrs", type=int, default=1_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-intel"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(3)
    pool = rng.integers(0x0B000000, 0x64000000, POOL)  # 11.0.0.0-99.255.255.255
    store = Store.open(args.out / "store", create=True)
    t = time.perf_counter()
    synthesize(store, args.rows, args.days, args.hosts, pool)
    print(f"synthesized {args.rows:,} flow rows in {time.perf_counter() - t:.1f}s")
    csv = args.out / "feed.csv"
    feed(csv, args.indicators, args.cidrs, pool)
    t = time.perf_counter()
    parsed = read_file(csv)
    rows, dup = catalog.normalize_feed(parsed)
    counts = catalog.add(store, rows, dup)
    add_s = time.perf_counter() - t
    print(f"intel add: {rows.height:,} indicators ({counts.new:,} new) in {add_s:.1f}s")
    con = store.reader()
    t = time.perf_counter()
    runs, alerts = run_matching(store, con, dt.datetime.now(dt.UTC), strict=True)
    match_s = time.perf_counter() - t
    con.close()
    n_alerts = 0 if alerts is None else alerts.height
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"match: {match_s:.1f}s, {args.rows / match_s:,.0f} rows/s, {n_alerts:,} alerts")
    for r in runs:
        print(f"  {r.id}: {r.alerts:,} alerts, {r.seconds:.2f}s")
    print(
        f"| intel match | {args.rows:,} flow rows, {rows.height:,} indicators "
        f"({args.cidrs:,} CIDR) | add {add_s:.1f} s | match {match_s:.1f} s "
        f"({args.rows / match_s / 1e6:.1f} M rows/s) | {n_alerts:,} alerts | peak RSS "
        f"{rss:,.0f} MB |"
    )


if __name__ == "__main__":
    main()
