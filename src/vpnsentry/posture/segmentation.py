"""Segmentation check: what VPN pools and branch subnets actually reached on admin ports.

"If this branch's VPN were compromised, what could it reach?" is answered from evidence:
the store's flows, not a network diagram. Every connection from a VPN client pool or a
branch site's subnet to a crown-jewel segment (a ``crown_jewel`` subnet or host of the
site inventory) on an administrative port is judged against the inventory's declared
``policy`` (allowed flows from group to group on ports); what no rule allows is a violation,
reported per source segment, destination segment and port with connections, distinct
sources and destinations, bytes and first/last seen.

The flows are read through the detection context's ``pairs`` table (built once: sensors
de-duplicated, NetFlow answers folded onto their request, ASA's flow-creation rows left
out, inventory subnets looked up once per distinct address), so the check and the
lateral-movement detections count the same connections. The policy's groups are resolved
to address ranges here (the inventory is small) and the judgement is one DuckDB query.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import polars as pl

from vpnsentry.enrich.sites import Inventory, PolicyRule
from vpnsentry.errors import StoreError, UsageError

#: Administrative and remote-execution services (TCP): SSH, Telnet, RPC/DCOM, NetBIOS, SMB
#: (PsExec, admin shares), RDP, VNC, WinRM, rexec/rlogin/rsh. Override with ``--port``.
ADMIN_PORTS: Final = (22, 23, 135, 139, 445, 512, 513, 514, 3389, 5900, 5985, 5986)
_U32_MAX: Final = 2**32 - 1


@dataclass(frozen=True)
class Reach:
    """One reached path: a source segment to a crown-jewel segment on one port."""

    source_kind: str  # vpn_pool or branch
    source_site: str
    source_net: str
    gateway: str | None
    dest_site: str | None
    dest_net: str | None
    port: int
    allowed_by: str | None
    connections: int
    sources: int
    destinations: int
    bytes: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    hosts: tuple[str, ...]
    sample_sources: tuple[str, ...]
    users: tuple[str, ...]

    @property
    def violation(self) -> bool:
        return self.allowed_by is None

    @property
    def severity(self) -> str:
        return "high" if self.violation else "info"

    def to_json(self) -> dict[str, Any]:
        return {
            "violation": self.violation,
            "severity": self.severity,
            "allowed_by": self.allowed_by,
            "source_kind": self.source_kind,
            "source_site": self.source_site,
            "source_net": self.source_net,
            "gateway": self.gateway,
            "destination_site": self.dest_site,
            "destination_net": self.dest_net,
            "port": self.port,
            "connections": self.connections,
            "distinct_sources": self.sources,
            "distinct_destinations": self.destinations,
            "bytes": self.bytes,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "crown_jewel_hosts": list(self.hosts),
            "sample_sources": list(self.sample_sources),
            "users": list(self.users),
        }


# --------------------------------------------------------------------------- policy


def _ranges(
    inv: Inventory, selector: str, seen: frozenset[str] = frozenset()
) -> list[tuple[int, int]]:
    """Address ranges a group selector stands for (sites.py validated the selector).

    ``internet`` stands for no internal address: the check only looks at flows between
    internal segments, so a rule to or from the Internet never allows one of them.
    """
    if selector == "any":
        return [(0, _U32_MAX)]
    if selector == "internet":
        return []
    if selector == "crown_jewel":
        return [(int(n.cidr[0]), int(n.cidr[-1])) for n in inv.subnets if n.crown_jewel] + [
            (int(h.ip), int(h.ip)) for h in inv.hosts if h.crown_jewel
        ]
    kind, _, arg = selector.partition(":")
    if kind == "site":
        return [(int(n.cidr[0]), int(n.cidr[-1])) for n in inv.subnets if n.site == arg]
    if kind == "role":
        return [(int(n.cidr[0]), int(n.cidr[-1])) for n in inv.subnets if n.role == arg]
    if kind == "host_role":
        return [(int(h.ip), int(h.ip)) for h in inv.hosts if h.role == arg]
    if kind == "host":
        return [(int(h.ip), int(h.ip)) for h in inv.hosts if h.name == arg]
    if kind == "cidr":
        net = ipaddress.IPv4Network(arg)
        return [(int(net[0]), int(net[-1]))]
    if kind == "group":
        return group_ranges(inv, arg, seen)
    raise UsageError(f"policy selector {selector!r} is not understood")  # pragma: no cover


def group_ranges(
    inv: Inventory, name: str, seen: frozenset[str] = frozenset()
) -> list[tuple[int, int]]:
    """The ranges of group ``name`` (or of the words ``any``/``internet``/``crown_jewel``)."""
    if name not in inv.groups:
        return _ranges(inv, name, seen)
    if name in seen:
        chain = " -> ".join([*seen, name])
        raise UsageError(f"{inv.source}: groups: {name!r} contains itself ({chain})")
    return [r for sel in inv.groups[name] for r in _ranges(inv, sel, seen | {name})]


def policy_frames(rules: Sequence[PolicyRule], inv: Inventory) -> dict[str, pl.DataFrame]:
    """The policy as three small tables: rule sources, destinations and ports."""
    src: list[tuple[str, int, int]] = []
    dst: list[tuple[str, int, int]] = []
    ports: list[tuple[str, str, int, int]] = []
    for r in rules:
        src += [(r.name, lo, hi) for lo, hi in group_ranges(inv, r.src)]
        dst += [(r.name, lo, hi) for lo, hi in group_ranges(inv, r.dst)]
        ports += [(r.name, p.proto, p.lo, p.hi) for p in r.ports]
    rng = {"rule": pl.String, "lo": pl.UInt32, "hi": pl.UInt32}
    return {
        "_seg_src": pl.DataFrame(src, schema=rng, orient="row"),
        "_seg_dst": pl.DataFrame(dst, schema=rng, orient="row"),
        "_seg_ports": pl.DataFrame(
            ports,
            schema={"rule": pl.String, "proto": pl.String, "lo": pl.Int32, "hi": pl.Int32},
            orient="row",
        ),
    }


# --------------------------------------------------------------------------- the check

#: Judged paths, one row per (source segment, destination segment, port, allowing rule).
_SQL: Final = """
WITH f AS (
    SELECT p.src, p.dst, p.src_u, p.dst_u, p.dport, lower(p.proto) AS proto, p.conns,
           coalesce(p.bytes_total, coalesce(p.bytes_out, 0) + coalesce(p.bytes_in, 0), 0)
               AS bytes,
           p.first_ts, p.last_ts, p.src_site, p.src_net, p.src_role, p.dst_site, p.dst_net,
           p.user_name, h.name AS dst_host, sn.gateway
    FROM pairs p
    LEFT JOIN hosts h ON h.ip_u = p.dst_u
    LEFT JOIN _seg_sites s ON s.id = p.src_site
    LEFT JOIN subnets sn ON sn.cidr = p.src_net
    WHERE p.dport IN (SELECT port FROM _seg_admin) AND lower(p.proto) = 'tcp'
      AND (p.dst_crown OR coalesce(h.crown_jewel, false))
      AND (p.src_role = 'vpn_pool' OR s.kind = 'branch')
      AND p.src_net IS DISTINCT FROM p.dst_net
      AND ($since IS NULL OR p.last_ts >= $since)
      AND ($until IS NULL OR p.first_ts < $until)
), judged AS (
    SELECT f.*,
           (SELECT min(ps.rule)
            FROM _seg_src ps
            JOIN _seg_dst pd ON pd.rule = ps.rule
            JOIN _seg_ports pp ON pp.rule = ps.rule
            WHERE f.src_u BETWEEN ps.lo AND ps.hi AND f.dst_u BETWEEN pd.lo AND pd.hi
              AND (pp.proto = 'any' OR (pp.proto = f.proto AND f.dport BETWEEN pp.lo AND pp.hi))
           ) AS allowed_by
    FROM f
)
SELECT CASE WHEN src_role = 'vpn_pool' THEN 'vpn_pool' ELSE 'branch' END AS source_kind,
       src_site, src_net, any_value(gateway) AS gateway, dst_site, dst_net, dport,
       allowed_by,
       sum(conns)::BIGINT AS connections, count(DISTINCT src) AS sources,
       count(DISTINCT dst) AS destinations, sum(bytes)::BIGINT AS bytes,
       min(first_ts) AS first_seen, max(last_ts) AS last_seen,
       list_sort(list(DISTINCT dst_host) FILTER (WHERE dst_host IS NOT NULL)) AS hosts,
       list_sort(list(DISTINCT src))[1:5] AS sample_sources,
       list_sort(list(DISTINCT user_name) FILTER (WHERE user_name IS NOT NULL))[1:10] AS users
