"""Benchmark: many Sigma rules over a large events store, shared pass vs one query per rule.

Usage: ``python bench/sigma.py [--events 10000000] [--runs 3] [--store DIR]``

The store is synthesized with Polars (vectorized, seconds; the simulator would take far
longer for 10M lines): FortiGate, ASA and OpenVPN event rows with realistic messages, raw
lines and addresses, written through the store's own Writer. Rules: the built-in pack, the
SigmaHQ rules of ../shared/sigma that convert, and generated variants (contains / startswith
/ IN-list / cidr rules on the same log sources) to reach 100+; the script says how many of
each. Prints medians of ``--runs`` for the shared pass and for one query per rule.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and "sigma" would be this file,
# not pySigma: drop it before importing anything that imports pySigma.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from vpnsentry import ecs  # noqa: E402
from vpnsentry.detect.sigma import runner  # noqa: E402
from vpnsentry.detect.sigma.compile import BUILTIN, load  # noqa: E402
from vpnsentry.store.store import Store  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "sigma" / "rules" / "network"
WORDS = ("login", "tunnel", "admin", "failed", "session", "policy", "logging", "user", "vpn")


def synth(n: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    module = rng.choice(["fortinet_fortigate", "cisco_asa", "openvpn"], n)
    code = rng.choice(["0100032001", "0101039426", "0101039947", "113039", "111008", "716001"], n)
    a, b = rng.integers(1, 255, n), rng.integers(1, 255, n)
    ip = pl.Series([f"198.51.{x}.{y}" for x, y in zip(a[:1000], b[:1000], strict=True)])
    user = pl.Series([f"user{i}" for i in range(500)])
    word = pl.Series(WORDS)
    df = pl.DataFrame(
        {
            "@timestamp": pl.datetime_range(
                pl.datetime(2026, 10, 1, time_zone="UTC"),
                pl.datetime(2026, 10, 8, time_zone="UTC"),
                interval=f"{max(1, 604_800_000_000 // n)}us",
                eager=True,
            ).head(n),
        }
    ).with_columns(
        pl.Series("event.module", module),
        pl.Series("event.code", code),
        ip.gather(rng.integers(0, 1000, n)).alias("source.ip"),
        user.gather(rng.integers(0, 500, n)).alias("user.name"),
        pl.lit("gw-01").alias("observer.name"),
    )
    df = df.with_columns(
        (
            pl.lit("User ")
            + pl.col("user.name")
            + pl.lit(" ")
            + word.gather(rng.integers(0, len(WORDS), n))
            + pl.lit(" from ")
            + pl.col("source.ip")
        ).alias("message"),
    ).with_columns(
        (pl.lit('logid="') + pl.col("event.code") + pl.lit('" msg="') + pl.col("message")).alias(
            "event.original"
        ),
        pl.col("event.module").alias("event.dataset"),
    )
    return ecs.conform(df, "events")


def variants(folder: Path, count: int) -> None:
    """Generated rules on our log sources: contains, startswith, IN lists, cidr, negation."""
    for i in range(count):
        product = ("fortigate", "openvpn", "cisco")[i % 3]
        service = "\n    service: asa" if product == "cisco" else ""
        w = WORDS[i % len(WORDS)]
        det = (
            f"    sel:\n        message|contains: '{w} from 198.51.{i % 250}.'\n"
            f"    sel2:\n        user.name|startswith: 'user{i % 50}'\n"
            f"    ip:\n        source.ip|cidr: 198.51.{i % 250}.0/24\n"
            "    condition: (sel or sel2) and not ip"
        )
        (folder / f"v{i:03}.yml").write_text(
            f"title: variant {i}\nid: 00000000-0000-4000-8000-{i:012}\nstatus: test\n"
            f"level: low\nlogsource:\n    product: {product}{service}\ndetection:\n{det}\n"
        )


def timed(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--store", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sigma-bench-"))
    root = args.store or tmp / "store"
    if not (root / "catalog.duckdb").exists():
        t = time.perf_counter()
        df = synth(args.events)
        with Store.open(root, create=True).writer() as w:
            w.commit({"events": df}, [])
        print(f"synthesized {df.height:,} events in {time.perf_counter() - t:.1f}s")
    gen = tmp / "variants"
    gen.mkdir()
    paths = [BUILTIN, gen] + ([SHARED] if SHARED.exists() else [])
    variants(gen, 80)
    rs = load(paths)
    rules = [r for r in rs.rules if r.dataset == "events"]
    own = sum(r.path.startswith(str(BUILTIN)) for r in rules)
    gen_n = sum(r.path.startswith(str(gen)) for r in rules)
    print(f"{len(rules)} rules: {own} pack, {len(rules) - own - gen_n} SigmaHQ, {gen_n} generated")
    store = Store.open(root, create=False)
    con = runner.connect(store)
    n = int(con.sql("SELECT count(*) FROM events").fetchall()[0][0])
    shared = timed(lambda: runner.match_rules(con, rules, None, None), args.runs)
    single = timed(lambda: [runner.match_rules(con, [r], None, None) for r in rules], args.runs)
    for name, s in (("shared pass", shared), ("one query per rule", single)):
        print(
            f"{name:>20}: {s:7.2f}s  {len(rules) / s:8.1f} rules/s  {n / s:13,.0f} events/s  "
            f"{n * len(rules) / s:15,.0f} rule-events/s"
        )


if __name__ == "__main__":
    main()
