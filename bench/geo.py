"""Benchmark: offline GeoIP (enrich/geo.py), for "loads in well under 2 s" and the SQL join cost.

Measures, each as the median of ``--runs`` runs:

* ``load_geo()`` cold: a fresh Python process per run (the tables are cached per process),
  timing the import of ``vpnsentry.enrich.geo`` and the load separately;
* ``ip4()`` alone over ``--rows`` random IPv4 strings (default 10,000,000) in DuckDB;
* country + ASN for the same strings with two ASOF joins, ``ip4`` computed once in a
  subquery (the pattern ``register_geo`` documents), and the inline form that calls ``ip4``
  inside the ASOF condition, for comparison.

Addresses are uniform over the whole IPv4 space, so about a seventh are private, reserved or
unallocated and take the "no match" path too.

    .venv/bin/python bench/geo.py [--rows N] [--runs R]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import duckdb
import numpy as np
import polars as pl

from vpnsentry.enrich.geo import dotted, load_geo, register_geo

_COLD = """
import time
t0 = time.perf_counter()
from vpnsentry.enrich.geo import load_geo
t1, c1 = time.perf_counter(), time.process_time()
load_geo()
print(t1 - t0, time.perf_counter() - t1, time.process_time() - c1)
"""

SUBQUERY = """
SELECT count(country), count(asn), count(as_org), count(*) FILTER (WHERE hosting)
FROM (
    SELECT CASE WHEN x._ip <= c.hi THEN c.country END AS country,
           CASE WHEN x._ip <= g.hi THEN g.asn END AS asn,
           CASE WHEN x._ip <= g.hi THEN g.as_org END AS as_org,
           CASE WHEN x._ip <= g.hi THEN g.hosting END AS hosting
    FROM (SELECT ip, ip4(ip) AS _ip FROM ips) x
    ASOF LEFT JOIN geo_country c ON x._ip >= c.lo
    ASOF LEFT JOIN geo_asn g ON x._ip >= g.lo
)
"""

INLINE = """
SELECT count(country), count(asn), count(as_org), count(*) FILTER (WHERE hosting)
FROM (
    SELECT CASE WHEN ip4(x.ip) <= c.hi THEN c.country END AS country,
           CASE WHEN ip4(x.ip) <= g.hi THEN g.asn END AS asn,
           CASE WHEN ip4(x.ip) <= g.hi THEN g.as_org END AS as_org,
           CASE WHEN ip4(x.ip) <= g.hi THEN g.hosting END AS hosting
    FROM ips x
    ASOF LEFT JOIN geo_country c ON ip4(x.ip) >= c.lo
    ASOF LEFT JOIN geo_asn g ON ip4(x.ip) >= g.lo
)
"""


def cold(runs: int) -> tuple[float, float, float]:
    """Median (import s, load s, load CPU s) over fresh processes."""
    runs_out = [
        [
            float(v)
            for v in subprocess.run(
                [sys.executable, "-c", _COLD], capture_output=True, text=True, check=True
            ).stdout.split()
        ]
        for _ in range(runs)
    ]
    imp, load, cpu = (statistics.median(col) for col in zip(*runs_out, strict=True))
    return imp, load, cpu


def timed(con: duckdb.DuckDBPyConnection, sql: str, runs: int) -> tuple[float, float, tuple]:
    """Median wall and CPU seconds (all DuckDB threads) of ``sql``, and its result row.

    CPU time is reported because on a shared machine wall time also measures the neighbours.
    """
    walls, cpus = [], []
    row: tuple = ()
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        row = con.execute(sql).fetchone() or ()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"duckdb {duckdb.__version__}, polars {pl.__version__}"
    )

    imp, load, cpu = cold(args.runs)
    print(
        f"load_geo() cold: {load:.3f} s wall, {cpu:.3f} s CPU"
        f" (+ {imp:.3f} s to import vpnsentry.enrich.geo)"
    )

    tables = load_geo()
    print(
        f"tables: {tables.country.height:,} country ranges, {tables.asn.height:,} AS ranges;"
        f" {', '.join(tables.sources)}"
    )
    u = np.random.default_rng(1).integers(0, 2**32, args.rows, dtype=np.uint64)
    ips = dotted(u).to_frame()
    con = duckdb.connect()
    register_geo(con, tables)
    con.register("_ips", ips)
    con.execute("CREATE TABLE ips AS SELECT * FROM _ips")
    con.unregister("_ips")

    for what, sql in (
        (f"ip4() over {args.rows:,} strings", "SELECT count(ip4(ip)) FROM ips"),
        ("country + ASN, two ASOF joins, ip4 in a subquery", SUBQUERY),
        ("country + ASN, two ASOF joins, ip4 inline", INLINE),
    ):
        wall, cpu, row = timed(con, sql, args.runs)
        print(
            f"{what}: {wall:.2f} s wall ({args.rows / wall / 1e6:.2f} M rows/s),"
            f" {cpu:.2f} s CPU; result {row}"
        )


if __name__ == "__main__":
    main()
