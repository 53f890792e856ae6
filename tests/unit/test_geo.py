"""Offline GeoIP (enrich/geo.py): known answers, SQL == numpy, .mmdb overrides, simulator claims."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from vpnsentry.enrich.geo import (
    HOSTING_KINDS,
    GeoTables,
    dotted,
    hosting_asns,
    load_geo,
    lookup,
    register_geo,
)
from vpnsentry.enrich.sites import parse_inventory
from vpnsentry.errors import UsageError
from vpnsentry.simulate import default_estate_text
from vpnsentry.simulate.estate import sim_config

COLUMNS = ["ip", "country", "asn", "as_org", "hosting", "hosting_kind", "city", "lat", "lon"]


@pytest.fixture(scope="module")
def geo() -> GeoTables:
    return load_geo()


def one(tables: GeoTables, ip: str) -> dict[str, object]:
    return lookup(tables, pl.Series([ip])).row(0, named=True)


# ---- the embedded default --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "country", "asn", "org"),
    [
        ("5.9.7.203", "DE", 24940, "Hetzner Online GmbH"),
        ("128.199.185.151", "SG", 14061, "DIGITALOCEAN-ASN"),
        ("149.28.98.229", "US", 20473, "AS-CHOOPA"),
        ("45.32.232.114", "NL", 20473, "AS-CHOOPA"),
    ],
)
def test_hosting_providers(geo: GeoTables, ip: str, country: str, asn: int, org: str) -> None:
    row = one(geo, ip)
    assert row["country"] == country
    assert (row["asn"], row["as_org"]) == (asn, org)
    assert row["hosting"] is True
    assert row["hosting_kind"] == "hosting"


def test_google_dns_is_not_hosting(geo: GeoTables) -> None:
    row = one(geo, "8.8.8.8")
    assert (row["country"], row["as_org"], row["hosting"]) == ("US", "GOOGLE", False)
    # The embedded data has no AS numbers; GOOGLE (AS15169) is not on the hosting list.
    assert row["asn"] is None
    assert row["city"] is None


def test_andorra_is_a_country_not_private(geo: GeoTables) -> None:
    # geoip2fast's own lookup calls its first real country code (AD) private.
    assert one(geo, "5.62.60.5")["country"] == "AD"


@pytest.mark.parametrize(
    "ip", ["10.1.2.3", "192.168.1.1", "127.0.0.1", "100.64.1.1", "not-an-ip", "2001:db8::1", ""]
)
def test_private_invalid_and_ipv6_get_nulls(geo: GeoTables, ip: str) -> None:
    row = one(geo, ip)
    assert row["ip"] == ip
    assert all(row[c] is None for c in COLUMNS[1:]), row


def test_lookup_shape_and_nulls(geo: GeoTables) -> None:
    out = lookup(geo, pl.Series(["8.8.8.8", None, "1.2.3.256", "01.2.3.4", " 5.9.7.203"]))
    assert out.columns == COLUMNS
    assert out.schema["asn"] == pl.Int64
    assert out.schema["hosting"] == pl.Boolean
    assert out.schema["lat"] == pl.Float64
    assert out["country"].to_list() == ["US", None, None, None, None]


def test_ranges_sorted_and_non_overlapping(geo: GeoTables) -> None:
    for df in (geo.country, geo.asn):
        assert df.schema["lo"] == pl.UInt32
        assert df.schema["hi"] == pl.UInt32
        lo = df["lo"].to_numpy().astype(np.int64)
        hi = df["hi"].to_numpy().astype(np.int64)
        assert (lo <= hi).all()
        assert (lo[1:] > hi[:-1]).all()
    assert geo.city is None
    assert geo.country["country"].str.len_chars().eq(2).all()
    assert geo.sources[0].startswith("geoip2fast ")


def test_load_is_cached(geo: GeoTables) -> None:
    assert load_geo() is geo
    assert load_geo(()) is geo


# ---- SQL ---------------------------------------------------------------------------------------


def test_ip4_macro() -> None:
    con = duckdb.connect()
    register_geo(con, load_geo())
    cases = {
        "1.2.3.4": 16909060,
        "0.0.0.0": 0,
        "255.255.255.255": 2**32 - 1,
        "256.1.1.1": None,
        "1.2.3": None,
        "1.2.3.4.5": None,
        "01.2.3.4": None,
        " 1.2.3.4": None,
        "1e2.1.1.1": None,
        "::ffff:1.2.3.4": None,
        "2001:db8::1": None,
        "garbage": None,
    }
    got = con.execute(
        "SELECT s, ip4(s) FROM (SELECT unnest(?::VARCHAR[]) AS s)", [list(cases)]
    ).fetchall()
    assert dict(got) == cases
    assert con.execute("SELECT ip4(NULL)").fetchone() == (None,)


def _sql_lookup(con: duckdb.DuckDBPyConnection, ips: list[str]) -> pl.DataFrame:
    con.execute("CREATE OR REPLACE TEMP TABLE ev AS SELECT unnest(?::VARCHAR[]) AS ip", [ips])
    return con.sql(
        """
        WITH x AS (SELECT ip, ip4(ip) AS _ip FROM ev),
        c AS (
            SELECT x.ip, x._ip, CASE WHEN x._ip <= g.hi THEN g.country END AS country
            FROM x ASOF LEFT JOIN geo_country g ON x._ip >= g.lo
        )
        SELECT c.ip, c.country,
               CASE WHEN c._ip <= a.hi THEN a.asn END AS asn,
               CASE WHEN c._ip <= a.hi THEN a.as_org END AS as_org,
               CASE WHEN c._ip <= a.hi THEN a.hosting END AS hosting,
               CASE WHEN c._ip <= a.hi THEN a.hosting_kind END AS hosting_kind,
               -- the inline form from register_geo's docstring must agree:
               CASE WHEN ip4(c.ip) <= a.hi THEN a.asn END AS asn_inline
        FROM c ASOF LEFT JOIN geo_asn a ON ip4(c.ip) >= a.lo
        ORDER BY c.ip
        """
    ).pl()


def test_asof_join_matches_lookup(geo: GeoTables) -> None:
    rng = np.random.default_rng(20240618)
    ips = dotted(rng.integers(0, 2**32, 4000, dtype=np.uint64)).to_list()
    ips += ["5.9.7.203", "8.8.8.8", "10.1.2.3", "not-an-ip", "2001:db8::1", "0.0.0.0"]
    con = duckdb.connect()
    register_geo(con, geo)
    sql = _sql_lookup(con, ips)
    assert sql["asn"].equals(sql["asn_inline"])
    want = lookup(geo, pl.Series(ips)).sort("ip").select(sql.columns[:-1])
    assert sql.drop("asn_inline").equals(want)
    assert want["country"].null_count() < len(ips) // 2  # most random addresses have a country
    assert con.execute("SELECT count(*) FROM geo_asn").fetchone() == (geo.asn.height,)
    assert "geo_city" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}


# ---- the hosting list ----------------------------------------------------------------------------


def test_hosting_list() -> None:
    df = hosting_asns()
    assert df.columns == ["asn", "org", "kind", "source"]
    assert df["asn"].is_unique().all()
    assert df["kind"].is_in(HOSTING_KINDS).all()
    assert (df["source"].str.len_chars() > 10).all()
    required = {24940, 14061, 20473, 16276, 63949, 51167, 9009, 60781, 16265, 16509, 14618}
    required |= {396982, 8075, 45102, 132203, 31898, 12876, 8560, 47583, 60068, 53667, 40676}
    required |= {8100, 36352, 200651}
    assert required <= set(df["asn"].to_list())


# ---- user-supplied .mmdb files -------------------------------------------------------------


def _write_mmdb(path: Path, database_type: str, nets: dict[str, dict[str, object]], v: int) -> Path:
    """A small .mmdb with the PyPI writer (the same layout MaxMind and DB-IP ship)."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    w = MMDBWriter(ip_version=v, ipv4_compatible=v == 6, database_type=database_type)
    for net, rec in nets.items():
        w.insert_network(IPSet([net]), rec)
    w.to_db_file(str(path))
    return path


