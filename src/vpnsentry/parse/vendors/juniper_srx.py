"""Juniper SRX / Junos OS syslog: flow sessions, IKE/IPsec, dynamic VPN, admin logins, commits.

Junos writes one event per line, identified by a tag (``RT_FLOW_SESSION_CREATE``,
``KMD_VPN_UP_ALARM_USER`` ...), in two shapes (Junos "System Log Explorer" and the SRX
"Monitoring" guides):

* **Structured** (``set system syslog ... structured-data``; RFC 5424 with the tag as MSGID
  and the fields as structured data): ``<14>1 2026-03-10T12:34:56.789+01:00 srx-1 RT_FLOW -
  RT_FLOW_SESSION_CREATE [junos@2636.1.1.1.2.129 source-address="192.0.2.10" ...] text``.
  With ``brief`` the text after the structured data is left out; some tags (kmd's ``IKE
  negotiation failed ...``) have no tag and no structured data (``- -``), only text.
* **Plain text** (the default; RFC 3164 ``Mar 10 12:34:56 srx-1 RT_FLOW:
  RT_FLOW_SESSION_CREATE: session created 192.0.2.10/51234->198.51.100.20/443 ...``). Junos
  writes the same values in the text, in a fixed order per tag.

Structured-data values win over the text where both exist; ``\\"``, ``\\\\`` and ``\\]``
are unescaped. Header host is ``observer.name``; times carry their own offset (RFC 5424) or are
wall time in ``ctx.tz`` (RFC 3164). A relay that drops the RFC 5424 version (``<166>
2023-05-08T10:54:24.756+10:00 host ...``, seen in Elastic's test data) is accepted.

What each tag becomes (``event.action``; category/type/outcome):

==============================================  ===============================================
``RT_FLOW_SESSION_CREATE[_LS]``                 flows ``flow-creation`` (success)
``RT_FLOW_SESSION_CLOSE[_LS]``                  flows ``flow-expiration``: bytes and packets
                                                (client = ECS source), ``event.duration``,
                                                close reason in ``flow.state``
``RT_FLOW_SESSION_DENY[_LS]``                   flows ``firewall-rule`` (failure), deny reason
                                                in ``flow.state``
``PFE_FW_SYSLOG_IP`` / kernel ``FW:`` lines     flows ``firewall-rule``: firewall filter ``log``
                                                / ``syslog`` action (A accept, D discard, R reject)
``KMD_VPN_UP_ALARM_USER``                       ``vpn-tunnel-up`` session/start/success
``KMD_VPN_DOWN_ALARM_USER``                     ``vpn-tunnel-down`` session/end; reason
``KMD_PM_SA_ESTABLISHED``                       ``ipsec-sa-established`` network/connection
``IKE negotiation successfully completed``      ``ike-negotiation-completed`` network/success
``IKE negotiation failed with error: ...``      ``ike-negotiation-failed`` network/failure
``IPSec negotiation ... completed|failed``      ``ipsec-negotiation-completed|failed``
``DYNAMIC_VPN_AUTH_OK|FAIL``                    ``logged-in``/``logon-failed`` authentication
``DYNAMIC_VPN_CONN_EST|DEL``                    ``dynamic-vpn-connected|disconnected``
                                                session/start|end
``UI_LOGIN_EVENT``, ``UI_AUTH_EVENT``           ``logged-in`` authentication/start|info/success,
                                                ``user.roles`` ``Administrator``
``UI_LOGOUT_EVENT``                             ``logged-out`` authentication/end
``SSHD_LOGIN_FAILED``, ``LOGIN_FAILED``,        ``logon-failed`` authentication/failure,
``UI_LOGIN_FAILED``                             ``user.roles`` ``Administrator``
``UI_COMMIT``, ``UI_COMMIT_COMPLETED``          ``config-commit`` configuration/change
``UI_CMDLINE_READ_LINE``                        ``command-executed`` process/info
``SNMPD_AUTH_FAILURE``                          ``snmp-auth-failed`` authentication/failure
``DOT1XD_USR_AUTHENTICATED``                    ``dot1x-authenticated`` authentication/success
==============================================  ===============================================

In every VPN message the remote peer is the ECS source and the SRX the destination, as in the
other parsers (so a peer address joins the same way whatever the tag). Other lines with a
header are events with ``event.code`` (the tag), ``log.level`` and ``message``. Quarantined:
lines without a Junos syslog header (``no_match``) and impossible times (``bad_timestamp``).
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import bounded_int, canonical_ip, count, rejects
from vpnsentry.parse.timeparse import iso_to_utc, parse_bsd, plausible

_MONTHS: Final = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
#: RFC 5424 (the version may be missing after a relay) or RFC 3164, then the message.
_HEAD_RE: Final = (
    r"^(?P<head>(?:<(?P<pri>\d{1,3})>)?(?:1 | )?"
    r"(?:(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?) "
    r"(?P<h5>\S+) (?P<app5>\S+) (?P<pid5>\S+) (?P<mid5>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?"
    rf"|(?P<mon>{_MONTHS}) +(?P<day>\d{{1,2}}) (?:(?P<year>\d{{4}}) )?"
    r"(?P<clock>\d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?) +(?P<hb>[\w.\-:]+) +"
    r"(?:(?P<appb>[\w\-./]+)(?:\[(?P<pidb>\d*)\])?: )?))"
)
#: A tag at the start of the plain-text message: ``RT_FLOW_SESSION_CREATE: ``.
_TAG_RE: Final = r"^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+): ?"

_SEVERITY: Final = {
    0: "emergency",
    1: "alert",
    2: "critical",
    3: "error",
    4: "warning",
    5: "notice",
    6: "informational",
    7: "debug",
}

# --- plain-text layouts -------------------------------------------------------------------

_TUPLE = r"(?P<{p}src>[^\s/]+)/(?P<{p}sport>\d+)->(?P<{p}dst>[^\s/]+)/(?P<{p}dport>\d+)"
_FLOW_HEAD = (
    _TUPLE.format(p="")
    + r"(?: 0x\w+)? (?P<service>\S+) "
    + _TUPLE.format(p="n")
    + r"(?: 0x\w+)? (?:\S+ ){0,6}?(?P<proto>\d+) (?P<policy>\S+) (?P<szone>\S+) "
    r"(?P<dzone>\S+) (?P<sid>\d+)"
)
_IKE_TAIL = (
    r"(?:.*?IKE Version: (?P<ikever>\d))?(?:.*?VPN: (?P<vpn>.*?),? Gateway: (?P<gw>[^,]*),)?"
    r"(?:.*?Local: (?P<dst>[^/\s,]+)/(?P<dport>\d+))?"
    r"(?:.*?Remote: (?P<src>[^/\s,]+)/(?P<sport>\d+))?"
    r"(?:.*?Remote IKE-ID: (?P<rid>[^,]*))?"
)
#: Kind -> regex over the text after the tag (plain text), all group names shared.
_TEXT: Final[dict[str, str]] = {
    "flow_create": r"^session created " + _FLOW_HEAD + r"(?: (?P<user>\S+?)\(\S*\))?",
    "flow_close": (
        r"^session closed (?P<reason>[^:]*): "
        + _FLOW_HEAD
        + r" (?P<pkc>\d+)\((?P<byc>\d+)\) (?P<pks>\d+)\((?P<bys>\d+)\) (?P<elapsed>\d+)"
        r"(?:.*? (?P<user>[^\s(]+)\([^)]*\) (?P<iface>\S+))?"
    ),
    "flow_deny": (
        r"^session denied "
        + _TUPLE.format(p="")
        + r"(?: 0x\w+)? (?P<service>\S+) (?P<proto>\d+)\(\d+\) (?P<policy>\S+) (?P<szone>\S+) "
        r"(?P<dzone>\S+)(?:.*? (?P<user>[^\s(]+)\([^)]*\) (?P<iface>\S+))?"
    ),
    "pfe_fw": (
        r"FW: (?P<iface>\S+) +(?P<fwact>[ADR]) +(?P<proto>\w+) +(?P<src>\S+) +(?P<dst>\S+) +"
        r"(?P<sport>\d+) +(?P<dport>\d+)(?: +\((?P<pkc>\d+) packets?\))?"
    ),
    "kmd_up": (
        r"^VPN (?P<vpn>.*?) from (?P<src>\S+) is up\.(?:.*?Local-ip: (?P<dst>[^,\s]+))?"
        r"(?:.*?remote tunnel-ip: (?P<tip>[^,\s]+))?"
        r"(?:.*?(?:XAUTH|AAA) username: (?P<user>[^,]*))?"
    ),
    "kmd_down": (
        r"^VPN (?P<vpn>.*?) from (?P<src>\S+) is down\.(?:.*?Local-ip: (?P<dst>[^,\s]+))?"
        r"(?:.*?remote tunnel-ip: (?P<tip>[^,\s]+))?"
        r"(?:.*?(?:XAUTH|AAA) username: (?P<user>[^,]*))?(?:.*?Reason: (?P<reason>[^,]*))?"
    ),
    "pm_sa": (
        r"Local gateway: (?P<dst>[^,\s]+), Remote gateway: (?P<src>[^,\s]+)"
        r"(?:.*?SPI: (?P<spi>\w+))?"
    ),
    "ike_ok": r"^IKE negotiation successfully completed\." + _IKE_TAIL,
    "ike_fail": r"^IKE negotiation failed with error: (?P<reason>[^.]*)\." + _IKE_TAIL,
    "ipsec_ok": r"^IPSec negotiation successfully completed\." + _IKE_TAIL,
    "ipsec_fail": r"^IPSec negotiation failed with error: (?P<reason>[^.]*)\." + _IKE_TAIL,
    "dvpn": (
        r"^(?:.*?\buser:? '?(?P<user>[^'\s,]+)'?)?(?:.*?\bfrom:? (?P<src>[0-9A-Fa-f.:]+))?"
        r"(?:.*?\b(?:[Rr]eason|error):? (?P<reason>.+))?"
    ),
    "ui_login": (
        r"^User '(?P<user>[^']*)' login, class '(?P<cls>[^']*)'"
        r"(?:.*?(?:ssh|telnet|http|https)-connection '(?P<src>\S+) (?P<sport>\d+) (?P<dst>\S+) "
        r"(?P<dport>\d+)')?"
    ),
    "ui_auth": (
        r"^Authenticated user '(?P<user>[^']*)'"
        r"(?: (?:assigned to class|at permission level) '(?P<cls>[^']*)')?"
    ),
    "ui_logout": r"^User '(?P<user>[^']*)' logout",
    "login_failed": (
        r"^Login failed for user '?(?P<user>[^'\s]*)'? from host '?(?P<src>[^'\s]+)'?"
    ),
    "ui_commit": r"^User '(?P<user>[^']*)' (?:requested '(?P<cmd>[^']*)' operation)?",
    "ui_cmd": r"^User '(?P<user>[^']*)', command '(?P<cmd>.*)'$",
    "snmp": r"(?P<reason>unauthorized SNMP community).*?from (?P<src>\S+)",
    "dot1x": r"User (?P<user>\S+) logged in",
}

#: Kind -> (structured-data key -> group name). Where both exist, the key wins.
_SD_FLOW: Final = {
    "source-address": "src",
    "source-port": "sport",
    "destination-address": "dst",
    "destination-port": "dport",
    "nat-source-address": "nsrc",
    "nat-destination-address": "ndst",
    "protocol-id": "proto",
    "policy-name": "policy",
    "session-id-32": "sid",
    "session-id": "sid2",
    "username": "user",
    "packet-incoming-interface": "iface",
    "reason": "reason",
}
_SD_CLOSE: Final = {
    **_SD_FLOW,
    "bytes-from-client": "byc",
    "bytes-from-server": "bys",
    "packets-from-client": "pkc",
    "packets-from-server": "pks",
    "elapsed-time": "elapsed",
}
_SD_KMD: Final = {
    "vpn-name": "vpn",
    "remote-address": "src",
    "peer-address": "src2",
    "local-address": "dst",
    "internal-ip": "tip",
    "remote-tunnel-ip": "tip2",
    "aaa-username": "user",
    "xauth-username": "user2",
    "reason": "reason",
}
_SD_USER: Final = {
    "username": "user",
    "source-address": "src",
    "destination-address": "dst",
    "remote-address": "src2",
    "class-name": "cls",
    "command": "cmd",
    "reason": "reason",
    "error-message": "reason2",
    "message": "sdmsg",
}
_SD_KEYS: Final[dict[str, dict[str, str]]] = {
    "flow_create": _SD_FLOW,
    "flow_close": _SD_CLOSE,
    "flow_deny": _SD_FLOW,
    "kmd_up": _SD_KMD,
    "kmd_down": _SD_KMD,
    "pm_sa": {"local-address": "dst", "remote-address": "src"},
    "dvpn": _SD_USER,
    "ui_login": _SD_USER,
    "ui_auth": _SD_USER,
    "ui_logout": _SD_USER,
    "login_failed": _SD_USER,
    "ui_commit": _SD_USER,
    "ui_cmd": _SD_USER,
    "snmp": {"source-address": "src", "destination-address": "dst", "message": "reason"},
    "dot1x": {"username": "user"},
}
#: Alternatives folded into their group after extraction (``a2`` -> ``a`` when ``a`` null).
_ALTERNATIVES: Final = {
    "src": "src2",
    "user": "user2",
    "sid": "sid2",
    "tip": "tip2",
    "reason": "reason2",
}

#: Tag -> kind. Flow tags also come with ``_LS`` (logical systems) and ``_APP`` suffixes.
_TAGS: Final = {
    "RT_FLOW_SESSION_CREATE": "flow_create",
    "RT_FLOW_SESSION_CLOSE": "flow_close",
    "RT_FLOW_SESSION_DENY": "flow_deny",
    "PFE_FW_SYSLOG_IP": "pfe_fw",
    "PFE_FW_SYSLOG_IP6": "pfe_fw",
    "KMD_VPN_UP_ALARM_USER": "kmd_up",
    "KMD_VPN_DOWN_ALARM_USER": "kmd_down",
    "KMD_PM_SA_ESTABLISHED": "pm_sa",
    "DYNAMIC_VPN_AUTH_OK": "dvpn",
    "DYNAMIC_VPN_AUTH_FAIL": "dvpn",
    "DYNAMIC_VPN_CONN_EST": "dvpn",
    "DYNAMIC_VPN_CONN_DEL": "dvpn",
    "UI_LOGIN_EVENT": "ui_login",
    "UI_AUTH_EVENT": "ui_auth",
    "UI_LOGOUT_EVENT": "ui_logout",
    "SSHD_LOGIN_FAILED": "login_failed",
    "LOGIN_FAILED": "login_failed",
    "UI_LOGIN_FAILED": "login_failed",
    "UI_COMMIT": "ui_commit",
    "UI_COMMIT_COMPLETED": "ui_commit",
    "UI_CMDLINE_READ_LINE": "ui_cmd",
    "SNMPD_AUTH_FAILURE": "snmp",
    "DOT1XD_USR_AUTHENTICATED": "dot1x",
}
#: kmd messages without a tag, told by their first words.
_TEXT_KINDS: Final = (
    ("IKE negotiation successfully completed", "ike_ok"),
    ("IKE negotiation failed with error", "ike_fail"),
    ("IPSec negotiation successfully completed", "ipsec_ok"),
    ("IPSec negotiation failed with error", "ipsec_fail"),
)
_FLOW_KINDS: Final = ("flow_create", "flow_close", "flow_deny", "pfe_fw")

#: Kind (or tag for the dynamic VPN family) -> (action, category, type, outcome).
_SPEC: Final[dict[str, tuple[str, str | None, str | None, str | None]]] = {
    "flow_create": ("flow-creation", None, None, "success"),
    "flow_close": ("flow-expiration", None, None, None),
    "flow_deny": ("firewall-rule", None, None, "failure"),
    "pfe_fw": ("firewall-rule", None, None, None),
    "kmd_up": ("vpn-tunnel-up", "session", "start", "success"),
    "kmd_down": ("vpn-tunnel-down", "session", "end", None),
    "pm_sa": ("ipsec-sa-established", "network", "connection", "success"),
    "ike_ok": ("ike-negotiation-completed", "network", "connection", "success"),
    "ike_fail": ("ike-negotiation-failed", "network", "connection", "failure"),
    "ipsec_ok": ("ipsec-negotiation-completed", "network", "connection", "success"),
    "ipsec_fail": ("ipsec-negotiation-failed", "network", "connection", "failure"),
    "DYNAMIC_VPN_AUTH_OK": ("logged-in", "authentication", "start", "success"),
    "DYNAMIC_VPN_AUTH_FAIL": ("logon-failed", "authentication", "start", "failure"),
    "DYNAMIC_VPN_CONN_EST": ("dynamic-vpn-connected", "session", "start", "success"),
    "DYNAMIC_VPN_CONN_DEL": ("dynamic-vpn-disconnected", "session", "end", None),
    "ui_login": ("logged-in", "authentication", "start", "success"),
    "ui_auth": ("logged-in", "authentication", "info", "success"),
    "ui_logout": ("logged-out", "authentication", "end", None),
    "login_failed": ("logon-failed", "authentication", "start", "failure"),
    "ui_commit": ("config-commit", "configuration", "change", "success"),
    "ui_cmd": ("command-executed", "process", "info", None),
    "snmp": ("snmp-auth-failed", "authentication", "info", "failure"),
    "dot1x": ("dot1x-authenticated", "authentication", "start", "success"),
}
_ADMIN_KINDS: Final = ("ui_login", "ui_auth", "ui_logout", "login_failed", "ui_commit", "ui_cmd")
_VPN_KINDS: Final = ("kmd_up", "kmd_down", "dvpn", "ike_ok", "ike_fail", "ipsec_ok", "ipsec_fail")
_GROUPS: Final = sorted(
    {g for p in _TEXT.values() for g in re.findall(r"\?P<(\w+)>", p)}
    | {g for keys in _SD_KEYS.values() for g in keys.values()}
)
_TRANSPORT: Final = {
    "1": "icmp",
    "6": "tcp",
    "17": "udp",
    "47": "gre",
    "50": "esp",
    "58": "ipv6-icmp",
}
_NOT_A_VALUE: Final = ["", "N/A", "Not-Available", "Not-Applicable", "UNKNOWN", "None", "none"]


def _sd_value(key: str) -> pl.Expr:
    """The value of structured-data parameter ``key``, unescaped (RFC 5424 section 6.3.3)."""
    raw = pl.col("_sd").str.extract(rf'[\s\[]{re.escape(key)}="((?:[^"\\]|\\.)*)"', 1)
    return raw.str.replace_all(r"\\([\]\"\\])", "$1")


def _value(name: str) -> pl.Expr:
    """Group ``name`` with the words Junos writes for "no value" made null."""
    c = pl.col(name)
    return pl.when(~c.str.strip_chars().is_in(_NOT_A_VALUE)).then(c.str.strip_chars())


@register
class JuniperSrx(Parser):
    name = "juniper_srx"
    title = "Juniper SRX / Junos OS (syslog, structured or plain)"
    vendor = "Juniper"
    product = "SRX"
    datasets = ("events", "flows")
    sniff_literals = (
        "[junos@",
        "RT_FLOW",
        "KMD_",
        "DYNAMIC_VPN_",
        "UI_LOGIN_EVENT",
        "UI_COMMIT",
        "PFE_FW_SYSLOG",
        "IKE negotiation failed with error",
        "IKE negotiation successfully completed",
    )
    sample = (
        "<14>1 2026-03-10T12:34:56.789+01:00 srx-edge-1 RT_FLOW - RT_FLOW_SESSION_CLOSE "
        '[junos@2636.1.1.1.2.129 reason="TCP FIN" source-address="192.0.2.10" '
        'source-port="51234" destination-address="198.51.100.20" destination-port="443" '
        'protocol-id="6" policy-name="allow-web" bytes-from-client="1816" '
        'bytes-from-server="4623" elapsed-time="12" session-id-32="40001"]'
    )

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        df = (
            pl.DataFrame({"_line": lines})
            .with_row_index("_row")
            .with_columns(pl.col("_line").str.extract_groups(_HEAD_RE).alias("_h"))
            .unnest("_h")
        )
        f = pl.col
        no_head = df.filter(f("head").is_null())
        looks = no_head["_line"].str.contains(
            "|".join(re.escape(lit) for lit in self.sniff_literals)
        )
        rejected = [
            rejects(no_head.filter(looks), Reason.TRUNCATED, "Junos line without syslog header"),
            rejects(no_head.filter(~looks), Reason.NO_MATCH, "no Junos syslog header"),
        ]
        df = df.filter(f("head").is_not_null())
        year = f("year").fill_null(pl.lit(str(ctx.year)))
        # Each time form materialised once (iso_to_utc stages the ISO parse): as one
        # expression every reference re-ran the ISO regex.
        df = df.with_columns(
            _iso_ts=iso_to_utc(df["iso"], ctx.tz, ctx.now),
            _bsd_ts=parse_bsd(f("mon"), f("day"), year, f("clock"), ctx.tz, ctx.now),
        )
        ts = (
            pl.when(f("iso").is_not_null())
            .then(f("_iso_ts"))
            .otherwise(plausible(f("_bsd_ts"), ctx.now))
        )
        msg = f("_line").str.slice(f("head").str.len_chars())
        mid5 = pl.when(~f("mid5").is_in(["-"])).then(f("mid5"))
        df = df.with_columns(
            ts.alias("@timestamp"),
            pl.when(f("iso").is_null()).then(pl.lit(ctx.tz)).alias("event.timezone"),
            pl.coalesce(f("h5"), f("hb")).alias("observer.name"),
            (f("pri").cast(pl.Int32, strict=False) % 8)
            .replace_strict(_SEVERITY, default=None, return_dtype=pl.String)
            .alias("log.level"),
            pl.when(f("sd") != "-").then(f("sd")).alias("_sd"),
            msg.str.strip_chars_end().alias("message"),
            msg.str.extract(_TAG_RE, 1).alias("_ttag"),
        )
        tag = pl.coalesce(mid5, f("_ttag")).str.replace(r"_(?:LS|APP)$", "")
        df = df.with_columns(
            tag.alias("event.code"),
            pl.when(f("_ttag").is_not_null())
            .then(f("message").str.replace(_TAG_RE, ""))
            .otherwise(f("message"))
            .alias("_text"),
        )
        kind = f("event.code").replace_strict(_TAGS, default=None, return_dtype=pl.String)
        for prefix, k in _TEXT_KINDS:
            kind = pl.when(f("_text").str.starts_with(prefix)).then(pl.lit(k)).otherwise(kind)
        fw = f("_text").str.contains(r"(?:^|\s)FW: \S+ +[ADR] ")
        kind = pl.when(kind.is_null() & fw).then(pl.lit("pfe_fw")).otherwise(kind)
        df = df.with_columns(kind.alias("_kind"))
        no_ts = df.filter(f("@timestamp").is_null())
        rejected.append(rejects(no_ts, Reason.BAD_TIMESTAMP, "impossible or unparsable time"))
        df = df.filter(f("@timestamp").is_not_null())
        df = _fields(df)
        # A flow line whose addresses neither structured data nor text gave was cut short.
        cut = (pl.col("_kind").is_in(_FLOW_KINDS) & pl.col("src").is_null()).fill_null(False)
        rejected.append(rejects(df.filter(cut), Reason.TRUNCATED, "flow line without addresses"))
        df, dropped = _typed(df.filter(~cut))
        tables = {
            "flows": _flows(df.filter(f("_kind").is_in(_FLOW_KINDS))),
            "events": _events(df.filter(~f("_kind").is_in(_FLOW_KINDS) | f("_kind").is_null())),
        }
        return ParseResult(
            tables={k: v for k, v in tables.items() if v.height},
            rejected=pl.concat(rejected),
            dropped_values=dropped,
        )


def _fields(df: pl.DataFrame) -> pl.DataFrame:
    """The shared group columns, from structured data (first) and text, per message kind."""
    parts = []
    for (kind,), part in df.partition_by("_kind", as_dict=True, maintain_order=True).items():
        if kind is not None:
            keys = _SD_KEYS.get(str(kind), {})
            # A structured flow line repeats its values in the text: read the text only
            # without structured data (flows are most of an SRX's volume).
            text = pl.col("_text")
            if kind in _FLOW_KINDS:
                text = pl.when(pl.col("_sd").is_null()).then(text)
            part = part.with_columns(
                text.str.extract_groups(_TEXT[str(kind)]).name.prefix_fields("_t_").alias("_g")
            ).unnest("_g")
            part = part.with_columns(
                _sd_value(key).alias(f"_s_{group}") for key, group in keys.items()
            )
        parts.append(part)
    df = pl.concat(parts, how="diagonal_relaxed") if parts else df
    df = df.with_columns(
        pl.coalesce(
            *(pl.col(c) for c in (f"_s_{g}", f"_t_{g}") if c in df.columns),
            pl.lit(None, pl.String),
        ).alias(g)
        for g in _GROUPS
    )
    df = df.with_columns(_value(g).alias(g) for g in _GROUPS)
    return df.with_columns(
        pl.coalesce(pl.col(g), pl.col(alt)).alias(g) for g, alt in _ALTERNATIVES.items()
    )


def _typed(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Addresses validated (a bad one null and counted), numbers converted."""
    dropped = 0
    for group, column in (
        ("src", "source.ip"),
        ("dst", "destination.ip"),
        ("nsrc", "source.nat.ip"),
        ("ndst", "destination.nat.ip"),
        ("tip", "vpn.tunnel_ip"),
    ):
        ips, bad = canonical_ip(df[group])
        df = df.with_columns(ips.alias(column))
        dropped += bad
    ints = {
        "source.port": bounded_int(pl.col("sport"), 65535, pl.Int32()),
        "destination.port": bounded_int(pl.col("dport"), 65535, pl.Int32()),
        "source.bytes": count(pl.col("byc")),
        "destination.bytes": count(pl.col("bys")),
        "source.packets": count(pl.col("pkc")),
        "destination.packets": count(pl.col("pks")),
        "_elapsed": count(pl.col("elapsed")),
    }
    df = df.with_columns(**ints)
    src = {"source.port": "sport", "destination.port": "dport", "source.bytes": "byc"}
    src |= {"destination.bytes": "bys", "source.packets": "pkc", "destination.packets": "pks"}
    lost = [(pl.col(g).is_not_null() & pl.col(c).is_null()).sum() for c, g in src.items()]
    dropped += int(df.select(pl.sum_horizontal(lost)).item())
    return df, dropped


