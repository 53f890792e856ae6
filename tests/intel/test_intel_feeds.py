"""Feed formats: STIX 2.1 (built with the stix2 library and as a vendor publishes it), MISP
event exports, CSV lists; every entry loaded or skipped with a reason; normalization."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import stix2
from hypothesis import given
from hypothesis import strategies as st

from vpnsentry.intel.catalog import normalize_feed
from vpnsentry.intel.feeds import read_file
from vpnsentry.intel.model import normalize

DATA = Path(__file__).parent / "data"


def _by_norm(path: Path, fmt: str = "auto") -> tuple[dict[str, dict[str, object]], list[str]]:
    feed = read_file(path, fmt)
    rows, _ = normalize_feed(feed)
    return {r["norm"]: r for r in rows.iter_rows(named=True)}, [s.reason for s in feed.skipped]


def test_stix_bundle_built_and_validated_with_stix2(tmp_path: Path) -> None:
    ident = stix2.Identity(name="ACME CERT", identity_class="organization")
    ind = [
        stix2.Indicator(
            pattern="[ipv4-addr:value = '198.51.100.7' OR ipv6-addr:value = '2001:DB8::66']",
            pattern_type="stix",
            valid_from="2025-01-01T00:00:00Z",
            created_by_ref=ident.id,
            confidence=85,
            indicator_types=["malicious-activity"],
            kill_chain_phases=[
                stix2.KillChainPhase(
                    kill_chain_name="mitre-attack", phase_name="command-and-control"
                )
            ],
        ),
        stix2.Indicator(
            pattern="[ipv4-addr:value ISSUBSET '198.51.100.128/25'] "
            "OR [domain-name:value = 'Evil.Example.']",
            pattern_type="stix",
            valid_from="2025-01-01T00:00:00Z",
            valid_until="2025-06-01T00:00:00Z",
        ),
        stix2.Indicator(
            pattern="[ipv4-addr:value = '192.0.2.8'] WITHIN 300 SECONDS",
            pattern_type="stix",
            valid_from="2025-01-01T00:00:00Z",
        ),
        stix2.Indicator(
            pattern="[ipv4-addr:value = '10.1.2.3']",
            pattern_type="stix",
            valid_from="2025-01-01T00:00:00Z",
        ),
        stix2.Indicator(
            pattern="[ipv4-addr:value IN ('192.0.2.11', '192.0.2.12')]",
            pattern_type="stix",
            valid_from="2025-01-01T00:00:00Z",
            revoked=True,
        ),
    ]
    bundle = stix2.Bundle(ident, *ind)
    path = tmp_path / "acme.json"
    path.write_text(bundle.serialize())
    stix2.parse(json.loads(path.read_text()), allow_custom=False)  # it is real STIX 2.1
    rows, skipped = _by_norm(path)
    assert set(rows) == {
        "198.51.100.7",
        "2001:db8::66",
        "198.51.100.128/25",
        "evil.example",
        "192.0.2.11",
        "192.0.2.12",
    }
    first = rows["198.51.100.7"]
    assert first["source"] == "ACME CERT" and first["confidence"] == 85
    assert first["labels"] == ["malicious-activity"]
    assert first["kill_chain"] == ["mitre-attack:command-and-control"]
    assert rows["198.51.100.128/25"]["source"] == "acme"  # no created_by_ref: the file name
    assert rows["198.51.100.128/25"]["valid_until"].isoformat() == "2025-06-01T00:00:00+00:00"
    assert rows["192.0.2.11"]["revoked"] and rows["192.0.2.12"]["revoked"]
    assert rows["2001:db8::66"]["type"] == "ipv6"
    assert any("WITHIN qualifier" in r for r in skipped)
    assert any("private or special-use" in r for r in skipped)
    assert len(skipped) == 2


def test_stix_vendor_bundle_counts_everything() -> None:
    path = DATA / "vendor-bundle.json"
    stix2.parse(json.loads(path.read_text()), allow_custom=False)
    feed = read_file(path)
    rows, _ = normalize_feed(feed)
    assert feed.format == "stix"
    assert sorted(rows["type"]) == sorted(
        ["ipv4", "ipv4", "domain", "url", "ipv6", "sha256", "md5"]
    )
    assert set(rows["source"]) == {"Example Threat Research"}
    reasons = {s.where.split("--")[1][:8]: s.reason for s in feed.skipped}
    assert reasons == {
        "0f6c8a8e": "unsupported: AND (needs several properties or observations)",
        "6a0e3c2b": "pattern_type 'snort' is not STIX patterning",
    }
    assert feed.ignored == {
        "identity": 1,
        "marking-definition": 1,
        "observed-data": 1,
        "relationship": 1,
    }
    url = rows.filter(rows["type"] == "url")["norm"][0]
    assert url == "https://update-check.example.net/gate.php"
    assert rows.filter(rows["type"] == "sha256")["norm"][0].startswith("4bac2739")


def test_stix_versions_latest_wins_and_bad_patterns_are_reasons(tmp_path: Path) -> None:
    base = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--11111111-1111-4111-8111-111111111111",
        "created": "2025-01-01T00:00:00Z",
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00Z",
    }
    objects = [
        {**base, "modified": "2025-01-02T00:00:00Z", "pattern": "[ipv4-addr:value = '192.0.2.1']"},
        {**base, "modified": "2025-01-01T00:00:00Z", "pattern": "[ipv4-addr:value = '192.0.2.2']"},
        {
            **base,
            "id": base["id"][:-1] + "2",
            "pattern": "[ipv4-addr:value = '192.0.2.3'",
            "modified": "2025-01-01T00:00:00Z",
        },
        {
            **base,
            "id": base["id"][:-1] + "3",
            "pattern": "[ipv4-addr:value != '192.0.2.4']",
            "modified": "2025-01-01T00:00:00Z",
        },
        {
            **base,
            "id": base["id"][:-1] + "4",
            "pattern": "[x-custom:value = '1']",
            "modified": "2025-01-01T00:00:00Z",
        },
        "not an object",
    ]
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"type": "bundle", "id": "bundle--x", "objects": objects}))
    feed = read_file(path)
    rows, _ = normalize_feed(feed)
    assert list(rows["norm"]) == ["192.0.2.1"]
    reasons = sorted(s.reason.split(" (")[0] for s in feed.skipped)
    assert reasons == [
        "invalid STIX pattern",
        "unsupported: NOT ipv4-addr:value =",
        "unsupported: x-custom:value =",
    ]
    assert feed.ignored == {"not an object": 1, "older indicator version": 1}


def test_misp_export_attributes_objects_tags() -> None:
    rows, skipped = _by_norm(DATA / "misp-event.json")
    assert set(rows) == {
        "198.51.100.23",
        "2001:db8:77::1",
        "portal-update.example.org",
        "192.0.2.150",
        "198.51.100.99",
        "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809",
        "cdn-fortinet-update.example.com",
        "203.0.113.200",
    }
    scanner = rows["198.51.100.23"]
    assert scanner["source"] == "CIRCL" and scanner["confidence"] == 90
    assert scanner["valid_from"].isoformat() == "2025-02-20T00:00:00+00:00"  # event date
    assert scanner["valid_until"] is None
    assert "tlp:amber" in scanner["labels"]
    assert scanner["description"] == "VPN appliance exploitation campaign - scanner"
    c2 = rows["2001:db8:77::1"]
    assert c2["valid_until"].isoformat() == "2025-03-31T00:00:00+00:00"
    assert "kill-chain:Command and Control" in c2["labels"]
    assert rows["198.51.100.99"]["revoked"]  # deleted in MISP
    assert rows["cdn-fortinet-update.example.com"]["description"].endswith("domain-ip")
    assert skipped == ["MISP type 'email-src' is not matched"]
    feed = read_file(DATA / "misp-event.json")
    assert feed.format == "misp"
    assert feed.ignored == {"to_ids false (context, not for detection)": 2}


def test_misp_single_event_form(tmp_path: Path) -> None:
    doc = json.loads((DATA / "misp-event.json").read_text())["response"][0]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(doc))
    rows, _ = _by_norm(path, "misp")
    assert "198.51.100.23" in rows


def test_csv_edge_cases(tmp_path: Path) -> None:
    text = (
        "\ufeff# exported from our TIP\n"
        "Value, Type ,source,confidence,valid_from,valid_until,description,extra\n"
        '198.51.100.7,ip,Partner A,70,2025-01-01,2025-02-01,"C2, seen ""twice""",x\n'
        "hxxp://bad[.]example/x?a=1,url,,,,,,\n"
        "\n"
        "# a comment between rows\n"
        "203.0.113.0/24,cidr,Partner A,,,,,\n"
        "D41D8CD98F00B204E9800998ECF8427E,hash,Partner B,5,,,,\n"
        "not-an-ip,ip,Partner A,,,,,\n"
        "198.51.100.8,ip,Partner A,150,,,,\n"
        "198.51.100.9,ip,Partner A,,2025-13-01,,,\n"
        "too,few\n"
        "x.example,domain,Partner A,,,,'; DROP TABLE indicators; --,\n"
        "192.0.2.5,ip,Partner A,,2025-02-01,2025-01-01,,\n"
    )
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    rows, skipped = _by_norm(path)
    assert set(rows) == {
        "198.51.100.7",
        "http://bad.example/x?a=1",
        "203.0.113.0/24",
        "d41d8cd98f00b204e9800998ecf8427e",
        "x.example",
    }
    assert rows["198.51.100.7"]["description"] == 'C2, seen "twice"'
    assert rows["http://bad.example/x?a=1"]["source"] == "list"
    assert rows["d41d8cd98f00b204e9800998ecf8427e"]["type"] == "md5"
    assert rows["x.example"]["description"] == "'; DROP TABLE indicators; --"
    assert len(skipped) == 5
    assert any("not an IP address" in r for r in skipped)
    assert any("outside 0-100" in r for r in skipped)
    assert any("not a timestamp" in r for r in skipped)
    assert any("2 fields, the header has 8" in r for r in skipped)
    assert any("never valid" in r for r in skipped)


