"""Group alerts into incidents that follow the attacker's movement.

An analyst wants "this gateway was broken into on 5 March, this is what the attacker touched,
in this order, and this is what left", not four hundred alerts. :func:`correlate` builds that
from the stored alerts in four steps (docs/incidents.md explains the choices):

1. **Entities.** Every alert names entities: users, addresses, host names, gateways (its
   ``source.ip``, ``destination.ip``, ``user.name``, ``host.name``, ``observer.name`` and the
   ``related.*`` lists). With the site inventory a gateway's inside, management and outside
   addresses, its id and its hostname are one entity (``gw:vpn-sha-dc01``), and a named
   host's name is its address. Each mention gets a *role*: **actor** (the alert's source,
   user or host), **target** (its destination), **mention** (only listed in ``related.*``)
   or **context** (where it was seen: the gateway a login went through, a site's NAT
   address, a generic account name such as ``admin``).
2. **Links.** Two alerts are linked when they share an entity within a time window (the gap
   between their evidence) and the roles say the attacker moved through it: actor with
   anything (the same user, address or host acting again, or a host reached earlier that now
   acts itself: gateway -> branch PC -> HQ server), a target shared by two alerts (the same
   C2 server or a PC reached twice) unless that target is a server (a domain controller or
   file server every user reaches), never through context or between two mere mentions.
   A gateway links only its *appliance-side* alerts (``appliance_*`` detections, or traffic
   from its own inside or management address); every VPN login names a gateway, so logins
   are never joined just for using the same one. Windows: ``window`` for most entities,
   ``gateway_window`` for a compromised appliance (it stays compromised), ``pool_window``
   for VPN tunnel addresses (reassigned between users), ``mention_window`` for a link
   through a mere mention.
3. **Hubs.** An entity that co-occurs with more than ``max_entity_degree`` distinct other
   sources and destinations (a domain controller, a proxy, a shared service account) links
   nothing: it would chain unrelated attacks into one. Appliance-side gateways are exempt
   (only appliance-side alerts use them, and those are few).
4. **Incidents** are the connected components (union-find). Each gets a stable id (``INC-``
   and a hash of its founding, i.e. earliest, alert; a rerun that finds the founding alert of
   an earlier incident keeps that incident's id, so new evidence extends it), a title from
   its kill-chain progress, severity, confidence, ATT&CK tactics and techniques, dwell time,
   the users, hosts, sites, gateways, bytes that left and the attack path.

Pure Python over a few thousand alerts at most: fast, and each decision explainable (the link
that joined each alert is kept in ``extra["links"]``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from vpnsentry.correlate.attack import attribute
from vpnsentry.correlate.model import (
    Incident,
    PathEdge,
    incident_from_dict,
    incident_to_dict,
)
from vpnsentry.detect.base import SEVERITIES, TACTICS, detections
from vpnsentry.enrich.sites import Gateway, Host, Inventory, Subnet

__all__ = [
    "Params",
    "correlate",
    "fmt_bytes",
    "fmt_duration",
    "incident_from_dict",
    "incident_id",
    "incident_to_dict",
]

# Roles of an entity in one alert, weakest first.
CONTEXT: Final = 0
MENTION: Final = 1
TARGET: Final = 2
ACTOR: Final = 3
ROLE_NAMES: Final = {CONTEXT: "context", MENTION: "mention", TARGET: "target", ACTOR: "actor"}

#: Account names every Internet scanner tries: sharing one proves nothing.
GENERIC_USERS: Final = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "test",
        "guest",
        "user",
        "vpn",
        "support",
        "sa",
        "operator",
        "default",
        "cisco",
        "fortinet",
        "demo",
        "ftp",
        "pi",
        "ubnt",
        "anonymous",
    }
)

#: Subnet roles whose hosts every user reaches: shared as a destination they link nothing.
SERVER_ROLES: Final = frozenset({"servers", "dmz", "infrastructure", "management"})

#: Detection families whose alerts describe a movement (source -> destination).
PATH_FAMILIES: Final = ("lateral_", "appliance_", "collection_", "c2_", "exfil_")
PATH_TACTICS: Final = frozenset({"TA0008", "TA0011", "TA0010"})
#: Titles stop adding later steps past this many characters.
MAX_TITLE: Final = 140
#: Tactics whose alerts' listed addresses (related.ip) are places the attacker reached.
MOVE_TACTICS: Final = frozenset({"TA0008", "TA0009", "TA0011", "TA0010"})
#: Probing only: an appliance alert with nothing more says nothing about the box itself.
RECON_TACTICS: Final = frozenset({"TA0043", "TA0042"})

_PRIVATE_NETS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
)
_TACTIC_ORDER: Final = {t: i for i, t in enumerate(TACTICS)}
_NEVER: Final = dt.datetime.max.replace(tzinfo=dt.UTC)
_SEV_ORDER: Final = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Params:
    """Correlation knobs (docs/incidents.md)."""

    window: dt.timedelta = dt.timedelta(days=7)
    gateway_window: dt.timedelta = dt.timedelta(days=30)
    compromise_window: dt.timedelta = dt.timedelta(days=30)
    pool_window: dt.timedelta = dt.timedelta(hours=12)
    mention_window: dt.timedelta = dt.timedelta(days=1)
    max_entity_degree: int = 25


# -- entity resolution --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ip:
    """What the inventory knows about an address."""

    text: str
    key: str  # entity key: "gw:<id>" or "ip:<address>"
    kind: str  # gateway, pool, internal, external, egress
    iface: str = ""  # gateway interface: inside, management, outside
    serverish: bool = False
    site: str = ""
    role: str = ""  # subnet role or host role
    name: str = ""  # inventory host name


def _is_private(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(addr.version == n.version and addr in n for n in _PRIVATE_NETS)


def norm_user(name: str) -> str:
    """``KASUMI\\\\e.sasaki`` / ``e.sasaki@kasumi`` -> ``e.sasaki``."""
    return name.rsplit("\\", 1)[-1].split("@", 1)[0].strip().lower()


class _Resolver:
    """Maps alert values to entities, with the inventory when there is one."""

    def __init__(self, inv: Inventory | None) -> None:
        self.inv = inv
        self.gw_by_ip: dict[str, tuple[Gateway, str]] = {}
        self.gw_by_name: dict[str, Gateway] = {}
        self.host_by_ip: dict[str, Host] = {}
        self.host_by_name: dict[str, Host] = {}
        self.egress: set[str] = set()
        self.subnets: tuple[Subnet, ...] = ()
        self._lo: list[int] = []
        self._hi: list[int] = []
        self.site_names: dict[str, str] = {}
        self._cache: dict[str, _Ip | None] = {}
        if inv is None:
            return
        for g in inv.gateways:
            self.gw_by_ip[str(g.inside)] = (g, "inside")
            self.gw_by_ip[str(g.outside)] = (g, "outside")
            if g.management is not None:
                self.gw_by_ip[str(g.management)] = (g, "management")
            self.gw_by_name[g.id.lower()] = g
            self.gw_by_name[g.hostname.lower()] = g
        for h in inv.hosts:
            self.host_by_ip[str(h.ip)] = h
            self.host_by_name[h.name.lower()] = h
        for s in inv.sites:
            self.site_names[s.id] = s.name
            self.egress.update(str(e) for e in s.egress)
        self.subnets = inv.subnets  # sorted by address, non-overlapping (validated)
        self._lo = [int(n.cidr[0]) for n in self.subnets]
        self._hi = [int(n.cidr[-1]) for n in self.subnets]

    def gateway(self, gw_id: str) -> Gateway | None:
        return self.gw_by_name.get(gw_id.lower())

    def ip(self, text: str) -> _Ip | None:
        if text in self._cache:
            return self._cache[text]
        out = self._ip(text)
        self._cache[text] = out
        return out

    def _ip(self, text: str) -> _Ip | None:
        try:
            addr = ipaddress.ip_address(text.strip())
        except ValueError:
            return None
        canon = str(addr)
        hit = self.gw_by_ip.get(canon)
        if hit is not None:
            g, iface = hit
            return _Ip(canon, "gw:" + g.id, "gateway", iface=iface, site=g.site, role="gateway")
        if canon in self.egress:
            return _Ip(canon, "ip:" + canon, "egress")
        host = self.host_by_ip.get(canon)
        net = self._subnet(addr)
        if host is not None:
            return _Ip(
                canon,
                "ip:" + canon,
                "internal",
                serverish=True,
                site=host.site,
                role=host.role,
                name=host.name,
            )
        if net is not None:
            kind = "pool" if net.role == "vpn_pool" else "internal"
            return _Ip(
                canon,
                "ip:" + canon,
                kind,
                serverish=net.role in SERVER_ROLES,
                site=net.site,
                role=net.role,
            )
        if _is_private(addr):
            return _Ip(canon, "ip:" + canon, "internal")
        return _Ip(canon, "ip:" + canon, "external")

    def _subnet(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Subnet | None:
        if addr.version != 4 or not self._lo:
            return None
        value = int(addr)
        i = bisect.bisect_right(self._lo, value) - 1
        if i >= 0 and value <= self._hi[i]:
            return self.subnets[i]
        return None

    def name(self, text: str) -> tuple[str, str, _Ip | None]:
        """A host/observer name -> (entity key, kind, ip info): gateway, host or name."""
        low = text.strip().lower()
        g = self.gw_by_name.get(low)
        if g is not None:
            return "gw:" + g.id, "gateway", None
        h = self.host_by_name.get(low)
        if h is not None:
            info = self.ip(str(h.ip))
            if info is not None:
                return info.key, "internal", info
        info = self.ip(low)
        if info is not None:
            return info.key, info.kind, info
        return "host:" + low, "name", None

    def label(self, node: str, orgs: dict[str, str]) -> str:
        """``vpn-sha-dc01 (gateway FGT-SHA-DC01, sha-dc)``, ``10.20.0.30 (workstations,
        sha-br)``, ``dc-tyo01 (domain_controller, tyo-hq)``, ``5.9.7.203 (external, Hetzner)``."""
        g = self.gateway(node)
        if g is not None:
            host = f" {g.hostname}" if g.hostname.lower() != g.id.lower() else ""
            return f"{g.id} (gateway{host}, {g.site})"
        info = self.ip(node)
        if info is None:
            return node
        if info.kind == "external":
            org = orgs.get(info.text)
            return f"{info.text} (external{', ' + org if org else ''})"
        if info.kind == "pool":
            return f"{info.text} (VPN tunnel, {info.site})"
        if info.name:
            return f"{info.name} {info.text} ({info.role}, {info.site})"
        if info.site:
            return f"{info.text} ({info.role}, {info.site})"
        return f"{info.text} (internal)" if info.kind == "internal" else info.text


# -- per-alert entity extraction ----------------------------------------------------------------


@dataclass
class _Alert:
    idx: int
    row: dict[str, Any]
    start: dt.datetime
    end: dt.datetime
    appliance: bool
    probe: bool = False
    posture: bool = False  # a standing exposure (Detection.posture): context, never a cause
    roles: dict[str, int] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)  # raw names, in order
    gateways: list[str] = field(default_factory=list)  # gateway ids, any role
    internal: list[str] = field(default_factory=list)  # addresses / host names, linkable roles
    external: list[str] = field(default_factory=list)  # public addresses, linkable roles
    sites: list[str] = field(default_factory=list)

    def add(self, key: str, role: int) -> None:
        if role > self.roles.get(key, -1):
            self.roles[key] = role


def _strs(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list | tuple):
        return [str(x) for x in v if x is not None and str(x) != ""]
    s = str(v)
    return [s] if s else []


def _append(lst: list[str], v: str) -> None:
    if v and v not in lst:
        lst.append(v)


def _extract(a: _Alert, res: _Resolver) -> None:
    r = a.row
    src = _strs(r.get("source.ip"))
    dst = _strs(r.get("destination.ip"))
    tactics = set(_strs(r.get("threat.tactic.id")))
    # Appliance-side: an appliance detection about the box itself. Not when its subject is
    # a VPN client or internal host (a tunnel address used outside a session names the
    # gateway only as where it was seen), nor when it only saw probing (every gateway on
    # the Internet is probed all day: a shared prober's address still links).
    if a.appliance:
        infos = [res.ip(x) for x in src]
        client = any(i is not None and i.kind in ("internal", "pool") for i in infos)
        a.appliance = not client and bool(tactics - RECON_TACTICS)
        # Probing names the gateway as a mention: it joins a compromise of that gateway
        # that follows within mention_window, never another probe.
        a.probe = not client and not a.appliance
    gw_role = ACTOR if a.appliance else MENTION if a.probe else CONTEXT
    # Listed addresses of a movement alert are where the attacker got to; of any other
    # alert (a scan's probed hosts, a spray's other addresses) only mentions.
    extra_role = TARGET if tactics & MOVE_TACTICS else MENTION

    def addr(text: str, primary: int) -> None:
        info = res.ip(text)
        if info is None:
            return
        if info.kind == "gateway":
            gw = info.key[3:]
            _append(a.gateways, gw)
            if info.site:
                _append(a.sites, info.site)
            # The inside/management address acting or being reached is the appliance itself;
            # the outside address is also every VPN login's destination (context), unless
            # an appliance-side detection says the box itself is the subject.
            strong = info.iface in ("inside", "management")
            a.add(info.key, ACTOR if strong else gw_role)
            return
        if info.kind == "egress":
            a.add(info.key, CONTEXT)
            return
        a.add(info.key, primary)
        if primary > CONTEXT:
            _append(a.external if info.kind == "external" else a.internal, info.text)
            if info.site:
                _append(a.sites, info.site)

    for s in src:
        addr(s, ACTOR)
    for d in dst:
        addr(d, TARGET)
    for ip in _strs(r.get("related.ip")):
        if ip not in src and ip not in dst:
            addr(ip, extra_role)

    user = _strs(r.get("user.name"))
    for u in user:
        _append(a.users, u)
        key = norm_user(u)
        if key:
            a.add("user:" + key, CONTEXT if key in GENERIC_USERS else ACTOR)
    primary_users = {norm_user(u) for u in user}
    for u in _strs(r.get("related.user")):
        key = norm_user(u)
        if not key or key in primary_users:
            continue
        _append(a.users, u)
        a.add("user:" + key, CONTEXT if key in GENERIC_USERS else MENTION)

    def name(text: str, role: int) -> None:
        key, kind, info = res.name(text)
        if kind == "gateway":
            _append(a.gateways, key[3:])
            g = res.gateway(key[3:])
            if g is not None:
                _append(a.sites, g.site)
            a.add(key, gw_role)
            return
        if info is not None:
            addr(info.text, role)
            return
        a.add(key, role)
        if role > CONTEXT:
            _append(a.internal, text)

    hosts = _strs(r.get("host.name"))
    observers = _strs(r.get("observer.name"))
    for h in hosts:
        name(h, ACTOR)
    for o in observers:
        # Where the alert was seen: a gateway (appliance-side only) or a sensor (never).
        key, kind, _ = res.name(o)
        if kind == "gateway":
            name(o, CONTEXT)
        else:
            a.add(key, CONTEXT)
    for h in _strs(r.get("related.hosts")):
        if h in hosts or h in observers:
            continue
        name(h, MENTION)


# -- union-find ---------------------------------------------------------------------------------


class _Components:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.links: list[tuple[int, int, str]] = []

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int, why: str) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri == rj:
            return
        if rj < ri:
            ri, rj = rj, ri
        self.parent[rj] = ri
        self.links.append((i, j, why))


def _compatible(r1: int, r2: int, serverish: bool) -> bool:
    if CONTEXT in (r1, r2):
        return False
    if ACTOR in (r1, r2):
        return True
    if r1 == TARGET and r2 == TARGET:
        return not serverish
    return False


# -- the public API -----------------------------------------------------------------------------


def incident_id(founding_alert_id: str) -> str:
    """``INC-`` and 12 hex digits of the founding alert's id: stable across reruns."""
    return "INC-" + hashlib.sha256(founding_alert_id.encode()).hexdigest()[:12]


