"""The site inventory: the company's sites, subnets, gateways, sensors and allowed flows.

One YAML file describes the estate (``--sites FILE``; the simulator bundles a default). The
simulator builds its synthetic company from it and the detections read it to tell a branch PC
from a crown-jewel server, a VPN pool address from a gateway's inside interface, and an
allow-listed scanner from a host that suddenly fans out. Defining the schema once here keeps the
two in step; ``docs/sites.md`` documents every key.

Why the validation is strict (unknown keys, overlapping subnets, hosts outside their site are
errors): a typo in an inventory silently turns a crown jewel into "unknown", and the detections
that depend on it stop firing without anyone noticing. Every error names the file, line and key.

Addresses are IPv4: the schema, the lookups and the simulator share the ``uint32`` form.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import re
import shutil
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl
import yaml

from vpnsentry.errors import UsageError

SCHEMA_VERSION: Final = 1

#: Kinds of site. A data centre has no staff of its own but may host gateways and servers.
SITE_KINDS: Final = ("hq", "branch", "datacenter")
#: What a subnet is for. ``vpn_pool`` subnets are declared through ``gateways[].pool``.
SUBNET_ROLES: Final = (
    "workstations",
    "servers",
    "dmz",
    "management",
    "vpn_pool",
    "infrastructure",
    "guest",
    "lab",
)
#: What a named host does. Detections use these (a backup server moving gigabytes is normal).
HOST_ROLES: Final = (
    "domain_controller",
    "file_server",
    "source_code",
    "backup",
    "scanner",
    "mail",
    "intranet",
    "proxy",
    "wsus",
    "av_manager",
    "jump",
    "database",
    "erp",
)
#: Gateway vendors: the parser names, so a gateway's logs and its inventory entry agree.
GATEWAY_VENDORS: Final = ("fortinet_fortigate", "cisco_asa", "openvpn", "panw_panos")
#: How a gateway's syslog reaches the files (see the simulator's writers/syslog.py).
LOG_HEADERS: Final = ("rfc3339", "bsd", "pri", "rfc5424", "file")
#: Which forwarded traffic a gateway logs: all that crosses its site's edge, only VPN
#: clients' traffic, or none.
TRAFFIC_LOG: Final = ("all", "vpn", "none")
SENSOR_KINDS: Final = ("zeek", "netflow")
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Selector prefixes allowed in ``groups``; the bare words are ``internet``, ``any`` and
#: ``crown_jewel``.
SELECTOR_KINDS: Final = ("site", "role", "host_role", "host", "cidr", "group")
SELECTOR_WORDS: Final = ("internet", "any", "crown_jewel")

_ID_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

#: Columns of :meth:`Inventory.subnet_frame` (also the shape of "no inventory").
SUBNET_SCHEMA: Final[dict[str, pl.DataType]] = {
    "cidr": pl.String(),
    "net_lo": pl.UInt32(),
    "net_hi": pl.UInt32(),
    "site": pl.String(),
    "country": pl.String(),
    "timezone": pl.String(),
    "role": pl.String(),
    "crown_jewel": pl.Boolean(),
    "gateway": pl.String(),
}
_PORT_RE: Final = re.compile(r"^(tcp|udp|icmp)/(\d{1,5})(?:-(\d{1,5}))?$")
_MMDD_RE: Final = re.compile(r"^(\d{2})-(\d{2})$")


# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class Subnet:
    """An address range with one purpose at one site."""

    cidr: ipaddress.IPv4Network
    site: str
    role: str
    crown_jewel: bool = False
    name: str = ""
    gateway: str | None = None  # set for vpn_pool subnets: the gateway that hands them out


@dataclass(frozen=True)
class Host:
    """A named server or appliance with a fixed address."""

    name: str
    ip: ipaddress.IPv4Address
    site: str
    role: str
    crown_jewel: bool = False


@dataclass(frozen=True)
class Site:
    """An office or data centre: where it is, when it works, what it holds."""

    id: str
    name: str
    kind: str
    country: str
    city: str
    timezone: str
    weekend: tuple[int, ...]  # ISO weekday numbers 1..7 that are weekend days
    holidays: tuple[str, ...]  # "MM-DD" (every year) or "YYYY-MM-DD"
    egress: tuple[ipaddress.IPv4Address, ...]
    subnets: tuple[Subnet, ...]
    hosts: tuple[Host, ...]
    staff_share: float = 0.0

    def is_workday(self, day: dt.date) -> bool:
        """True unless ``day`` is a weekend day or a holiday at this site."""
        if day.isoweekday() in self.weekend:
            return False
        return day.strftime("%m-%d") not in self.holidays and day.isoformat() not in self.holidays


@dataclass(frozen=True)
class LogSetup:
    """How a gateway's log lines are framed when they reach the collector's files."""

    header: str
    collector: str = "syslog"


@dataclass(frozen=True)
class Gateway:
    """A VPN gateway: its interfaces, its client pool and which sites' users it serves."""

    id: str
    site: str
    vendor: str
    hostname: str
    inside: ipaddress.IPv4Address
    outside: ipaddress.IPv4Address
    pool: ipaddress.IPv4Network
    serves: tuple[str, ...]
    management: ipaddress.IPv4Address | None = None
    serial: str = ""
    firmware: str = ""
    log: LogSetup = field(default_factory=lambda: LogSetup("rfc3339"))
    traffic_log: str = "vpn"


