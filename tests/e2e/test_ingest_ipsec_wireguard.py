"""End-to-end: strongSwan, Juniper SRX and WireGuard files through the real CLI.

The format is not named: ingest must recognise each file by its content, put every line
somewhere (parsed or quarantined with a reason), and keep WireGuard's private keys out of
the store.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import CORPUS, GOLDEN
from tests.e2e.test_ingest_cli import cli, count, ingest_json

FILES = {
    "juniper_srx": CORPUS / "juniper_srx" / "log" / "test-system.log",
    "strongswan": GOLDEN / "parse" / "strongswan" / "syslog-ikev2-eap.log",
    "wireguard": GOLDEN / "parse" / "wireguard" / "dump-snapshots.log",
}
#: Secrets in the unredacted WireGuard dump line (private key, preshared key).
SECRETS = (
    "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=",
    "aYhC3ZzLgY0YUm1x7LoSdVkrB3N4KMbtaFQwXwGqP2I=",
)


def test_auto_detected_and_accounted_for(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out = ingest_json(store, *(str(p) for p in FILES.values()))
    assert code in (0, 1), out
    sql = """
        SELECT "event.module" AS m, count(*) AS n FROM (
            SELECT "event.module" FROM events UNION ALL SELECT "event.module" FROM flows
            UNION ALL SELECT "event.module" FROM quarantine)
        GROUP BY ALL ORDER BY ALL"""
    proc = cli("query", "--json", sql, store=store, check=True)
    got = {r["m"]: r["n"] for r in map(json.loads, proc.stdout.splitlines())}
    for fmt, path in FILES.items():
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        golden = path.with_suffix(".ecs.jsonl")
        headers = (
            golden.read_text(encoding="utf-8").count('{"ignored": true}') if golden.exists() else 0
        )
        # every line is an event, a flow or quarantined; only WireGuard's time lines are not
        assert got.get(fmt) == len(lines) - headers, fmt
    stats = json.loads(cli("stats", "--json", store=store, check=True).stdout)
    assert all(fmt in json.dumps(stats) for fmt in FILES)
    secret_sql = " OR ".join(f"contains(\"event.original\", '{s}')" for s in SECRETS)
    assert count(store, f"SELECT count(*) FROM events WHERE {secret_sql}") == 0