def test_csv_without_header_and_unknown_files(tmp_path: Path) -> None:
    bad = tmp_path / "plain.txt"
    bad.write_text("198.51.100.7\n")
    with pytest.raises(ValueError, match=r"not a STIX 2\.1 bundle"):
        read_file(bad)
    with pytest.raises(ValueError, match="header lacks value, type"):
        read_file(bad, "csv")
    broken = tmp_path / "b.json"
    broken.write_text('{"objects": [')
    with pytest.raises(ValueError, match="invalid JSON"):
        read_file(broken)


@pytest.mark.parametrize(
    ("hint", "value", "norm"),
    [
        ("ip", "198.51.100.7", "198.51.100.7"),
        ("ip", "198.51.100.7/24", "198.51.100.0/24"),
        ("ip", "::ffff:198.51.100.7", "198.51.100.7"),
        ("ipv6", "2001:0DB8:0000::0001", "2001:db8::1"),
        ("domain", "*.Bücher.example.", "xn--bcher-kva.example"),
        ("url", "HTTPS://Evil.Example/Path?Q=1", "https://evil.example/Path?Q=1"),
        (
            "hash",
            "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        ),
    ],
)
def test_normalize(hint: str, value: str, norm: str) -> None:
    assert normalize(hint, value).norm == norm


@pytest.mark.parametrize(
    ("hint", "value", "reason"),
    [
        ("ip", "0.0.0.0/0", "broader than /8"),
        ("ip", "192.168.1.1", "our own network"),
        ("ip", "fe80::1", "our own network"),
        ("ipv4", "2001:db8::1", "ipv4 expected"),
        ("domain", "localhost", "not a valid domain"),
        ("domain", "evil\x1b[31m.example", "not a valid domain"),
        ("url", "/relative/path", "not an absolute URL"),
        ("md5", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "md5 expected"),
        ("email", "a@b.example", "unsupported indicator type"),
    ],
)
def test_normalize_refuses(hint: str, value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize(hint, value)


@given(hint=st.sampled_from(["ip", "cidr", "domain", "url", "hash", "sha256"]), value=st.text())
def test_normalize_never_crashes(hint: str, value: str) -> None:
    try:
        n = normalize(hint, value)
    except ValueError:
        return
    assert n.norm and n.norm == n.norm.strip()


@given(st.integers(0, 2**32 - 1), st.integers(8, 32))
def test_ipv4_ranges_are_the_network(addr: int, prefix: int) -> None:
    net = ipaddress.IPv4Network((addr, prefix), strict=False)
    try:
        n = normalize("cidr", str(net))
    except ValueError as exc:
        assert "our own network" in str(exc)
        return
    assert (n.lo4, n.hi4) == (int(net.network_address), int(net.broadcast_address))
