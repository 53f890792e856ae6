"""The working tables every detection queries, built once per ``detect`` run.

Detections do not each re-derive "which site is this address in", "who held this tunnel
address", "what country is this login from" or "how many bytes went from A to B that day":
that would scan the flows once per detection and give subtly different answers. This module
builds those answers once, as DuckDB tables in the run's in-memory connection, next to the
store's ``events`` and ``flows`` views:

==================  ==========================================================================
``subnets``         inventory subnets: ``net_lo``/``net_hi`` (UBIGINT), site, country, timezone,
                    role, crown_jewel, gateway (for VPN pools)
``hosts``           named hosts: ip, ip_u, name, site, role, crown_jewel
``gateways``        id, hostname (as it logs itself, upper-cased in ``name_key``), vendor, site,
                    inside/outside/management addresses (+ ``_u``), pool_lo/pool_hi, firmware
``allow_nets``      kind (scanners, backup_hosts, admin_hosts, partners), lo, hi: inventory and
                    config allow-lists together
``allow_users``     kind, name (lower case)
``is_partner(u)``   macros: u in that allow-list; also ``is_scanner``, ``is_backup_host``,
                    ``is_admin_host``; ``is_gateway_addr``: a gateway's own address
``geo_*``, ``ip4``  GeoIP/ASN range tables and the string -> UBIGINT macro (enrich/geo.py)
``is_private(u)``   macro: RFC 1918, CGNAT, loopback, link-local
``sessions``        VPN sessions (enrich/sessions.py)                       [need "sessions"]
``logins``          one row per VPN login attempt, with geo/ASN            [need "logins"]
``transfers``       internal host <-> Internet per day, oriented on the host   [need "transfers"]
                    (detect/transfers.py)
``transfer_nets``   external /24 (``net`` = ext_u // 256), net_hosts: internal hosts talking to
                    it in ``transfers``                                     [need "transfers"]
``host_transfers``  view: ``transfers`` without allow-listed backup hosts  [need "transfers"]
``pairs``           flows per day and (src, dst, port, transport), sensors de-duplicated,
                    with site/role/geo of both ends                         [need "pairs"]
==================  ==========================================================================

The lazily built tables are documented column by column in docs/detections.md.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from vpnsentry.detect.config import ALLOW_KINDS, Config
from vpnsentry.detect.pairs import build_pairs
from vpnsentry.detect.transfers import build_transfers
from vpnsentry.enrich.geo import GeoTables, load_geo, lookup, register_geo
from vpnsentry.enrich.sessions import build_sessions
from vpnsentry.enrich.sites import SUBNET_SCHEMA, Inventory

#: Private and special-use IPv4 ranges as (lo, hi) integers: never "the Internet".
_PRIVATE: Final = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "0.0.0.0/8",
    "224.0.0.0/3",
)

#: Allow-list kinds of ``allow_nets`` and the macro that tests an address against each.
_ALLOW_MACROS: Final = {
    "partners": "is_partner",
    "scanners": "is_scanner",
    "backup_hosts": "is_backup_host",
    "admin_hosts": "is_admin_host",
}
#: Longest allow-list written into its macro as constants; a longer one is looked up.
_MAX_INLINE_RANGES: Final = 64

#: A login attempt is an administrator's (not a VPN user's) when the gateway says so:
#: FortiGate tags admin events with the Administrator role; ASA 605004/605005 (SSH, Telnet,
#: HTTPS), 611101-611103 (management user authentication) and 113021 (console) are
#: management-plane logins. Detections about VPN users must not count them.
ADMIN_LOGIN_SQL: Final = (
    "coalesce(\"user.roles\" = 'Administrator' OR (\"event.module\" = 'cisco_asa' "
    "AND \"event.code\" IN ('605004', '605005', '611101', '611102', '611103', '113021')), "
    "false)"
)

_ATTEMPTS_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE _attempts AS
WITH attempts AS (
    SELECT "session.start" AS "@timestamp", "observer.name", "event.module", "user.name",
           "source.ip", 'success' AS "event.outcome", NULL::VARCHAR AS "event.reason",
           "vpn.tunnel_ip", "session.end"
    FROM sessions
    WHERE "session.start" IS NOT NULL AND "user.name" IS NOT NULL
    UNION ALL
    SELECT "@timestamp", "observer.name", "event.module", "user.name", "source.ip",
           'failure', "event.reason", NULL, NULL
    FROM events
    WHERE "event.category" = 'authentication' AND "event.outcome" = 'failure'
      AND "user.name" IS NOT NULL AND "source.ip" IS NOT NULL AND NOT {ADMIN_LOGIN_SQL}
)
SELECT *,
       lower(regexp_replace(regexp_replace("user.name", '^.*\\\\', ''), '@.*$', ''))
           AS "user.key",
       ip4("source.ip") AS src_u
FROM attempts
"""