@dataclass(frozen=True)
class Tunnel:
    """A site-to-site tunnel between two sites."""

    id: str
    a: str
    b: str


@dataclass(frozen=True)
class Sensor:
    """A flow source: a Zeek sensor or a NetFlow exporter, and what it can see.

    ``sees`` holds ``internet`` (the site's Internet edge), ``wan`` (site-to-site traffic),
    ``role:<subnet role>`` (traffic into those subnets at the site) or ``crown_jewel``.
    """

    id: str
    kind: str
    site: str
    sees: tuple[str, ...]


@dataclass(frozen=True)
class PortRange:
    """``tcp/445``, ``udp/500-4500``; ``proto`` ``any`` matches every port."""

    proto: str
    lo: int = 0
    hi: int = 65535


@dataclass(frozen=True)
class PolicyRule:
    """One allowed flow: from a group of sources to a group of destinations on ports."""

    name: str
    src: str
    dst: str
    ports: tuple[PortRange, ...]


@dataclass(frozen=True)
class AllowLists:
    """Known sources of unusual-looking but legitimate traffic (addresses, resolved)."""

    scanners: tuple[ipaddress.IPv4Address, ...] = ()
    backup_hosts: tuple[ipaddress.IPv4Address, ...] = ()
    admin_hosts: tuple[ipaddress.IPv4Address, ...] = ()
    admin_users: tuple[str, ...] = ()


@dataclass(frozen=True)
class Company:
    """Who the estate belongs to; ``ad_domain`` is the NetBIOS name used in user@domain."""

    name: str
    domain: str
    ad_domain: str


@dataclass(frozen=True)
class Inventory:
    """A validated site inventory. Build it with :func:`load_inventory` or :func:`parse_inventory`.

    ``simulation`` is the simulator's own section, passed through unvalidated here (the
    simulator validates it and reports errors against the same file and lines).
    """

    company: Company
    sites: tuple[Site, ...]
    gateways: tuple[Gateway, ...]
    tunnels: tuple[Tunnel, ...]
    sensors: tuple[Sensor, ...]
    groups: Mapping[str, tuple[str, ...]]
    allow: AllowLists
    policy: tuple[PolicyRule, ...]
    simulation: Mapping[str, Any]
    source: str = "<inventory>"
    lines: Mapping[tuple[str | int, ...], int] = field(default_factory=dict, repr=False)

    # ---- lookups -------------------------------------------------------------------

    def site(self, site_id: str) -> Site:
        """The site called ``site_id``; KeyError if there is none."""
        for s in self.sites:
            if s.id == site_id:
                return s
        raise KeyError(site_id)

    def gateway(self, gateway_id: str) -> Gateway:
        """The gateway called ``gateway_id``; KeyError if there is none."""
        for g in self.gateways:
            if g.id == gateway_id:
                return g
        raise KeyError(gateway_id)

    @property
    def subnets(self) -> tuple[Subnet, ...]:
        """Every subnet of every site, VPN pools included, sorted by address."""
        return tuple(
            sorted((n for s in self.sites for n in s.subnets), key=lambda n: int(n.cidr[0]))
        )

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Every named host of every site."""
        return tuple(h for s in self.sites for h in s.hosts)

    def hosts_with_role(self, role: str, site: str | None = None) -> tuple[Host, ...]:
        """Named hosts with ``role`` (at ``site`` if given), in inventory order."""
        return tuple(h for h in self.hosts if h.role == role and (site is None or h.site == site))

    def subnet_index(self) -> SubnetIndex:
        """A vectorized address -> subnet lookup over :attr:`subnets`."""
        return SubnetIndex(self.subnets)

    def subnet_frame(self) -> pl.DataFrame:
        """One row per subnet with ``net_lo``/``net_hi`` (UInt32) for range joins in SQL."""
        nets = self.subnets
        tz = {s.id: s.timezone for s in self.sites}
        country = {s.id: s.country for s in self.sites}
        return pl.DataFrame(
            {
                "cidr": [str(n.cidr) for n in nets],
                "net_lo": [int(n.cidr[0]) for n in nets],
                "net_hi": [int(n.cidr[-1]) for n in nets],
                "site": [n.site for n in nets],
                "country": [country[n.site] for n in nets],
                "timezone": [tz[n.site] for n in nets],
                "role": [n.role for n in nets],
                "crown_jewel": [n.crown_jewel for n in nets],
                "gateway": [n.gateway for n in nets],
            },
            schema=SUBNET_SCHEMA,
        )

    def line_of(self, *path: str | int) -> int | None:
        """The source line of ``path`` (or of its nearest ancestor), for error messages."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


