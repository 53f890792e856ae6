"""The simulated company: the site inventory plus people, their PCs, homes and habits.

The inventory (``enrich/sites.py``) says what the estate *is*; this module adds who works in
it: ``--users`` employees spread over the sites by ``staff_share``, each with a workstation
address, working hours in the site's time zone, a home ISP (for VPN logins), and flags for the
roles that make traffic look odd but legitimate (IT admins, R&D users of the crown jewels).
It also validates the inventory's ``simulation:`` section, reporting errors against the same
file and line as the inventory itself.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vpnsentry.enrich.sites import Gateway, Inventory, Site, SubnetIndex
from vpnsentry.errors import UsageError
from vpnsentry.simulate.core import U32, in_prefixes, ip_u32, mix
from vpnsentry.simulate.names import FALLBACK, NAMES

#: A country's time zone for travellers who visit a country without a site there.
COUNTRY_TZ: Final = {
    "JP": "Asia/Tokyo",
    "CN": "Asia/Shanghai",
    "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh",
    "SG": "Asia/Singapore",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "NL": "Europe/Amsterdam",
    "US": "America/New_York",
}


@dataclass(frozen=True)
class Isp:
    """A provider's address space in one country (residential ISP or hosting company)."""

    name: str
    country: str
    prefixes: tuple[ipaddress.IPv4Network, ...]
    asn: int | None = None
    source: str = ""


@dataclass(frozen=True)
class SimConfig:
    """The validated ``simulation:`` section of an inventory."""

    start: dt.date | None
    remote_share: float
    admin_share: float
    rd_share: float
    rd_subnet: ipaddress.IPv4Network | None
    isps: Mapping[str, tuple[Isp, ...]]
    hosting: tuple[Isp, ...]
    travel: tuple[str, ...]


