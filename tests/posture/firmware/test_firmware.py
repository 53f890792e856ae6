"""audit(): appliances against the shipped catalog, tricky versions at range edges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vpnsentry.errors import InputError
from vpnsentry.posture import firmware as fw
from vpnsentry.posture import kev

DAY = dt.date(2025, 9, 1)
ESTATE = Path(__file__).parents[3] / "src/vpnsentry/simulate/data/default_estate.yaml"


def run(vendor: str, product: str, version: str, as_of: dt.date = DAY) -> fw.Report:
    app = fw.Appliance("gw", vendor, product, version, "hq", 2)
    return fw.audit([app], kev.shipped_catalog(), kev.load_ranges(), as_of)


def vulnerable(rep: fw.Report) -> dict[str, fw.Finding]:
    return {f.entry.cve: f for f in rep.findings if f.status == "vulnerable" and f.entry}


@pytest.mark.parametrize(
    ("vendor", "product", "version", "cve", "hit"),
    [
        # CVE-2023-27997 (FortiOS SSL-VPN): 7.0.0-7.0.11 affected, 7.0.12 fixed
        ("Fortinet", "FortiGate", "7.0.11", "CVE-2023-27997", True),
        ("Fortinet", "FortiGate", "7.0.12", "CVE-2023-27997", False),
        ("Fortinet", "FortiGate", "v7.0.9,build0444", "CVE-2023-27997", True),
        # CVE-2024-21762: 7.2.0-7.2.6, fixed 7.2.7; 7.6 unaffected
        ("Fortinet", "FortiOS", "7.2.6", "CVE-2024-21762", True),
        ("Fortinet", "FortiOS", "7.2.7", "CVE-2024-21762", False),
        ("Fortinet", "FortiOS", "7.6.0", "CVE-2024-21762", False),
        # CVE-2024-3400 (PAN-OS): < 10.2.9-h1 on 10.2
        ("Palo Alto Networks", "PAN-OS", "10.2.9", "CVE-2024-3400", True),
        ("Palo Alto Networks", "PAN-OS", "10.2.9-h1", "CVE-2024-3400", False),
        ("Palo Alto Networks", "PAN-OS", "10.1.12", "CVE-2024-3400", False),
        # CVE-2024-0012: hotfix backports fix older maintenance releases
        ("Palo Alto Networks", "PAN-OS", "10.2.9-h15", "CVE-2024-0012", True),
        ("Palo Alto Networks", "PAN-OS", "10.2.9-h16", "CVE-2024-0012", False),
        ("Palo Alto Networks", "PAN-OS", "10.2.10-h9", "CVE-2024-0012", False),
        # CVE-2020-3452 (ASA): per train, show-version spelling
        ("Cisco", "ASA", "9.8(4)15", "CVE-2020-3452", True),
        ("Cisco", "ASA", "9.8(4)20", "CVE-2020-3452", False),
        ("Cisco", "ASA", "9.4(4)", "CVE-2020-3452", True),  # below 9.6: no fixed release
        # Ivanti CVE-2025-0282: 22.7R2 .. 22.7R2.4, fixed 22.7R2.5
        ("Ivanti", "Connect Secure", "22.7R2.3", "CVE-2025-0282", True),
        ("Ivanti", "Connect Secure", "22.7R2.5", "CVE-2025-0282", False),
        ("Ivanti", "Connect Secure", "22.7R1.2", "CVE-2025-0282", False),
        # Citrix Bleed CVE-2023-4966: 13.1 before 13.1-49.15
        ("Citrix", "NetScaler Gateway", "13.1-49.13", "CVE-2023-4966", True),
        ("Citrix", "NetScaler Gateway", "13.1-49.15", "CVE-2023-4966", False),
        ("Citrix", "NetScaler ADC FIPS", "13.1-37.163", "CVE-2023-4966", True),
        # SonicOS CVE-2024-40766: Gen7 through 7.0.1-5035
        ("SonicWall", "SonicOS", "7.0.1-5035", "CVE-2024-40766", True),
        ("SonicWall", "SonicOS", "7.0.1-5038", "CVE-2024-40766", False),
        # SMA 100 CVE-2021-20038
        ("SonicWall", "SMA 100", "10.2.1.2-24sv", "CVE-2021-20038", True),
        ("SonicWall", "SMA 100", "10.2.1.9-57sv", "CVE-2021-20038", False),
        # Check Point CVE-2024-24919: every take of R81.20 (hotfix not visible in a version)
        ("Check Point", "Quantum Security Gateway", "R81.20 Take 54", "CVE-2024-24919", True),
        ("Check Point", "Quantum Security Gateway", "R82", "CVE-2024-24919", False),
    ],
)
def test_range_edges(vendor: str, product: str, version: str, cve: str, hit: bool) -> None:
    assert (cve in vulnerable(run(vendor, product, version))) is hit


def test_finding_carries_kev_facts_and_upgrade_target() -> None:
    f = vulnerable(run("Fortinet", "FortiGate", "7.0.11"))["CVE-2023-27997"]
    j = f.to_json()
    assert j["due_date"] == "2023-07-04" and j["date_added"] == "2023-06-13"
    assert j["overdue"] is True and j["severity"] == "critical"
    assert j["known_ransomware_use"] is True
    assert j["fixed_versions"] == ["7.0.12"]
    assert j["affected_range"] == ">= 7.0.0, <= 7.0.11"


def test_not_yet_due_and_no_ransomware_is_high() -> None:
    f = vulnerable(run("Fortinet", "FortiOS", "7.0.16", dt.date(2025, 1, 17)))["CVE-2024-55591"]
    assert not f.overdue and f.entry is not None and f.entry.ransomware == "Known"
    f = vulnerable(run("Palo Alto Networks", "PAN-OS", "10.2.9", dt.date(2025, 3, 1)))[
        "CVE-2025-0108"
    ]
    assert (f.overdue, f.severity) == (False, "high")  # due 2025-03-11, ransomware unknown
    f = vulnerable(run("Palo Alto Networks", "PAN-OS", "10.2.9", dt.date(2025, 3, 12)))[
        "CVE-2025-0108"
    ]
    assert (f.overdue, f.severity) == (True, "critical")


@pytest.mark.parametrize("version", ["seven", "", "7.0", "7.0.12; rm -rf /"])
def test_unreadable_version_is_reported_not_safe(version: str) -> None:
    rep = run("Fortinet", "FortiGate", version)
    assert [f.status for f in rep.findings] == ["version_not_understood"]
    assert rep.findings[0].severity == "medium"


def test_unknown_product_is_reported() -> None:
    rep = run("Acme", "Tunnelmaster", "1.0")
    assert [f.status for f in rep.findings] == ["product_not_understood"]


def test_entries_without_ranges_are_listed_as_unknown() -> None:
    rep = run("Fortinet", "FortiGate", "7.4.8")
    unknown = {f.entry.cve for f in rep.findings if f.status == "range_unknown" and f.entry}
    assert "CVE-2019-6693" in unknown  # hard-coded key: in KEV, no range in our data
    assert not vulnerable(rep)
    # products whose versions we do not compare: every entry is range unknown
    rep = run("Juniper", "Junos OS", "21.2R3-S6")
    assert rep.findings and {f.status for f in rep.findings} == {"range_unknown"}


def test_csv_and_yaml_inventories(tmp_path: Path) -> None:
    csv_file = tmp_path / "inv.csv"
    csv_file.write_text(
        "name,vendor,product,version,site,owner\n"
        'fw-1,Fortinet,FortiGate,"v7.2.4,build1396",tyo,netops\n'
        "\n"
        "vpn-2,Ivanti,Connect Secure,22.7R2.3,,\n",
        encoding="utf-8",
    )
    apps = fw.load_appliances(csv_file)
    assert [(a.name, a.version, a.line) for a in apps] == [
        ("fw-1", "v7.2.4,build1396", 2),
        ("vpn-2", "22.7R2.3", 4),
    ]
    yaml_file = tmp_path / "inv.yaml"
    yaml_file.write_text(
        "appliances:\n"
        "  - {name: fw-1, vendor: Fortinet, product: FortiGate, version: 7.2.4}\n"
        "  - name: asa-1\n    vendor: Cisco\n    product: ASA\n    version: 9.16(4)48\n",
        encoding="utf-8",
    )
    apps = fw.load_appliances(yaml_file)
    assert [(a.name, a.version, a.line) for a in apps] == [
        ("fw-1", "7.2.4", 2),
        ("asa-1", "9.16(4)48", 3),
    ]


def test_site_inventory_gateways() -> None:
    apps = fw.load_appliances(ESTATE)
    assert {a.name: (a.family, a.version) for a in apps}["vpn-sha-dc01"] == ("fortios", "7.0.12")
    rep = fw.audit(apps, kev.shipped_catalog(), kev.load_ranges(), DAY)
    hits = {
        (f.appliance.name, f.entry.cve)
        for f in rep.findings
        if f.entry and f.status == "vulnerable"
    }
    assert ("vpn-sha-dc01", "CVE-2024-21762") in hits  # FortiOS 7.0.12 <= 7.0.13
    assert ("vpn-chi-br01", "CVE-2024-21762") not in hits  # FortiOS 7.2.8 > 7.2.6
    assert not any(name == "vpn-dus-br01" for name, _ in hits)  # OpenVPN: no KEV entry


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,vendor\nfw,Fortinet\n", "CSV header lacks version"),
        ("name,vendor,version\nfw,Fortinet,7.0.1,extra\n", ":2: more fields"),
        ("name,vendor,version\n,Fortinet,7.0.1\n", ":2: name is missing"),
        ("- {name: fw, vendor: [Fortinet], version: 7}\n", ":1: vendor: expected text"),
        ("- {name: fw, vendor: Fortinet, version: 7, colour: red}\n", "unknown key 'colour'"),
        ("appliances: [\n", "invalid YAML"),
        ("hello: world\n", "expected a list of appliances"),
        ("", "empty"),
    ],
)
def test_bad_inventory_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / ("inv.csv" if text.startswith("name,") else "inv.yaml")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        fw.load_appliances(path)