def correlate(
    alerts: pl.DataFrame,
    inventory: Inventory | None,
    *,
    params: Params | None = None,
    previous: Sequence[Incident] = (),
) -> list[Incident]:
    """Group active (unsuppressed) ``alerts`` into incidents, most severe first.

    ``previous`` are the incidents of an earlier run (``Store.incidents()``): a component that
    contains the founding alert of one keeps its id (the oldest, if several merged), so new
    evidence extends an incident instead of opening another.
    """
    p = params or Params()
    if alerts.is_empty():
        return []
    if "alert.suppressed" in alerts.columns:
        alerts = alerts.filter(~pl.col("alert.suppressed").fill_null(False))
    alerts = alerts.sort(["@timestamp", "alert.id"], nulls_last=True)
    res = _Resolver(inventory)
    posture_rules = {i for i, d in detections().items() if d.posture}
    items: list[_Alert] = []
    for row in alerts.iter_rows(named=True):
        start = row.get("@timestamp")
        if start is None or not row.get("alert.id"):
            continue
        end = row.get("event.end") or start
        rule = str(row.get("rule.id") or "")
        a = _Alert(len(items), row, start, max(end, start), rule.startswith("appliance_"))
        a.posture = rule in posture_rules
        _extract(a, res)
        items.append(a)
    if not items:
        return []

    # Hubs: entities that co-occur with too many distinct sources/destinations.
    co: dict[str, set[str]] = {}
    occ: dict[str, list[tuple[int, int]]] = {}
    for a in items:
        prim = {k for k, r in a.roles.items() if r >= TARGET}
        for k, r in a.roles.items():
            if r >= MENTION:
                co.setdefault(k, set()).update(prim - {k})
                occ.setdefault(k, []).append((a.idx, r))
    hubs = {k for k, s in co.items() if len(s) > p.max_entity_degree and not k.startswith("gw:")}
    serverish: dict[str, bool] = {}
    for k in occ:
        info = res.ip(k[3:]) if k.startswith("ip:") else None
        serverish[k] = bool(info and info.serverish)

    comps = _Components(len(items))
    for key, lst in occ.items():
        if key in hubs or len(lst) < 2:
            continue
        info = res.ip(key[3:]) if key.startswith("ip:") else None
        # A host the attacker reached stays compromised: reached (target) and later acting
        # (actor) links over compromise_window. Not for servers (reached by everyone) nor
        # tunnel addresses (reassigned).
        reachable = not serverish[key] and not key.startswith("gw:")
        if key.startswith("gw:"):
            base = p.gateway_window
        elif info is not None and info.kind == "pool":
            base, reachable = p.pool_window, False
        elif info is not None and info.kind == "external":
            base, reachable = p.window, False
        else:
            base = p.window
        longest = max(base, p.compromise_window) if reachable else base
        lst.sort(key=lambda o: (items[o[0]].start, o[0]))
        for x in range(len(lst)):
            ia, ra = lst[x]
            a = items[ia]
            for y in range(x + 1, len(lst)):
                ib, rb = lst[y]
                b = items[ib]
                if b.start - a.end > longest:
                    break
                if not _compatible(ra, rb, serverish[key]):
                    continue
                if MENTION in (ra, rb):
                    w = min(base, p.mention_window)
                elif reachable and ra == TARGET and rb == ACTOR:
                    w = max(base, p.compromise_window)
                else:
                    w = base
                gap = max(b.start - a.end, a.start - b.end, dt.timedelta(0))
                if gap <= w:
                    comps.union(ia, ib, key)

    groups: dict[int, list[int]] = {}
    for a in items:
        groups.setdefault(comps.find(a.idx), []).append(a.idx)
    links_by_root: dict[int, list[tuple[int, int, str]]] = {}
    for i, j, why in comps.links:
        links_by_root.setdefault(comps.find(i), []).append((i, j, why))

    prev_by_founding: dict[str, Incident] = {}
    for inc in previous:
        f = inc.extra.get("founding_alert")
        if isinstance(f, str):
            prev_by_founding[f] = inc

    out: list[Incident] = []
    for root, members in groups.items():
        # A vulnerable gateway is not an incident by itself; it explains one that has
        # activity behind it.
        if all(items[i].posture for i in members):
            continue
        members.sort(key=lambda i: (items[i].start, str(items[i].row["alert.id"])))
        out.append(
            _build(
                [items[i] for i in members],
                links_by_root.get(root, []),
                items,
                res,
                hubs,
                prev_by_founding,
            )
        )
    out.sort(key=lambda i: (-_SEV_ORDER.get(i.severity, 0), -i.risk_score, i.first_seen, i.id))
    return out