CITY = {
    "5.9.0.0/16": {
        "country": {"iso_code": "FI"},
        "city": {"names": {"en": "Helsinki"}},
        "location": {"latitude": 60.1719, "longitude": 24.9347},
    },
    "8.8.8.0/24": {"registered_country": {"iso_code": "US"}},
    "2001:db8::/32": {"country": {"iso_code": "JP"}},
}
ASN = {
    "8.8.8.0/24": {
        "autonomous_system_number": 15169,
        "autonomous_system_organization": "GOOGLE",
    },
    "5.161.0.0/16": {
        "autonomous_system_number": 213230,
        "autonomous_system_organization": "Hetzner Online GmbH",
    },
    "45.32.0.0/16": {
        "autonomous_system_number": 20473,
        "autonomous_system_organization": "The Constant Company, LLC",
    },
}


def test_mmdb_city_and_asn_replace_embedded(tmp_path: Path) -> None:
    city = _write_mmdb(tmp_path / "GeoLite2-City.mmdb", "GeoLite2-City", CITY, 6)
    asn = _write_mmdb(tmp_path / "dbip-asn.mmdb", "DBIP-ASN-Lite (compat=GeoLite2-ASN)", ASN, 4)
    tables = load_geo([city, asn])
    assert tables.city is not None
    assert len(tables.sources) == 2  # nothing embedded is left
    assert "GeoLite2-City.mmdb (GeoLite2-City " in tables.sources[0]
    out = lookup(tables, pl.Series(["5.9.7.203", "8.8.8.8", "45.32.232.114", "5.161.1.1"]))
    rows = out.rows_by_key("ip", named=True, unique=True)
    helsinki = rows["5.9.7.203"]
    assert (helsinki["country"], helsinki["city"]) == ("FI", "Helsinki")
    assert (helsinki["lat"], helsinki["lon"]) == (60.1719, 24.9347)
    assert helsinki["asn"] is None  # the ASN file has no entry for it
    assert (rows["8.8.8.8"]["country"], rows["8.8.8.8"]["asn"]) == ("US", 15169)
    assert rows["8.8.8.8"]["hosting"] is False
    # Listed by number (the name differs from GeoLite2's) and by organisation name:
    assert rows["45.32.232.114"]["hosting"] is True
    assert rows["45.32.232.114"]["country"] is None  # the City file replaced the country table
    assert (rows["5.161.1.1"]["asn"], rows["5.161.1.1"]["hosting_kind"]) == (213230, "hosting")

    con = duckdb.connect()
    register_geo(con, tables)
    got = con.execute(
        "SELECT CASE WHEN x.i <= g.hi THEN g.city END, g.lat FROM (SELECT ip4('5.9.7.203') AS i) x"
        " ASOF LEFT JOIN geo_city g ON x.i >= g.lo"
    ).fetchone()
    assert got == ("Helsinki", 60.1719)