def _classify(df: pl.DataFrame) -> pl.DataFrame:
    """``event.action``/category/type/outcome from the kind (dynamic VPN: from the tag)."""
    key = pl.when(pl.col("_kind") == "dvpn").then(pl.col("event.code")).otherwise(pl.col("_kind"))
    cols = ("event.action", "event.category", "event.type", "event.outcome")
    return df.with_columns(
        key.replace_strict(
            {k: v[i] for k, v in _SPEC.items()}, default=None, return_dtype=pl.String
        ).alias(name)
        for i, name in enumerate(cols)
    )


def _flows(df: pl.DataFrame) -> pl.DataFrame:
    """Flow sessions and firewall-filter hits."""
    df = _classify(df)
    proto = pl.col("proto")
    fwact = pl.col("fwact")
    return df.select(
        "_row",
        "@timestamp",
        "observer.name",
        "event.code",
        "source.ip",
        "source.port",
        "destination.ip",
        "destination.port",
        "source.nat.ip",
        "destination.nat.ip",
        "source.bytes",
        "destination.bytes",
        "source.packets",
        "destination.packets",
        pl.when(fwact.is_null())
        .then(pl.col("event.outcome"))
        .when(fwact == "A")
        .then(pl.lit("success"))
        .otherwise(pl.lit("failure"))
        .alias("event.outcome"),
        "event.action",
        proto.replace(_TRANSPORT).str.to_lowercase().alias("network.transport"),
        (pl.col("source.bytes") + pl.col("destination.bytes")).alias("network.bytes"),
        (pl.col("source.packets") + pl.col("destination.packets").fill_null(0)).alias(
            "network.packets"
        ),
        (pl.col("_elapsed") * 1_000_000_000).alias("event.duration"),
        pl.col("reason").alias("flow.state"),
        pl.coalesce("sid", pl.lit(None, pl.String)).alias("flow.id"),
        pl.col("user").alias("user.name"),
        pl.col("policy").alias("rule.name"),
        pl.col("iface").alias("observer.ingress.interface.name"),
        pl.lit("juniper_srx.flow").alias("event.dataset"),
        pl.lit("firewall").alias("observer.type"),
    )