# -- building one incident ----------------------------------------------------------------------


def _lis(seq: Sequence[int]) -> int:
    """Length of the longest strictly increasing subsequence."""
    tails: list[int] = []
    for v in seq:
        lo, hi = 0, len(tails)
        while lo < hi:
            mid = (lo + hi) // 2
            if tails[mid] < v:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(tails):
            tails.append(v)
        else:
            tails[lo] = v
    return len(tails)


def _level(risk: float) -> str:
    if risk >= 90:
        return "critical"
    if risk >= 70:
        return "high"
    if risk >= 45:
        return "medium"
    return "low"


def fmt_bytes(n: int) -> str:
    """``209715200`` -> ``200 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_duration(seconds: float) -> str:
    """``93784`` -> ``1d 2h 3m``; negative and sub-minute values show as ``0m``."""
    m = max(0, int(seconds // 60))
    d, m = divmod(m, 1440)
    h, m = divmod(m, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m or not (d or h) else ""]
    return " ".join(x for x in parts if x)


def _names(values: Sequence[str], limit: int = 3) -> str:
    head = ", ".join(values[:limit])
    return head + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _evidence(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("alert.evidence")
    if not raw:
        return {}
    try:
        ev = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return ev if isinstance(ev, dict) else {}


def _parse_time(v: Any, default: dt.datetime) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            return default
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    return default


def _node(res: _Resolver, text: str) -> tuple[str, _Ip | None]:
    info = res.ip(text)
    if info is None:
        return text, None
    if info.kind == "gateway":
        return info.key[3:], info
    return info.text, info


def _is_path_alert(a: _Alert) -> bool:
    rule = str(a.row.get("rule.id") or "")
    tactics = set(_strs(a.row.get("threat.tactic.id")))
    return rule.startswith(PATH_FAMILIES) or bool(tactics & PATH_TACTICS)


def _port(v: Any) -> int | None:
    """A port from ``443``, ``"443"`` or a one-element list; None otherwise."""
    if isinstance(v, list):
        return _port(v[0]) if len(v) == 1 else None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _path(alerts: Sequence[_Alert], res: _Resolver) -> list[tuple[PathEdge, _Ip | None]]:
    """First-seen movements, in time order, with the destination's inventory facts.

    From each path alert with a ``source.ip``: the (source, destination) pair; and from its
    evidence, when the detection lists movements there: ``samples[]`` with ``dst`` (or
    ``server``) from the source, ``inbound_samples[]`` with ``source`` into it,
    ``outbound_hosts`` from it (at ``outbound_first``); ``opened_by`` naming the destination
    turns the pair around. A lateral alert with none of these
    gives an edge to each internal address in ``related.ip`` not named as an inbound source.
    """
    first: dict[tuple[str, str], tuple[PathEdge, _Ip | None]] = {}

    def add(src: str, dst: str, when: dt.datetime, port: int | None, rule: str) -> None:
        s, _ = _node(res, src)
        d, dinfo = _node(res, dst)
        if not s or not d or s == d:
            return
        edge = PathEdge(src=s, dst=d, first_seen=when, port=port, rule_id=rule)
        old = first.get((s, d))
        if old is None or when < old[0].first_seen:
            first[(s, d)] = (edge, dinfo)

    for a in alerts:
        if not _is_path_alert(a):
            continue
        r = a.row
        src = r.get("source.ip")
        if not src:
            continue
        src = str(src)
        rule = str(r.get("rule.id") or "")
        dst = r.get("destination.ip")
        port = _port(r.get("destination.port"))
        ev = _evidence(r)
        if dst and str(ev.get("opened_by") or "") == str(dst):
            add(str(dst), src, a.start, port, rule)  # a connection the far end opened
        elif dst:
            add(src, str(dst), a.start, port, rule)
        listed = False
        inbound: set[str] = {str(x) for x in ev.get("inbound_sources") or () if x}
        for smp in ev.get("inbound_samples") or ():
            if isinstance(smp, dict) and smp.get("source"):
                listed = True
                inbound.add(str(smp["source"]))
                when = _parse_time(smp.get("first"), a.start)
                add(str(smp["source"]), src, when, _port(smp.get("port")), rule)
        for smp in ev.get("samples") or ():
            d = isinstance(smp, dict) and (
                smp.get("dst") or smp.get("destination.ip") or smp.get("server")
            )
            if d:
                listed = True
                when = _parse_time(smp.get("first"), a.start)
                add(src, str(d), when, _port(smp.get("ports", smp.get("port"))), rule)
        outbound = ev.get("outbound_hosts")
        if isinstance(outbound, list) and outbound:
            listed = True
            when = _parse_time(ev.get("outbound_first"), a.start)
            for d in outbound:
                add(src, str(d), when, _port(ev.get("outbound_ports")), rule)
        if not dst and not listed and _has(a, "TA0008"):
            # A lateral alert that names no single destination lists where it got to.
            for x in _strs(r.get("related.ip")):
                info = res.ip(x)
                internal = info is not None and info.kind in ("internal", "pool")
                if x != src and x not in inbound and internal:
                    add(src, x, a.start, port, rule)
    return sorted(first.values(), key=lambda e: (e[0].first_seen, e[0].src, e[0].dst))


def _bytes_out(exfil: Sequence[_Alert]) -> int:
    """Bytes that left: per sending host, exfiltration alerts whose evidence overlaps in time
    describe the same transfer (a volume detection and a rare-destination detection of one
    upload) and count once, as the largest; transfers at other times add up."""
    by_src: dict[str, list[_Alert]] = {}
    for a in exfil:
        by_src.setdefault(str(a.row.get("source.ip") or a.row["alert.id"]), []).append(a)
    total = 0
    for alerts in by_src.values():
        alerts = sorted(alerts, key=lambda a: a.start)
        end: dt.datetime | None = None
        best = 0
        for a in alerts:
            n = int(a.row.get("network.bytes") or 0)
            if end is not None and a.start <= end:
                best, end = max(best, n), max(end, a.end)
            else:
                total += best
                best, end = n, a.end
        total += best
    return total


def _build(
    members: list[_Alert],
    links: list[tuple[int, int, str]],
    items: list[_Alert],
    res: _Resolver,
    hubs: set[str],
    prev_by_founding: dict[str, Incident],
) -> Incident:
    rows = [a.row for a in members]
    alert_ids = tuple(str(r["alert.id"]) for r in rows)
    idset = set(alert_ids)
    # Posture alerts (a vulnerable gateway) are context: the incident's founding alert, its
    # time span and dwell come from the activity (there is always some: see ``correlate``).
    acting = [a for a in members if not a.posture] or members

    # Identity: keep the id of the oldest earlier incident whose founding alert is here.
    inherited = [inc for f, inc in prev_by_founding.items() if f in idset]
    # The one opened first (a ticket may cite it), then the largest, then the earliest.
    inherited.sort(
        key=lambda inc: (inc.opened_at or _NEVER, -len(inc.alert_ids), inc.first_seen, inc.id)
    )
    if inherited:
        keep = inherited[0]
        founding = str(keep.extra["founding_alert"])
        inc_id = keep.id
        merged = [inc.id for inc in inherited[1:]]
    else:
        founding = str(acting[0].row["alert.id"])
        inc_id = incident_id(founding)
        merged = []

    first_seen = min(a.start for a in acting)
    last_seen = max(a.end for a in acting)
    created = [a.row["event.created"] for a in acting if a.row.get("event.created") is not None]
    detected_at = min(created) if created else first_seen

    # Tactics in kill-chain order; techniques by first appearance; stages for confidence.
    tactic_first: dict[str, dt.datetime] = {}
    techniques: list[str] = []
    for a in members:
        for t in _strs(a.row.get("threat.tactic.id")):
            if t not in tactic_first:
                tactic_first[t] = a.start
        for t in _strs(a.row.get("threat.technique.id")):
            _append(techniques, t)
    known = [t for t in tactic_first if t in _TACTIC_ORDER]
    tactics = tuple((t, TACTICS[t]) for t in sorted(known, key=_TACTIC_ORDER.__getitem__))
    # Kill-chain progress counts each alert once, by its primary (first-listed) tactic: a
    # login detection that also lists Persistence is one step, not two.
    primary_first: dict[str, dt.datetime] = {}
    for a in members:
        p0 = _primary(a)
        if p0 and p0 not in primary_first:
            primary_first[p0] = a.start
    by_time = sorted(primary_first, key=lambda t: (primary_first[t], _TACTIC_ORDER[t]))
    stages = _lis([_TACTIC_ORDER[t] for t in by_time]) if by_time else 0

    rules: list[str] = []
    for r in rows:
        _append(rules, str(r.get("rule.id") or ""))
    risks = [
        float(r["event.risk_score"])
        if r.get("event.risk_score") is not None
        else SEVERITIES.get(str(r.get("alert.severity")), 21.0)
        for r in rows
    ]
    max_risk = max(risks) if risks else 0.0
    n_rules = min(len(rules), 6)
    risk = round(min(100.0, max_risk + 4 * max(stages - 1, 0) + 2 * (n_rules - 1)), 1)
    base = max_risk / 100 * 0.6
    confidence = 1 - (1 - base) * 0.7 ** max(stages - 1, 0) * 0.85 ** (n_rules - 1)
    confidence = round(min(0.99, max(0.0, confidence)), 2)
    sev_alerts = max((_SEV_ORDER.get(str(r.get("alert.severity")), 0) for r in rows), default=0)
    severity = max(list(SEVERITIES)[sev_alerts], _level(risk), key=lambda s: _SEV_ORDER.get(s, 0))

    users: list[str] = []
    seen_users: set[str] = set()
    # dicts as ordered sets: first appearance wins, membership is O(1)
    gateways: dict[str, None] = {}
    hosts: dict[str, None] = {}
    external: dict[str, None] = {}
    sites: dict[str, None] = {}
    orgs: dict[str, str] = {}
    for a in members:
        for u in a.users:
            k = norm_user(u)
            if k and k not in seen_users:
                seen_users.add(k)
                users.append(u)
        gateways.update(dict.fromkeys(a.gateways))
        hosts.update(dict.fromkeys(a.internal))
        external.update(dict.fromkeys(a.external))
        sites.update(dict.fromkeys(a.sites))
        src, org = a.row.get("source.ip"), a.row.get("source.as.organization.name")
        if src and org:
            orgs.setdefault(str(src), str(org))

    exfil = [a for a in members if "TA0010" in _strs(a.row.get("threat.tactic.id"))]
    bytes_out = _bytes_out(exfil)
    destinations: list[str] = []
    for a in exfil:
        d = a.row.get("destination.ip")
        if d:
            _append(destinations, str(d))
        else:
            for x in a.external:
                if x != a.row.get("source.ip"):
                    _append(destinations, x)

    path_facts = _path(members, res)
    path = tuple(
        PathEdge(
            src=e.src,
            dst=e.dst,
            first_seen=e.first_seen,
            port=e.port,
            rule_id=e.rule_id,
            src_label=res.label(e.src, orgs),
            dst_label=res.label(e.dst, orgs),
        )
        for e, _ in path_facts
    )

    title = _title(members, res, bytes_out, destinations)
    summary = _summary(
        members, tactics, path, bytes_out, destinations, first_seen, last_seen, detected_at
    )

    pos = {a.idx: a for a in members}
    link_rows = [
        [str(items[i].row["alert.id"]), str(items[j].row["alert.id"]), why]
        for i, j, why in links
        if i in pos and j in pos
    ]
    touched_hubs = sorted({k for a in members for k in a.roles if k in hubs})
    extra: dict[str, object] = {
        "founding_alert": founding,
        "stages": stages,
        "span_seconds": (last_seen - first_seen).total_seconds(),
        "links": link_rows,
    }
    if merged:
        extra["merged_ids"] = merged
    if touched_hubs:
        extra["hub_entities"] = touched_hubs

    return Incident(
        id=inc_id,
        title=title,
        severity=severity,
        confidence=confidence,
        risk_score=risk,
        first_seen=first_seen,
        last_seen=last_seen,
        detected_at=detected_at,
        dwell_seconds=(detected_at - first_seen).total_seconds(),
        tactics=tactics,
        techniques=tuple(techniques),
        alert_ids=alert_ids,
        rules=tuple(rules),
        users=tuple(users),
        hosts=tuple(hosts),
        external=tuple(external),
        gateways=tuple(gateways),
        sites=tuple(sites),
        bytes_out=bytes_out,
        destinations=tuple(destinations),
        path=path,
        attribution=attribute(techniques),
        summary=summary,
        extra=extra,
    )


def _has(a: _Alert, tactic: str) -> bool:
    return tactic in _strs(a.row.get("threat.tactic.id"))


def _gw_display(res: _Resolver, gw_id: str) -> str:
    g = res.gateway(gw_id)
    if g is None or g.hostname.lower() == gw_id.lower():
        return gw_id
    return f"{g.id} ({g.hostname})"


def _primary(a: _Alert) -> str | None:
    """The alert's primary tactic: the first it lists that ATT&CK knows."""
    for t in _strs(a.row.get("threat.tactic.id")):
        if t in _TACTIC_ORDER:
            return t
    return None


