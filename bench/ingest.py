"""Benchmark: `vpnsentry ingest` end to end, per format, against the floor.

For each format we replay real sample lines (templates below are real vendor lines with
their timestamp, addresses and user replaced by placeholders), shifting timestamps over 30
days and varying addresses, users and ports, to ``--lines`` lines (default 5,000,000).
Then, ``--runs`` times (default 3), each into a fresh store:

* the floor: read the same file into memory as one string column with Polars, nothing else;
* ``vpnsentry ingest`` as a subprocess, wall time and peak RSS (from wait4).

Prints a Markdown table for BENCHMARKS.md (median of the runs) and writes the raw numbers
to ``bench/out/ingest.json``.

    .venv/bin/python bench/ingest.py [--lines N] [--runs R] [--formats a,b] [--keep]
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
from pathlib import Path

import numpy as np
import polars as pl

OUT = Path(__file__).resolve().parent / "out"
START = 1_780_000_000  # 2026-05-28, epoch seconds
SPAN = 30 * 86400

# Real lines (corpus and vendor documentation) with placeholders:
# {iso} {bsd} {date} {time} {epoch_ns} {epoch} {ip} {ip2} {port} {user} {n}
TEMPLATES: dict[str, list[str]] = {
    "fortinet_fortigate": [
        '{iso} 192.0.2.1 date={date} time={time} devname="FGT-TOKYO-DC" devid="FGVM01TM000001" '
        'eventtime={epoch_ns} tz="+0900" logid="0101039947" type="event" subtype="vpn" '
        'level="information" vd="root" logdesc="SSL VPN tunnel up" action="tunnel-up" '
        'tunneltype="ssl-tunnel" tunnelid={n} remip={ip} tunnelip=10.212.134.{port8} '
        'user="{user}" group="SSL-VPN-Users" dst_host="N/A" reason="tunnel established" '
        'msg="SSL tunnel established"',
        '{iso} 192.0.2.1 date={date} time={time} devname="FGT-TOKYO-DC" devid="FGVM01TM000001" '
        'eventtime={epoch_ns} tz="+0900" logid="0000000013" type="traffic" subtype="forward" '
        'level="notice" vd="root" srcip=10.1.{port8}.20 srcport={port} srcintf="ssl.root" '
        'srcintfrole="undefined" dstip={ip} dstport=443 dstintf="wan1" dstintfrole="wan" '
        'srccountry="Reserved" dstcountry="Japan" sessionid={n} proto=6 action="close" '
        'policyid=12 policytype="policy" poluuid="6b1f1b52-1b8f-51ee-6bd6-3f9c0f5e1a2b" '
        'policyname="vpn-to-internet" service="HTTPS" trandisp="snat" transip=192.0.2.1 '
        "transport={port} duration=27 sentbyte=3418 rcvdbyte=8874 sentpkt=14 rcvdpkt=12 "
        'appcat="unscanned" user="{user}"',
        '{iso} 192.0.2.1 date={date} time={time} devname="FGT-TOKYO-DC" devid="FGVM01TM000001" '
        'eventtime={epoch_ns} tz="+0900" logid="0100032002" type="event" subtype="system" '
        'level="alert" vd="root" logdesc="Admin login failed" sn="0" user="{user}" '
        'ui="https({ip})" method="https" srcip={ip} dstip=192.0.2.1 action="login" '
        'status="failed" reason="passwd_invalid" '
        'msg="Administrator {user} login failed from https({ip}) because of invalid password"',
    ],
    "cisco_asa": [
        "{bsd} asa-osaka : %ASA-6-113039: Group <AnyConnect-Users> User <{user}> IP <{ip}> "
        "AnyConnect parent session started.",
        "{bsd} asa-osaka : %ASA-4-722051: Group <AnyConnect-Users> User <{user}> IP <{ip}> "
        "IPv4 Address <10.20.{port8}.7> IPv6 address <::> assigned to session",
        "{bsd} asa-osaka : %ASA-6-302013: Built inbound TCP connection {n} for "
        "outside:{ip}/{port} ({ip}/{port}) to inside:10.20.1.{port8}/445 (10.20.1.{port8}/445)"
        " ({user})",
        "{bsd} asa-osaka : %ASA-6-302014: Teardown TCP connection {n} for outside:{ip}/{port} "
        "to inside:10.20.1.{port8}/445 duration 0:01:02 bytes 48213 TCP FINs from outside",
        "{bsd} asa-osaka : %ASA-6-113005: AAA user authentication Rejected : reason = "
        "AAA failure : server = 10.20.0.5 : user = {user} : user IP = {ip}",
    ],
    "zeek_conn": [
        "{epoch}.{frac}\tC{n}\t10.30.{port8}.15\t{port}\t{ip}\t443\ttcp\tssl\t12.5\t2048\t"
        "18233\tSF\tT\tF\t0\tShADadFf\t22\t3200\t24\t19481\t-",
        "{epoch}.{frac}\tC{n}\t10.30.{port8}.15\t{port}\t10.10.0.53\t53\tudp\tdns\t0.0123\t"
        "45\t120\tSF\tT\tT\t0\tDd\t1\t73\t1\t148\t-",
    ],
    "openvpn": [
        "{date} {time} {user}/{ip}:{port} MULTI_sva: pool returned IPv4=10.8.{port8}.6, "
        "IPv6=(Not enabled)",
        "{date} {time} {ip}:{port} TLS: Username/Password authentication succeeded for "
        "username '{user}'",
        "{date} {time} {user}/{ip}:{port} MULTI: Learn: 10.8.{port8}.6 -> {user}/{ip}:{port}",
        "{date} {time} {user}/{ip}:{port} SIGTERM[soft,remote-exit] received, "
        "client-instance exiting",
    ],
}

ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
    "#path\tconn\n#open\t2026-05-28-00-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t"
    "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\t"
    "string\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
)


def generate(fmt: str, n: int, path: Path, seed: int = 7) -> None:
    """Write ``n`` lines of ``fmt`` to ``path``, vectorized (Polars string formatting)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(START + rng.integers(0, SPAN, n))
    df = pl.DataFrame(
        {
            "t": pl.Series(ts * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "n": np.arange(n, dtype=np.int64) + 1000,
            "tpl": rng.integers(0, len(TEMPLATES[fmt]), n),
            "a": rng.integers(1, 224, n),
            "b": rng.integers(0, 256, n),
            "port": rng.integers(1024, 65535, n),
            "u": rng.integers(0, 5000, n),
            "frac": rng.integers(0, 1_000_000, n),
        }
    )
    df = df.with_columns(
        pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").alias("iso"),
        pl.col("t").dt.strftime("%b %e %H:%M:%S").alias("bsd"),
        pl.col("t").dt.strftime("%Y-%m-%d").alias("date"),
        pl.col("t").dt.strftime("%H:%M:%S").alias("time"),
        (pl.col("t").dt.epoch("ns")).cast(pl.String).alias("epoch_ns"),
        (pl.col("t").dt.epoch("s")).cast(pl.String).alias("epoch"),
        pl.format("198.51.{}.{}", pl.col("b"), pl.col("a")).alias("ip"),
        pl.format("user{}", pl.col("u")).alias("user"),
        (pl.col("port") % 250 + 1).alias("port8"),
        pl.col("frac").cast(pl.String).str.zfill(6).alias("frac"),
    )
    parts = []
    for i, tpl in enumerate(TEMPLATES[fmt]):
        sub = df.filter(pl.col("tpl") == i)
        pieces: list[pl.Expr] = []
        rest = tpl
        while "{" in rest:
            pre, _, after = rest.partition("{")
            key, _, rest = after.partition("}")
            pieces += [pl.lit(pre), pl.col(key).cast(pl.String)]
        pieces.append(pl.lit(rest))
        parts.append(sub.select("n", pl.concat_str(pieces).alias("line")))
    lines = pl.concat(parts).sort("n")["line"]
    with path.open("w", encoding="utf-8") as fh:
        if fmt == "zeek_conn":
            fh.write(ZEEK_HEADER)
        fh.write("\n".join(lines.to_list()))
        fh.write("\n")


def floor(path: Path) -> float:
    """Seconds to read the file into one string column and do nothing else."""
    t = time.perf_counter()
    df = pl.read_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        new_columns=["line"],
        schema={"line": pl.String},
        truncate_ragged_lines=True,
    )
    assert len(df) > 0
    return time.perf_counter() - t


