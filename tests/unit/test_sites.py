"""The site inventory schema: the bundled estate loads, lookups work, mistakes are named."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vpnsentry.enrich.sites import Inventory, ipv4_to_u32, load_inventory, parse_inventory
from vpnsentry.errors import UsageError
from vpnsentry.simulate import default_estate_text

MINIMAL = """\
version: 1
company: {name: Acme, domain: acme.example, ad_domain: ACME}
sites:
  - id: hq
    name: HQ
    kind: hq
    country: JP
    timezone: Asia/Tokyo
    staff_share: 1.0
    subnets:
      - {cidr: 10.0.0.0/24, role: workstations}
      - {cidr: 10.0.1.0/24, role: servers, crown_jewel: true}
    hosts:
      - {name: fs1, ip: 10.0.1.5, role: file_server}
gateways:
  - id: gw1
    site: hq
    vendor: cisco_asa
    hostname: asa1
    inside: 10.0.0.1
    outside: 126.1.2.3
    pool: 10.9.0.0/24
    serves: [hq]
groups:
  users: [role:workstations]
  files: [host:fs1]
policy:
  - {from: users, to: files, ports: [tcp/445]}
"""


@pytest.fixture(scope="module")
def default() -> Inventory:
    return parse_inventory(default_estate_text(), source="default_estate.yaml")


def test_bundled_estate_describes_a_multinational(default: Inventory) -> None:
    countries = {s.country for s in default.sites}
    assert {"JP", "CN", "DE", "US"} <= countries
    assert {g.vendor for g in default.gateways} == {"fortinet_fortigate", "cisco_asa", "openvpn"}
    assert any(s.kind == "datacenter" for s in default.sites)
    assert any(h.crown_jewel for h in default.hosts)
    roles = {h.role for h in default.hosts}
    assert {"domain_controller", "file_server", "source_code", "backup", "scanner"} <= roles
    assert default.allow.scanners and default.allow.backup_hosts
    assert default.policy and default.tunnels and default.sensors


def test_subnet_index_classifies_addresses(default: Inventory) -> None:
    idx = default.subnet_index()
    ips = ["10.10.33.10", "10.101.3.4", "8.8.8.8", "10.20.5.6"]
    found = idx.lookup([int(ipaddress.IPv4Address(a)) for a in ips])
    nets = idx.subnets
    assert nets[found[0]].crown_jewel and nets[found[0]].site == "tyo-hq"
    assert nets[found[1]].role == "vpn_pool" and nets[found[1]].gateway == "vpn-sha-dc01"
    assert found[2] == -1
    assert nets[found[3]].site == "sha-br" and nets[found[3]].role == "workstations"


def test_subnet_frame_supports_range_joins(default: Inventory) -> None:
    frame = default.subnet_frame()
    ips = ipv4_to_u32(pl.Series("ip", ["10.10.33.10", "not-an-ip", "10.10.0.7", "300.1.1.1"]))
    assert ips.null_count() == 2
    hit = (
        pl.DataFrame({"ip": ips})
        .drop_nulls()
        .join_where(frame, pl.col("ip") >= pl.col("net_lo"), pl.col("ip") <= pl.col("net_hi"))
    )
    assert sorted(hit["role"].to_list()) == ["servers", "workstations"]


def test_workdays_follow_weekends_and_holidays(default: Inventory) -> None:
    tokyo = default.site("tyo-hq")
    assert tokyo.is_workday(dt.date(2025, 3, 3))  # a Monday
    assert not tokyo.is_workday(dt.date(2025, 3, 8))  # Saturday
    assert not tokyo.is_workday(dt.date(2025, 5, 5))  # Children's Day
    shanghai = default.site("sha-br")
    assert not shanghai.is_workday(dt.date(2025, 1, 29))  # Spring Festival, listed by date


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    inv = load_inventory(path)
    assert inv.site("hq").hosts[0].crown_jewel  # inherited from its subnet
    assert inv.subnet_index().lookup([int(ipaddress.IPv4Address("10.9.0.7"))])[0] >= 0
    assert inv.policy[0].name == "rule-0"


@pytest.mark.parametrize(
    ("old", "new", "at", "message"),
    [
        (
            "10.0.0.0/24, role: workstations",
            "10.0.0.0/33, role: workstations",
            "/33",
            "sites[0].subnets[0].cidr: '10.0.0.0/33' is not an IPv4 network",
        ),
        ("timezone: Asia/Tokyo", "timezone: Asia/Tokio", "Tokio", "is not an IANA time zone"),
        (
            "staff_share: 1.0",
            "staff_share: 1.0\n    colour: blue",
            "colour",
            "sites[0].colour: unknown key 'colour'",
        ),
        ("ip: 10.0.1.5", "ip: 10.0.7.5", "10.0.7.5", "10.0.7.5 is in none of site 'hq'"),
        (
            "crown_jewel: true}",
            "crown_jewel: true}\n      - {cidr: 10.0.0.128/25, role: lab}",
            "role: lab",
            "10.0.0.128/25 (hq, lab) overlaps 10.0.0.0/24 (hq, workstations)",
        ),
        ("serves: [hq]", "serves: [branch]", "branch", "unknown site 'branch'"),
        ("outside: 126.1.2.3", "outside: 10.1.2.3", "outside", "not a public address"),
        ("to: files, ports", "to: printers, ports", "printers", "unknown group 'printers'"),
        ("ports: [tcp/445]", "ports: [tcp/99999]", "99999", "is not tcp/N"),
        ("files: [host:fs1]", "files: [host:fs9]", "fs9", "unknown host 'fs9'"),
        ("version: 1", "version: 2", "version", "unsupported version"),
        ("vendor: cisco_asa", "vendor: paloalto", "paloalto", "is not one of"),
        ("pool: 10.9.0.0/24", "pool: 10.0.0.0/25", "pool:", "gateways[0].pool: 10.0.0.0/25"),
    ],
)
def test_errors_name_the_line_and_key(old: str, new: str, at: str, message: str) -> None:
    assert old in MINIMAL
    text = MINIMAL.replace(old, new)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if at in ln)
    with pytest.raises(UsageError) as info:
        parse_inventory(text, source="sites.yaml")
    assert str(info.value).startswith(f"sites.yaml:{line}:"), str(info.value)
    assert message in str(info.value)


def test_yaml_syntax_and_duplicate_keys_are_reported_with_lines() -> None:
    with pytest.raises(UsageError, match=r"^sites.yaml:3: invalid YAML"):
        parse_inventory("version: 1\ncompany: {name: x\nsites: [", source="sites.yaml")
    with pytest.raises(UsageError, match=r"^sites.yaml:2: duplicate key 'version'"):
        parse_inventory("version: 1\nversion: 1\n", source="sites.yaml")
    with pytest.raises(UsageError, match="missing required key 'sites'"):
        parse_inventory("version: 1\ncompany: {name: a, domain: b, ad_domain: C}\ngateways: []")


def test_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=re.escape(str(tmp_path / "nope.yaml"))):
        load_inventory(tmp_path / "nope.yaml")


def test_lookup_handles_empty_and_boundary_addresses(default: Inventory) -> None:
    idx = default.subnet_index()
    assert idx.lookup(np.array([], dtype=np.uint32)).shape == (0,)
    first = int(ipaddress.IPv4Address("10.10.0.0"))
    assert idx.lookup([first - 1, first])[0] == -1
    assert idx.lookup([first])[0] >= 0


def test_store_keeps_the_inventory_once_even_when_hard_linked(tmp_path: Path) -> None:
    """A store copied with hard links (``cp -al``) already holds the very file given."""
    from vpnsentry.enrich.sites import STORE_SITES, remembered_inventory

    store = tmp_path / "store"
    store.mkdir()
    given = tmp_path / "sites.yaml"
    given.write_text(default_estate_text())
    assert remembered_inventory(store, given) is not None
    assert (store / STORE_SITES).read_text() == given.read_text()
    linked = tmp_path / "copy"
    linked.mkdir()
    (linked / STORE_SITES).hardlink_to(store / STORE_SITES)
    assert remembered_inventory(linked, store / STORE_SITES) is not None
    assert remembered_inventory(linked, None) is not None