def _title(
    members: Sequence[_Alert],
    res: _Resolver,
    bytes_out: int,
    destinations: Sequence[str],
) -> str:
    """What happened, as kill-chain steps in time order: the first step, then up to three
    of the later ones that matter most (what left, how far it spread, C2, whose account)."""
    steps: dict[str, tuple[dt.datetime, str, str]] = {}

    def step(key: str, when: dt.datetime, text: str, at: str = "") -> None:
        if key not in steps or when < steps[key][0]:
            steps[key] = (when, text, at)

    # The box itself: appliance-side alerts beyond probing, or its own addresses acting.
    boxes: list[str] = []
    box_alerts: set[int] = set()
    for a in members:
        gws = [k[3:] for k, r in a.roles.items() if k.startswith("gw:") and r == ACTOR]
        if gws and not a.posture:  # being on the known-exploited list is not being broken into
            box_alerts.add(a.idx)
            for g in gws:
                _append(boxes, g)
    if boxes:
        first_box = min(a.start for a in members if a.idx in box_alerts)
        what = "VPN gateways" if len(boxes) > 1 else "VPN gateway"
        names = _names([_gw_display(res, g) for g in boxes], 2)
        step("box", first_box, f"{what} {names} compromised")

    def sources(alerts: Sequence[_Alert], external_only: bool = False) -> list[str]:
        out: list[str] = []
        for a in alerts:
            v = a.row.get("source.ip")
            if not v:
                continue
            node, info = _node(res, str(v))
            if external_only and (info is None or info.kind != "external"):
                continue
            _append(out, node)
        return out

    by_primary: dict[str, list[_Alert]] = {}
    for a in members:
        t = None if a.posture else _primary(a)
        if t is not None:
            by_primary.setdefault(t, []).append(a)

    def where(alerts: Sequence[_Alert]) -> str:
        gws: list[str] = []
        for a in alerts:
            for g in a.gateways:
                if g not in boxes:
                    _append(gws, g)
        return f" at {_names(gws, 1)}" if gws else ""

    for t, alerts in by_primary.items():
        if t in ("TA0002", "TA0003", "TA0004", "TA0005", "TA0040"):
            # What was done (on the box too): the first detection's name says it.
            name = str(alerts[0].row.get("rule.name") or alerts[0].row.get("rule.id") or "")
            step(t, alerts[0].start, f"{TACTICS[t].lower()}: {name}")
            continue
        mine = [a for a in alerts if a.idx not in box_alerts]
        if not mine:
            continue
        when = mine[0].start
        srcs = sources(mine)
        frm = f" from {_names(srcs, 2)}" if srcs else ""
        if t == "TA0043":
            step(t, when, f"reconnaissance{frm}", where(mine))
        elif t == "TA0006":
            step(t, when, f"password guessing{frm}", where(mine))
        elif t == "TA0001":
            users: list[str] = []
            for a in mine:
                if a.row.get("user.name"):
                    _append(users, str(a.row["user.name"]))
            ext = sources(mine, external_only=True)
            frm = f" from {_names(ext, 2)}" if ext else ""
            if users:
                step(t, when, f"VPN login as {_names(users, 2)}{frm}", where(mine))
            else:
                step(t, when, f"initial access{frm}", where(mine))
        elif t == "TA0007":
            step(t, when, f"discovery{frm}")

    # Spread, collection, C2 and exfiltration, from every alert that lists the tactic.
    reached: dict[str, None] = {}
    reached_at: dt.datetime | None = None
    for a in members:
        if not _has(a, "TA0008"):
            continue
        src = a.row.get("source.ip")
        for x in a.internal:
            info = res.ip(x)
            if x != src and (info is None or info.kind in ("internal", "pool")):
                reached[x] = None
                reached_at = a.start if reached_at is None else min(reached_at, a.start)
    if reached and reached_at is not None:
        n = len(reached)
        step("TA0008", reached_at, f"lateral movement to {n} host{'s' if n > 1 else ''}")
    collected: dict[str, None] = {}
    for a in members:
        if _primary(a) == "TA0009":
            d = a.row.get("destination.ip")
            for x in [str(d)] if d else a.internal:
                collected[x] = None
    if collected:
        when = min(a.start for a in members if _primary(a) == "TA0009")
        n = len(collected)
        step("TA0009", when, f"collection from {n} host{'s' if n > 1 else ''}")
    c2: list[str] = []
    for a in members:
        if _has(a, "TA0011") and a.row.get("destination.ip"):
            _append(c2, str(a.row["destination.ip"]))
    if c2:
        when = min(a.start for a in members if _has(a, "TA0011"))
        step("TA0011", when, f"C2 to {_names(c2, 2)}")
    exfil = [a for a in members if _has(a, "TA0010")]
    if exfil:
        to = f" to {_names(list(destinations), 2)}" if destinations else ""
        what = f"{fmt_bytes(bytes_out)} sent" if bytes_out > 0 else "exfiltration"
        step("TA0010", min(a.start for a in exfil), what + to)

    if not steps:
        r = members[0].row
        title = str(r.get("rule.name") or r.get("rule.id") or "Alert")
        if r.get("source.ip"):
            title += f" from {_node(res, str(r['source.ip']))[0]}"
        if r.get("user.name"):
            title += f" as {r['user.name']}"
        return title
    order = sorted(steps, key=lambda k: (steps[k][0], _TACTIC_ORDER.get(k, 2)))
    # Probing is the prologue: the title starts at the first step that did something.
    head = next((k for k in order if k != "TA0043"), order[0])
    rest = [k for k in order if k != head]
    # After the head, what matters most: what left, how far it spread, C2, then for a
    # compromised gateway what was done on it, else whose account was used.
    priority = (
        "box",
        "TA0010",
        "TA0008",
        "TA0011",
        *(("TA0003", "TA0005", "TA0001") if boxes else ("TA0001", "TA0003", "TA0005")),
        "TA0009",
        "TA0040",
        "TA0004",
        "TA0002",
        "TA0007",
        "TA0006",
        "TA0043",
    )
    # The head, then the most telling later steps while the title stays readable.
    keep: set[str] = set()
    length = len(steps[head][1]) + len(steps[head][2])
    for k in sorted(rest, key=priority.index):
        if len(keep) == 3 or (keep and length + len(steps[k][1]) > MAX_TITLE):
            break
        keep.add(k)
        length += len(steps[k][1]) + 3
    texts: list[str] = []
    said: set[str] = set()
    for k in [head, *(k for k in rest if k in keep)]:
        _, text, at = steps[k]
        texts.append(text + (at if at and at not in said else ""))
        said.add(at)
    title = " → ".join(texts)
    return title[:1].upper() + title[1:]


