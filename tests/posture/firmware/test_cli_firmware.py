"""``vpnsentry audit firmware`` and ``audit update-kev`` end to end, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_KEV = Path(__file__).parents[3] / ".." / "shared" / "data" / "kev"
FULL = SHARED_KEV / "known_exploited_vulnerabilities.json"


def cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI with the KEV data directory inside the test's tmp_path."""
    env = dict(os.environ, VPNSENTRY_DATA_DIR=str(data))
    return subprocess.run(
        [sys.executable, "-m", "vpnsentry", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


INVENTORY = """\
name,vendor,product,version,site
fgt-tyo,Fortinet,FortiGate,"v7.0.11,build0489",tyo
pa-fra,Palo Alto Networks,PAN-OS,10.2.9-h1,fra
ics-sha,Pulse Secure,,22.7R2.5,sha
asa-chi,Cisco,ASA,9.16(4)48,chi
\x1b[31mevil,Acme,Tunnel,1.0,"x\x1b[2J"
"""


def test_firmware_json_table_and_exit_codes(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.csv"
    inv.write_text(INVENTORY, encoding="utf-8")
    p = cli("audit", "firmware", str(inv), "--as-of", "2025-09-01", "--json", data=tmp_path)
    assert p.returncode == 1, p.stderr  # critical findings, default --fail-on high
    doc = json.loads(p.stdout)
    assert doc["catalog"]["catalogVersion"] == "2025.08.25"
    vuln = {(f["appliance"], f["cve"]) for f in doc["findings"] if f["status"] == "vulnerable"}
    assert ("fgt-tyo", "CVE-2023-27997") in vuln
    assert ("pa-fra", "CVE-2024-0012") in vuln  # 10.2.9-h1 < backport 10.2.9-h16
    assert ("pa-fra", "CVE-2024-3400") not in vuln  # 10.2.9-h1 is the fix
    assert not any(a == "ics-sha" and c == "CVE-2025-0282" for a, c in vuln)
    unknown = [f for f in doc["findings"] if f["status"] == "product_not_understood"]
    assert len(unknown) == 1 and unknown[0]["appliance"] == "\x1b[31mevil"
    # the table: hostile text neutralised, exit code with --fail-on never
    p = cli(
        "audit", "firmware", str(inv), "--as-of", "2025-09-01", "--fail-on", "never", data=tmp_path
    )
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout and "\\x1b[31mevil" in p.stdout
    assert "CVE-2023-27997" in p.stdout and "OVERDUE" in p.stdout
    assert "7.0.12" in p.stdout  # the upgrade target


def test_bad_inventory_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """The shapes of bad input are unit-tested (test_firmware.py); here: the CLI contract."""
    inv = tmp_path / "inventory.yaml"
    inv.write_text("appliances:\n  - {name: fw, vendor: Fortinet\n", encoding="utf-8")
    p = cli("audit", "firmware", str(inv), data=tmp_path)
    assert p.returncode == 3
    assert "inventory.yaml:3: invalid YAML" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not FULL.exists(), reason="../shared is not available")
def test_update_kev_reports_changes_and_is_used_afterwards(tmp_path: Path) -> None:
    cat = json.loads(FULL.read_text("utf-8"))
    # The same catalog is not newer: nothing changes, nothing is stored.
    p = cli("audit", "update-kev", str(FULL), "--json", data=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["changes"] == [] and doc["stored"] is None
    # A later release: CISA moves a due date, flags ransomware use, adds a FortiOS CVE
    # (no range known) and a browser CVE (not VPN).
    cat["catalogVersion"], cat["dateReleased"] = "2025.09.02", "2025-09-02T15:00:00.000Z"
    by_id = {v["cveID"]: v for v in cat["vulnerabilities"]}
    by_id["CVE-2025-0108"]["dueDate"] = "2025-04-01"
    by_id["CVE-2024-9474"]["knownRansomwareCampaignUse"] = "Known"
    new_forti = dict(
        by_id["CVE-2024-21762"],
        cveID="CVE-2025-99999",
        dateAdded="2025-09-02",
        dueDate="2025-09-23",
        knownRansomwareCampaignUse="Unknown",
    )
    browser = dict(
        by_id["CVE-2024-21762"],
        cveID="CVE-2025-99998",
        vendorProject="Google",
        product="Chromium V8",
    )
    cat["vulnerabilities"] += [new_forti, browser]
    newer = tmp_path / "kev-newer.json"
    newer.write_text(json.dumps(cat), encoding="utf-8")
    p = cli("audit", "update-kev", str(newer), "--json", data=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    got = {(c["change"], c["cve"]) for c in doc["changes"]}
    assert got == {
        ("due_date", "CVE-2025-0108"),
        ("ransomware", "CVE-2024-9474"),
        ("added", "CVE-2025-99999"),
    }
    added = next(c for c in doc["changes"] if c["change"] == "added")
    assert "range unknown: check vendor advisory" in added["detail"]
    assert Path(doc["stored"]).parent == tmp_path
    # later runs use the stored catalog and list the new CVE for FortiGates
    inv = tmp_path / "i.csv"
    inv.write_text("name,vendor,version\nfw,Fortinet,7.4.8\n", encoding="utf-8")
    p = cli("audit", "firmware", str(inv), "--json", data=tmp_path)
    doc = json.loads(p.stdout)
    assert doc["catalog"]["catalogVersion"] == "2025.09.02"
    assert any(
        f["cve"] == "CVE-2025-99999" and f["status"] == "range_unknown" for f in doc["findings"]
    )


def test_update_kev_rejects_a_malformed_catalog(tmp_path: Path) -> None:
    bad = tmp_path / "kev.json"
    bad.write_text(
        '{"catalogVersion": "x", "dateReleased": "y", "vulnerabilities": [{"cveID": "nope",'
        ' "vendorProject": "a", "product": "b", "vulnerabilityName": "c"}]}',
        encoding="utf-8",
    )
    p = cli("audit", "update-kev", str(bad), data=tmp_path)
    assert p.returncode == 3 and "vulnerabilities[0]: 'nope' is not a CVE id" in p.stderr
    assert not (tmp_path / "vpn_kev.json").exists()