#: Logins with the geo of their source address. Geo is looked up once per distinct address
#: (numpy search over the range tables) and joined by equality: an ASOF join against the
#: range tables sorts them on every run, which cost more than everything else in a live
#: collector's small reruns.
_LOGINS_SQL: Final = """
CREATE OR REPLACE TABLE logins AS
SELECT a.*, g.country, g.asn, g.as_org, coalesce(g.hosting, false) AS hosting, g.hosting_kind
FROM _attempts a LEFT JOIN _login_geo g ON g.ip = a."source.ip"
"""


class Context:
    """The run's DuckDB connection with the shared tables, built on first need."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        inventory: Inventory | None,
        config: Config,
        geo_files: Sequence[Path] = (),
    ) -> None:
        self.con = con
        self.inventory = inventory
        self.config = config
        self._geo_files = tuple(geo_files)
        self._built: set[str] = set()
        #: Seconds each lazily built table took itself (what it needed counted apart).
        self.seconds: dict[str, float] = {}
        self.geo: GeoTables | None = None
        self._base()

    def _base(self) -> None:
        """Inventory and allow-list tables, geo and macros: small, always present."""
        self.geo = load_geo(self._geo_files)
        register_geo(self.con, self.geo)
        private = " OR ".join(
            f"(u BETWEEN {int(n[0])} AND {int(n[-1])})"
            for n in (ipaddress.IPv4Network(c) for c in _PRIVATE)
        )
        self.con.execute(f"CREATE OR REPLACE MACRO is_private(u) AS ({private})")
        inv = self.inventory
        subnets = inv.subnet_frame() if inv else pl.DataFrame(schema=SUBNET_SCHEMA)
        self._table("subnets", subnets)
        self._table("hosts", _hosts_frame(inv))
        self._table("gateways", _gateways_frame(inv))
        nets, users = _allow_frames(inv, self.config)
        self._table("allow_nets", nets)
        self._table("allow_users", users)
        self._membership_macros(nets)

    def _membership_macros(self, nets: pl.DataFrame) -> None:
        """``is_partner(u)``, ``is_scanner(u)``, ``is_backup_host(u)``, ``is_admin_host(u)``
        and ``is_gateway_addr(u)`` as constant expressions (false for NULL).

        Why not ``NOT EXISTS (SELECT 1 FROM allow_nets ... u BETWEEN lo AND hi)`` in each
        detection: DuckDB decorrelates it by grouping every distinct outer value first, which
        over ``transfers`` or ``pairs`` (millions of rows) cost 5-20 s per detection for a
        list that is usually empty or a handful of ranges. A long list (over
        ``_MAX_INLINE_RANGES``) keeps the subquery form."""
        for kind, name in _ALLOW_MACROS.items():
            ranges = nets.filter(pl.col("kind") == kind).sort("lo").rows()
            if len(ranges) > _MAX_INLINE_RANGES:
                body = (
                    f"EXISTS (SELECT 1 FROM allow_nets a WHERE a.kind = '{kind}'"
                    " AND u BETWEEN a.lo AND a.hi)"
                )
            else:
                body = " OR ".join(f"(u BETWEEN {int(lo)} AND {int(hi)})" for _, lo, hi in ranges)
            self.con.execute(
                f"CREATE OR REPLACE MACRO {name}(u) AS coalesce({body or 'false'}, false)"
            )
        rows = self.con.sql(
            "SELECT DISTINCT a FROM (SELECT outside_u AS a FROM gateways UNION ALL "
            "SELECT inside_u FROM gateways UNION ALL SELECT management_u FROM gateways) "
            "WHERE a IS NOT NULL ORDER BY a"
        ).fetchall()
        members = ", ".join(str(int(r[0])) for r in rows)
        body = f"u IN ({members})" if members else "false"
        self.con.execute(f"CREATE OR REPLACE MACRO is_gateway_addr(u) AS coalesce({body}, false)")

    def _geo_table(self, name: str, addresses_sql: str) -> None:
        """Table ``name``: geo columns (see :func:`enrich.geo.lookup`) per distinct ``ip``."""
        ips = pl.from_arrow(self.con.sql(addresses_sql).to_arrow_table())
        assert isinstance(ips, pl.DataFrame) and self.geo is not None
        self._table(name, lookup(self.geo, ips["ip"].drop_nulls()))

    def _table(self, name: str, df: pl.DataFrame) -> None:
        self.con.register(f"_df_{name}", df.to_arrow())
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM _df_{name}")
        self.con.unregister(f"_df_{name}")

    def need(self, names: Sequence[str]) -> None:
        """Build the lazily derived tables ``names`` (and what they depend on) once."""
        for name in names:
            if name in self._built or name == "geo":
                continue
            began, before = time.perf_counter(), sum(self.seconds.values())
            if name == "sessions":
                build_sessions(self.con)
            elif name == "logins":
                self.need(["sessions"])
                self.con.execute(_ATTEMPTS_SQL)
                self._geo_table("_login_geo", 'SELECT DISTINCT "source.ip" AS ip FROM _attempts')
                self.con.execute(_LOGINS_SQL)
            elif name == "pairs":
                open_records = self.con.sql(
                    "SELECT 1 FROM flows WHERE \"event.action\" = 'flow-update' LIMIT 1"
                ).fetchall()
                self.con.execute(_CONVERSATIONS_SQL if open_records else _ALL_FLOWS_SQL)
                build_pairs(self.con)
                self.con.execute(_PAIRS_SQL)
            elif name == "transfers":
                self.need(["pairs"])
                build_transfers(self.con)
                self.con.execute(TRANSFER_NETS_SQL)
                self.con.execute(HOST_TRANSFERS_SQL)
            else:  # pragma: no cover - base.py validates names
                raise KeyError(name)
            nested = sum(self.seconds.values()) - before
            self.seconds[name] = time.perf_counter() - began - nested
            self._built.add(name)


#: Flow records as conversations. Records of connections still open (Zeek ``conn_long`` /
#: ``open_conn``: ``event.action`` ``flow-update``) carry totals so far: the connection's
#: final record replaces them, and of a connection not closed yet only the latest counts, so
#: no byte is counted twice. Most stores have no such records and read ``flows`` as it is.
_ALL_FLOWS_SQL: Final = "CREATE OR REPLACE TEMP VIEW conversations AS SELECT * FROM flows"
_CONVERSATIONS_SQL: Final = """
CREATE OR REPLACE TEMP VIEW conversations AS
WITH open_latest AS (
    SELECT * FROM flows WHERE "event.action" = 'flow-update'
    QUALIFY row_number() OVER (
        PARTITION BY "flow.id", "observer.name"
        ORDER BY "event.duration" DESC NULLS LAST, "@timestamp" DESC) = 1
), closed AS (
    SELECT DISTINCT "flow.id" FROM flows
    WHERE "event.action" IS DISTINCT FROM 'flow-update'
      AND "flow.id" IN (SELECT "flow.id" FROM open_latest)
)
SELECT * FROM flows WHERE "event.action" IS DISTINCT FROM 'flow-update'
UNION ALL
SELECT * FROM open_latest WHERE "flow.id" NOT IN (SELECT "flow.id" FROM closed)
"""


#: Where each address of ``_pairs`` (see :mod:`vpnsentry.detect.pairs`) is, looked up once
#: per distinct address key rather than once per row, and the pairs with both ends' place.
#: The place texts (net, site, role, country, AS organisation) are ENUMs of the values
#: present, declared in byte order so that they sort and compare as the texts do: the
#: join copied each of ten text columns into every one of ~15M rows, about half of the
#: table's build time; an ENUM is a small code (they read as VARCHAR in expressions and
#: as categoricals in Polars).
_PLACE_ENUMS: Final = ("net", "site", "role", "country", "org")
_PAIRS_SQL: Final = (
    """