def test_mmdb_country_only_keeps_embedded_asn(tmp_path: Path) -> None:
    path = _write_mmdb(
        tmp_path / "c.mmdb", "GeoIP2-Country", {"5.9.0.0/16": {"country": {"iso_code": "SE"}}}, 4
    )
    tables = load_geo([path])
    assert tables.city is None
    assert tables.sources[0].startswith("geoip2fast ")
    row = one(tables, "5.9.7.203")
    assert (row["country"], row["asn"]) == ("SE", 24940)


@pytest.mark.parametrize("record_size", [24, 28, 32])
def test_mmdb_record_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_size: int
) -> None:
    """GeoLite2 uses 28-bit records; tiny test files get 24 unless the writer is told."""
    import mmdb_writer

    adjust = mmdb_writer.TreeWriter._adjust_record_size

    def forced(self: mmdb_writer.TreeWriter) -> None:
        adjust(self)
        self.record_size = record_size
        self.data_offset = record_size * 2 / 8 * self._node_counter

    monkeypatch.setattr(mmdb_writer.TreeWriter, "_adjust_record_size", forced)
    path = _write_mmdb(tmp_path / f"asn{record_size}.mmdb", "GeoLite2-ASN", ASN, 6)
    tables = load_geo([path])
    assert tables.asn["asn"].to_list() == [213230, 15169, 20473]
    assert tables.asn["lo"].to_list() == [
        int(ipaddress.IPv4Address(a)) for a in ("5.161.0.0", "8.8.8.0", "45.32.0.0")
    ]
    assert tables.asn["hi"].to_list() == [
        int(ipaddress.IPv4Address(a)) for a in ("5.161.255.255", "8.8.8.255", "45.32.255.255")
    ]


def test_corrupt_mmdb_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(UsageError, match=r"broken\.mmdb: not a usable GeoIP database") as exc:
        load_geo([bad])
    assert "\n" not in str(exc.value)


def test_looping_search_tree_is_a_usage_error(tmp_path: Path) -> None:
    path = _write_mmdb(tmp_path / "loop.mmdb", "GeoLite2-ASN", ASN, 4)
    data = bytearray(path.read_bytes())
    data[0:3] = b"\x00\x00\x00"  # the root's left child (24-bit record) is the root itself
    path.write_bytes(bytes(data))
    with pytest.raises(UsageError, match=r"loop\.mmdb: not a usable GeoIP database: search tree"):
        load_geo([path])


