"""Benchmark: 100+ Sigma rules over 10M events, shared pass vs one query per rule.

Usage: ``python bench/sigma.py [--events 10000000] [--runs 3] [--single-runs 1] [--store DIR]``

Store: synthesized with Polars in 1M-row chunks (vectorized, a minute or two for 10M; the
simulator would take far longer), written through the store's own Writer. FortiGate (45%),
Cisco ASA (35%) and OpenVPN (20%) rows carry the raw lines those devices write (FortiOS
``key="value"`` lines with ``action``/``logdesc``/``remip``, ASA ``%ASA-6-113039`` messages,
OpenVPN server lines), so FortiGate field extraction and keyword search cost what they cost
on real logs. Rare rows (config changes, CLI commands, AUTH_FAILED, revoked certificates)
give the real rules something to find.

Rules: the built-in pack, the SigmaHQ rules of ../shared/sigma that convert over events, and
80 generated rules in ten shapes (exact user, IN lists, contains, contains|all, startswith
on extracted FortiGate fields, keywords on the raw line, regex, cidr, and rules on
``category: vpn``, i.e. every event). Like real detection content they are selective: most
match nothing, some a few hundred rows. The script prints how many of each kind and how
many rows matched.

Prints the store-scan floor (``count(*)``, a full read of the raw-line column), then medians
for the shared pass (``--runs``) and one query per rule (``--single-runs``; one run of the
per-rule baseline already reads the store 100+ times; 0 skips it), and the load average: the
bench machine is shared, so read the numbers with it. ``--store`` keeps the synthesized store
for the next run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
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
CHUNK = 1_000_000
USERS = 2000
_FG = 'devname="FGT-EDGE" devid="FG100E0000000001" '
_ASA = "<166>Oct 01 2026 08:00:00 asa-vpn-01 : %ASA-"

#: (weight, module, event.code, event.action, event.outcome, vpn.group,
#:  raw line = a + user + b + ip + c, message = m + user + n + ip)
TEMPLATES: tuple[tuple[float, str, str, str, str, str | None, str, str, str, str, str], ...] = (
    (
        0.03,
        "fortinet_fortigate",
        "0101039426",
        "ssl-login-fail",
        "failure",
        None,
        _FG + 'logid="0101039426" type="event" subtype="vpn" level="alert" vd="root" '
        'logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" user="',
        '" remip=',
        ' reason="sslvpn_login_permission_denied" msg="SSL user failed to logged in"',
        "SSL user failed to logged in: ",
        " from ",
    ),
    (
        0.22,
        "fortinet_fortigate",
        "0101039949",
        "tunnel-stats",
        "success",
        None,
        _FG + 'logid="0101039949" type="event" subtype="vpn" level="information" vd="root" '
        'logdesc="SSL VPN statistics" action="tunnel-stats" tunneltype="ssl-tunnel" user="',
        '" remip=',
        ' tunnelip=10.212.134.200 sentbyte=1183542 rcvdbyte=83422 msg="SSL tunnel statistics"',
        "SSL tunnel statistics: ",
        " from ",
    ),
    (
        0.15,
        "fortinet_fortigate",
        "0101039947",
        "tunnel-up",
        "success",
        None,
        _FG + 'logid="0101039947" type="event" subtype="vpn" level="information" vd="root" '
        'logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-tunnel" user="',
        '" remip=',
        ' tunnelip=10.212.134.200 reason="tunnel established" msg="SSL tunnel established"',
        "SSL tunnel established: ",
        " from ",
    ),
    (
        0.0495,
        "fortinet_fortigate",
        "0100032001",
        "login",
        "success",
        None,
        _FG + 'logid="0100032001" type="event" subtype="system" level="information" '
        'vd="root" logdesc="Admin login successful" sn="1700000000" user="',
        '" ui="https(',
        ')" method="https" action="login" status="success" reason="none" msg="Administrator '
        'logged in successfully"',
        "Administrator ",
        " logged in successfully from ",
    ),
    (
        0.0005,
        "fortinet_fortigate",
        "0100044547",
        "configuration-change",
        "success",
        None,
        _FG + 'logid="0100044547" type="event" subtype="system" level="information" '
        'vd="root" logdesc="Object attribute configured" user="',
        '" ui="GUI(',
        ')" action="Add" cfgtid=3 cfgpath="firewall.address" cfgobj="tmp" '
        'cfgattr="subnet[203.0.113.0 255.255.255.0]" msg="Add firewall.address tmp"',
        "Add firewall.address by ",
        " from ",
    ),
    (
        0.25,
        "cisco_asa",
        "113039",
        "session-started",
        "success",
        "GP-Corp-Users",
        _ASA + "6-113039: Group <GP-Corp-Users> User <",
        "> IP <",
        "> AnyConnect parent session started.",
        "Group <GP-Corp-Users> User <",
        "> AnyConnect parent session started from ",
    ),
    (
        0.0995,
        "cisco_asa",
        "113005",
        "authentication-failed",
        "failure",
        None,
        _ASA + "6-113005: AAA user authentication Rejected : reason = AAA failure : server = "
        "192.0.2.10 : user = ",
        " : user IP = ",
        "",
        "AAA user authentication Rejected : user = ",
        " : user IP = ",
    ),
    (
        0.0005,
        "cisco_asa",
        "111008",
        "command-executed",
        "success",
        None,
        _ASA + "5-111008: User '",
        "' executed the 'show running-config' command. ",
        "",
        "User '",
        "' executed the 'show running-config' command from ",
    ),
    (
        0.1995,
        "openvpn",
        "",
        "connection-established",
        "success",
        None,
        "2026-10-01 08:00:00 ",
        "/",
        ":51234 Peer Connection Initiated with [AF_INET]",
        "Peer Connection Initiated: ",
        " ",
    ),
    (
        0.0005,
        "openvpn",
        "",
        "auth-failed-sent",
        "failure",
        None,
        "2026-10-01 08:00:00 ",
        "/",
        ":51234 SENT CONTROL: 'AUTH_FAILED' (status=1)",
        "AUTH_FAILED sent to ",
        " ",
    ),
)


def synth(n: int, start: int, span_us: int, seed: int) -> pl.DataFrame:
    """``n`` event rows of the templates' mix, timestamps from ``start`` (µs since epoch)."""
    rng = np.random.default_rng(seed)
    weights = np.array([t[0] for t in TEMPLATES])
    pick = pl.Series(rng.choice(len(TEMPLATES), n, p=weights / weights.sum()))
    col = [pl.Series([t[k] for t in TEMPLATES]) for k in range(1, len(TEMPLATES[0]))]
    module, code, action, outcome, group, a, b, c, m, nn = (s.gather(pick) for s in col)
    octets = rng.integers(0, 256, (2, n))
    ip = pl.Series([f"198.51.{x}." for x in range(256)]).gather(octets[0]) + pl.Series(
        [str(x) for x in range(256)]
    ).gather(octets[1])
    user = pl.Series([f"user{i}" for i in range(USERS)]).gather(rng.integers(0, USERS, n))
    ts = pl.Series(np.sort(rng.integers(start, start + span_us, n))).cast(pl.Datetime("us", "UTC"))
    df = pl.DataFrame(
        {
            "@timestamp": ts,
            "event.module": module,
            "event.dataset": module,
            "event.code": code.replace("", None),
            "event.action": action,
            "event.outcome": outcome,
            "vpn.group": group,
            "user.name": user,
            "source.ip": ip,
            "observer.name": pl.Series(["gw-01"]).gather(np.zeros(n, dtype=np.int64)),
            "event.original": a + user + b + ip + c,
            "message": m + user + nn + ip,
        }
    )
    return ecs.conform(df, "events")


