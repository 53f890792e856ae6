"""End-to-end: byte counts and durations at the limits of their types, written into a Zeek
conn.log by whoever controls a sensor or forges its lines, go through ``ingest``,
``detect`` and ``hunt`` (correlation and report) without failing any detection.

Once, such a file silenced seven detections (every exfiltration and C2 detection and the
inbound-exposure one): their sums over saturated byte counts overflowed a BIGINT.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli as run
from vpnsentry.simulate import default_estate_text

BIG = 2**63 - 1
HEADER = """#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2025-03-04-00-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]
"""
ENDS = (
    ("10.10.0.25", "203.0.113.9"),  # a workstation uploading to a rare address
    ("198.51.100.77", "10.10.32.10"),  # the Internet straight to a domain controller
    ("10.10.32.10", "10.40.32.10"),  # HQ to a branch server
)


def _conn_log() -> str:
    lines, i = [], 0
    for day in range(3):
        for port in (443, 8443, 22, 3389, 445):
            for src, dst in ENDS:
                i += 1
                ts = 1_741_046_400 + day * 86_400 + 3_600 + i * 61
                duration = "1e300" if i % 3 == 0 else "99999999999.5"
                fields = [f"{ts}.000001", f"Chostile{i:010d}", src, 50_000 + i, dst, port]
                fields += ["tcp", "-", duration, BIG, BIG, "SF", "T", "F", BIG, "ShADadFf"]
                fields += [BIG, BIG, BIG, BIG, "(empty)"]
                lines.append("\t".join(map(str, fields)))
    return HEADER + "\n".join(lines) + "\n#close\t2025-03-07-00-00-00\n"


def test_numbers_at_their_limits_fail_no_detection(tmp_path: Path) -> None:
    log, sites, store = tmp_path / "conn.log", tmp_path / "sites.yaml", tmp_path / "store"
    log.write_text(_conn_log())
    sites.write_text(default_estate_text())
    ingested = run("ingest", str(log), "--store", str(store), "--json")
    assert ingested.returncode == 0, ingested.stderr
    totals = json.loads(ingested.stdout)["totals"]
    assert (totals["parsed"], totals["quarantined"]) == (3 * 5 * len(ENDS), 0)

    detected = run("detect", "--store", str(store), "--sites", str(sites), "--json")
    assert detected.returncode == 0, detected.stderr
    result = json.loads(detected.stdout)
    rules = result["rules"]
    # where the run's time went: every shared table the pack needs, each counted once
    assert set(result["table_seconds"]) == {"sessions", "logins", "pairs", "transfers"}
    assert sum(result["table_seconds"].values()) <= result["prepare_seconds"]
    assert len(rules) >= 29
    assert [(r["id"], r["error"]) for r in rules if r.get("error")] == []
    assert sum(r["alerts"] for r in rules) > 0

    hunted = run(
        "hunt",
        str(log),
        "--store",
        str(store),
        "--sites",
        str(sites),
        "--out",
        str(tmp_path / "report"),
    )
    assert hunted.returncode == 0, hunted.stderr