CREATE OR REPLACE TEMP TABLE _addr AS
SELECT a.k, a.u,
       CASE WHEN a.u <= s.net_hi THEN s.cidr END AS net,
       CASE WHEN a.u <= s.net_hi THEN s.site END AS site,
       CASE WHEN a.u <= s.net_hi THEN s.role END AS role,
       coalesce(CASE WHEN a.u <= s.net_hi THEN s.crown_jewel END, false) AS crown,
       coalesce(is_private(a.u), false) AS private,
       CASE WHEN a.u <= c.hi THEN c.country END AS country,
       CASE WHEN a.u <= g.hi THEN g.asn END AS asn,
       CASE WHEN a.u <= g.hi THEN g.as_org END AS org,
       coalesce(CASE WHEN a.u <= g.hi THEN g.hosting END, false) AS hosting
FROM (
    SELECT k, CASE WHEN k < 4294967296 THEN k::UBIGINT END AS u
    FROM (SELECT src_k AS k FROM _pairs UNION SELECT dst_k FROM _pairs)
) a
ASOF LEFT JOIN subnets s ON a.u >= s.net_lo
ASOF LEFT JOIN geo_country c ON a.u >= c.lo
ASOF LEFT JOIN geo_asn g ON a.u >= g.lo;

DROP TABLE IF EXISTS pairs;
"""
    + "".join(
        f"""
