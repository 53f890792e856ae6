"""The shipped KEV subset and ranges: true to CISA's catalog, every range machine-readable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpnsentry.posture import kev
from vpnsentry.posture.versions import parse

SHARED = Path(__file__).parents[3] / ".." / "shared" / "data" / "kev"
FULL = SHARED / "known_exploited_vulnerabilities.json"


def test_every_range_parses_in_its_family_scheme() -> None:
    ranges = kev.load_ranges()
    assert len(ranges) == 53
    for cve, cr in ranges.items():
        for r in cr.ranges:
            scheme = kev.FAMILIES[r.family].scheme
            assert scheme is not None, (cve, r.family)
            for text in (r.train, r.introduced, r.before, r.through, *r.versions, *r.backports):
                if text is not None:
                    assert parse(scheme, text) is not None, (cve, text)


def test_every_entry_concerns_a_family() -> None:
    cat = kev.shipped_catalog()
    assert cat.version == "2025.08.25" and cat.released.startswith("2025-08-25")
    assert len(cat.entries) == 135
    assert all(e.families for e in cat.entries.values())


@pytest.mark.skipif(not FULL.exists(), reason="../shared is not available")
def test_entries_are_copied_unchanged_from_cisa() -> None:
    full = {v["cveID"]: v for v in json.loads(FULL.read_text("utf-8"))["vulnerabilities"]}
    for e in kev.shipped_catalog().entries.values():
        src = full[e.cve]
        assert (e.due_date.isoformat(), e.date_added.isoformat(), e.ransomware) == (
            src["dueDate"],
            src["dateAdded"],
            src["knownRansomwareCampaignUse"],
        )
        assert e.name == src["vulnerabilityName"].strip()


@pytest.mark.skipif(not FULL.exists(), reason="../shared is not available")
def test_selecting_from_the_full_catalog_reproduces_the_reviewed_subset() -> None:
    shipped = kev.shipped_catalog()
    ranges = kev.load_ranges()
    again = kev.read_catalog_file(FULL, shipped, ranges)
    assert set(again.entries) == set(shipped.entries)
    assert kev.diff(shipped, again, ranges) == []


@pytest.mark.parametrize(
    ("vendor", "product", "family"),
    [
        ("Fortinet", "FortiGate", "fortios"),
        ("FortiGate", "", "fortios"),
        ("Fortinet", "FortiOS", "fortios"),
        ("Fortinet", "", "fortios"),
        ("Fortinet", "FortiProxy", "fortiproxy"),
        ("Pulse Secure", "", "ivanti_ics"),
        ("Ivanti", "Connect Secure", "ivanti_ics"),
        ("Pulse Secure", "Pulse Connect Secure", "ivanti_ics"),
        ("Palo Alto Networks", "", "panos"),
        ("Palo Alto Networks", "GlobalProtect", "panos"),
        ("PAN-OS", "", "panos"),
        ("Cisco", "ASA", "asa"),
        ("Cisco", "ASA 5516-X", "asa"),
        ("Cisco", "FTD", "ftd"),
        ("Cisco", "Firepower 2130", "ftd"),
        ("Citrix", "NetScaler ADC", "citrix_adc"),
        ("NetScaler", "Gateway", "citrix_adc"),
        ("Citrix", "", "citrix_adc"),
        ("Citrix", "NetScaler ADC FIPS", "citrix_adc_fips"),
        ("SonicWall", "SonicOS", "sonicos"),
        ("SonicWall", "TZ 370", "sonicos"),
        ("SonicWall", "SMA 100", "sma100"),
        ("SonicWall", "SMA 410", "sma100"),
        ("SonicWall", "SMA1000", "sma1000"),
        ("Check Point", "Quantum Security Gateway", "checkpoint"),
        ("Cisco", "AnyConnect Secure Mobility Client", "anyconnect"),
    ],
)
def test_inventory_names_resolve_to_one_family(vendor: str, product: str, family: str) -> None:
    assert kev.resolve(vendor, product) == {family}


@pytest.mark.parametrize(
    ("vendor", "product"), [("Cisco", ""), ("SonicWall", ""), ("Acme", "Firewall 9000")]
)
def test_vague_names_do_not_resolve_to_one_family(vendor: str, product: str) -> None:
    assert len(kev.resolve(vendor, product)) != 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "not a KEV catalog"),
        ("[1, 2]", "not a KEV catalog"),
        ('{"catalogVersion": "x", "vulnerabilities": []}', "no 'dateReleased'"),
        ("not json", "not JSON"),
    ],
)
def test_malformed_catalogs_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    from vpnsentry.errors import InputError

    bad = tmp_path / "kev.json"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        kev.read_catalog_file(bad, kev.shipped_catalog(), kev.load_ranges())