def _events(df: pl.DataFrame) -> pl.DataFrame:
    """Everything that is not a flow: VPN, IKE, admin and system messages."""
    df = _classify(df)
    kind = pl.col("_kind")
    ikever = pl.col("ikever")
    return df.select(
        "_row",
        "@timestamp",
        "event.timezone",
        "observer.name",
        "log.level",
        "message",
        "event.code",
        "event.action",
        "event.category",
        "event.type",
        "event.outcome",
        pl.lit("event").alias("event.kind"),
        pl.coalesce("reason", "sdmsg").alias("event.reason"),
        pl.col("user").alias("user.name"),
        pl.when(kind.is_in(_ADMIN_KINDS)).then(pl.lit("Administrator")).alias("user.roles"),
        pl.col("cls").alias("group.name"),
        "source.ip",
        "source.port",
        "destination.ip",
        "destination.port",
        "vpn.tunnel_ip",
        pl.coalesce("vpn", "gw").alias("vpn.group"),
        pl.when(ikever == "1")
        .then(pl.lit("ikev1"))
        .when(ikever == "2")
        .then(pl.lit("ikev2"))
        .when(kind.is_in(_VPN_KINDS))
        .then(pl.lit("ipsec"))
        .alias("vpn.tunnel_type"),
        pl.when(kind == "pm_sa").then(pl.col("spi")).alias("vpn.session_id"),
        pl.lit("juniper_srx.log").alias("event.dataset"),
        pl.lit("firewall").alias("observer.type"),
    )