def build(root: Path, n: int) -> None:
    """Write ``n`` events over one week in chunks (memory stays at one chunk)."""
    t = time.perf_counter()
    week_us = 7 * 86_400_000_000
    t0 = 1_790_812_800_000_000  # 2026-10-01T00:00:00Z
    chunks = max(1, -(-n // CHUNK))
    with Store.open(root, create=True).writer() as w:
        for k in range(chunks):
            size = min(CHUNK, n - k * CHUNK)
            span = week_us // chunks
            w.commit({"events": synth(size, t0 + k * span, span, seed=7 + k)}, [])
    print(f"synthesized {n:,} events in {time.perf_counter() - t:.1f}s")


_SHAPES = (
    # (logsource, detection) with {i}: exact user + code (matches ~1/2000 of login failures)
    ("product: fortigate", "sel:\n    logid: '0101039426'\n    user: 'user{i}'"),
    ("product: cisco\n    service: asa", "sel:\n    vpn.group: ['GP-Partner-{i}', 'Lab{i}']"),
    ("product: openvpn", "sel:\n    message|contains: 'tls-crypt unwrap error {i}'"),
    (
        "product: fortigate\n    service: event",
        "sel:\n    cfgpath|startswith: 'vpn.ipsec.phase1-interface'\n"
        "    cfgattr|contains: 'psksecret{i}'",
    ),
    (
        "product: cisco\n    service: asa",
        "sel:\n    event.code: '113039'\n    source.ip|cidr: '203.0.{i}.0/29'",
    ),
    ("product: fortigate", "keywords:\n    - 'sslvpn_login_block_{i}'"),
    ("product: openvpn", "sel:\n    user.name|re: '^svc-[a-z]+{i}$'"),
    ("product: cisco\n    service: asa", "sel:\n    message|contains|all: ['<admin{i}>', 'IP <']"),
    ("category: vpn", "sel:\n    user.name|endswith: '${i}'\n    source.ip|cidr: '10.{i}.0.0/16'"),
    (
        "product: fortigate",
        "sel:\n    logid: '0100032001'\n    srcip|cidr: '198.51.{i}.0/24'\n"
        "filter:\n    user: admin",
    ),
)


def variants(folder: Path, count: int) -> None:
    """``count`` generated rules cycling through :data:`_SHAPES`."""
    for i in range(count):
        source, det = _SHAPES[i % len(_SHAPES)]
        det = det.replace("{i}", str(i))
        cond = "sel and not filter" if "filter:" in det else det.split(":", 1)[0]
        body = "\n".join("    " + line for line in det.splitlines())
        (folder / f"v{i:03}.yml").write_text(
            f"title: generated {i}\nid: 00000000-0000-4000-8000-{i:012}\nstatus: test\n"
            f"level: low\nlogsource:\n    {source}\ndetection:\n{body}\n"
            f"    condition: {cond}\n"
        )


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median seconds of ``runs`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--single-runs", type=int, default=1)
    ap.add_argument("--store", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sigma-bench-"))
    root = args.store or tmp / "store"
    if not (root / "catalog.duckdb").exists():
        build(root, args.events)
    gen = tmp / "generated"
    gen.mkdir()
    variants(gen, 80)
    rs = load([BUILTIN, gen] + ([SHARED] if SHARED.exists() else []))
    rules = [r for r in rs.rules if r.dataset == "events"]
    own = sum(r.path.startswith(str(BUILTIN)) for r in rules)
    gen_n = sum(r.path.startswith(str(gen)) for r in rules)
    print(f"{len(rules)} rules: {own} pack, {len(rules) - own - gen_n} SigmaHQ, {gen_n} generated")
    print(f"{len(runner.groups(rules))} log-source groups (store scans in the shared pass)")
    con = runner.connect(Store.open(root, create=False))
    n = int(con.sql("SELECT count(*) FROM events").fetchall()[0][0])
    floor = [
        ("count(*)", "SELECT count(*) FROM events"),
        ("raw-line scan", 'SELECT max(length("event.original")) FROM events'),
    ]
    for name, sql in floor:
        s, _ = timed(lambda sql=sql: con.sql(sql).fetchall(), args.runs)
        print(f"{name:>20}: {s:7.2f}s  {n / s:13,.0f} events/s")
    load_before = os.getloadavg()[0]
    modes = (("shared pass", True, args.runs), ("one query per rule", False, args.single_runs))
    for name, shared, runs in (m for m in modes if m[2] > 0):
        s, found = timed(
            lambda shared=shared: runner.match_rules(con, rules, None, None, shared=shared), runs
        )
        assert isinstance(found, dict)
        matched = sum(f.height for f in found.values())
        hits = sum(f.height > 0 for f in found.values())
        print(
            f"{name:>20}: {s:7.2f}s  {len(rules) / s:8.1f} rules/s  {n / s:13,.0f} events/s  "
            f"{n * len(rules) / s:15,.0f} rule-events/s  (median of {runs}; {matched:,} rows "
            f"matched by {hits} rules)"
        )
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
