"""``vpnsentry audit segmentation`` end to end: Zeek conn.log ingested into a real store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_ingest_cli import cli
from tests.posture.segmentation.conftest import ESTATE, LINES


def test_segmentation_from_ingested_zeek(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "conn.log").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    store = tmp_path / "store"
    p = cli("ingest", "--json", "--store", str(store), str(logs))
    assert p.returncode == 0, p.stderr
    p = cli(
        "audit",
        "segmentation",
        "--sites",
        str(ESTATE),
        "--store",
        str(store),
        "--until",
        "2025-03-05",
        "--json",
    )
    assert p.returncode == 1, p.stderr  # violations are high: the default --fail-on
    doc = json.loads(p.stdout)
    got = {(r["source_net"], r["port"], r["violation"]) for r in doc["paths"]}
    assert got == {
        ("10.101.0.0/18", 22, True),
        ("10.20.0.0/20", 3389, True),
        ("10.101.0.0/18", 445, False),
    }
    ssh = next(r for r in doc["paths"] if r["port"] == 22)
    assert (ssh["connections"], ssh["distinct_sources"], ssh["gateway"]) == (3, 2, "vpn-sha-dc01")
    assert ssh["first_seen"].startswith("2025-03-04T09:00:00")
    # the store remembers the inventory: the table without --sites, gate switched off
    p = cli("audit", "segmentation", "--store", str(store), "--fail-on", "never")
    assert p.returncode == 0, p.stderr
    assert "VIOLATION" in p.stdout and "src-tyo01" in p.stdout and "file-shares" not in p.stdout
    # a broken inventory is one line naming file and line
    bad = tmp_path / "sites.yaml"
    bad.write_text(ESTATE.read_text("utf-8").replace("to: file_servers", "to: nowhere"), "utf-8")
    p = cli("audit", "segmentation", "--sites", str(bad), "--store", str(store))
    assert p.returncode == 2
    assert "sites.yaml:" in p.stderr and "unknown group 'nowhere'" in p.stderr