def ingest_once(path: Path, store: Path) -> tuple[float, int, dict[str, int]]:
    """(seconds, peak RSS bytes, totals) of one `vpnsentry ingest` subprocess."""
    cmd = [sys.executable, "-m", "vpnsentry", "ingest", "--json", "--store", str(store), str(path)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ingest failed with {proc.returncode}")
    totals = json.loads(out)["totals"]
    return secs, usage.ru_maxrss * 1024, totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--formats", default=",".join(TEMPLATES))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument(
        "--generate", nargs=3, metavar=("FORMAT", "LINES", "PATH"), help=argparse.SUPPRESS
    )
    ap.add_argument("--floor", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(args.generate[0], int(args.generate[1]), Path(args.generate[2]))
        return
    if args.floor:
        print(floor(Path(args.floor)))
        return
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vpnsentry-bench-"))
    results = []
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, polars {pl.__version__}"
    )
    print(
        "| format | lines | MB | lines/s | MB/s | floor lines/s | ratio to floor | "
        "peak RSS MB | quarantined |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for fmt in args.formats.split(","):
        path = work / f"{fmt}.log"
        # Generation and the floor run in child processes: a forked child's peak RSS counts
        # the parent's pages until it execs, so this process must stay small for the RSS
        # that wait4 reports for the ingest to be the ingest's own.
        subprocess.run(
            [sys.executable, __file__, "--generate", fmt, str(args.lines), str(path)], check=True
        )
        size = path.stat().st_size
        floors, secs, rss = [], [], []
        totals: dict[str, int] = {}
        for _ in range(args.runs):
            probe = [sys.executable, __file__, "--floor", str(path)]
            floors.append(float(subprocess.run(probe, check=True, capture_output=True).stdout))
            store = work / "store"
            shutil.rmtree(store, ignore_errors=True)
            s, r, totals = ingest_once(path, store)
            secs.append(s)
            rss.append(r)
        med, fmed = statistics.median(secs), statistics.median(floors)
        row = {
            "format": fmt,
            "lines": totals["lines"],
            "bytes": size,
            "seconds": secs,
            "floor_seconds": floors,
            "peak_rss": rss,
            "quarantined": totals["quarantined"],
        }
        results.append(row)
        print(
            f"| {fmt} | {totals['lines']:,} | {size / 1e6:,.0f} | {totals['lines'] / med:,.0f} | "
            f"{size / 1e6 / med:,.1f} | {totals['lines'] / fmed:,.0f} | {med / fmed:,.1f}x | "
            f"{max(rss) / 1e6:,.0f} | {totals['quarantined']:,} |",
            flush=True,
        )
        if not args.keep:
            path.unlink()
    (OUT / "ingest.json").write_text(json.dumps(results, indent=1))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
