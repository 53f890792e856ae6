"""End-to-end: the real CLI in a subprocess, over real samples and hostile input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import CORPUS

FORTI = (
    'date=2026-04-02 time=17:31:{s:02d} devname="FGT-TOKYO" devid="FGVM01" '
    'eventtime=17751762{s:02d}239669800 tz="+0900" logid="0100032002" type="event" '
    'subtype="system" level="alert" vd="root" logdesc="Admin login failed" sn="0" '
    'user="{user}" ui="https(203.0.113.7)" method="https" srcip=203.0.113.7 '
    'dstip=192.0.2.1 action="login" status="failed" reason="passwd_invalid" '
    'msg="Administrator login failed"'
)


def cli(
    *args: str, store: Path | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if store is not None:
        env["VPNSENTRY_STORE"] = str(store)
    proc = subprocess.run(
        [sys.executable, "-m", "vpnsentry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def ingest_json(store: Path, *paths: str) -> tuple[int, dict[str, Any]]:
    proc = cli("ingest", "--json", *paths, store=store)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def count(store: Path, sql: str) -> int:
    proc = cli("query", "--json", sql, store=store, check=True)
    return int(next(iter(json.loads(proc.stdout.splitlines()[0]).values())))


def test_corpus_ingest_adds_up_and_is_idempotent(tmp_path: Path) -> None:
    store = tmp_path / "store"
    # The raw samples only (globs), not Elastic's expected-output JSON next to them.
    folders = [
        str(CORPUS / f / "*" / "*.log")
        for f in ("fortinet_fortigate", "cisco_asa", "cisco_ftd", "zeek")
    ]
    _, first = ingest_json(store, *folders)
    t = first["totals"]
    assert t["lines"] == t["parsed"] + t["quarantined"] + t["ignored"]
    assert t["parsed"] > 0.95 * (t["lines"] - t["ignored"])
    rows = count(store, "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM flows)")
    assert rows == t["parsed"]
    assert count(store, "SELECT count(*) FROM quarantine") == t["quarantined"]
    _, again = ingest_json(store, *folders)
    assert again["rows_written"] == 0
    assert again["totals"]["duplicates"] == t["lines"]
    assert again["totals"]["lines"] == 0
    stats = json.loads(cli("stats", "--json", store=store, check=True).stdout)
    formats = {r["format"] for r in stats["format"]}
    assert {"fortinet_fortigate", "cisco_asa", "zeek_conn"} <= formats


def test_growing_file_adds_only_new_lines(tmp_path: Path) -> None:
    store, log = tmp_path / "store", tmp_path / "fgt.log"
    log.write_text("".join(FORTI.format(s=i, user=f"u{i}") + "\n" for i in range(40)))
    ingest_json(store, str(log))
    with log.open("a") as fh:
        fh.write("".join(FORTI.format(s=i, user=f"v{i}") + "\n" for i in range(40, 60)))
    _, second = ingest_json(store, str(log))
    assert second["totals"]["lines"] == 20
    assert second["totals"]["duplicates"] == 40
    assert count(store, "SELECT count(*) FROM events") == 60
    assert count(store, 'SELECT count(DISTINCT "log.offset") FROM events') == 60


def test_hostile_input_is_quarantined_not_fatal(tmp_path: Path) -> None:
    store, d = tmp_path / "store", tmp_path / "in"
    d.mkdir()
    good = [FORTI.format(s=i, user=f"u{i}") for i in range(10)]
    mixed = [*good[:5], "x" * (10 * 1024 * 1024), "abc\x00def", FORTI.format(s=70, user="x")]
    mixed += [good[5].replace("time=17:31:05", "time=25:61:99").replace("eventtime=", "et=")]
    (d / "mixed.log").write_bytes(
        "\n".join(mixed).encode()
        + b"\n"
        + good[6].encode()[:80]
        + b"\xff\xfe\n"
        + "\n".join(good[7:]).encode()
        + b"\n"
    )
    (d / "garbage.bin").write_bytes(bytes(range(256)) * 64)
    (d / "trunc.log.gz").write_bytes(gzip.compress("\n".join(good).encode())[:-30])
    code, rep = ingest_json(store, str(d))
    assert code == 1
    t = rep["totals"]
    assert t["lines"] == t["parsed"] + t["quarantined"] + t["ignored"]
    by_file = {Path(f["path"]).name: f for f in rep["files"]}
    assert by_file["mixed.log"]["parsed"] >= 8
    assert by_file["mixed.log"]["quarantined"] >= 3
    assert by_file["garbage.bin"]["parsed"] == 0
    assert any("truncated" in p for p in by_file["trunc.log.gz"]["problems"])
    reasons = cli(
        "query", "--json", 'SELECT DISTINCT "error.type" FROM quarantine', store=store, check=True
    ).stdout
    assert "line_too_long" in reasons and "binary" in reasons


def test_attacker_text_stays_text(tmp_path: Path) -> None:
    store, log = tmp_path / "store", tmp_path / "fgt.log"
    evil = "\x1b[31mroot'; DROP TABLE events;--[bold]x[/bold]"
    log.write_text(FORTI.format(s=1, user=evil) + "\n" + FORTI.format(s=2, user="ok") + "\n")
    ingest_json(store, str(log))
    table = cli("query", 'SELECT "user.name" FROM events', store=store, check=True).stdout
    assert "\x1b" not in table
    assert "\\x1b[31mroot'; DROP TABLE events;--[bold]x[/bold]" in table
    js = cli(
        "query", "--json", 'SELECT "user.name" FROM events ORDER BY 1', store=store, check=True
    ).stdout
    assert {json.loads(x)["user.name"] for x in js.splitlines()} == {evil, "ok"}
    assert count(store, "SELECT count(*) FROM events") == 2


def test_query_is_read_only_and_errors_are_one_line(tmp_path: Path) -> None:
    store, log = tmp_path / "store", tmp_path / "fgt.log"
    log.write_text(FORTI.format(s=1, user="a") + "\n")
    ingest_json(store, str(log))
    for sql in (
        "DROP VIEW events",
        "COPY (SELECT 1) TO 'x.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT 1; SELECT 2",
    ):
        proc = cli("query", sql, store=store)
        assert proc.returncode == 2, sql
        assert "Traceback" not in proc.stderr
    missing = cli("stats", "--store", str(tmp_path / "nowhere"))
    assert missing.returncode == 4 and "no vpnsentry store" in missing.stderr
    bad = cli("ingest", "--format", "nope", str(log), store=store)
    assert bad.returncode == 2 and "unknown format" in bad.stderr


def test_formats_lists_every_parser_with_a_sample() -> None:
    rows = json.loads(cli("formats", "--json", check=True).stdout)
    names = {r["name"] for r in rows}
    assert {"fortinet_fortigate", "cisco_asa", "openvpn", "zeek_conn", "nfdump"} <= names
    assert all(r["sample"] for r in rows)