class SubnetIndex:
    """Vectorized lookup of IPv4 addresses (as ``uint32``) in non-overlapping subnets."""

    def __init__(self, subnets: Sequence[Subnet]) -> None:
        self.subnets = tuple(sorted(subnets, key=lambda n: int(n.cidr[0])))
        self._lo = np.array([int(n.cidr[0]) for n in self.subnets], dtype=np.uint64)
        self._hi = np.array([int(n.cidr[-1]) for n in self.subnets], dtype=np.uint64)

    def lookup(self, ips: npt.ArrayLike) -> npt.NDArray[np.int32]:
        """Index into :attr:`subnets` for each address, -1 where no subnet holds it."""
        a = np.asarray(ips, dtype=np.uint64)
        pos = np.searchsorted(self._lo, a, side="right").astype(np.int64) - 1
        ok = pos >= 0
        safe = np.where(ok, pos, 0)
        if len(self._hi):
            ok &= a <= self._hi[safe]
        else:
            ok[:] = False
        return np.where(ok, safe, -1).astype(np.int32)


def ipv4_to_u32(ips: pl.Series) -> pl.Series:
    """Dotted-quad strings to ``UInt32`` (null where the text is not an IPv4 address)."""
    parts = ips.str.extract_groups(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
    octs = [parts.struct.field(str(i)).cast(pl.UInt32, strict=False) for i in range(1, 5)]
    bad = pl.any_horizontal([o > 255 for o in octs])
    frame = pl.DataFrame({f"o{i}": o for i, o in enumerate(octs)})
    value = (
        pl.col("o0") * 16777216 + pl.col("o1") * 65536 + pl.col("o2") * 256 + pl.col("o3")
    ).cast(pl.UInt32)
    out = frame.select(pl.when(~bad).then(value).alias(ips.name)).to_series()
    return out


# --------------------------------------------------------------------------- loading


#: Where a store keeps the inventory it was last given (``<store>/sites.yaml``).
STORE_SITES: Final = "sites.yaml"


def remembered_inventory(store_dir: Path, sites: Path | None) -> Inventory | None:
    """Load ``sites`` and keep a copy in the store, or load the store's copy, or None.

    Why remember it: the inventory describes the company, not one run; an analyst who gave
    it to ``detect`` once should not get silently worse results from ``correlate`` or a
    later ``detect`` that forgot ``--sites``.
    """
    kept = Path(store_dir) / STORE_SITES
    if sites is not None:
        inv = load_inventory(sites)
        # the same file by another name (a hard-linked copy of a store) needs no copy
        if Path(store_dir).is_dir() and not (kept.exists() and kept.samefile(sites)):
            shutil.copyfile(sites, kept)
        return inv
    if kept.exists():
        return load_inventory(kept)
    return None


def load_inventory(path: Path) -> Inventory:
    """Read and validate a site inventory file; :class:`UsageError` says what is wrong where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read site inventory {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return parse_inventory(text, source=str(path))


def parse_inventory(text: str, *, source: str = "<inventory>") -> Inventory:
    """Validate inventory YAML ``text``; ``source`` names it in error messages."""
    data, lines = _compose(text, source)
    return _Builder(source, lines).build(data)


def _compose(text: str, source: str) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """YAML to plain Python objects plus the line of every mapping key and sequence item."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise UsageError(f"{where}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{source}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if node is None:
        raise UsageError(f"{source}: the site inventory is empty")
    lines: dict[tuple[str | int, ...], int] = {}
    constructor = yaml.SafeLoader("")

    def plain(n: yaml.Node, path: tuple[str | int, ...]) -> Any:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k, v in n.value:
                key = constructor.construct_object(k, deep=True)
                if not isinstance(key, str):
                    raise UsageError(
                        f"{source}:{k.start_mark.line + 1}: keys must be text, got {key!r}"
                    )
                if key in out:
                    raise UsageError(f"{source}:{k.start_mark.line + 1}: duplicate key {key!r}")
                lines[(*path, key)] = k.start_mark.line + 1
                out[key] = plain(v, (*path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [plain(v, (*path, i)) for i, v in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except yaml.YAMLError as exc:
            raise UsageError(f"{source}:{n.start_mark.line + 1}: {exc}") from exc

    try:
        return plain(node, ()), lines
    finally:
        constructor.dispose()


def _fmt_path(path: Sequence[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "(top level)"


class _Builder:
    """Validates the plain data against the schema, one helper per section."""

    def __init__(self, source: str, lines: dict[tuple[str | int, ...], int]) -> None:
        self.source = source
        self.lines = lines

    # ---- error helpers -----------------------------------------------------------

    def error(self, path: Sequence[str | int], msg: str) -> UsageError:
        """An error that names the file, the line of ``path`` and the key path."""
        line = None
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                break
        where = f"{self.source}:{line}" if line else self.source
        return UsageError(f"{where}: {_fmt_path(path)}: {msg}")

    def mapping(
        self,
        value: Any,
        path: tuple[str | int, ...],
        required: Iterable[str],
        optional: Iterable[str] = (),
    ) -> dict[str, Any]:
        """``value`` as a mapping with exactly the allowed keys."""
        if not isinstance(value, dict):
            raise self.error(path, f"expected a mapping, got {_kind(value)}")
        req = tuple(required)
        allowed = set(req) | set(optional)
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.error((*path, key), f"unknown key {key!r} (allowed: {hint})")
        for key in req:
            if key not in value:
                raise self.error(path, f"missing required key {key!r}")
        return value

    def seq(self, value: Any, path: tuple[str | int, ...]) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"expected a list, got {_kind(value)}")
        return value

    def text(self, value: Any, path: tuple[str | int, ...]) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(path, f"expected text, got {_kind(value)}")
        s = str(value).strip()
        if not s:
            raise self.error(path, "must not be empty")
        return s

    def ident(self, value: Any, path: tuple[str | int, ...]) -> str:
        s = self.text(value, path)
        if not _ID_RE.match(s):
            raise self.error(path, f"{s!r} is not an id (lower case letters, digits, . _ -)")
        return s

    def choice(self, value: Any, path: tuple[str | int, ...], options: Sequence[str]) -> str:
        s = self.text(value, path)
        if s not in options:
            raise self.error(path, f"{s!r} is not one of: {', '.join(options)}")
        return s

    def flag(self, value: Any, path: tuple[str | int, ...]) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"expected true or false, got {_kind(value)}")
        return value

    def address(self, value: Any, path: tuple[str | int, ...]) -> ipaddress.IPv4Address:
        s = self.text(value, path)
        try:
            return ipaddress.IPv4Address(s)
        except ValueError:
            raise self.error(path, f"{s!r} is not an IPv4 address") from None

    def network(self, value: Any, path: tuple[str | int, ...]) -> ipaddress.IPv4Network:
        s = self.text(value, path)
        try:
            return ipaddress.IPv4Network(s, strict=True)
        except ValueError as exc:
            raise self.error(path, f"{s!r} is not an IPv4 network ({exc})") from None

    def share(self, value: Any, path: tuple[str | int, ...]) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(path, f"expected a number, got {_kind(value)}")
        if not 0 <= float(value) <= 1:
            raise self.error(path, f"{value} is not between 0 and 1")
        return float(value)

    # ---- sections ------------------------------------------------------------------

    def build(self, data: Any) -> Inventory:
        top = self.mapping(
            data,
            (),
            ("version", "company", "sites", "gateways"),
            ("tunnels", "sensors", "groups", "allow", "policy", "simulation"),
        )
        if top["version"] != SCHEMA_VERSION:
            raise self.error(
                ("version",), f"unsupported version {top['version']!r} (expected {SCHEMA_VERSION})"
            )
        company = self.company(top["company"])
        site_specs = self.seq(top["sites"], ("sites",))
        if not site_specs:
            raise self.error(("sites",), "at least one site is required")
        gateways = [
            self.gateway(g, ("gateways", i))
            for i, g in enumerate(self.seq(top["gateways"], ("gateways",)))
        ]
        sites = [self.site(s, ("sites", i), gateways) for i, s in enumerate(site_specs)]
        self.unique([s.id for s in sites], "sites", "site id")
        self.unique([g.id for g in gateways], "gateways", "gateway id")
        site_ids = [s.id for s in sites]
        for i, g in enumerate(gateways):
            self.check_gateway(g, ("gateways", i), sites)
        self.check_addresses(sites, gateways)
        tunnels = [
            self.tunnel(t, ("tunnels", i), site_ids)
            for i, t in enumerate(self.seq(top.get("tunnels"), ("tunnels",)))
        ]
        sensors = [
            self.sensor(s, ("sensors", i), site_ids)
            for i, s in enumerate(self.seq(top.get("sensors"), ("sensors",)))
        ]
        self.unique([t.id for t in tunnels], "tunnels", "tunnel id")
        self.unique([s.id for s in sensors], "sensors", "sensor id")
        hosts = {h.name: h for s in sites for h in s.hosts}
        self.unique([h.name for s in sites for h in s.hosts], "sites", "host name")
        groups = self.groups(top.get("groups"), sites, hosts)
        allow = self.allow(top.get("allow"), hosts)
        policy = [
            self.rule(r, ("policy", i), groups)
            for i, r in enumerate(self.seq(top.get("policy"), ("policy",)))
        ]
        sim = top.get("simulation") or {}
        if not isinstance(sim, dict):
            raise self.error(("simulation",), f"expected a mapping, got {_kind(sim)}")
        return Inventory(
            company=company,
            sites=tuple(sites),
            gateways=tuple(gateways),
            tunnels=tuple(tunnels),
            sensors=tuple(sensors),
            groups=groups,
            allow=allow,
            policy=tuple(policy),
            simulation=sim,
            source=self.source,
            lines=dict(self.lines),
        )

    def unique(self, values: Sequence[str], section: str, what: str) -> None:
        seen: set[str] = set()
        for v in values:
            if v in seen:
                raise self.error((section,), f"duplicate {what} {v!r}")
            seen.add(v)

    def company(self, value: Any) -> Company:
        p: tuple[str | int, ...] = ("company",)
        m = self.mapping(value, p, ("name", "domain", "ad_domain"))
        return Company(
            name=self.text(m["name"], (*p, "name")),
            domain=self.text(m["domain"], (*p, "domain")),
            ad_domain=self.text(m["ad_domain"], (*p, "ad_domain")),
        )

    def site(self, value: Any, p: tuple[str | int, ...], gateways: list[Gateway]) -> Site:
        m = self.mapping(
            value,
            p,
            ("id", "name", "kind", "country", "timezone"),
            ("city", "weekend", "holidays", "egress", "subnets", "hosts", "staff_share"),
        )
        sid = self.ident(m["id"], (*p, "id"))
        country = self.text(m["country"], (*p, "country"))
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise self.error((*p, "country"), f"{country!r} is not an ISO 3166 alpha-2 code")
        tz = self.text(m["timezone"], (*p, "timezone"))
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise self.error((*p, "timezone"), f"{tz!r} is not an IANA time zone") from None
        weekend_raw = m.get("weekend", ["sat", "sun"])
        weekend = tuple(
            WEEKDAYS.index(self.choice(d, (*p, "weekend", i), WEEKDAYS)) + 1
            for i, d in enumerate(self.seq(weekend_raw, (*p, "weekend")))
        )
        holidays = tuple(
            self.holiday(h, (*p, "holidays", i))
            for i, h in enumerate(self.seq(m.get("holidays"), (*p, "holidays")))
        )
        egress = tuple(
            self.public(self.address(a, (*p, "egress", i)), (*p, "egress", i))
            for i, a in enumerate(self.seq(m.get("egress"), (*p, "egress")))
        )
        subnets = [
            self.subnet(n, (*p, "subnets", i), sid)
            for i, n in enumerate(self.seq(m.get("subnets"), (*p, "subnets")))
        ]
        for g in gateways:
            if g.site == sid:
                subnets.append(Subnet(g.pool, sid, "vpn_pool", False, f"{g.id} pool", g.id))
        hosts = [
            self.host(h, (*p, "hosts", i), sid, subnets)
            for i, h in enumerate(self.seq(m.get("hosts"), (*p, "hosts")))
        ]
        return Site(
            id=sid,
            name=self.text(m["name"], (*p, "name")),
            kind=self.choice(m["kind"], (*p, "kind"), SITE_KINDS),
            country=country,
            city=self.text(m.get("city", m["name"]), (*p, "city")),
            timezone=tz,
            weekend=weekend,
            holidays=holidays,
            egress=egress,
            subnets=tuple(subnets),
            hosts=tuple(hosts),
            staff_share=self.share(m.get("staff_share", 0.0), (*p, "staff_share")),
        )

    def holiday(self, value: Any, p: tuple[str | int, ...]) -> str:
        if isinstance(value, dt.date):
            return value.isoformat()
        s = self.text(value, p)
        mm = _MMDD_RE.match(s)
        try:
            if mm:
                dt.date(2000, int(mm.group(1)), int(mm.group(2)))  # 2000: leap year
            else:
                dt.date.fromisoformat(s)
        except ValueError:
            raise self.error(p, f"{s!r} is not a date (MM-DD or YYYY-MM-DD)") from None
        return s

    def public(
        self, addr: ipaddress.IPv4Address, p: tuple[str | int, ...]
    ) -> ipaddress.IPv4Address:
        if not addr.is_global:
            raise self.error(p, f"{addr} is not a public address")
        return addr

    def subnet(self, value: Any, p: tuple[str | int, ...], site: str) -> Subnet:
        m = self.mapping(value, p, ("cidr", "role"), ("name", "crown_jewel"))
        role = self.choice(m["role"], (*p, "role"), SUBNET_ROLES)
        if role == "vpn_pool":
            raise self.error((*p, "role"), "declare VPN pools with gateways[].pool")
        return Subnet(
            cidr=self.network(m["cidr"], (*p, "cidr")),
            site=site,
            role=role,
            crown_jewel=self.flag(m.get("crown_jewel", False), (*p, "crown_jewel")),
            name=self.text(m["name"], (*p, "name")) if "name" in m else "",
        )

    def host(self, value: Any, p: tuple[str | int, ...], site: str, subnets: list[Subnet]) -> Host:
        m = self.mapping(value, p, ("name", "ip", "role"), ("crown_jewel",))
        ip = self.address(m["ip"], (*p, "ip"))
        home = [n for n in subnets if ip in n.cidr]
        if not home:
            raise self.error((*p, "ip"), f"{ip} is in none of site {site!r}'s subnets")
        jewel = m.get("crown_jewel")
        return Host(
            name=self.ident(m["name"], (*p, "name")),
            ip=ip,
            site=site,
            role=self.choice(m["role"], (*p, "role"), HOST_ROLES),
            crown_jewel=home[0].crown_jewel
            if jewel is None
            else self.flag(jewel, (*p, "crown_jewel")),
        )

    def gateway(self, value: Any, p: tuple[str | int, ...]) -> Gateway:
        m = self.mapping(
            value,
            p,
            ("id", "site", "vendor", "hostname", "inside", "outside", "pool", "serves"),
            ("management", "serial", "firmware", "log", "traffic_log"),
        )
        log = LogSetup("rfc3339")
        if "log" in m:
            lm = self.mapping(m["log"], (*p, "log"), ("header",), ("collector",))
            log = LogSetup(
                header=self.choice(lm["header"], (*p, "log", "header"), LOG_HEADERS),
                collector=self.text(lm.get("collector", "syslog"), (*p, "log", "collector")),
            )
        return Gateway(
            id=self.ident(m["id"], (*p, "id")),
            site=self.ident(m["site"], (*p, "site")),
            vendor=self.choice(m["vendor"], (*p, "vendor"), GATEWAY_VENDORS),
            hostname=self.text(m["hostname"], (*p, "hostname")),
            inside=self.address(m["inside"], (*p, "inside")),
            outside=self.public(self.address(m["outside"], (*p, "outside")), (*p, "outside")),
            pool=self.network(m["pool"], (*p, "pool")),
            serves=tuple(
                self.ident(s, (*p, "serves", i))
                for i, s in enumerate(self.seq(m["serves"], (*p, "serves")))
            ),
            management=self.address(m["management"], (*p, "management"))
            if "management" in m
            else None,
            serial=self.text(m["serial"], (*p, "serial")) if "serial" in m else "",
            firmware=self.text(m["firmware"], (*p, "firmware")) if "firmware" in m else "",
            log=log,
            traffic_log=self.choice(m.get("traffic_log", "vpn"), (*p, "traffic_log"), TRAFFIC_LOG),
        )

    def check_gateway(self, g: Gateway, p: tuple[str | int, ...], sites: list[Site]) -> None:
        by_id = {s.id: s for s in sites}
        if g.site not in by_id:
            raise self.error((*p, "site"), f"unknown site {g.site!r}")
        for i, s in enumerate(g.serves):
            if s not in by_id:
                raise self.error((*p, "serves", i), f"unknown site {s!r}")
        home = [n for n in by_id[g.site].subnets if n.role != "vpn_pool"]
        for key, addr in (("inside", g.inside), ("management", g.management)):
            if addr is not None and not any(addr in n.cidr for n in home):
                raise self.error((*p, key), f"{addr} is in none of site {g.site!r}'s subnets")
        if g.pool.is_global:
            raise self.error((*p, "pool"), f"{g.pool} is public; VPN pools are private ranges")

    def check_addresses(self, sites: list[Site], gateways: list[Gateway]) -> None:
        """Subnets must not overlap anywhere in the estate: each address has one meaning."""
        nets = sorted(
            ((n, i, j) for i, s in enumerate(sites) for j, n in enumerate(s.subnets)),
            key=lambda t: int(t[0].cidr[0]),
        )
        gw_ix = {g.id: k for k, g in enumerate(gateways)}
        for (a, _, _), (b, i, j) in itertools.pairwise(nets):
            if a.cidr.overlaps(b.cidr):
                where: tuple[str | int, ...] = (
                    ("gateways", gw_ix[b.gateway], "pool")
                    if b.gateway is not None
                    else ("sites", i, "subnets", j)
                )
                raise self.error(
                    where, f"{b.cidr} ({b.site}, {b.role}) overlaps {a.cidr} ({a.site}, {a.role})"
                )

    def tunnel(self, value: Any, p: tuple[str | int, ...], site_ids: list[str]) -> Tunnel:
        m = self.mapping(value, p, ("id", "a", "b"))
        t = Tunnel(
            id=self.ident(m["id"], (*p, "id")),
            a=self.ident(m["a"], (*p, "a")),
            b=self.ident(m["b"], (*p, "b")),
        )
        for key in ("a", "b"):
            if getattr(t, key) not in site_ids:
                raise self.error((*p, key), f"unknown site {getattr(t, key)!r}")
        if t.a == t.b:
            raise self.error(p, "a tunnel joins two different sites")
        return t

    def sensor(self, value: Any, p: tuple[str | int, ...], site_ids: list[str]) -> Sensor:
        m = self.mapping(value, p, ("id", "kind", "site", "sees"))
        site = self.ident(m["site"], (*p, "site"))
        if site not in site_ids:
            raise self.error((*p, "site"), f"unknown site {site!r}")
        sees = []
        for i, v in enumerate(self.seq(m["sees"], (*p, "sees"))):
            s = self.text(v, (*p, "sees", i))
            if s.startswith("role:"):
                self.choice(s[5:], (*p, "sees", i), SUBNET_ROLES)
            elif s not in ("internet", "wan", "crown_jewel"):
                raise self.error(
                    (*p, "sees", i), f"{s!r}: use internet, wan, crown_jewel or role:<subnet role>"
                )
            sees.append(s)
        return Sensor(
            id=self.ident(m["id"], (*p, "id")),
            kind=self.choice(m["kind"], (*p, "kind"), SENSOR_KINDS),
            site=site,
            sees=tuple(sees),
        )

    def selector(
        self,
        value: Any,
        p: tuple[str | int, ...],
        sites: list[Site],
        hosts: Mapping[str, Host],
        group_names: set[str],
    ) -> str:
        s = self.text(value, p)
        if s in SELECTOR_WORDS:
            return s
        kind, sep, arg = s.partition(":")
        if not sep or kind not in SELECTOR_KINDS:
            raise self.error(
                p,
                f"{s!r} is not a selector ({', '.join(k + ':…' for k in SELECTOR_KINDS)},"
                f" {', '.join(SELECTOR_WORDS)})",
            )
        ok = {
            "site": arg in {x.id for x in sites},
            "role": arg in SUBNET_ROLES,
            "host_role": arg in HOST_ROLES,
            "host": arg in hosts,
            "group": arg in group_names,
        }
        if kind == "cidr":
            self.network(arg, p)
        elif not ok[kind]:
            raise self.error(p, f"{s!r}: unknown {kind.replace('_', ' ')} {arg!r}")
        return s

    def groups(
        self, value: Any, sites: list[Site], hosts: Mapping[str, Host]
    ) -> dict[str, tuple[str, ...]]:
        if value is None:
            return {}
        p: tuple[str | int, ...] = ("groups",)
        if not isinstance(value, dict):
            raise self.error(
                p, f"expected a mapping of group name to selectors, got {_kind(value)}"
            )
        names = set(value)
        out: dict[str, tuple[str, ...]] = {}
        for name, sels in value.items():
            self.ident(name, (*p, name))
            out[name] = tuple(
                self.selector(s, (*p, name, i), sites, hosts, names)
                for i, s in enumerate(self.seq(sels, (*p, name)))
            )
        return out

    def resolve(
        self, value: Any, p: tuple[str | int, ...], hosts: Mapping[str, Host]
    ) -> ipaddress.IPv4Address:
        """A host name or an address."""
        s = self.text(value, p)
        if s in hosts:
            return hosts[s].ip
        try:
            return ipaddress.IPv4Address(s)
        except ValueError:
            raise self.error(p, f"{s!r} is neither a host name nor an IPv4 address") from None

    def allow(self, value: Any, hosts: Mapping[str, Host]) -> AllowLists:
        if value is None:
            return AllowLists()
        p: tuple[str | int, ...] = ("allow",)
        m = self.mapping(value, p, (), ("scanners", "backup_hosts", "admin_hosts", "admin_users"))

        def addrs(key: str) -> tuple[ipaddress.IPv4Address, ...]:
            return tuple(
                self.resolve(v, (*p, key, i), hosts)
                for i, v in enumerate(self.seq(m.get(key), (*p, key)))
            )

        return AllowLists(
            scanners=addrs("scanners"),
            backup_hosts=addrs("backup_hosts"),
            admin_hosts=addrs("admin_hosts"),
            admin_users=tuple(
                self.text(v, (*p, "admin_users", i))
                for i, v in enumerate(self.seq(m.get("admin_users"), (*p, "admin_users")))
            ),
        )

    def rule(
        self, value: Any, p: tuple[str | int, ...], groups: Mapping[str, tuple[str, ...]]
    ) -> PolicyRule:
        m = self.mapping(value, p, ("from", "to", "ports"), ("name",))
        for key in ("from", "to"):
            g = self.text(m[key], (*p, key))
            if g not in groups and g not in SELECTOR_WORDS:
                raise self.error((*p, key), f"unknown group {g!r} (define it under groups:)")
        ports = []
        for i, v in enumerate(self.seq(m["ports"], (*p, "ports"))):
            s = self.text(v, (*p, "ports", i)).lower()
            if s == "any":
                ports.append(PortRange("any"))
                continue
            pm = _PORT_RE.match(s)
            lo = int(pm.group(2)) if pm else -1
            hi = int(pm.group(3) or lo) if pm else -1
            if not pm or not 0 <= lo <= hi <= 65535:
                raise self.error((*p, "ports", i), f"{s!r} is not tcp/N, udp/N-M, icmp/N or any")
            ports.append(PortRange(pm.group(1), lo, hi))
        if not ports:
            raise self.error((*p, "ports"), "at least one port (or 'any') is required")
        name = self.text(m["name"], (*p, "name")) if "name" in m else f"rule-{p[-1]}"
        return PolicyRule(
            name=name,
            src=self.text(m["from"], (*p, "from")),
            dst=self.text(m["to"], (*p, "to")),
            ports=tuple(ports),
        )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