def _summary(
    members: Sequence[_Alert],
    tactics: Sequence[tuple[str, str]],
    path: Sequence[PathEdge],
    bytes_out: int,
    destinations: Sequence[str],
    first_seen: dt.datetime,
    last_seen: dt.datetime,
    detected_at: dt.datetime,
) -> str:
    rules = {str(a.row.get("rule.id")) for a in members}
    when = "%Y-%m-%d %H:%M"
    text = (
        f"{len(members)} alert{'s' if len(members) != 1 else ''} from {len(rules)} "
        f"detection{'s' if len(rules) != 1 else ''} between {first_seen:{when}} and "
        f"{last_seen:{when}} UTC ({fmt_duration((last_seen - first_seen).total_seconds())})"
    )
    if tactics:
        text += "; kill chain: " + " → ".join(n for _, n in tactics)
    text += ". First evidence: " + str(members[0].row.get("alert.summary") or "").rstrip(".")
    if len(members) > 1:
        text += ". Latest: " + str(members[-1].row.get("alert.summary") or "").rstrip(".")
    if path:
        steps = [f"{e.src} → {e.dst}" for e in path[:6]]
        more = f" (+{len(path) - 6} more)" if len(path) > 6 else ""
        text += ". Path: " + ", ".join(steps) + more
    if bytes_out:
        text += f". {fmt_bytes(bytes_out)} left for {', '.join(destinations[:3])}"
    text += (
        f". First raised {detected_at:{when}} UTC, "
        f"{fmt_duration((detected_at - first_seen).total_seconds())} after the first evidence."
    )
    return text