DROP TYPE IF EXISTS pairs_{c};
CREATE TYPE pairs_{c} AS ENUM (SELECT DISTINCT {c} FROM _addr WHERE {c} IS NOT NULL ORDER BY 1);"""
        for c in _PLACE_ENUMS
    )
    + f"""
CREATE OR REPLACE TEMP TABLE _place AS
SELECT * REPLACE ({", ".join(f"{c}::pairs_{c} AS {c}" for c in _PLACE_ENUMS)}) FROM _addr;

CREATE TABLE pairs AS
SELECT p.* EXCLUDE (src_k, dst_k), s.u AS src_u, d.u AS dst_u,
       s.net AS src_net, d.net AS dst_net,
       s.site AS src_site, s.role AS src_role, coalesce(s.crown, false) AS src_crown,
       d.site AS dst_site, d.role AS dst_role, coalesce(d.crown, false) AS dst_crown,
       coalesce(s.private, false) AS src_private, coalesce(d.private, false) AS dst_private,
       d.country AS dst_country, d.asn AS dst_asn, d.org AS dst_org,
       coalesce(d.hosting, false) AS dst_hosting
FROM _pairs p LEFT JOIN _place s ON s.k = p.src_k LEFT JOIN _place d ON d.k = p.dst_k;

DROP TABLE _pairs;
DROP TABLE _addr;
DROP TABLE _place;
"""
)


#: How many internal hosts talk to each external /24 ("rare" for the exfil and C2
#: detections), counted once per run from ``transfers`` (detect/transfers.py); host_u stands
#: for host: ip4 is one-to-one on valid addresses.
TRANSFER_NETS_SQL: Final = """
CREATE OR REPLACE TABLE transfer_nets AS
SELECT net, count(*) AS net_hosts
FROM (SELECT DISTINCT ext_u // 256 AS net, host_u FROM transfers)
GROUP BY net
"""

#: ``transfers`` without the allow-listed backup hosts, whose nightly uploads are expected:
#: what the exfiltration detections judge. A view, never materialized: a detection that
#: reads it several times scans ``transfers`` each time with only the columns and filters
#: that use needs, where a CTE referenced three times was copied (and spilled) whole.
HOST_TRANSFERS_SQL: Final = """
CREATE OR REPLACE TEMP VIEW host_transfers AS
SELECT * FROM transfers WHERE NOT is_backup_host(host_u)
"""


def _hosts_frame(inv: Inventory | None) -> pl.DataFrame:
    hosts = inv.hosts if inv else ()
    return pl.DataFrame(
        {
            "ip": [str(h.ip) for h in hosts],
            "ip_u": [int(h.ip) for h in hosts],
            "name": [h.name for h in hosts],
            "site": [h.site for h in hosts],
            "role": [h.role for h in hosts],
            "crown_jewel": [h.crown_jewel for h in hosts],
        },
        schema={
            "ip": pl.String,
            "ip_u": pl.UInt32,
            "name": pl.String,
            "site": pl.String,
            "role": pl.String,
            "crown_jewel": pl.Boolean,
        },
    )


def _gateways_frame(inv: Inventory | None) -> pl.DataFrame:
    gws = inv.gateways if inv else ()

    def u(a: ipaddress.IPv4Address | None) -> int | None:
        return int(a) if a is not None else None

    return pl.DataFrame(
        {
            "id": [g.id for g in gws],
            "hostname": [g.hostname for g in gws],
            "name_key": [g.hostname.upper() for g in gws],
            "vendor": [g.vendor for g in gws],
            "site": [g.site for g in gws],
            "inside": [str(g.inside) for g in gws],
            "inside_u": [int(g.inside) for g in gws],
            "outside": [str(g.outside) for g in gws],
            "outside_u": [int(g.outside) for g in gws],
            "management": [str(g.management) if g.management else None for g in gws],
            "management_u": [u(g.management) for g in gws],
            "pool_lo": [int(g.pool[0]) for g in gws],
            "pool_hi": [int(g.pool[-1]) for g in gws],
            "firmware": [g.firmware or None for g in gws],
        },
        schema={
            "id": pl.String,
            "hostname": pl.String,
            "name_key": pl.String,
            "vendor": pl.String,
            "site": pl.String,
            "inside": pl.String,
            "inside_u": pl.UInt32,
            "outside": pl.String,
            "outside_u": pl.UInt32,
            "management": pl.String,
            "management_u": pl.UInt32,
            "pool_lo": pl.UInt32,
            "pool_hi": pl.UInt32,
            "firmware": pl.String,
        },
    )


def _allow_frames(inv: Inventory | None, config: Config) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Inventory allow-lists and the config's, as (kind, lo, hi) ranges and (kind, name)."""
    nets: list[tuple[str, int, int]] = []
    users: list[tuple[str, str]] = []
    if inv is not None:
        for kind in ("scanners", "backup_hosts", "admin_hosts"):
            nets += [(kind, int(a), int(a)) for a in getattr(inv.allow, kind)]
        users += [("admin_users", n.lower()) for n in inv.allow.admin_users]
    for kind in ALLOW_KINDS:
        for value in config.allow.get(kind, ()):
            if kind == "admin_users":
                users.append((kind, value.lower()))
                continue
            net = ipaddress.ip_network(value, strict=False)
            if isinstance(net, ipaddress.IPv4Network):
                nets.append((kind, int(net[0]), int(net[-1])))
    return (
        pl.DataFrame(
            nets, schema={"kind": pl.String, "lo": pl.UInt32, "hi": pl.UInt32}, orient="row"
        ),
        pl.DataFrame(users, schema={"kind": pl.String, "name": pl.String}, orient="row"),
    )
