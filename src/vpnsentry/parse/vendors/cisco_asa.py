"""Cisco ASA and Firepower Threat Defense (FTD) syslog: ``%ASA-6-113039: <text>`` messages.

One line is an optional syslog header, a tag ``%ASA-<severity>-<message id>:`` (``%FTD-`` on
FTD; ``%ASA-auth-4-113004:`` when a class mnemonic is logged; FTD sometimes nests
``%FTD-6-113005: %ASA-6-113005:``) and the message text, whose layout the message id fixes
(Cisco "ASA Series Syslog Messages" guide). Headers seen in the wild, all accepted:

* ``<166>Aug 20 2026 08:53:11 asa-vpn-01 : %ASA-...`` (``logging timestamp`` + device id),
* ``May  5 17:51:17 dev01: %FTD-...`` and ``... localhost CiscoASA[999]: %ASA-...`` (relays),
* ``<166>2024-06-26T01:35:42Z: %ASA-...`` (``logging timestamp rfc5424``),
  ``<166>May 01 2026 09:24:32Z  %FTD-...``, ``Apr 29 12:59:50.138340591: %ASA-...``,
* a relay header before the device's own stamp: ``Sep 25 01:08:29 host : Sep 25 05:08:29
  UTC: %ASA-...``. The device's stamp wins; an unambiguous zone name in it (``UTC``,
  ``EDT`` ...) is honoured, otherwise the time is wall time in ``ctx.tz``.

What becomes of a line:

* No ``%ASA-``/``%FTD-`` tag: quarantined ``no_match`` (``truncated`` when the tag is cut).
* No usable time in the header: quarantined ``bad_timestamp`` (ASA without ``logging
  timestamp`` written straight to a file has none; we will not invent one).
* Connection build/teardown (302013-302016, 302020/302021, 302304) and access denials
  (106001/106006/106007/106010/106014/106015/106023/106100, 710003) go to ``flows``: they
  are what the firewall says about network connections, and ``flows`` is where detections
  look for those. A denial is a flow that did not happen: ``event.outcome`` ``failure``.
  The ASA names the lower-security side of a connection first, so the initiator (ECS
  source) is the second side of an ``outbound`` build; a teardown does not say, and takes
  its build's direction (remembered across chunks) or else treats the lower port as the
  server's.
* Everything else, mapped message id or not, is an ``events`` row with ``event.code``,
  ``log.level``, ``message`` and ``observer.name``; the ids a VPN intrusion shows up in
  (AAA, AnyConnect/WebVPN/IKEv2 sessions, address assignment, DAP, admin logins and
  commands) get their user, addresses, group and reason as ECS fields.

Entities are kept consistent across messages because detections join on them: the remote
client is always the ECS *source* (``source.ip`` is its public address in 113005, 113019,
113039, 716xxx, 722xxx, 734001 and 751025 alike) and ``vpn.tunnel_ip`` the address assigned
inside the tunnel. Elastic's pipeline maps some of these the other way round (751025's
``Local`` side, i.e. the ASA, as source; 113019's client IP as destination with ``Bytes
xmt`` as ``source.bytes``); we do not, since a client IP that moves between source and
destination by message id cannot be joined. ``Bytes xmt``/``Bytes rcv`` are counted by the
ASA, so the client's (source's) bytes are ``Bytes rcv``. Masked user names (``*****``,
``no logging hide username`` not set) are not names and become null.

``event.action``, ``event.outcome`` and the categorisation follow Elastic's cisco_asa
pipeline where it defines them (``logged-in``, ``logon-failed``, ``client-vpn-connected``,
``client-vpn-error``, ``flow-creation``, ``firewall-rule`` ...), so rules written for it
read the same here; ids it leaves without an action get names in the same style.

Speed: one regex reads header and tag on every line. The rest runs per message family, on
that family's rows only (``partition_by``, one ``extract_groups``, families collected in
parallel), so a line meets two or three regexes. Connection builds and teardowns, most of a
firewall's volume, are read with string splits where their tokens sit in the usual places
(the regex takes the rest), and the other busy layouts are one-pass regexes, which the
engine captures fastest. Headers repeat (same second, same device), so they are parsed
once per distinct header text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import canon_ipv6
from vpnsentry.parse.timeparse import parse_bsd, parse_iso, plausible

# --------------------------------------------------------------------------------------
# Tag and header
# --------------------------------------------------------------------------------------

#: Header (anything before the first ``%``), the tag, and its parts. The nested FTD form
#: ``%FTD-6-113005: %ASA-6-113005:`` is one tag: the message starts after both.
_TAG_RE: Final = (
    r"^(?P<head>[^%]*)(?P<tag>%(?P<prod>ASA|FTD)-(?:[A-Za-z]+-)?(?P<sev>[0-7])-(?P<code>\d{6}):"
    r" ?(?:%(?:ASA|FTD)-(?:[A-Za-z]+-)?[0-7]-\d{6}: ?)?)"
)
#: A line that has the start of a tag but not all of it was cut short, not foreign.
_TAG_START_RE: Final = r"%(?:ASA|FTD)-"

_MONTHS: Final = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"

#: Zone names ASA appends with ``logging timestamp`` and a configured ``clock timezone``,
#: restricted to unambiguous ones (``CST`` and ``IST`` mean different zones in different
#: places; those fall back to ``ctx.tz``).
_ZONE_OFFSETS: Final = {
    "Z": 0,
    "UTC": 0,
    "GMT": 0,
    "EST": -300,
    "EDT": -240,
    "CDT": -300,
    "MST": -420,
    "MDT": -360,
    "PST": -480,
    "PDT": -420,
    "CET": 60,
    "CEST": 120,
    "EET": 120,
    "EEST": 180,
    "JST": 540,
}
_ZONE_RE: Final = "|".join(sorted(_ZONE_OFFSETS, key=len, reverse=True))


def _stamp(n: int, other_zones: str = "") -> str:
    """Pattern of one header timestamp (BSD with optional year, fraction and zone, or ISO);
    ``n`` numbers the groups because a header can carry two stamps. ``other_zones`` matches
    zone names we do not interpret (they are skipped, the time taken as ``ctx.tz``)."""
    return (
        rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?(?P<mon{n}>{_MONTHS}) +(?P<day{n}>\d{{1,2}})"
        rf"(?: (?P<year{n}>\d{{4}}))? (?P<clock{n}>\d{{1,2}}:\d{{2}}:\d{{2}}(?:\.\d{{1,9}})?)"
        rf"(?: ?(?P<zone{n}>{_ZONE_RE})\b{other_zones})?"
        rf"|(?P<iso{n}>\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d{{1,9}})?"
        rf"(?:Z|[+-]\d{{2}}:?\d{{2}})?)"
    )


#: Everything a header may hold before the tag: ``<PRI>``, a stamp, the device or relay
#: host, a ``tag[pid]:`` and the device's own stamp after a relay's header. Only the inner
#: stamp may end in an unknown zone name: after the outer one, a capitalised word such as
#: ``EDGE`` is more likely the host.
_HEAD_RE: Final = (
    rf"^\s*(?:<\d{{1,3}}>)?(?:1 )?(?:{_stamp(1)})?:?\s*"
    r"(?:(?P<host>[\w.\-:]*[\w.\-])(?:\[(?P<pid>\d*)\])?\s*:?\s*)?"
    r"(?:[\w.\-/]+(?:\[\d*\])?:\s*)?"
    rf"(?:(?:{_stamp(2, r'| ?[A-Z]{3,5}')}):?\s*)?$"
)

#: The usual header, a subset of what ``_HEAD_RE`` reads (the same groups where it matches).
_SHORT_HEAD_RE: Final = (
    rf"^(?:<\d{{1,3}}>)?(?P<mon1>{_MONTHS}) +(?P<day1>\d{{1,2}}) "
    r"(?P<clock1>\d{1,2}:\d{2}:\d{2}) (?P<host>[\w.\-]+) : $"
)

#: ``log.level`` names for the severity digit, as Elastic's pipeline writes them
#: (``emergency`` for 0, where Elastic writes ``unknown``).
_LEVELS: Final = {
    "0": "emergency",
    "1": "alert",
    "2": "critical",
    "3": "error",
    "4": "warning",
    "5": "notification",
    "6": "informational",
    "7": "debug",
}

_PRODUCTS: Final = {"ASA": "ASA", "FTD": "Firepower Threat Defense"}

# --------------------------------------------------------------------------------------
# Message families: which ids share a layout, and the regex that reads it
# --------------------------------------------------------------------------------------
#
# Group names are the vocabulary of ``_events``/``_flows``: ``a_*`` is the initiating side
# (the ECS source) and ``b_*`` the other, unless the message is a connection whose direction
# says otherwise; ``x__k`` are alternatives for ``x`` (a regex cannot repeat a group name).

_IP: Final = r"[^\s/()<>,]+"

#: ``Group <g> User <u> IP <ip> ...`` (AnyConnect, WebVPN, SVC; bracketed in newer code,
#: bare in older) and the few session messages of those ids written differently.
_VPN_PREFIX: Final = (
    r"^(?:(?:TunnelGroup <[^>]*> GroupPolicy <(?P<group__t>[^>]*)>"
    r"|Group <(?P<group>[^>]*)>|Group (?P<group__b>\S+)) "
    r"User (?:<(?P<user>[^>]*)>|(?P<user__b>\S+?))? ?"
    r"IP (?:<(?P<a_ip>[^>]*)>|(?P<a_ip__b>\S+)) "
    r"(?:IPv4 Address <?(?P<v4>[^>\s]*)>? IPv6 address <?(?P<v6>[^>\s]*)>? assigned to session"
    r"|Client Type: (?P<client>.*)"
    r"|(?:New |First )?(?P<transport>TCP|UDP) SVC connection"
    r"|(?:SVC closing connection|WebVPN session terminated|Session terminated"
    r"|Session could not be established): (?P<reason>.*?)\.?$"
    r"|Authentication: (?:successful|rejected), Session Type: (?P<session_type>\w+)"
    r"|AnyConnect session resumed(?:\. Connection| connection) from (?:IP )?"
    r"<?(?P<resumed_ip>[^>\s]+?)>?\.?$"
    r"|(?P<detail>.*?)\.?$)"
    r"|Authentication: (?:successful|rejected), group = (?P<group__o>\S+) "
    r"user = (?P<user__o>.*?) ?, Session Type: (?P<session_type__o>\w+)"
    r"|Terminating the VPN connection attempt from <?(?P<group__x>[^>]+?)>?\. "
    r"Reason: (?P<reason__x>.*?)\.?$"
    r"|\([^)]*\) WebVPN session for client user (?P<user__w>.*?), "
    r"IP(?:v4|v6)? (?P<a_ip__w>\S+) has been \w+\.)"
)

#: ``AAA ...`` user authentication, authorisation and accounting results.
_AAA: Final = (
    r"^(?:AAA user \w+ (?:Successful|Rejected) ?: (?:reason = (?P<reason>.*?) ?: )?"
    r"(?:server = +(?P<b_ip>[^\s,:]+) ?[:,] |local database ?: )?"
    r"[Uu]ser =\s?(?P<user>.*?)(?:\s?:\s?user IP = (?P<a_ip>\S+))?\s*"
    r"|AAA transaction status \w+ ?: user = (?P<user__t>.*?)\s*"
    r"|AAA retrieved default group policy (?P<group>\S+) for user (?P<user__g>.*?)\s*"
    r"|Attempted console login failed\. User (?P<user__c>\S+) did NOT have .*)$"
)

#: ``Group = g, Username = u, IP = ip, ...``: 113019 session summaries and IKE (713xxx).
_IKE: Final = (
    r"^(?:Group = (?P<group>[^,]*), )?(?:Username = (?P<user>[^,]*), )?"
    r"(?:IP = (?P<a_ip>[^,]*), )?"
    r"(?:Session disconnected\. Session Type: (?P<session_type>[^,]*), "
    r"Duration: (?:(?P<dur_d>\d+)d )?(?P<dur_h>\d+)h:(?P<dur_m>\d+)m:(?P<dur_s>\d+)s, "
    r"Bytes xmt: (?P<xmt>\d+), Bytes rcv: (?P<rcv>\d+), Reason: (?P<reason>.*))?"
)

#: IKEv2 remote access: ``Local:<asa>:<port> Remote:<client>:<port> Username:<u> ...``.
_IKEV2: Final = (
    r"^Local: ?(?P<b_ip>\S+?):(?P<b_port>\d+) Remote: ?(?P<a_ip>\S+?):(?P<a_port>\d+) "
    r"Username: ?(?P<user>\S*)(?: (?:IKEv2 )?Group: ?(?P<group>\S+) "
    r"IPv4 Address=(?P<v4>\S*) IPv6 address=(?P<v6>\S*) assigned to session| (?P<reason>.*))?"
)

_DAP: Final = (
    r"^DAP: User (?P<user>[^,]*), Addr (?P<a_ip>[^,]*), Connection (?P<session_type>[^:]*): "
    r"The following DAP records were selected for this connection: (?P<rules>.*)$"
)

#: Logins to the device itself and the commands run on it.
_ADMIN: Final = (
    r"^(?:User '(?P<user>[^']*)' executed the '.*' command"
    r"|User '(?P<user__9>[^']*)' executed cmd: "
    r"|User '(?P<user__10>[^']*)', running '[^']*' from IP (?P<a_ip>[^\s,]+), executed "
    r"|User authentication (?:succeeded|failed): IP address: (?P<a_ip__6>[^\s,]+),? "
    r"Uname: (?P<user__6>.*)$"
    r"|User logged out: Uname: (?P<user__o>.*)$"
    r"|Login (?:permitted|denied) from (?P<a_ip__l>[^/\s]+)/(?P<a_port>\d+) to [^:]+:"
    rf"(?P<b_ip>{_IP})/(?P<service>\S+) for user \"(?P<user__l>[^\"]*)\""
    r"|User priv level changed: Uname: (?P<user__p>\S+) "
    r"|SSH session from (?P<a_ip__s>[^\s]*) ?on interface \S+ for user "
    r"\"?(?P<user__s>[^\"\s]*)\"?)"
)

#: 733100 threat detection: ``[ <object>] drop <rate id> exceeded. ...``.
_RATE: Final = r"^\[\s*(?P<object>[^\]]*?)\s*\] drop (?P<reason>\S+ exceeded)"

#: 725xxx: the TLS handshakes and sessions of SSL VPN (and ASDM) clients with the ASA.
_SSL: Final = (
    r"^(?:Starting SSL handshake|Device completed SSL handshake|Device failed SSL handshake"
    r"|SSL session|Device selects trust-point \S+) (?:with|for) client "
    r"(?P<a_iface>[^:]+):(?P<a_ip>[^/\s]+)/(?P<a_port>\d+)"
    r"(?: to (?P<b_ip>[^/\s]+)/(?P<b_port>\d+))?"
)

#: 737xxx IP address assignment; ``Session=`` is the VPN session's id.
_IPAA: Final = (
    r"^IPAA: (?:Session=(?P<session>[^,\s]+), )?(?:Client assigned (?P<v4>\S+) from local pool"
    r"|Freeing local pool (?:\S+ )?address (?P<v4__f>\S+))?"
)

# The high-volume layouts below are written to be one-pass (every character decides the next
# step), which lets the regex engine capture their many groups several times faster.

#: 302013/302015. The ASA lists the lower-security interface's side first, so for
#: ``outbound`` the first side is the responder (see _directions).
_BUILT: Final = (
    r"^Built (?P<dir>inbound|outbound) (?P<transport>TCP|UDP|SCTP) connection (?P<conn_id>\d+) "
    r"for (?P<a_iface>[^:]+):(?P<a_ip>[^/\s]+)/(?P<a_port>\d+) \((?P<a_nat>[^/\s]+)/\d+\)"
    r"(?: ?\((?P<a_user>[^)]*)\))? "
    r"to (?P<b_iface>[^:]+):(?P<b_ip>[^/\s]+)/(?P<b_port>\d+) \((?P<b_nat>[^/\s]+)/\d+\)"
    r"(?:\((?P<b_user>[^)]*)\))?(?: \((?P<user>[^)]*)\))?$"
)

#: 302014/302016, and 302304 (state bypass, which names the initiator first). The free
#: text after the byte count (reason, ``from <initiator>``, ``(user)``) is split by _TAIL.
_TEARDOWN: Final = (
    r"^Teardown (?P<transport>TCP|UDP|SCTP) (?:state-bypass )?connection (?P<conn_id>\d+) "
    r"(?:for|from) (?P<a_iface>[^:]+):(?P<a_ip>[^/\s]+)/(?P<a_port>\d+)"
    r"(?: ?\((?P<a_user>[^)]*)\))? "
    r"to (?P<b_iface>[^:]+):(?P<b_ip>[^/\s]+)/(?P<b_port>\d+)(?: ?\((?P<b_user>[^)]*)\))? "
    r"duration (?P<dur_h>\d+):(?P<dur_m>\d+):(?P<dur_s>\d+) bytes (?P<bytes>\d+)"
    r"(?: (?P<tail>.*))?$"
)
_TAIL: Final = r"^(?P<reason>.*?)(?: from [^\s(]+)?(?: \((?P<user>[^)]*)\))?$"


# The two layouts that make up most of a firewall's log are also read with string splits,
# about twice as fast as their regexes; rows whose tokens are not in the expected places
# (an interface name with a space, an identity-firewall user, state bypass) take the regex.


def _tokens(lazy: pl.LazyFrame, column: str, by: str, names: tuple[str, ...]) -> pl.LazyFrame:
    """Split ``column`` at the first ``len(names) - 1`` occurrences of ``by`` into columns
    ``names`` (missing parts null; the last part keeps the rest of the text)."""
    parts = pl.col(column).str.splitn(by, len(names)).struct.rename_fields(list(names))
    return lazy.with_columns(parts.alias("_parts")).unnest("_parts")


def _side_tokens(lazy: pl.LazyFrame, side: str) -> pl.LazyFrame:
    """``<iface>:<ip>/<port>`` in column ``_<side>`` into ``<side>_iface/_ip/_port``."""
    lazy = _tokens(lazy, f"_{side}", ":", (f"{side}_iface", f"_{side}_addr"))
    return _tokens(lazy, f"_{side}_addr", "/", (f"{side}_ip", f"{side}_port"))


def _fast_built(lazy: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.Expr, tuple[str, ...]]:
    """Token reading of _BUILT: (frame, which rows it read, the fields it made)."""
    words = ("_v", "dir", "transport", "_w3", "conn_id", "_w5", "_a", "_an", "_w8", "_b", "_bn")
    lazy = _tokens(lazy, "_msg", " ", (*words, "_rest"))
    ok = (
        (pl.col("_w3") == "connection")
        & (pl.col("_w5") == "for")
        & (pl.col("_w8") == "to")
        & pl.col("_rest").is_null()
        & pl.col("dir").is_in(["inbound", "outbound"])
        & ~pl.col("_msg").str.contains(")(", literal=True)
    )
    for side in "ab":
        lazy = _side_tokens(lazy, side)
        lazy = lazy.with_columns(pl.col(f"_{side}n").str.strip_chars("()"))
        lazy = _tokens(lazy, f"_{side}n", "/", (f"{side}_nat", f"_{side}_natport"))
    made = ("dir", "transport", "conn_id", "a_iface", "a_ip", "a_port", "a_nat")
    return lazy, ok, (*made, "b_iface", "b_ip", "b_port", "b_nat")


def _fast_teardown(lazy: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.Expr, tuple[str, ...]]:
    """Token reading of _TEARDOWN: (frame, which rows it read, the fields it made)."""
    words = ("_v", "transport", "_w2", "conn_id", "_w4", "_a", "_w6", "_b", "_w8", "_hms")
    lazy = _tokens(lazy, "_msg", " ", (*words, "_w10", "bytes", "tail"))
    ok = (
        (pl.col("_w2") == "connection")
        & (pl.col("_w4") == "for")
        & (pl.col("_w6") == "to")
        & (pl.col("_w8") == "duration")
        & (pl.col("_w10") == "bytes")
        & ~pl.col("_a").str.contains("(", literal=True)
        & ~pl.col("_b").str.contains("(", literal=True)
    )
    lazy = _tokens(
        _side_tokens(_side_tokens(lazy, "a"), "b"), "_hms", ":", ("dur_h", "dur_m", "dur_s")
    )
    made = ("transport", "conn_id", "a_iface", "a_ip", "a_port", "b_iface", "b_ip", "b_port")
    return lazy, ok, (*made, "dur_h", "dur_m", "dur_s", "bytes", "tail")


_FAST: Final = {"built": _fast_built, "teardown": _fast_teardown}

#: 302020/302021: ``faddr`` is the foreign host, ``laddr`` the local one, ``gaddr`` the
#: local one's mapped address. An interface prefix needs a non-hex letter, or an IPv6
#: address without one would lose its first group to it.
_ICMP_IFACE: Final = r"(?:[^:\s]*[g-zG-Z_\-][^:\s]*:)?"
_ICMP: Final = (
    rf"^(?P<verb>Built|Teardown) (?:(?P<dir>inbound|outbound) )?(?P<transport>ICMP|ICMPv6) "
    rf"connection for faddr {_ICMP_IFACE}(?P<a_ip>{_IP})/\d+(?:\s*\((?P<a_user>[^)]*)\))? "
    rf"gaddr {_ICMP_IFACE}(?P<b_nat>{_IP})/\d+ "
    rf"laddr {_ICMP_IFACE}(?P<b_ip>{_IP})/\d+(?:\s*\((?P<b_user>[^)]*)\))?"
)

#: 106023, the common access-group denial (``protocol 47`` for non-TCP/UDP/ICMP).
_ACL_DENY: Final = (
    r"^Deny (?P<transport>\S+) (?:(?P<proto_num>\d+) )?src "
    r"(?P<a_iface>[^:]+):(?P<a_ip>[^/\s()]+)(?:/(?P<a_port>\d+))?(?:\((?P<a_user>[^)]*)\))? "
    r"dst (?P<b_iface>[^:]+):(?P<b_ip>[^/\s()]+)(?:/(?P<b_port>\d+))?(?:\([^)]*\))? "
    r"(?:\(type \d+, code \d+\) )?by access-group \"(?P<rule>[^\"]*)\""
)

#: 106100, an ACE with the ``log`` keyword: permitted and denied packets alike.
_ACL_LOG: Final = (
    r"^access-list (?P<rule>\S+) (?P<verdict>permitted|denied|est-allowed) (?P<transport>\S+) "
    r"(?P<a_iface>[^/]+)/(?P<a_ip>[^(\s]+)\((?P<a_port>\d+)\)(?:\((?P<a_user>[^)]*)\))? -> "
    r"(?P<b_iface>[^/]+)/(?P<b_ip>[^(\s]+)\((?P<b_port>\d+)\)"
)

#: 106015, a TCP packet that belongs to no connection (scans, asymmetric routing).
_NO_CONN: Final = (
    r"^Deny (?P<transport>\S+) \(no connection\) from (?P<a_ip>[^/\s]+)/(?P<a_port>\d+) "
    r"to (?P<b_ip>[^/\s]+)/(?P<b_port>\d+) flags (?:[A-Z]+ )* ?on interface (?P<a_iface>\S+)"
)

#: The rarer denials, each id with its own wording; the first side is the source.
_DENY: Final = (
    r"^(?:(?P<dir>Inbound|Outbound) (?P<transport>\w+) connection denied from "
    rf"(?P<a_ip>{_IP})/(?P<a_port>\d+) to (?P<b_ip>{_IP})/(?P<b_port>\d+) flags .*?"
    r" on interface (?P<a_iface>\S+)"
    r"|Deny (?P<dir__u>inbound|outbound) (?P<transport__u>\w+) from "
    rf"(?P<a_ip__u>{_IP})/(?P<a_port__u>\d+) to (?P<b_ip__u>{_IP})/(?P<b_port__u>\d+) "
    r"(?:on interface (?P<a_iface__u>\S+)|due to (?P<reason>.*?)\.?$)"
    r"|Deny (?P<dir__s>inbound|outbound) (?:protocol (?P<proto_num>\d+)|(?P<transport__s>\S+)) "
    r"src (?P<a_iface__s>[^:]+):(?P<a_ip__s>[^/\s()]+)(?:/(?P<a_port__s>\d+))? "
    r"dst (?P<b_iface__s>[^:]+):(?P<b_ip__s>[^/\s()]+)(?:/(?P<b_port__s>\d+))?"
    r"|(?P<transport__a>\w+) access denied by ACL from "
    rf"(?P<a_ip__a>{_IP})/(?P<a_port__a>\d+) to (?P<b_iface__a>[^:]+):(?P<b_ip__a>{_IP})"
    r"/(?P<b_port__a>\d+))"
)


@dataclass(frozen=True)
class _Family:
    """Message ids sharing one layout, the regex that reads it, and the dataset of its rows."""

    codes: tuple[str, ...]
    regex: str
    flows: bool = False


_FAMILIES: Final = {
    "vpn": _Family(
        (
            *(f"1130{i}" for i in range(29, 41)),
            *(f"7160{i:02d}" for i in range(1, 61)),
            *(f"7220{i:02d}" for i in range(4, 57)),
            "721016",
            "721018",
        ),
        _VPN_PREFIX,
    ),
    "aaa": _Family(("113004", "113005", "113008", "113009", "113012", "113015", "113021"), _AAA),
    "ike": _Family(("113019", *(f"713{i:03d}" for i in range(1000))), _IKE),
    "ikev2": _Family(("750001", "750002", "750003", "750004", "750006", "751025"), _IKEV2),
    "dap": _Family(("734001",), _DAP),
    "admin": _Family(
        (
            *("111008", "111009", "111010", "315011", "502103"),
            *("605004", "605005", "611101", "611102", "611103"),
        ),
        _ADMIN,
    ),
    "ssl": _Family(("725001", "725002", "725006", "725007", "725016"), _SSL),
    "ipaa": _Family(tuple(f"7370{i:02d}" for i in range(1, 37)), _IPAA),
    "rate": _Family(("733100",), _RATE),
    "built": _Family(("302013", "302015"), _BUILT, flows=True),
    "teardown": _Family(("302014", "302016", "302304"), _TEARDOWN, flows=True),
    "icmp": _Family(("302020", "302021"), _ICMP, flows=True),
    "acl_deny": _Family(("106023",), _ACL_DENY, flows=True),
    "acl_log": _Family(("106100",), _ACL_LOG, flows=True),
    "no_conn": _Family(("106015",), _NO_CONN, flows=True),
    "deny": _Family(
        ("106001", "106006", "106007", "106010", "106014", "710003"), _DENY, flows=True
    ),
}
_FAMILY_OF: Final = {code: name for name, fam in _FAMILIES.items() for code in fam.codes}


def _group_names(regex: str) -> list[str]:
    """Named groups of ``regex``, in order."""
    return re.findall(r"\(\?P<(\w+)>", regex)


#: Every intermediate field a family regex can produce, in one fixed order: each family's
#: rows get all of them (missing ones null) so the families concatenate without realigning.
_FIELDS: Final = sorted(
    {
        g.split("__", 1)[0]
        for fam in _FAMILIES.values()
        for g in _group_names(fam.regex) + _group_names(_TAIL)
        if g != "tail"
    }
)


# --------------------------------------------------------------------------------------
# Per-id categorisation
# --------------------------------------------------------------------------------------

_AUTH_OK: Final = ("logged-in", "authentication", "allowed", "success", None)
_AUTH_FAIL: Final = ("logon-failed", "authentication", "denied", "failure", None)
_VPN_ERROR: Final = ("client-vpn-error", "network", "denied", "failure", None)
_TUNNEL_UP: Final = ("client-vpn-tunnel-established", "network", "start", "success", "ssl")
_TUNNEL_DOWN: Final = ("client-vpn-tunnel-terminated", "network", "end", "success", "ssl")
_ADMIN_CMD: Final = ("configuration", "configuration", "change", "success", None)
_DENIED: Final = ("firewall-rule", None, None, "failure", None)

#: id -> (event.action, event.category, event.type, event.outcome, vpn.tunnel_type). One
#: category/type each: where Elastic categorises the id, the most specific member of its
#: arrays. Ids not listed are ``network``/``info`` events without action.
_META: Final[dict[str, tuple[str | None, str | None, str | None, str | None, str | None]]] = {
    "111008": _ADMIN_CMD,
    "111009": ("configuration", "configuration", "info", "success", None),
    "111010": _ADMIN_CMD,
    "113004": _AUTH_OK,
    "113005": _AUTH_FAIL,
    "113008": _AUTH_OK,
    "113009": _AUTH_OK,
    "113012": _AUTH_OK,
    "113015": _AUTH_FAIL,
    "113019": ("client-vpn-disconnected", "session", "end", None, None),
    "113021": _AUTH_FAIL,
    **{f"1130{i}": _VPN_ERROR for i in (29, 30, 31, 32, 33, 34, 35, 36, 37, 40)},
    "113038": ("client-vpn-error", "network", "denied", "failure", "anyconnect"),
    "113039": ("client-vpn-connected", "session", "start", "success", "anyconnect"),
    "502103": ("privilege-level-changed", "iam", "change", "success", None),
    "605004": _AUTH_FAIL,
    "605005": _AUTH_OK,
    "611101": _AUTH_OK,
    "611102": _AUTH_FAIL,
    "611103": ("logged-out", "authentication", "end", "success", None),
    "315011": ("ssh-session-ended", "session", "end", None, None),
    "716001": ("client-vpn-connected", "session", "start", "success", "clientless"),
    "716002": ("client-vpn-disconnected", "session", "end", None, "clientless"),
    "716003": ("url-access", "network", "allowed", "success", "clientless"),
    "716038": _AUTH_OK,  # the tunnel type is the message's "Session Type"
    "716039": _AUTH_FAIL,
    "716058": ("client-vpn-disconnected", "session", "end", None, "anyconnect"),
    "716059": ("client-vpn-resumed", "session", "start", None, "anyconnect"),
    "721016": ("client-vpn-connected", "session", "start", "success", "clientless"),
    "721018": ("client-vpn-disconnected", "session", "end", "success", "clientless"),
    "722022": _TUNNEL_UP,
    "722023": _TUNNEL_DOWN,
    "722028": _TUNNEL_DOWN,
    "722032": _TUNNEL_UP,
    "722033": _TUNNEL_UP,
    "722034": _TUNNEL_UP,
    "722037": ("client-vpn-tunnel-terminated", "network", "end", None, "ssl"),
    "722051": ("address-assigned", "network", "info", "success", "ssl"),
    "722055": ("client-identified", "network", "info", None, "ssl"),
    "733100": ("drop-rate-exceeded", "network", "info", None, None),
    "734001": ("logged-in", "authentication", "allowed", "success", None),
    "750002": ("connection-started", "network", "start", "success", "ikev2"),
    "750003": ("negotiation-aborted", "network", "start", "failure", "ikev2"),
    "751025": ("address-assigned", "network", "info", "success", "ikev2"),
    "302013": ("flow-creation", None, None, "success", None),
    "302015": ("flow-creation", None, None, "success", None),
    "302020": ("flow-creation", None, None, "success", None),
    "302014": ("flow-expiration", None, None, None, None),
    "302016": ("flow-expiration", None, None, None, None),
    "302021": ("flow-expiration", None, None, None, None),
    "302304": ("flow-expiration", None, None, None, None),
    "737016": ("address-released", "network", "info", "success", None),
    "737026": ("address-assigned", "network", "info", "success", None),
    "725001": ("ssl-handshake-started", "network", "start", "success", None),
    "725002": ("ssl-handshake-completed", "network", "info", "success", None),
    "725006": ("ssl-handshake-failed", "network", "info", "failure", None),
    "725007": ("ssl-session-ended", "network", "end", None, None),
    **{code: _DENIED for name in ("acl_deny", "no_conn", "deny") for code in _FAMILIES[name].codes},
    "106100": ("firewall-rule", None, None, None, None),  # the outcome is in the message
}

#: Session/connection type words (113019 ``Session Type``, 716039, 734001 ``Connection``)
#: to ``vpn.tunnel_type``. Lower-cased before lookup.
_TUNNEL_TYPES: Final = {
    "ssl": "ssl",
    "dtls": "ssl",
    "anyconnect": "anyconnect",
    "anyconnect-parent": "anyconnect",
    "ikev2": "ikev2",
    "ipsec": "ipsec",
    "ipsecovernatt": "ipsec",
    "ikev1": "ipsec",
    "lan-to-lan": "ipsec",
    "l2tp": "ipsec",
    "webvpn": "clientless",
    "clientless": "clientless",
    "clientless (web browser)": "clientless",
}

#: IP protocol numbers ASA prints as ``protocol N`` -> ``network.transport`` keyword.
_IANA: Final = {
    "1": "icmp",
    "6": "tcp",
    "17": "udp",
    "47": "gre",
    "50": "esp",
    "51": "ah",
    "58": "ipv6-icmp",
    "103": "pim",
    "112": "vrrp",
    "132": "sctp",
}

#: Open connections remembered across chunks (ctx.state key), so a teardown gets the
#: direction of its build. Bounded: the oldest entries go first.
_STATE_KEY: Final = "cisco_asa.open_connections"
_STATE_MAX: Final = 1_000_000

_IPV4_RE: Final = (
    r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
)


@register
class CiscoAsa(Parser):
    """Cisco ASA / FTD syslog (``%ASA-n-nnnnnn:`` and ``%FTD-n-nnnnnn:`` messages)."""

    name = "cisco_asa"
    stateful = True
    title = "Cisco ASA / Firepower Threat Defense syslog"
    vendor = "Cisco"
    product = "ASA"
    datasets = ("events", "flows")
    sniff_literals = ("%ASA-", "%FTD-")
    sample = (
        "<166>Jun 22 2022 13:29:11 single : %ASA-6-113039: Group <GroupPolicy_Remote-VPN> "
        "User <user-1> IP <81.2.69.144> AnyConnect parent session started."
    )

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Split tag and header, dispatch by message id, build ``events`` and ``flows``."""
        frame = pl.DataFrame(
            {"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True), "_line": lines}
        )
        tagged = frame.with_columns(pl.col("_line").str.extract_groups(_TAG_RE).alias("_t"))
        tagged = tagged.unnest("_t")
        untagged = tagged.filter(pl.col("code").is_null())
        rejected = [
            untagged.select(
                "_row",
                pl.when(pl.col("_line").str.contains(_TAG_START_RE))
                .then(pl.lit(Reason.TRUNCATED.value))
                .otherwise(pl.lit(Reason.NO_MATCH.value))
                .alias("reason"),
                pl.lit("no %ASA-/%FTD- message tag").alias("detail"),
            )
        ]
        headed = _with_header(tagged.filter(pl.col("code").is_not_null()), ctx)
        rejected.append(
            headed.filter(pl.col("_ts").is_null()).select(
                "_row",
                pl.lit(Reason.BAD_TIMESTAMP.value).alias("reason"),
                pl.when(pl.col("_has_stamp"))
                .then(pl.lit("impossible timestamp in syslog header"))
                .otherwise(pl.lit("no timestamp in syslog header"))
                .alias("detail"),
            )
        )
        good = headed.filter(pl.col("_ts").is_not_null()).select(
            *_BASE[:-1],
            pl.col("_line").str.strip_prefix(pl.concat_str("head", "tag")).alias("_msg"),
            pl.col("code")
            .replace_strict(_FAMILY_OF, default="", return_dtype=pl.String)
            .alias("_family"),
        )
        result = ParseResult(rejected=pl.concat(rejected))
        groups = {
            str(key[0]): part for key, part in good.partition_by("_family", as_dict=True).items()
        }
        # Families are independent: collect_all extracts them in parallel.
        frames = dict(
            zip(groups, pl.collect_all(_read_family(n, p) for n, p in groups.items()), strict=True)
        )
        flows = [f for n, f in frames.items() if n and _FAMILIES[n].flows]
        events = [f for n, f in frames.items() if not (n and _FAMILIES[n].flows)]
        if events:
            table, dropped = _events(pl.concat(events), ctx)
            result.tables["events"] = table
            result.dropped_values += dropped
        if flows:
            table, dropped = _flows(pl.concat(flows), ctx)
            result.tables["flows"] = table
            result.dropped_values += dropped
        return result


#: Columns every row keeps from tag and header.
_BASE: Final = ("_row", "_ts", "_zoned", "_host", "prod", "sev", "code", "_msg")


def _read_family(name: str, part: pl.DataFrame) -> pl.LazyFrame:
    """The rows of one family (``""``: an id without one) with ``_BASE`` and all ``_FIELDS``.

    ``x__k`` groups are alternatives for ``x`` (a regex cannot repeat a group name): only one
    branch matches, so coalescing them gives the field.
    """
    lazy = part.lazy()
    groups: list[str] = []
    if name:
        regex = _FAMILIES[name].regex
        groups = _group_names(regex)
        if name in _FAST:
            split, ok, made = _FAST[name](lazy)
            split = split.with_columns(ok.fill_null(False).alias("_fast"))
            fast = split.filter("_fast").select(
                *_BASE,
                *(pl.col(g) if g in made else pl.lit(None, pl.String).alias(g) for g in groups),
            )
            lazy = split.filter(~pl.col("_fast")).select(_BASE)
            lazy = lazy.with_columns(pl.col("_msg").str.extract_groups(regex).alias("_g"))
            lazy = pl.concat([fast, lazy.unnest("_g")])
        else:
            lazy = lazy.with_columns(pl.col("_msg").str.extract_groups(regex).alias("_g"))
            lazy = lazy.unnest("_g")
        if "tail" in groups:
            lazy = lazy.with_columns(pl.col("tail").str.extract_groups(_TAIL).alias("_t"))
            lazy = lazy.unnest("_t")
            groups += _group_names(_TAIL)
    alternatives: dict[str, list[str]] = {}
    for group in groups:
        alternatives.setdefault(group.split("__", 1)[0], []).append(group)
    return lazy.select(
        *_BASE,
        *(
            pl.coalesce(alternatives[f]).alias(f)
            if f in alternatives
            else pl.lit(None, pl.String).alias(f)
            for f in _FIELDS
        ),
    )


# --------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------


def _with_header(tagged: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """Add ``_ts``, ``_has_stamp``, ``_zoned`` and ``_host`` from each row's header.

    Parsed once per distinct header text and joined back: a busy firewall writes thousands
    of lines per second with the same header, so this is a fraction of a regex per line.
    """
    heads = tagged.select(pl.col("head").unique())
    g = _read_heads(heads)
    has2 = pl.col("mon2").is_not_null() | pl.col("iso2").is_not_null()
    has1 = pl.col("mon1").is_not_null() | pl.col("iso1").is_not_null()
    # A stamp is converted only where some header has one (each conversion is costly, and
    # ``when`` evaluates every branch on every row); the device's own (2) wins.
    ts = pl.lit(None, UTC_TS)
    for n, has in ((1, has1), (2, has2)):
        if g[f"mon{n}"].null_count() + g[f"iso{n}"].null_count() < 2 * len(g):
            ts = pl.when(has).then(_stamp_time(n, ctx, g)).otherwise(ts)
    g = g.with_columns(
        ts.alias("_ts"),
        (has1 | has2).alias("_has_stamp"),
        pl.when(has2).then(_is_zoned(2)).otherwise(_is_zoned(1)).fill_null(False).alias("_zoned"),
        pl.when(pl.col("pid").is_null()).then(pl.col("host")).alias("_host"),
    )
    parsed = g.select("head", plausible(pl.col("_ts"), ctx.now), "_has_stamp", "_zoned", "_host")
    return tagged.join(parsed, on="head", how="left")


def _read_heads(heads: pl.DataFrame) -> pl.DataFrame:
    """``_HEAD_RE``'s groups for each distinct header. The usual one (``<PRI>``, a BSD stamp
    to the second, the device, `` : ``) is read by a short regex; the full one, whose
    optional parts cost most of the header stage, reads only the others. A host that
    starts like a zone name (``EDT-fw``) goes the full way, which reads it as a zone."""
    cols = _group_names(_HEAD_RE)
    short = heads.with_columns(
        pl.col("head").str.extract_groups(_SHORT_HEAD_RE).alias("_h")
    ).unnest("_h")
    ok = short["host"].is_not_null() & ~short["host"].str.contains(rf"^(?:{_ZONE_RE})\b")
    full = heads.filter(~ok)
    full = full.with_columns(pl.col("head").str.extract_groups(_HEAD_RE).alias("_h")).unnest("_h")
    fast = short.filter(ok).with_columns(
        pl.lit(None, pl.String).alias(c) for c in cols if c not in short.columns
    )
    return pl.concat([fast.select("head", *cols), full.select("head", *cols)])


def _is_zoned(n: int) -> pl.Expr:
    """Whether stamp ``n`` names its zone (ISO offset or a known zone name)."""
    iso = pl.col(f"iso{n}")
    return pl.col(f"zone{n}").is_not_null() | iso.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$")


def _stamp_time(n: int, ctx: ParseContext, g: pl.DataFrame) -> pl.Expr:
    """UTC time of header stamp ``n``: its own zone when it names one, else ``ctx.tz``
    (ISO stamps converted only if ``g`` has some)."""
    year = pl.col(f"year{n}").fill_null(pl.lit(str(ctx.year)))
    parts = (pl.col(f"mon{n}"), pl.col(f"day{n}"), year, pl.col(f"clock{n}"))
    offset = pl.col(f"zone{n}").replace_strict(_ZONE_OFFSETS, default=None, return_dtype=pl.Int64)
    if ctx.tz == "UTC":  # one parse: a named zone only shifts it
        bsd = parse_bsd(*parts, "UTC", ctx.now) - pl.duration(minutes=offset.fill_null(0))
    else:
        in_utc = parse_bsd(*parts, "UTC", ctx.now) - pl.duration(minutes=offset)
        bsd = (
            pl.when(offset.is_not_null()).then(in_utc).otherwise(parse_bsd(*parts, ctx.tz, ctx.now))
        )
    iso = pl.col(f"iso{n}")
    if g[f"iso{n}"].null_count() == len(g):
        return bsd
    return pl.when(iso.is_not_null()).then(parse_iso(iso, ctx.tz)).otherwise(bsd)


# --------------------------------------------------------------------------------------
# Field conversion
# --------------------------------------------------------------------------------------


def _convert(
    df: pl.DataFrame, ips: tuple[str, ...], ints: dict[str, tuple[pl.DataType, int | None]]
) -> tuple[pl.DataFrame, int]:
    """Convert the address columns ``ips`` and integer columns ``ints`` (type, upper bound) in
    place; also return how many given values failed conversion (set null and counted).

    An empty string means "absent", not a failure. IPv4 is checked with a regex kernel, IPv6
    (rare) through ``ipaddress`` once per distinct value.
    """
    six = pl.concat([df[c].filter(df[c].str.contains(":", literal=True)) for c in ips]).unique()
    canon = {v: canon_ipv6(v) for v in six.to_list()}
    converted: dict[str, pl.Expr] = {}
    for c in ips:
        v6 = (
            pl.col(c).replace_strict(canon, default=None, return_dtype=pl.String)
            if canon
            else pl.lit(None, pl.String)
        )
        converted[c] = pl.when(pl.col(c).str.contains(_IPV4_RE)).then(pl.col(c)).otherwise(v6)
    for c, (dtype, hi) in ints.items():
        number = pl.col(c).cast(pl.Int64, strict=False)
        if hi is not None:
            number = pl.when(number <= hi).then(number)
        converted[c] = number.cast(dtype)
    out = df.with_columns(expr.alias(f"{c}__v") for c, expr in converted.items())
    lost = out.select(
        pl.sum_horizontal(
            ((pl.col(c) != "") & pl.col(f"{c}__v").is_null()).sum() for c in converted
        )
    ).item()
    out = out.drop(*converted).rename({f"{c}__v": c for c in converted})
    return out, int(lost or 0)


def _user(raw: pl.Expr) -> pl.Expr:
    """User name as logged, without quotes and ``LOCAL\\``/``DOMAIN\\`` prefix; masked
    (``*****``) and empty names are null."""
    name = raw.str.strip_chars(" '\"")
    name = (
        pl.when(name.str.contains("\\", literal=True))
        .then(name.str.replace(r"^.*\\", ""))
        .otherwise(name)
    )
    return pl.when(name.str.strip_chars("*") != "").then(name)


def _duration_ns() -> pl.Expr:
    """``event.duration`` in nanoseconds from the ``dur_*`` fields (days optional)."""
    d, h, m, s = (pl.col(f"dur_{u}").cast(pl.Int64, strict=False) for u in "dhms")
    seconds = ((d.fill_null(0) * 24 + h) * 60 + m) * 60 + s
    return seconds * 1_000_000_000


def _meta(field: int) -> pl.Expr:
    """One column of ``_META`` for each row's message id."""
    mapping = {code: meta[field] for code, meta in _META.items() if meta[field] is not None}
    return pl.col("code").replace_strict(mapping, default=None, return_dtype=pl.String)


def _common(df: pl.DataFrame) -> list[pl.Expr | pl.Series]:
    """Columns every row carries, events or flows."""
    return [
        pl.col("_row"),
        pl.col("_ts").alias("@timestamp"),
        pl.lit("cisco_asa.log").alias("event.dataset"),
        pl.col("code").alias("event.code"),
        pl.col("_host").alias("observer.name"),
        pl.lit("Cisco").alias("observer.vendor"),
        pl.col("prod").replace_strict(_PRODUCTS, return_dtype=pl.String).alias("observer.product"),
        pl.lit("firewall").alias("observer.type"),
        _meta(0).alias("event.action"),
    ]


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------


def _events(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, int]:
    """The ``events`` table: sessions, authentication, admin activity and the rest."""
    frame, dropped = _convert(
        df.with_columns(
            pl.coalesce("resumed_ip", "a_ip").alias("a_ip"),
            # 733100's object is an address only sometimes ("[ Scanning]", "[ RDP 3389]").
            pl.when(pl.col("object").str.contains(r"^[\d.]+$|:"))
            .then(pl.col("object"))
            .alias("object"),
            # Address assignment: the IPv4 address, else the IPv6 one; "0.0.0.0"/"::" and
            # empty mean "none of that family".
            pl.coalesce(
                pl.when(~pl.col("v4").is_in(["", "0.0.0.0"])).then(pl.col("v4")),  # noqa: S104
                pl.when(~pl.col("v6").is_in(["", "::"])).then(pl.col("v6")),
            ).alias("tunnel"),
        ),
        ips=("a_ip", "object", "tunnel", "b_ip"),
        ints={
            "a_port": (pl.Int32(), 65535),
            "b_port": (pl.Int32(), 65535),
            "xmt": (pl.Int64(), None),
            "rcv": (pl.Int64(), None),
        },
    )
    tunnel_word = (
        pl.col("session_type")
        .str.to_lowercase()
        .replace_strict(_TUNNEL_TYPES, default=None, return_dtype=pl.String)
    )
    ike = pl.when(pl.col("code").str.starts_with("713")).then(pl.lit("ipsec"))
    client_os = pl.col("client").str.extract(r" for (.+?) v?\d[\w.\-]*$", 1)
    out = frame.select(
        *_common(frame),
        pl.lit("event").alias("event.kind"),
        pl.coalesce(_meta(1), pl.lit("network")).alias("event.category"),
        pl.coalesce(_meta(2), pl.lit("info")).alias("event.type"),
        _meta(3).alias("event.outcome"),
        # The whole text is the reason of an error message with no "Reason:" label.
        pl.coalesce(pl.col("reason"), pl.when(_meta(3) == "failure").then(pl.col("detail")))
        .str.strip_chars()
        .alias("event.reason"),
        pl.col("sev").cast(pl.Int32).alias("event.severity"),
        _duration_ns().alias("event.duration"),
        pl.when(~pl.col("_zoned")).then(pl.lit(ctx.tz)).alias("event.timezone"),
        pl.col("sev").replace_strict(_LEVELS, return_dtype=pl.String).alias("log.level"),
        pl.col("_msg").alias("message"),
        _user(pl.col("user")).alias("user.name"),
        pl.col("rules").alias("rule.name"),
        pl.col("client").alias("user_agent.original"),
        pl.coalesce("a_ip", "object").alias("source.ip"),
        pl.col("a_port").alias("source.port"),
        pl.col("rcv").alias("source.bytes"),
        pl.col("b_ip").alias("destination.ip"),
        pl.col("b_port").alias("destination.port"),
        pl.col("xmt").alias("destination.bytes"),
        (pl.col("xmt") + pl.col("rcv")).alias("network.bytes"),
        pl.col("transport").str.to_lowercase().alias("network.transport"),
        pl.col("service").alias("network.protocol"),
        pl.col("tunnel").alias("vpn.tunnel_ip"),
        pl.col("session").alias("vpn.session_id"),
        pl.coalesce(tunnel_word, _meta(4), ike).alias("vpn.tunnel_type"),
        pl.col("group").str.strip_chars().alias("vpn.group"),
        pl.col("client").alias("vpn.client_version"),
        client_os.alias("vpn.client_os"),
    )
    return out, dropped


# --------------------------------------------------------------------------------------
# Flows
# --------------------------------------------------------------------------------------

_BUILDS: Final = ("302013", "302015", "302020")
_TEARDOWNS: Final = ("302014", "302016")
_KEY: Final = ("_k_host", "_k_id")


def _directions(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """Per row ``_swap`` (the first side of the message is the responder, not the
    initiator) and ``_dir`` (``network.direction``, null when unknown).

    Builds say so (``outbound``: the first, lower-security side is the responder); 302304
    and denials name the initiator first. A teardown does not say: it gets its build's
    direction, remembered across chunks per device and connection id in ``ctx.state``;
    without one, the side with the lower port is taken as the responder (a server port).
    """
    code = pl.col("code")
    key = (
        pl.col("_host").fill_null("").alias("_k_host"),
        pl.col("conn_id").cast(pl.UInt64, strict=False).alias("_k_id"),
    )
    builds = df.filter(code.is_in(_BUILDS[:2])).select(*key, pl.col("dir").alias("_k_dir"))
    prev: pl.DataFrame | None = ctx.state.get(_STATE_KEY)
    # A connection id built twice without a teardown (rare) is simply kept twice: the
    # lookup below writes one of them, and a deduplication pass over all open connections
    # on every chunk would cost more than the duplicates.
    known = pl.concat([prev, builds]) if prev is not None else builds
    teardowns = df.with_row_index("_i").filter(code.is_in(_TEARDOWNS)).select("_i", *key)
    found = teardowns.join(known, on=_KEY, how="inner")
    remembered = pl.repeat(None, len(df), dtype=pl.String, eager=True)
    remembered = remembered.scatter(found["_i"], found["_k_dir"])
    ctx.state[_STATE_KEY] = known.join(teardowns, on=_KEY, how="anti").tail(_STATE_MAX)
    a_port = pl.col("a_port").cast(pl.Int64, strict=False)
    b_port = pl.col("b_port").cast(pl.Int64, strict=False)
    teardown = code.is_in(_TEARDOWNS)
    swap = (
        pl.when(code.is_in(_BUILDS))
        .then(pl.col("dir") == "outbound")
        .when(code == "302021")
        .then(True)  # ICMP teardowns carry no direction; the local host is the likelier asker
        .when(teardown)
        .then(pl.coalesce(remembered == "outbound", a_port < b_port))
        .otherwise(False)
    )
    direction = pl.when(teardown).then(remembered).otherwise(pl.col("dir").str.to_lowercase())
    return df.select(swap.fill_null(False).alias("_swap"), direction.alias("_dir"))


def _flows(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, int]:
    """The ``flows`` table: connection builds, teardowns and denials."""
    frame, dropped = _convert(
        pl.concat([df, _directions(df, ctx)], how="horizontal"),
        ips=("a_ip", "b_ip", "a_nat", "b_nat"),
        ints={
            "a_port": (pl.Int32(), 65535),
            "b_port": (pl.Int32(), 65535),
            "bytes": (pl.Int64(), None),
        },
    )

    def side(first: str, second: str) -> pl.Expr:
        """The initiator's (``first``) field, or the responder's when the sides swap."""
        return pl.when(pl.col("_swap")).then(pl.col(second)).otherwise(pl.col(first))

    def nat(real: str, mapped: str) -> pl.Expr:
        """The mapped address where NAT changed it (ASA prints it even when it did not)."""
        return pl.when(pl.col(mapped) != pl.col(real)).then(pl.col(mapped))

    transport = pl.coalesce(
        pl.col("proto_num").replace_strict(_IANA, default=pl.col("proto_num")),
        pl.col("transport").str.to_lowercase(),
    )
    verdict = pl.col("verdict").replace_strict(
        {"permitted": "success", "est-allowed": "success", "denied": "failure"},
        default=None,
        return_dtype=pl.String,
    )
    frame = frame.with_columns(
        nat("a_ip", "a_nat").alias("a_nat"), nat("b_ip", "b_nat").alias("b_nat")
    )
    out = frame.select(
        *_common(frame),
        pl.coalesce(verdict, _meta(3)).alias("event.outcome"),
        pl.when(pl.col("dur_h").is_not_null() | (pl.col("code") == "302021"))
        .then(pl.col("_ts"))
        .alias("event.end"),
        _duration_ns().alias("event.duration"),
        side("a_ip", "b_ip").alias("source.ip"),
        side("a_port", "b_port").alias("source.port"),
        side("a_nat", "b_nat").alias("source.nat.ip"),
        side("b_ip", "a_ip").alias("destination.ip"),
        side("b_port", "a_port").alias("destination.port"),
        side("b_nat", "a_nat").alias("destination.nat.ip"),
        transport.alias("network.transport"),
        pl.col("bytes").alias("network.bytes"),
        pl.col("_dir").alias("network.direction"),
        pl.col("reason").str.strip_chars().alias("flow.state"),
        pl.col("conn_id").alias("flow.id"),
        _user(pl.coalesce(pl.col("user"), side("a_user", "b_user"))).alias("user.name"),
        pl.col("rule").alias("rule.name"),
        side("a_iface", "b_iface").alias("observer.ingress.interface.name"),
        side("b_iface", "a_iface").alias("observer.egress.interface.name"),
    )
    return out, dropped