FROM judged
GROUP BY source_kind, src_site, src_net, dst_site, dst_net, dport, allowed_by
ORDER BY allowed_by IS NOT NULL, connections DESC, src_net, dst_net, dport
"""


def check(
    con: duckdb.DuckDBPyConnection,
    inv: Inventory,
    *,
    ports: Iterable[int] = ADMIN_PORTS,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[Reach]:
    """Judge the reached paths in ``con`` (a store reader) against ``inv``'s policy."""
    from vpnsentry.detect.config import Config
    from vpnsentry.detect.context import Context

    ports = sorted(set(ports))
    if not ports or not all(0 < p <= 65535 for p in ports):
        raise UsageError("--port: ports are 1-65535")
    try:
        ctx = Context(con, inv, Config())
        ctx.need(["pairs"])
        tables = policy_frames(inv.policy, inv) | {
            "_seg_sites": pl.DataFrame(
                {"id": [s.id for s in inv.sites], "kind": [s.kind for s in inv.sites]},
                schema={"id": pl.String, "kind": pl.String},
            ),
            "_seg_admin": pl.DataFrame({"port": ports}, schema={"port": pl.Int32}),
        }
        for name, df in tables.items():
            con.register(name, df.to_arrow())
        rows = con.execute(_SQL, {"since": since, "until": until}).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"segmentation check failed: {exc}") from exc
    return [
        Reach(
            source_kind=r[0],
            source_site=r[1],
            source_net=r[2],
            gateway=r[3],
            dest_site=r[4],
            dest_net=r[5],
            port=r[6],
            allowed_by=r[7],
            connections=r[8],
            sources=r[9],
            destinations=r[10],
            bytes=r[11],
            first_seen=r[12],
            last_seen=r[13],
            hosts=tuple(r[14] or ()),
            sample_sources=tuple(r[15] or ()),
            users=tuple(r[16] or ()),
        )
        for r in rows
    ]
