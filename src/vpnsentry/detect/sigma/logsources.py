"""Which Sigma log sources vpnsentry has, where their rows live and what their fields are.

A Sigma rule names its log source (``product``/``service``/``category``) and uses the field
names of that source (FortiGate's ``cfgpath``, Zeek's ``id.orig_h``, the generic firewall
taxonomy's ``dst_port``). A :class:`Profile` answers, for one such source: which dataset of
the store holds its rows, which of those rows belong to it (``prefilter``, SQL over our own
columns, no user text in it), and what each Sigma field name means in our ECS columns.

Vendor fields that ECS has no column for (FortiGate's ``cfgpath``, ``cfgattr``, its raw
``action``) are ``derived``: extracted from ``event.original`` by a fixed key=value regular
expression, so SigmaHQ's FortiGate rules run unchanged. Rules may always use our ECS column
names directly as well. A rule whose log source matches no profile, or that uses a field
its profile does not know, is skipped with that reason, never run half-understood.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sigma.processing.conditions import LogsourceCondition
from sigma.rule import SigmaLogSource

from vpnsentry import ecs

#: The column vendor fields are extracted from: the raw line as the device wrote it.
RAW: Final = "event.original"


def _kv(key: str) -> str:
    """SQL extracting FortiGate's ``key=value`` / ``key="value"`` from the raw line (or NULL).

    ``key`` comes from the fixed lists below, never from a rule. Like our FortiGate parser,
    a key starts the line or follows a space. The text after the first `` key=`` is cut out
    with ``split_part`` and the value read by an anchored RE2 pattern: an unanchored
    ``(?:^|\\s)key=`` pattern measured 3.5x slower on FortiGate lines, which all carry
    ``action=``. Lines without ``key=`` at all skip even that (config fields such as
    ``cfgpath`` are on few lines).
    """
    after = f"split_part(' ' || \"{RAW}\", ' {key}=', 2)"
    value = f'regexp_extract({after}, \'^("[^"]*"|[^\\s"]*)\', 1)'
    return f"CASE WHEN contains(\"{RAW}\", '{key}=') THEN nullif(trim({value}, '\"'), '') END"


#: FortiOS log fields (FortiOS log message reference) without an ECS column of their own.
_FORTIOS_RAW: Final = (
    "action",
    "cfgpath",
    "cfgobj",
    "cfgattr",
    "cfgtid",
    "cfgcomment",
    "logdesc",
    "subtype",
    "type",
    "status",
    "method",
    "ui",
    "profile",
    "tunneltype",
    "remip",
    "group",
    "reason",
    "vd",
)

#: FortiOS log fields that are ECS columns in our store.
_FORTIOS_ECS: Final = {
    "srcip": "source.ip",
    "srcport": "source.port",
    "dstip": "destination.ip",
    "dstport": "destination.port",
    "user": "user.name",
    "msg": "message",
    "logid": "event.code",
    "level": "log.level",
    "devname": "observer.name",
    "devid": "observer.serial_number",
    "tunnelip": "vpn.tunnel_ip",
}

#: Zeek conn.log fields (docs.zeek.org, base/protocols/conn/main.zeek) in our flows columns.
_ZEEK_CONN: Final = {
    "uid": "flow.id",
    "id.orig_h": "source.ip",
    "id.orig_p": "source.port",
    "id.resp_h": "destination.ip",
    "id.resp_p": "destination.port",
    "proto": "network.transport",
    "service": "network.protocol",
    "orig_bytes": "source.bytes",
    "resp_bytes": "destination.bytes",
    "orig_pkts": "source.packets",
    "resp_pkts": "destination.packets",
    "conn_state": "flow.state",
    "community_id": "network.community_id",
}

#: Sigma's generic ``category: firewall`` taxonomy (sigma-specification, Taxonomy appendix).
_FIREWALL: Final = {
    "src_ip": "source.ip",
    "src_port": "source.port",
    "dst_ip": "destination.ip",
    "dst_port": "destination.port",
    "action": "event.action",
    "username": "user.name",
}


@dataclass(frozen=True)
class Profile:
    """One log source we hold: its rows (dataset + prefilter) and its field names."""

    name: str
    #: Logsource selectors (product, category, service); any one matching selects the profile.
    selectors: tuple[tuple[str | None, str | None, str | None], ...]
    dataset: str
    #: SQL over ECS columns restricting the dataset to this source's rows ("" = all rows).
    prefilter: str
    #: Sigma field name -> ECS column (ECS column names always map to themselves).
    fields: Mapping[str, str] = field(default_factory=dict)
    #: Sigma field name -> SQL expression over ECS columns (vendor fields ECS lacks).
    derived: Mapping[str, str] = field(default_factory=dict)

    def mapping(self) -> dict[str, str]:
        """Every field name this profile understands -> the name the backend renders."""
        own = {c: c for c in ecs.SCHEMAS[self.dataset]}
        return {**own, **{k: k for k in self.derived}, **self.fields}

    def conditions(self) -> list[LogsourceCondition]:
        """pySigma logsource conditions equivalent to ``selectors``."""
        return [LogsourceCondition(category=c, product=p, service=s) for p, c, s in self.selectors]

    def matches(self, logsource: SigmaLogSource) -> bool:
        """Whether a rule's log source is this profile (pySigma's own matching rules)."""
        return any(
            logsource in cond.logsource and _no_extra(logsource, sel)
            for cond, sel in zip(self.conditions(), self.selectors, strict=True)
        )


def _no_extra(ls: SigmaLogSource, sel: tuple[str | None, str | None, str | None]) -> bool:
    """A selector without a service/category accepts only rules that name none.

    pySigma's condition treats an unset attribute as "any"; for us ``product: zeek`` alone
    does not mean every Zeek log (we hold conn.log only), so what the rule names beyond the
    selector must be absent.
    """
    product, category, service = sel
    return (
        (product is not None or ls.product is None)
        and (category is not None or ls.category is None)
        and (service is not None or ls.service is None)
    )


_FG_EVENTS: Final = "\"event.module\" = 'fortinet_fortigate'"
_FG_DERIVED: Final = {k: _kv(k) for k in _FORTIOS_RAW}

#: The profiles, most specific first (the first match wins).
PROFILES: Final[tuple[Profile, ...]] = (
    Profile(
        "fortigate_traffic",
        (("fortigate", None, "traffic"), ("fortios", None, "traffic")),
        "flows",
        _FG_EVENTS,
        {k: v for k, v in _FORTIOS_ECS.items() if v in ecs.FLOWS},
    ),
    Profile(
        "fortigate",
        (
            ("fortigate", None, None),
            ("fortigate", None, "event"),
            ("fortios", None, None),
            ("fortios", None, "event"),
            ("fortios", None, "sslvpnd"),
        ),
        "events",
        _FG_EVENTS,
        _FORTIOS_ECS,
        _FG_DERIVED,
    ),
    # Sigma's ``cisco``/``aaa`` rules look for CLI commands in AAA command accounting; the
    # ASA's equivalent are the "User executed command" messages 111008-111010.
    Profile(
        "cisco_asa_commands",
        (("cisco", None, "aaa"),),
        "events",
        "\"event.module\" = 'cisco_asa' AND \"event.code\" IN ('111008', '111009', '111010')",
    ),
    Profile(
        "cisco_asa",
        (("cisco", None, "asa"), ("asa", None, None)),
        "events",
        "\"event.module\" = 'cisco_asa'",
    ),
    Profile(
        "openvpn",
        (("openvpn", None, None),),
        "events",
        "\"event.module\" IN ('openvpn', 'openvpn_status')",
    ),
    Profile(
        "zeek_conn",
        (("zeek", None, "conn"),),
        "flows",
        "\"event.module\" = 'zeek_conn'",
        _ZEEK_CONN,
    ),
    Profile(
        "netflow",
        (("nfdump", None, None), (None, "netflow", None)),
        "flows",
        "\"event.module\" = 'nfdump'",
    ),
    Profile("firewall", ((None, "firewall", None),), "flows", "", _FIREWALL),
    Profile("vpn", ((None, "vpn", None), ("vpnsentry", None, "events")), "events", ""),
    Profile("flows", (("vpnsentry", None, "flows"),), "flows", ""),
)


def profile_for(logsource: SigmaLogSource) -> Profile | None:
    """The first profile whose selectors match ``logsource``, or None (unknown source)."""
    return next((p for p in PROFILES if p.matches(logsource)), None)


def describe(logsource: SigmaLogSource) -> str:
    """``product=x service=y`` for messages (only the parts the rule sets)."""
    parts = [
        f"{k}={v}"
        for k, v in (
            ("product", logsource.product),
            ("category", logsource.category),
            ("service", logsource.service),
        )
        if v
    ]
    return " ".join(parts) or "(none)"
