"""End-to-end: PAN-OS, Check Point, CEF and LEEF files through the real CLI.

The format is not named: ingest must recognise each file by its content (Check Point's and
PAN-OS's CEF and LEEF lines go to the generic readers, their native lines to their own
parsers), account for every line, and keep hostile user names as data: a SQL-looking name
comes back from the store unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CORPUS, GOLDEN
from tests.e2e.test_ingest_cli import cli, ingest_json

FILES = {
    "panw_panos": CORPUS / "panw" / "panos" / "test-panw-panos-globalprotect-sample.log",
    "checkpoint": CORPUS / "checkpoint" / "firewall" / "test-checkpoint.log",
    "cef": GOLDEN / "parse" / "cef" / "vendors.log",
    "leef": GOLDEN / "parse" / "leef" / "vendors.log",
}


def test_exports_detected_and_accounted_for(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out = ingest_json(store, *(str(p) for p in FILES.values()))
    assert code in (0, 1), out
    formats = {Path(f["path"]).name: f["format"] for f in out["files"]}
    assert formats == {p.name: fmt for fmt, p in FILES.items()}
    for f in out["files"]:
        assert f["lines"] == f["parsed"] + f["quarantined"] + f["ignored"], f
    assert {f["format"]: f["quarantined"] for f in out["files"]}["checkpoint"] == 0
    # Check Point's firewall decisions are flows; its CEF login is a login event.
    sql = """
        SELECT "event.module" AS m, count(*) AS n FROM flows GROUP BY ALL ORDER BY ALL"""
    proc = cli("query", "--json", sql, store=store, check=True)
    flows = {r["m"]: r["n"] for r in map(json.loads, proc.stdout.splitlines())}
    assert flows["checkpoint"] == 14  # the 14 Accept/Drop lines of the 21
    sql = """
        SELECT "event.module" AS m, "event.action" AS a, "user.name" AS u
        FROM events WHERE "event.category" = 'authentication' ORDER BY ALL"""
    proc = cli("query", "--json", sql, store=store, check=True)
    logins = [tuple(r.values()) for r in map(json.loads, proc.stdout.splitlines())]
    assert ("cef", "logon-failed", "admin' OR 1=1;--") in logins
    assert ("leef", "logged-out", "jdoe") in logins
    assert ("panw_panos", "logged-in", "maxmustermann") in logins