def test_wrong_kind_missing_and_duplicate_mmdb(tmp_path: Path) -> None:
    anon = _write_mmdb(
        tmp_path / "anon.mmdb", "GeoIP2-Anonymous-IP", {"1.0.0.0/24": {"is_anonymous": True}}, 4
    )
    with pytest.raises(UsageError, match=r"anon\.mmdb: .*'GeoIP2-Anonymous-IP' is not a Country"):
        load_geo([anon])
    with pytest.raises(UsageError, match=r"nope\.mmdb: cannot read"):
        load_geo([tmp_path / "nope.mmdb"])
    a = _write_mmdb(tmp_path / "a.mmdb", "GeoLite2-ASN", ASN, 4)
    b = _write_mmdb(tmp_path / "b.mmdb", "GeoLite2-ASN", ASN, 4)
    with pytest.raises(UsageError, match=r"b\.mmdb: a second asn database"):
        load_geo([a, b])


# ---- the simulator's claims -------------------------------------------------------------------


def _claims() -> list[tuple[str, str, str, int | None]]:
    """(what, prefix, country, hosting ASN or None) for every public block the simulator uses."""
    inv = parse_inventory(default_estate_text(), source="<bundled default_estate.yaml>")
    cfg = sim_config(inv)
    out: list[tuple[str, str, str, int | None]] = []
    for country, isps in cfg.isps.items():
        out += [(f"isp {i.name}", str(p), country, None) for i in isps for p in i.prefixes]
    out += [
        (f"hosting {h.name}", str(p), h.country, h.asn) for h in cfg.hosting for p in h.prefixes
    ]
    out += [(f"egress {s.id}", f"{a}/32", s.country, None) for s in inv.sites for a in s.egress]
    by_site = {s.id: s.country for s in inv.sites}
    out += [(f"gateway {g.id}", f"{g.outside}/32", by_site[g.site], None) for g in inv.gateways]
    return out


#: Prefixes whose embedded GeoIP country differs from the simulator's claim for part of the
#: block (the simulator draws addresses uniformly over the whole prefix, so some simulated
#: users or attackers geolocate elsewhere). The fix belongs in the bundled estate; when it is
#: made, strict xfail fails here and the entry must go.
KNOWN_MISMATCHES = {
    "126.0.0.0/8": "126.209.0.0/19 is PH, 126.231.0.0/16 and 126.242.0.0/15 are US (1.2%)",
    "90.0.0.0/9": "9.2% is not FR: Orange Espagne (ES), GP, RO, SK, JO, LU, RE, GF blocks",
    "128.199.0.0/16": "DigitalOcean 128.199.0.0/20 is US, .16.0/20 IN, .32.0/19 NL (25%)",
    "45.32.0.0/16": "Vultr regions: only 44% US (JP 25%, SG 12.5%, NL, AU, DE, GB, FR)",
    "149.28.0.0/16": "Vultr regions: only 69% US (AU 12.5%, SG 12.5%, JP 6%)",
}


def _params() -> list[object]:
    return [
        pytest.param(
            *claim[:3],
            id=f"{claim[0]} {claim[1]}",
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_MISMATCHES[claim[1]])]
            if claim[1] in KNOWN_MISMATCHES
            else [],
        )
        for claim in _claims()
    ]


def _overlap(df: pl.DataFrame, net: ipaddress.IPv4Network) -> pl.DataFrame:
    """Rows of a range table that meet ``net``, with ``n``: how many of its addresses."""
    lo, hi = int(net[0]), int(net[-1])
    return df.filter((pl.col("hi") >= lo) & (pl.col("lo") <= hi)).with_columns(
        n=pl.min_horizontal(pl.col("hi").cast(pl.Int64), hi)
        - pl.max_horizontal(pl.col("lo").cast(pl.Int64), lo)
        + 1
    )


@pytest.mark.parametrize(("what", "prefix", "country"), _params())
def test_simulator_prefixes_geolocate_as_claimed(
    geo: GeoTables, what: str, prefix: str, country: str
) -> None:
    net = ipaddress.IPv4Network(prefix)
    c = _overlap(geo.country, net)
    assert c["n"].sum() >= 0.99 * net.num_addresses, f"{what}: most of {prefix} has no country"
    wrong = c.filter(pl.col("country") != country)
    assert wrong.is_empty(), f"{what}: {prefix} is not all {country}: {wrong.rows()}"


@pytest.mark.parametrize(
    ("what", "prefix", "asn"), [(c[0], c[1], c[3]) for c in _claims() if c[3] is not None]
)
def test_simulator_attackers_come_from_hosting_asns(
    geo: GeoTables, what: str, prefix: str, asn: int
) -> None:
    net = ipaddress.IPv4Network(prefix)
    a = _overlap(geo.asn, net)
    assert a["n"].sum() >= 0.9 * net.num_addresses, f"{what}: most of {prefix} has no AS"
    assert a["hosting"].all(), f"{what}: {prefix} has non-hosting ASNs"
    assert set(a["asn"].to_list()) == {asn}