def sim_config(inv: Inventory) -> SimConfig:
    """Validate ``inv.simulation``; errors name the inventory file, line and key."""
    sim = inv.simulation

    def err(path: tuple[str | int, ...], msg: str) -> UsageError:
        line = inv.line_of("simulation", *path)
        where = f"{inv.source}:{line}" if line else inv.source
        key = "simulation" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return UsageError(f"{where}: {key}: {msg}")

    allowed = {
        "start",
        "remote_share",
        "admin_share",
        "rd_share",
        "rd_subnet",
        "isps",
        "hosting",
        "travel",
    }
    for key in sim:
        if key not in allowed:
            raise err((key,), f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

    def share(key: str, default: float) -> float:
        v = sim.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise err((key,), f"expected a number between 0 and 1, got {v!r}")
        return float(v)

    def isp(v: Any, path: tuple[str | int, ...], country: str | None) -> Isp:
        if not isinstance(v, dict):
            raise err(path, "expected a mapping with name and prefixes")
        extra = set(v) - {"name", "asn", "country", "prefixes", "source"}
        if extra:
            raise err((*path, sorted(extra)[0]), "unknown key")
        if "name" not in v or "prefixes" not in v:
            raise err(path, "name and prefixes are required")
        c = country or v.get("country")
        if not isinstance(c, str) or len(c) != 2 or not c.isupper():
            raise err((*path, "country"), f"expected an ISO 3166 alpha-2 code, got {c!r}")
        nets = []
        raw = v["prefixes"]
        if not isinstance(raw, list) or not raw:
            raise err((*path, "prefixes"), "expected a non-empty list of networks")
        for i, p in enumerate(raw):
            try:
                net = ipaddress.IPv4Network(str(p), strict=True)
            except ValueError as exc:
                raise err((*path, "prefixes", i), f"{p!r} is not an IPv4 network ({exc})") from None
            if not net.is_global:
                raise err((*path, "prefixes", i), f"{net} is not public address space")
            nets.append(net)
        asn = v.get("asn")
        if asn is not None and (isinstance(asn, bool) or not isinstance(asn, int)):
            raise err((*path, "asn"), f"expected an AS number, got {asn!r}")
        return Isp(str(v["name"]), c, tuple(nets), asn, str(v.get("source", "")))

    raw_isps = sim.get("isps", {})
    if not isinstance(raw_isps, dict):
        raise err(("isps",), "expected a mapping of country code to a list of ISPs")
    isps: dict[str, tuple[Isp, ...]] = {}
    for country, lst in raw_isps.items():
        if not isinstance(lst, list) or not lst:
            raise err(("isps", country), "expected a non-empty list of ISPs")
        isps[country] = tuple(isp(v, ("isps", country, i), country) for i, v in enumerate(lst))
    for i, site in enumerate(inv.sites):
        if site.kind != "datacenter" and site.country not in isps:
            line = inv.line_of("sites", i, "country")
            raise UsageError(
                f"{inv.source}:{line}: sites[{i}].country: no simulation.isps entry for"
                f" {site.country!r}; the simulator needs home ISPs for {site.id}'s staff"
            )
    hosting_raw = sim.get("hosting", [])
    if not isinstance(hosting_raw, list) or not hosting_raw:
        raise err(("hosting",), "expected a non-empty list of hosting providers")
    hosting = tuple(isp(v, ("hosting", i), None) for i, v in enumerate(hosting_raw))
    travel_raw = sim.get("travel", sorted(isps))
    if not isinstance(travel_raw, list):
        raise err(("travel",), "expected a list of country codes")
    for i, c in enumerate(travel_raw):
        if c not in isps:
            raise err(("travel", i), f"{c!r} has no simulation.isps entry")
    start = sim.get("start")
    if start is not None and not isinstance(start, dt.date):
        raise err(("start",), f"expected a date (YYYY-MM-DD), got {start!r}")
    rd_subnet = None
    if "rd_subnet" in sim:
        try:
            rd_subnet = ipaddress.IPv4Network(str(sim["rd_subnet"]), strict=True)
        except ValueError as exc:
            raise err(("rd_subnet",), f"{sim['rd_subnet']!r} is not a network ({exc})") from None
        if not any(n.role == "workstations" and n.cidr == rd_subnet for n in inv.subnets):
            raise err(("rd_subnet",), f"{rd_subnet} is not one of the workstation subnets")
    return SimConfig(
        start=start,
        remote_share=share("remote_share", 0.5),
        admin_share=share("admin_share", 0.01),
        rd_share=share("rd_share", 0.2),
        rd_subnet=rd_subnet,
        isps=isps,
        hosting=hosting,
        travel=tuple(travel_raw),
    )


class Estate:
    """Inventory + people. Arrays indexed by user number hold each user's attributes."""

    def __init__(self, inv: Inventory, n_users: int, seed: int) -> None:
        if n_users < 1:
            raise UsageError("--users must be at least 1")
        if not any(s.staff_share > 0 for s in inv.sites):
            raise UsageError(f"{inv.source}: no site has a staff_share above 0; nobody works there")
        self.inv = inv
        self.cfg = sim_config(inv)
        self.seed = seed
        self.sites: tuple[Site, ...] = inv.sites
        self.site_ix = {s.id: i for i, s in enumerate(self.sites)}
        self.gateways: tuple[Gateway, ...] = inv.gateways
        self.gw_ix = {g.id: i for i, g in enumerate(self.gateways)}
        self.index: SubnetIndex = inv.subnet_index()
        self.isp_list: list[Isp] = [i for lst in self.cfg.isps.values() for i in lst]
        self._make_users(n_users)

    # ---- people ----------------------------------------------------------------------

    def _make_users(self, n: int) -> None:
        rng = np.random.default_rng([self.seed, 1])
        shares = np.array([s.staff_share for s in self.sites])
        site = rng.choice(len(self.sites), size=n, p=shares / shares.sum())
        site = np.sort(site).astype(np.int16)  # users numbered site by site
        self.n = n
        self.site = site
        hq = [i for i, s in enumerate(self.sites) if s.kind == "hq"]
        hq_site = hq[0] if hq else int(np.argmax(shares))
        self.hq = hq_site
        u = np.arange(n)
        self.rd = (
            (site == hq_site)
            & (rng.random(n) < self.cfg.rd_share)
            & (self.cfg.rd_subnet is not None)
        )
        self.admin = np.zeros(n, dtype=bool)
        n_admin = max(2, round(n * self.cfg.admin_share)) if n >= 4 else 0
        pool = np.flatnonzero(site == hq_site)
        if len(pool) < n_admin:
            pool = u
        self.admin[rng.choice(pool, size=min(n_admin, len(pool)), replace=False)] = True
        self.gw = np.full(n, -1, dtype=np.int16)
        for gi, g in enumerate(self.gateways):
            for sid in g.serves:
                self.gw[(site == self.site_ix[sid]) & (self.gw < 0)] = gi
        served = self.gw >= 0
        self.remote = served & ((rng.random(n) < self.cfg.remote_share) | self.admin)
        self.remote_p = np.where(self.remote, rng.uniform(0.15, 0.9, n), 0.0)
        self.start_h = np.clip(rng.normal(8.8, 0.6, n), 6.5, 11.0)
        self.len_h = np.clip(rng.normal(9.0, 0.7, n), 6.0, 12.0)
        self.ws = self._workstations(rng)
        self.names = self._names(rng)
        self.country = np.array([self.sites[s].country for s in site])
        # Home ISP: an ISP of the site's country (hosts in data centres have no staff).
        self.isp = np.zeros(n, dtype=np.int32)
        for c in np.unique(self.country):
            opts = [i for i, isp in enumerate(self.isp_list) if isp.country == c]
            sel = self.country == c
            self.isp[sel] = rng.choice(opts, size=int(sel.sum()))
        self.lease_days = rng.integers(7, 60, n)
        self.lease_phase = rng.integers(0, 60, n)

    def _workstations(self, rng: np.random.Generator) -> U32:
        ws = np.zeros(self.n, dtype=np.uint32)
        for si, s in enumerate(self.sites):
            nets = [x.cidr for x in s.subnets if x.role == "workstations"]
            rd_net = self.cfg.rd_subnet
            general = [x for x in nets if x != rd_net]
            for group, pool in ((self.rd, [rd_net] if rd_net in nets else []), (~self.rd, general)):
                members = np.flatnonzero((self.site == si) & group)
                if not len(members):
                    continue
                if not pool:
                    pool = nets
                addrs = (
                    np.concatenate(
                        [
                            np.arange(int(p[0]) + 10, int(p[-1]) - 1, dtype=np.uint64)
                            for p in pool
                            if p
                        ]
                    )
                    if pool
                    else np.zeros(0, dtype=np.uint64)
                )
                if len(addrs) < len(members):
                    raise UsageError(
                        f"{self.inv.source}: site {s.id} has {len(members)} staff but its"
                        f" workstation subnets hold only {len(addrs)} addresses; lower --users"
                        " or add workstation subnets"
                    )
                ws[members] = addrs[: len(members)].astype(np.uint32)
        return ws

    def _names(self, rng: np.random.Generator) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for s in self.site:
            given, family = NAMES.get(self.sites[s].country, NAMES[FALLBACK])
            base = f"{given[rng.integers(len(given))][0]}.{family[rng.integers(len(family))]}"
            k = seen.get(base, 0)
            seen[base] = k + 1
            out.append(base if k == 0 else f"{base}{k + 1}")
        return out

    # ---- addresses -------------------------------------------------------------------

    def home_ip(self, users: npt.NDArray[np.int64], day: int) -> U32:
        """Each user's home address on window day ``day`` (dynamic: changes per lease)."""
        epoch = (day + self.lease_phase[users]) // self.lease_days[users]
        h = mix(self.seed, 11, users, epoch)
        return self.isp_addresses(self.isp[users], h)

    def isp_addresses(self, isp: npt.NDArray[np.int32], h: npt.NDArray[np.uint64]) -> U32:
        """Addresses in each row's ISP (index into :attr:`isp_list`), chosen by hash ``h``."""
        out = np.zeros(len(isp), dtype=np.uint32)
        for i in np.unique(isp):
            sel = isp == i
            out[sel] = in_prefixes(list(self.isp_list[i].prefixes), h[sel])
        return out

    def hosts(self, role: str, site: int | None = None) -> U32:
        """Addresses of named hosts with ``role`` (at ``site`` if given)."""
        sid = None if site is None else self.sites[site].id
        return np.array([int(h.ip) for h in self.inv.hosts_with_role(role, sid)], dtype=np.uint32)

    def egress(self, site: int) -> int:
        """The site's public NAT address (its first egress, else its gateway's outside)."""
        s = self.sites[site]
        if s.egress:
            return int(s.egress[0])
        for g in self.gateways:
            if g.site == s.id:
                return int(g.outside)
        return ip_u32("192.0.2.1")

    def tz_of_country(self, country: str) -> str:
        for s in self.sites:
            if s.country == country:
                return s.timezone
        return COUNTRY_TZ.get(country, "UTC")

    def isps_in(self, country: str) -> list[int]:
        return [i for i, isp in enumerate(self.isp_list) if isp.country == country]
