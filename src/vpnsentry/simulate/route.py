"""Which log sources see which flow, and how each names the flow's interfaces and sides.

A flow is generated once, as endpoints and bytes. Where it shows up follows from the estate's
topology: a Zeek sensor or NetFlow exporter at a site sees what crosses that site's Internet
edge (``internet``), its site-to-site links (``wan``) or reaches monitored subnets there
(``role:…``, ``crown_jewel``); a gateway logs the traffic of its VPN clients and, with
``traffic_log: all``, everything crossing its site's edge. A gateway never logs traffic that
it originates itself (a compromised box's own connections are invisible in its own logs, which
is the point of the vpn-appliance-breach scenario).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from vpnsentry.enrich.sites import SUBNET_ROLES, Subnet
from vpnsentry.simulate.core import mix
from vpnsentry.simulate.estate import Estate
from vpnsentry.simulate.services import (
    COUNTRY_NAMES,
    HTTPS,
    INTERNAL,
    INTERNET,
    WINDOWS_UPDATE,
    Service,
)

#: Roles of the lookup table: the inventory's subnet roles plus ``edge`` (public addresses of
#: a site: egress NAT and gateway outside interfaces).
ROLES: Final = (*SUBNET_ROLES, "edge")

#: Services of scenario and infrastructure flows that are not in the catalogues.
EXTRA: Final = {
    s.name: s
    for s in (
        HTTPS,
        WINDOWS_UPDATE,
        Service("vpn-ssl", 6, 443, "ssl", "HTTPS", (0, 0), (0, 0), (0, 0)),
        Service("vpn-dtls", 17, 443, "dtls", "udp/443", (0, 0), (0, 0), (0, 0)),
        Service("openvpn", 17, 1194, "-", "udp/1194", (0, 0), (0, 0), (0, 0)),
        Service("probe", 6, 0, "-", "tcp", (0, 0), (0, 0), (0, 0)),
        Service("smb-copy", 6, 445, "smb", "SMB", (0, 0), (0, 0), (0, 0)),
    )
}
SERVICES: Final = {**INTERNAL, **{s.name: s for s in INTERNET}, **EXTRA}
FORTI_NAME: Final = {k: v.forti for k, v in SERVICES.items()}
#: App-ID names of the services (web services not listed are ``ssl``).
PANOS_APP: Final = {
    "dns": "dns",
    "kerberos": "kerberos",
    "ldap": "ldap",
    "smb": "ms-ds-smb",
    "smb-copy": "ms-ds-smb",
    "git": "ssh",
    "ssh": "ssh",
    "mssql": "mssql-db",
    "wsus": "ms-update",
    "windows-update": "ms-update",
    "rdp": "ms-rdp",
    "winrm": "web-browsing",
    "http": "web-browsing",
    "rpc": "msrpc",
    "drsr": "msrpc",
    "quic": "quic",
    "teams": "stun",
    "vpn-ssl": "panos-global-protect",
    "vpn-dtls": "panos-global-protect",
    "openvpn": "openvpn",
    "probe": "incomplete",
}


@dataclass(frozen=True)
class Observer:
    """A flow source: ``kind`` is zeek, netflow or gateway; ``index`` its position."""

    id: str
    kind: str
    site: int
    sees: tuple[str, ...]
    gw: int = -1


class Router:
    """Vectorized topology: address -> site/role, and per-observer masks and views."""

    def __init__(self, est: Estate) -> None:
        self.est = est
        extra: list[Subnet] = []
        seen = {int(n.cidr[0]) for n in est.inv.subnets}
        for s in est.sites:
            for a in s.egress:
                if int(a) not in seen:
                    extra.append(Subnet(ipaddress.IPv4Network(f"{a}/32"), s.id, "edge"))
                    seen.add(int(a))
        for g in est.gateways:
            if int(g.outside) not in seen:
                extra.append(Subnet(ipaddress.IPv4Network(f"{g.outside}/32"), g.site, "edge"))
                seen.add(int(g.outside))
        nets = sorted([*est.inv.subnets, *extra], key=lambda n: int(n.cidr[0]))
        self.lo = np.array([int(n.cidr[0]) for n in nets], dtype=np.int64)
        self.hi = np.array([int(n.cidr[-1]) for n in nets], dtype=np.int64)
        self.site = np.array([est.site_ix[n.site] for n in nets], dtype=np.int16)
        self.role = np.array([ROLES.index(n.role) for n in nets], dtype=np.int8)
        self.crown = np.array([n.crown_jewel for n in nets], dtype=bool)
        self.pool_gw = np.array(
            [est.gw_ix[n.gateway] if n.gateway else -1 for n in nets], dtype=np.int16
        )
        self.public = _public_table(est)
        self.tunnel_name: dict[tuple[int, int], str] = {}
        for t in est.inv.tunnels:
            sa, sb = est.site_ix[t.a], est.site_ix[t.b]
            self.tunnel_name[(sa, sb)] = self.tunnel_name[(sb, sa)] = t.id
        self.own: dict[int, list[int]] = {
            i: [int(a) for a in (g.inside, g.outside, g.management) if a is not None]
            for i, g in enumerate(est.gateways)
        }
        self.observers = self._observers()

    def _observers(self) -> list[Observer]:
        out = []
        for s in self.est.inv.sensors:
            out.append(Observer(s.id, s.kind, self.est.site_ix[s.site], s.sees))
        for i, g in enumerate(self.est.gateways):
            out.append(Observer(g.id, "gateway", self.est.site_ix[g.site], (), i))
        return out

    # ---- enrichment -------------------------------------------------------------------

    def _lookup(self, ips: np.ndarray) -> np.ndarray:
        a = ips.astype(np.int64)
        pos = np.searchsorted(self.lo, a, side="right") - 1
        safe = np.clip(pos, 0, len(self.lo) - 1)
        ok = (pos >= 0) & (a <= self.hi[safe])
        return np.where(ok, safe, -1)

    def enrich(self, flows: pl.DataFrame) -> pl.DataFrame:
        """Add ``src_site``, ``dst_site`` (-1: Internet), ``dst_role``, ``dst_crown``,
        ``src_gw``/``dst_gw`` (the gateway whose VPN pool holds the address, -1 if none),
        ``forti`` (FortiGate's service name) and ``_delay`` (collector delay, microseconds)."""
        s = self._lookup(flows["src"].to_numpy())
        d = self._lookup(flows["dst"].to_numpy())

        def pick(table: np.ndarray, ix: np.ndarray, default: int | bool) -> np.ndarray:
            return np.where(ix >= 0, table[np.maximum(ix, 0)], default)

        delay = (
            mix(flows["ts"].to_numpy(), flows["src"].to_numpy(), flows["sport"].to_numpy())
            % np.uint64(800_000)
        ).astype(np.int64)
        return flows.with_columns(
            pl.Series("src_site", pick(self.site, s, -1), dtype=pl.Int16),
            pl.Series("dst_site", pick(self.site, d, -1), dtype=pl.Int16),
            pl.Series("dst_role", pick(self.role, d, -1), dtype=pl.Int8),
            pl.Series("dst_crown", pick(self.crown, d, False), dtype=pl.Boolean),
            pl.Series("src_gw", pick(self.pool_gw, s, -1), dtype=pl.Int16),
            pl.Series("dst_gw", pick(self.pool_gw, d, -1), dtype=pl.Int16),
            pl.col("svc").replace_strict(FORTI_NAME, default="tcp").alias("forti"),
            pl.Series("_delay", delay, dtype=pl.Int64),
        )

    # ---- masks ------------------------------------------------------------------------

    def sees(self, obs: Observer) -> pl.Expr:
        """Rows of an enriched flow frame that ``obs`` records."""
        site = obs.site
        src, dst = pl.col("src_site"), pl.col("dst_site")
        if obs.kind == "gateway":
            g = self.est.gateways[obs.gw]
            own = ~pl.col("src").is_in(self.own[obs.gw]) & ~pl.col("dst").is_in(self.own[obs.gw])
            vpn = pl.col("src_gw") == obs.gw
            if g.traffic_log == "none":
                return pl.lit(False)
            if g.traffic_log == "vpn":
                return vpn & own
            crosses = (src == site) != (dst == site)
            return (vpn | crosses) & own
        parts = []
        for what in obs.sees:
            if what == "internet":
                parts.append(((src == site) & (dst == -1)) | ((src == -1) & (dst == site)))
            elif what == "wan":
                parts.append(
                    (src >= 0) & (dst >= 0) & (src != dst) & ((src == site) | (dst == site))
                )
            elif what == "crown_jewel":
                parts.append((dst == site) & pl.col("dst_crown"))
            elif what.startswith("role:"):
                parts.append((dst == site) & (pl.col("dst_role") == ROLES.index(what[5:])))
        if not parts:
            return pl.lit(False)
        return pl.any_horizontal(parts)

    # ---- vendor views -------------------------------------------------------------------

    def country(self, ips: pl.Series) -> pl.Series:
        """FortiGate's country name per address ("Reserved" for private ones)."""
        lo, hi, names = self.public
        a = ips.to_numpy().astype(np.int64)
        pos = np.searchsorted(lo, a, side="right") - 1
        safe = np.clip(pos, 0, len(lo) - 1)
        known = (pos >= 0) & (a <= hi[safe])
        private = (
            ((a >= 0x0A000000) & (a <= 0x0AFFFFFF))
            | ((a >= 0xAC100000) & (a <= 0xAC1FFFFF))
            | ((a >= 0xC0A80000) & (a <= 0xC0A8FFFF))
        )
        # Index into names + ["Reserved", "United States"] (the fallback for unknown blocks).
        idx = np.where(private, len(names), np.where(known, safe, len(names) + 1))
        table = pl.Series([*names, "Reserved", "United States"], dtype=pl.String)
        return table.gather(pl.Series(idx, dtype=pl.UInt32))

    def region(self, ips: pl.Series) -> pl.Series:
        """PAN-OS's Source/Destination Region per address: the country code, or the private
        range (``10.0.0.0-10.255.255.255``) for internal addresses."""
        codes = {name: code for code, name in COUNTRY_NAMES.items()}
        names = self.country(ips)
        return names.replace_strict(
            {**codes, "Reserved": "10.0.0.0-10.255.255.255"}, default=names, return_dtype=pl.String
        )

    def _zone(self, side: str, obs: Observer) -> pl.Expr:
        """``vpn``, ``lan``, ``wan`` or the site-to-site tunnel's name, seen from the gateway."""
        site_col = pl.col(f"{side}_site")
        expr = pl.lit("wan")
        for (a, b), name in sorted(self.tunnel_name.items()):
            if a == obs.site:
                expr = pl.when(site_col == b).then(pl.lit(name)).otherwise(expr)
        expr = pl.when(site_col == obs.site).then(pl.lit("lan")).otherwise(expr)
        return pl.when(pl.col(f"{side}_gw") == obs.gw).then(pl.lit("vpn")).otherwise(expr)

    def gateway_view(self, obs: Observer, flows: pl.DataFrame, first_id: int) -> pl.DataFrame:
        """Add the vendor columns the gateway's traffic writer needs."""
        g = self.est.gateways[obs.gw]
        egress = self.est.egress(obs.site)
        internet = pl.col("dst_site") == -1
        nat = (
            pl.when(internet)
            .then(pl.lit(egress, dtype=pl.UInt32))
            .otherwise(pl.lit(None, dtype=pl.UInt32))
        )
        df = flows.with_columns(
            self._zone("src", obs).alias("_sz"),
            self._zone("dst", obs).alias("_dz"),
            nat.alias("nat"),
            pl.int_range(first_id, first_id + pl.len(), dtype=pl.Int64).alias("_id"),
        )
        if g.vendor == "fortinet_fortigate":

            def intf(zone: str) -> pl.Expr:
                z = pl.col(zone)
                return (
                    pl.when(z == "vpn")
                    .then(pl.lit("ssl.root"))
                    .when(z == "lan")
                    .then(pl.lit("port2"))
                    .when(z == "wan")
                    .then(pl.lit("port1"))
                    .otherwise(z)
                )

            def role(zone: str) -> pl.Expr:
                z = pl.col(zone)
                return (
                    pl.when(z == "lan")
                    .then(pl.lit("lan"))
                    .when(z == "wan")
                    .then(pl.lit("wan"))
                    .otherwise(pl.lit("undefined"))
                )

            pairs = {("vpn", "lan"): 5, ("vpn", "wan"): 7, ("lan", "wan"): 1, ("wan", "lan"): 4}
            pid = pl.lit(6)
            for (a, b), n in pairs.items():
                pid = (
                    pl.when((pl.col("_sz") == a) & (pl.col("_dz") == b))
                    .then(pl.lit(n))
                    .otherwise(pid)
                )
            pid = (
                pl.when(
                    (pl.col("_sz") != "vpn") & (pl.col("_sz") != "lan") & (pl.col("_sz") != "wan")
                )
                .then(pl.lit(3))
                .otherwise(pid)
            )
            return df.with_columns(
                intf("_sz").alias("srcintf"),
                role("_sz").alias("srcintfrole"),
                intf("_dz").alias("dstintf"),
                role("_dz").alias("dstintfrole"),
                self.country(flows["src"]).alias("srccountry"),
                self.country(flows["dst"]).alias("dstcountry"),
                pid.alias("policyid"),
                pl.col("_id").alias("sessionid"),
                pl.lit("VPN-Users").alias("group"),
            )
        if g.vendor == "panw_panos":
            return self._panos_view(df, flows)
        # Cisco ASA: inside is the site's LAN; VPN clients, tunnels and the Internet are outside.
        src_in = pl.col("_sz") == "lan"
        dst_in = pl.col("_dz") == "lan"
        return df.with_columns(
            (~src_in).alias("inbound"),
            pl.when(src_in).then(pl.lit("inside")).otherwise(pl.lit("outside")).alias("src_if"),
            pl.when(dst_in).then(pl.lit("inside")).otherwise(pl.lit("outside")).alias("dst_if"),
            pl.col("_id").alias("connid"),
        )

    def _panos_view(self, df: pl.DataFrame, flows: pl.DataFrame) -> pl.DataFrame:
        """PAN-OS zones (``gp-vpn`` on tunnel.1, ``trust``, ``untrust``, ``s2s-vpn`` on
        tunnel.2), a rule named after its zone pair, App-ID and regions."""
        zone = {"vpn": ("gp-vpn", "tunnel.1"), "lan": ("trust", "ethernet1/2")}
        zone["wan"] = ("untrust", "ethernet1/1")

        def pick(side: str, k: int, other: str) -> pl.Expr:
            z = pl.col(side)
            expr = pl.lit(other)
            for name, names in zone.items():
                expr = pl.when(z == name).then(pl.lit(names[k])).otherwise(expr)
            return expr

        from_zone, to_zone = pick("_sz", 0, "s2s-vpn"), pick("_dz", 0, "s2s-vpn")
        return df.with_columns(
            from_zone.alias("from_zone"),
            to_zone.alias("to_zone"),
            pick("_sz", 1, "tunnel.2").alias("from_if"),
            pick("_dz", 1, "tunnel.2").alias("to_if"),
            pl.concat_str([from_zone, pl.lit("-to-"), to_zone]).alias("rule"),
            pl.col("svc").replace_strict(PANOS_APP, default="ssl").alias("app"),
            pl.col("_id").alias("sessionid"),
            self.region(flows["src"]).alias("src_loc"),
            self.region(flows["dst"]).alias("dst_loc"),
        )

    def netflow_view(self, obs: Observer, flows: pl.DataFrame) -> pl.DataFrame:
        return flows.with_columns((pl.col("src_site") == obs.site).alias("src_here"))


def _public_table(est: Estate) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Known public prefixes with FortiGate country names, for ``srccountry``/``dstcountry``."""
    rows: dict[tuple[int, int], str] = {}
    for isp in [*est.isp_list, *est.cfg.hosting]:
        for p in isp.prefixes:
            rows[(int(p[0]), int(p[-1]))] = COUNTRY_NAMES.get(isp.country, isp.country)
    for svc in [*INTERNET, WINDOWS_UPDATE]:
        for p in svc.networks:
            rows[(int(p[0]), int(p[-1]))] = svc.country
    for s in est.sites:
        for a in s.egress:
            rows[(int(a), int(a))] = COUNTRY_NAMES.get(s.country, s.country)
    for g in est.gateways:
        c = est.sites[est.site_ix[g.site]].country
        rows[(int(g.outside), int(g.outside))] = COUNTRY_NAMES.get(c, c)
    keys = sorted(rows)
    return (
        np.array([k[0] for k in keys], dtype=np.int64),
        np.array([k[1] for k in keys], dtype=np.int64),
        [rows[k] for k in keys],
    )
