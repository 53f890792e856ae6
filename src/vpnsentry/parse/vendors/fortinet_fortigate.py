"""Fortinet FortiGate (FortiOS) ``key=value`` logs: traffic, event (VPN, admin, user), UTM.

Format. FortiOS writes one ``key=value`` list per line ("Log field format" in the FortiOS
Log Message Reference). Since FortiOS 5.6 string values are double-quoted and may contain
spaces; numbers and addresses are bare. Older releases left strings bare too, and both
styles are read. Every line starts with a header whose order depends on the release:
``date time devname devid eventtime tz logid type subtype level vd`` (6.4 and later),
``date time devname devid logid type subtype level vd eventtime tz`` (6.0/6.2), without
``devname``/``devid`` when read from the disk log, ``devname devid vd date time ...`` or
FortiAnalyzer's ``logver timestamp tz devname ...`` when forwarded. Lines arrive bare,
after a ``<PRI>``, or behind a relay's RFC 3164, RFC 5424 or ISO syslog header.

What becomes of a line:

* ``type="traffic"`` goes to ``flows``; every other type (``event``, ``utm``, ``dns`` ...)
  to ``events``, mapped message type or not. ``event.dataset`` is
  ``fortinet_fortigate.<type>``.
* No FortiOS header key at all (``logid``, ``devid``, ``devname``, ``date``, ``eventtime``):
  quarantined ``no_match``. No usable time: ``bad_timestamp``. A header without ``logid``
  and ``type`` (FortiOS writes both within the first fields): ``truncated``.

Time. ``@timestamp`` is ``date``+``time`` in the zone ``tz`` names when the line has a
``tz``: that is the instant the line states (Elastic's pipeline reads it the same way, so
rules and counts agree), and ``eventtime`` can differ from it by a second on real devices.
Without ``tz`` the wall time's zone is unknown, so the epoch ``eventtime`` (s, ms, us or ns
by FortiOS release) wins, then ``date``+``time`` in ``ctx.tz``, then the relay's syslog
header. ``event.timezone`` is ``tz`` normalised to ``+HHMM`` (FortiAnalyzer writes
``UTC-5:00``; the first ``tz`` of a line wins, as in Elastic's pipeline).

Entities, as in the other gateway parsers: the remote VPN client is always the ECS
*source*. VPN events log it as ``remip`` and the gateway as ``locip``; their
``sentbyte``/``rcvdbyte`` are counted by the gateway, so the client's bytes are ``rcvdbyte``
(Elastic's pipeline swaps the same way). Admin events without ``srcip`` name the client in
``ui`` (``https(192.0.2.1)``). ``vpn.tunnel_type`` uses the shared vocabulary: ``ssl``
(``ssl``, ``ssl-tunnel``), ``clientless`` (``ssl-web`` portal), ``ipsec``. ``N/A`` and empty
values are absent values, as in Elastic's pipeline. ``event.action`` follows Elastic's
pipeline (``login`` for login messages, else the FortiOS message name of the log id, such
as ``FortiGate-event-ssl-vpn-session-tunnel-up``), so rules written for it read the same
here; log ids outside the VPN, admin, config and user-authentication families keep FortiOS's
own ``action`` (``blocked``, ``tunnel-stats``), and traffic always does (it is also
``flow.state``: how the session ended). The verb of a config change (``Add``, ``Edit``,
``Delete``) is ``event.type`` ``creation``/``change``/``deletion``.

Quoted values are parsed as values. A ``key=value`` written *inside* a quoted value (a user
name ``x srcip=10.0.0.1`` in a failed admin login, a URL, a DHCP host name) must not become
a field: that would let an attacker pick the address or outcome a detection sees (Graylog's
FortiGate parser had this hole until 2026). Every line is read by the quote-aware tokenizer
of ``parse/kv.py``: left to right, quoted values consumed whole (``\\"`` does not end one),
the first occurrence of a key wins, in whatever order a FortiOS release or relay wrote
them.

Speed. The tokenizer is compiled and scans each line once for all the keys the mappings
read (about 3 µs per 570-byte line on this project's machine, against 22 µs for the
regex passes it replaced); the mapping is vectorized Polars over the resulting columns.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

import polars as pl

from vpnsentry.parse import kv
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import epoch, local_to_utc, plausible

# --------------------------------------------------------------------------------------
# Keys read
# --------------------------------------------------------------------------------------

#: Header keys: FortiOS 6.0 to 7.6, the disk log, FortiAnalyzer's ``logver``/``timestamp``
#: prefix and FortiManager's ``log_id``/``device_id``/``pri``, wherever they stand.
_HEAD_KEYS: Final = (
    "date", "time", "tz", "eventtime", "devname", "devid", "logid", "type", "subtype",
    "log_id", "device_id", "pri",
)  # fmt: skip
#: Keys the ``flows`` mapping reads (traffic logs).
_TRAFFIC_KEYS: Final = (
    "srcip", "srcport", "srcintf", "srcintfrole", "dstip", "dstport", "dstintf",
    "dstintfrole", "sessionid", "proto", "action", "policyid", "duration", "sentbyte",
    "rcvdbyte", "sentpkt", "rcvdpkt", "service", "policyname", "user", "unauthuser",
    "transip", "tranip",
)  # fmt: skip
#: Further keys the ``events`` mapping reads (VPN, system, user, UTM and other events).
_EVENT_KEYS: Final = (
    "logdesc", "msg", "status", "reason", "group", "remip", "locip", "remport", "locport",
    "tunneltype", "tunnelid", "result", "tunnelip", "assignip", "vpntunnel", "xauthuser",
    "eapuser", "xauthgroup", "eapauthgroup", "dir", "ui", "cfgpath", "adminprof",
    "userfrom", "remote_ip", "remote_port", "desc", "eventsubtype", "direction", "agent",
    "srcname", "src_port", "dst_port",
)  # fmt: skip
#: The keys the ``flows`` mapping reads (``level`` only to merge it with ``pri``).
_FLOW_KEYS: Final = (*_HEAD_KEYS, "level", *_TRAFFIC_KEYS)
#: Every key any mapping reads, prepared once for the tokenizer.
_ALL_KEYS: Final = (*_FLOW_KEYS, *_EVENT_KEYS)
_KEYSET: Final = kv.KeySet(_ALL_KEYS)
#: The first key of a line: where the body starts after a relay's syslog header.
_FIRST_KEY: Final = r"[A-Za-z_][\w.-]*="
#: Keys only FortiOS lines have near their start; none of them means another format.
_MARKERS: Final = ("logid", "log_id", "devid", "device_id", "devname", "date", "eventtime")

# --------------------------------------------------------------------------------------
# Value tables
# --------------------------------------------------------------------------------------

_IANA: Final = {"0": "hopopt", "1": "icmp", "2": "igmp", "6": "tcp", "8": "egp", "17": "udp"}
_IANA.update({"47": "gre", "50": "esp", "51": "ah", "58": "ipv6-icmp", "112": "vrrp"})
_IANA.update({"132": "sctp"})
_SEVERITY: Final = {
    "emergency": 0, "alert": 1, "critical": 2, "error": 3,
    "warning": 4, "notice": 5, "information": 6, "debug": 7,
}  # fmt: skip
_TUNNEL_TYPES: Final = {
    "ssl": "ssl",
    "ssl-tunnel": "ssl",
    "ssl-web": "clientless",
    "ipsec": "ipsec",
}
#: Log ids of the IPsec (0101037xxx, 0101023xxx) and SSL VPN (0101039424-6, 01010399xx)
#: messages, for the tunnel type of the lines that do not name it.
_IPSEC_IDS: Final = r"^01010(?:371|231)"
_SSL_IDS: Final = r"^0101039[49]"
#: Config change log ids (LOGID_EVENT_CONFIG_PATH/OBJ/ATTR/OBJATTR).
_CONFIG_IDS: Final = ("0100044544", "0100044545", "0100044546", "0100044547")
#: Traffic log ids that are interim statistics, not the end of a session.
_TRAFFIC_STATS: Final = ("0000000020", "0004000021")
#: Traffic log id of sessions that failed to be set up (LOG_ID_TRAFFIC_FAIL_CONN).
_TRAFFIC_FAILED: Final = ("0000000011",)
_FAIL_WORDS: Final = ("failed", "failure", "fail", "negotiate_error", "error", "denied")
_OK_WORDS: Final = ("success", "succeeded", "ok")
_DENY_ACTIONS: Final = ("deny", "block", "blocked", "dropped", "reset", "clear_session")
_ALLOW_ACTIONS: Final = ("pass", "passthrough", "allow", "accept", "permit", "exempt")
#: FortiOS message names (the ``LOG_ID_*`` of the Log Message Reference) of the event ids
#: VPN intrusions show in, spelled as Elastic's pipeline spells them in ``event.action``
#: (``FortiGate-event-`` + name), so rules written for it read the same here.
_MESSAGE_NAMES: Final = {
    **{f"01010371{n}": name for n, name in (
        ("20", "neg-generic-p1-notif"), ("21", "neg-generic-p1-error"),
        ("22", "neg-generic-p2-notif"), ("23", "neg-generic-p2-error"),
        ("24", "neg-i-p1-error"), ("25", "neg-i-p2-error"), ("26", "neg-no-state-error"),
        ("27", "neg-progress-p1-notif"), ("28", "neg-progress-p1-error"),
        ("29", "neg-progress-p2-notif"), ("30", "neg-progress-p2-error"),
        ("31", "esp-error"), ("32", "esp-critical"), ("33", "install-sa"),
        ("34", "delete-p1-sa"), ("35", "delete-p2-sa"), ("36", "dpd-failure"),
        ("37", "conn-failure"), ("38", "conn-updown"), ("39", "p2-updown"),
        ("41", "conn-stats"),
    )},
    "0101023101": "ipsec-tunnel-up", "0101023102": "ipsec-tunnel-down",
    "0101023103": "ipsec-tunnel-stat",
    "0101039424": "ssl-vpn-user-tunnel-up", "0101039425": "ssl-vpn-user-tunnel-down",
    "0101039426": "ssl-vpn-user-ssl-login-fail",
    **{f"01010399{n}": f"ssl-vpn-session-{name}" for n, name in (
        ("36", "web-tunnel-stats"), ("37", "webapp-deny"), ("38", "webapp-pass"),
        ("39", "webapp-timeout"), ("40", "webapp-close"), ("41", "sys-busy"),
        ("42", "cert-ok"), ("43", "new-con"), ("44", "alert"), ("45", "exit-fail"),
        ("46", "exit-err"), ("47", "tunnel-up"), ("48", "tunnel-down"),
        ("49", "tunnel-stats"), ("50", "tunnel-unknowntag"), ("51", "tunnel-error"),
        ("52", "enter-conserve-mode"), ("53", "leave-conserve-mode"),
    )},
    "0101040001": "pptp-tunnel-up", "0101040002": "pptp-tunnel-down",
    "0101040003": "pptp-tunnel-stat", "0101040101": "l2tp-tunnel-up",
    "0101040102": "l2tp-tunnel-down", "0101040103": "l2tp-tunnel-stat",
    "0100032001": "admin-login-success", "0100032002": "admin-login-fail",
    "0100032003": "admin-logout", "0100032021": "admin-login-disable",
    "0100032024": "admin-passwd-expire", "0100032561": "admin-logout-disconnect",
    "0100032102": "chg-config", "0100032104": "chg-config-gui", "0100032129": "add-guest",
    "0100032130": "chg-user", "0100032131": "del-guest", "0100032132": "add-user",
    "0100032138": "reboot", "0100032142": "backup-conf", "0100032200": "shutdown",
    "0100032201": "load-img-succ", "0100032203": "restore-conf", "0100032215": "upt-img",
    "0100032247": "ssh-negotiation-failure", "0100032252": "factory-reset",
    "0100032301": "add-vdom", "0100032302": "del-vdom",
    "0100044544": "config-path", "0100044545": "config-obj", "0100044546": "config-attr",
    "0100044547": "config-objattr", "0100044548": "config-exec",
    "0102038031": "fsso-logon", "0102038032": "fsso-logoff",
    "0102043008": "auth-success", "0102043009": "auth-failed", "0102043010": "auth-lockout",
    "0102043011": "auth-time-out", "0102043014": "auth-fsae-logon",
    "0102043015": "auth-fsae-logoff", "0102043039": "auth-logon", "0102043040": "auth-logout",
}  # fmt: skip
_UTM_CATEGORY: Final = {
    "ips": "intrusion_detection", "anomaly": "intrusion_detection", "virus": "malware",
    "webfilter": "web", "waf": "web",
}  # fmt: skip

_IPV4: Final = r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
_PRIVATE: Final = r"^(?:10\.|172\.(?:1[6-9]|2\d|3[01])\.|192\.168\.|f[cd][0-9a-f]{2}:)"
_PORT_MAX: Final = 65535


@register
class FortinetFortigate(Parser):
    """FortiGate FortiOS ``key=value`` logs (syslog or disk), all log types."""

    name = "fortinet_fortigate"
    title = "Fortinet FortiGate (FortiOS key=value)"
    vendor = "Fortinet"
    product = "FortiGate"
    datasets = ("events", "flows")
    sniff_literals = ("logid=", "log_id=")
    sample = (
        '<190>date=2020-04-23 time=12:23:47 devname="testswitch3" devid="someotherrouteridagain"'
        ' logid="0101039947" type="event" subtype="vpn" level="information" vd="root"'
        ' eventtime=1587230627698970007 tz="-0500" logdesc="SSL VPN tunnel up"'
        ' action="tunnel-up" tunneltype="ssl-tunnel" tunnelid=2345 remip=67.43.156.13'
        ' tunnelip=10.10.10.10 user="someuser" group="somegroup" dst_host="N/A"'
        ' reason="tunnel established" msg="SSL tunnel established"'
    )

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Read the fields of every line, then map them to ``events`` and ``flows``."""
        frame = pl.DataFrame(
            {"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True), "_line": lines}
        ).hstack(kv.extract(lines, _KEYSET))
        frame = frame.with_columns(_kind().alias("_kind"))
        is_traffic = (frame["_kind"] == "traffic").fill_null(False)
        traffic, other = frame.filter(is_traffic), frame.filter(~is_traffic)
        result = ParseResult()
        rejected = [result.rejected]
        for name, part in (("flows", traffic), ("events", other)):
            if part.is_empty():
                continue
            part = _with_time(_finish(part, _FLOW_KEYS if name == "flows" else _ALL_KEYS), ctx)
            fate = _fate()
            rejected.append(
                part.filter(fate.is_not_null()).select(
                    "_row",
                    fate.alias("reason"),
                    fate.replace_strict(_DETAIL, return_dtype=pl.String).alias("detail"),
                )
            )
            good = part.filter(fate.is_null())
            if not good.is_empty():
                table, dropped = _flows(good) if name == "flows" else _events(good)
                result.tables[name] = table
                result.dropped_values += dropped
        result.rejected = pl.concat(rejected)
        return result


# --------------------------------------------------------------------------------------
# Reading fields
# --------------------------------------------------------------------------------------


def _kind() -> pl.Expr:
    """The log type: ``type``, else the type the log id's first two digits encode."""
    code = pl.coalesce("logid", "log_id").str.slice(0, 2)
    by_id = pl.when(code == "00").then(pl.lit("traffic")).when(code == "01").then(pl.lit("event"))
    return pl.coalesce(pl.col("type").str.to_lowercase(), by_id)


def _finish(df: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The ``keys`` the mapping reads all present (null where not read); alternatives
    merged."""
    df = df.with_columns(pl.lit(None, pl.String).alias(k) for k in keys if k not in df)
    marker = pl.any_horizontal(pl.col(k).is_not_null() for k in _MARKERS)
    return df.with_columns(
        marker.alias("_marker"),
        pl.coalesce("logid", "log_id").alias("logid"),
        _absent(pl.coalesce("devid", "device_id")).alias("devid"),
        _absent(pl.col("devname")).alias("devname"),
        pl.coalesce("level", "pri").str.to_lowercase().alias("level"),
    )


def _absent(value: pl.Expr) -> pl.Expr:
    """``value`` unless FortiOS wrote it empty or ``N/A`` (Elastic drops those too)."""
    return pl.when(~value.is_in(["", "N/A"])).then(value)


def _fate() -> pl.Expr:
    """Why a row cannot be an event (null: it can): no FortiOS header, no time, cut."""
    return (
        pl.when(~pl.col("_marker"))
        .then(pl.lit(Reason.NO_MATCH.value))
        .when(pl.col("_ts").is_null())
        .then(pl.lit(Reason.BAD_TIMESTAMP.value))
        .when(pl.col("logid").is_null() & pl.col("type").is_null())
        .then(pl.lit(Reason.TRUNCATED.value))
    )


_DETAIL: Final = {
    Reason.NO_MATCH.value: "no FortiOS header field (logid, devid, devname, date ...)",
    Reason.BAD_TIMESTAMP.value: "no usable date/time, eventtime or syslog time",
    Reason.TRUNCATED.value: "FortiOS header without logid and type",
}


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _offset(tz: str) -> str | None:
    """``+HHMM`` from FortiOS zone texts: ``-0700``, ``+02:00``, ``UTC-5:00``, ``GMT+1``."""
    m = re.fullmatch(r"(?:[A-Z]{1,4})?([+-])(\d{1,2})(?::?(\d{2}))?", tz.strip())
    if not m:
        return None
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes > 59:
        return None
    return f"{m.group(1)}{hours:02d}{minutes:02d}"


def _with_time(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """Add ``_ts`` (UTC, null if unusable), ``_zone`` (event.timezone) and ``_host``.

    Built in stages of plain columns: an eager ``with_columns`` evaluates a sub-expression
    as often as it is referenced, and these are referenced several times each.
    """
    zones = df["tz"].drop_nulls().unique().to_list()
    zone = pl.col("_zone")
    df = df.with_columns(
        pl.col("tz")
        .replace_strict({z: _offset(z) for z in zones}, default=None, return_dtype=pl.String)
        .alias("_zone"),
        pl.col("date")
        .str.to_date("%Y-%m-%d", strict=False)
        .dt.combine(pl.col("time").str.to_time("%H:%M:%S", strict=False))
        .alias("_wall"),
        pl.when(pl.col("eventtime").str.contains(r"^\d{9,19}$"))
        .then(pl.col("eventtime").cast(pl.Int64, strict=False))
        .alias("_epoch"),
    ).with_columns(
        (
            zone.str.slice(0, 1).replace_strict(
                {"+": 1, "-": -1}, default=None, return_dtype=pl.Int64
            )
            * (
                zone.str.slice(1, 2).cast(pl.Int64, strict=False) * 60
                + zone.str.slice(3, 2).cast(pl.Int64, strict=False)
            )
        ).alias("_minutes"),
        epoch(pl.col("_epoch")).alias("_epoch"),
    )
    wall, minutes, stamp = pl.col("_wall"), pl.col("_minutes"), pl.col("_epoch")
    df = df.with_columns(
        pl.when(wall.is_not_null() & minutes.is_not_null())
        .then((wall - pl.duration(minutes=minutes)).dt.replace_time_zone("UTC"))
        .when(stamp.is_not_null())
        .then(stamp)
        .otherwise(local_to_utc(wall, ctx.tz))
        .alias("_ts"),
        pl.when(wall.is_not_null() & minutes.is_null() & stamp.is_null())
        .then(pl.lit(ctx.tz))
        .otherwise(zone)
        .alias("_zone"),
        pl.lit(None, pl.String).alias("_host"),
    ).with_columns(plausible(pl.col("_ts"), ctx.now).alias("_ts"))
    # The relay's syslog header is read only where FortiOS's own fields lack the time or
    # the device name, and only on lines that have one (text before the first key).
    at = (df["_ts"].is_null() | df["devname"].is_null()).arg_true()
    lines = df["_line"].gather(at)
    relayed = ~lines.str.contains(r"^(?:<\d{1,3}>)?[A-Za-z_][\w.-]*=")
    at, lines = at.filter(relayed), lines.filter(relayed)
    cut = lines.str.find(_FIRST_KEY)
    at, lines, cut = at.filter(cut > 0), lines.filter(cut > 0), cut.filter(cut > 0)
    if at.is_empty():
        return df
    heads = lines.str.slice(0, cut)
    header = split_header(heads, ctx)
    # A header time without an offset (RFC 3164) was read as wall time in ``ctx.tz``.
    from_header = df["_ts"].gather(at).is_null() & header["_sys_ts"].is_not_null()
    zoneless = from_header & ~heads.str.contains(r"\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d)")
    assumed = pl.select(pl.when(zoneless).then(pl.lit(ctx.tz))).to_series()
    return df.with_columns(
        df["_ts"].clone().scatter(at, df["_ts"].gather(at).fill_null(header["_sys_ts"])),
        df["_zone"].clone().scatter(at, df["_zone"].gather(at).fill_null(assumed)),
        df["_host"].clone().scatter(at, header["_sys_host"]),
    )


# --------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _canon_ipv6(text: str) -> str | None:
    """Canonical IPv6 text (RFC 5952); an IPv4-mapped address as IPv4."""
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


class _Values:
    """Typed field values of one frame, counting the values that failed conversion."""

    def __init__(self, df: pl.DataFrame) -> None:
        self.df = df
        self.dropped = 0

    def ip(self, col: str) -> pl.Series:
        """Canonical IP text; IPv4 by a regex kernel, IPv6 via ``ipaddress`` per distinct
        value. ``0.0.0.0`` (FortiOS for "none", e.g. ``transip`` of sniffer traffic) is
        absent, not dropped; so is an empty value."""
        raw = self._present(col)
        if raw.null_count() == len(raw):
            return raw
        v4 = raw.str.contains(_IPV4)
        six = raw.filter(~v4 & raw.str.contains(":", literal=True)).unique().to_list()
        other = (
            raw.replace_strict({v: _canon_ipv6(v) for v in six}, default=None)
            if six
            else pl.lit(None, pl.String)
        )
        out = pl.select(pl.when(v4).then(raw).otherwise(other)).to_series()
        self.dropped += out.null_count() - raw.null_count()
        return pl.select(pl.when(out != "0.0.0.0").then(out)).to_series()  # noqa: S104

    def number(self, col: str, high: int, dtype: pl.DataType) -> pl.Series:
        """Integer in ``0..high``; anything else is dropped (an empty value is absent)."""
        raw = self._present(col)
        value = raw.cast(pl.Int64, strict=False)
        out = pl.select(pl.when(value.is_between(0, high)).then(value)).to_series()
        self.dropped += int((raw.is_not_null() & out.is_null()).sum())
        return out.cast(dtype)

    def _present(self, col: str) -> pl.Series:
        """``col`` with empty values as null."""
        raw = self.df[col]
        return pl.select(pl.when(raw != "").then(raw)).to_series()

    def port(self, col: str) -> pl.Series:
        """A TCP/UDP port."""
        return self.number(col, _PORT_MAX, pl.Int32())

    def count(self, col: str) -> pl.Series:
        """A byte or packet counter."""
        return self.number(col, 2**63 - 1, pl.Int64())


def _private(ip: pl.Expr) -> pl.Expr:
    """Whether an address is in private space (RFC 1918, RFC 4193)."""
    return ip.str.contains(_PRIVATE)


def _direction(s: pl.Expr, d: pl.Expr) -> pl.Expr:
    """``network.direction`` from whether source and destination are private (``s``,
    ``d``: boolean columns), as Elastic derives it."""
    return (
        pl.when(s & d)
        .then(pl.lit("internal"))
        .when(s & ~d)
        .then(pl.lit("outbound"))
        .when(~s & d)
        .then(pl.lit("inbound"))
        .when(~s & ~d)
        .then(pl.lit("external"))
    )


def _roles(src: pl.Expr, dst: pl.Expr) -> pl.Expr:
    """``network.direction`` from FortiOS interface roles (``lan``, ``wan``, ``dmz``)."""
    inside = ("lan", "dmz")
    return (
        pl.when(src.is_in(inside) & dst.is_in(inside))
        .then(pl.lit("internal"))
        .when(src.is_in(inside) & (dst == "wan"))
        .then(pl.lit("outbound"))
        .when((src == "wan") & dst.is_in(inside))
        .then(pl.lit("inbound"))
        .when((src == "wan") & (dst == "wan"))
        .then(pl.lit("external"))
    )


def _common() -> list[pl.Expr]:
    """Columns every row carries, events or flows."""
    return [
        pl.col("_row"),
        pl.col("_ts").alias("@timestamp"),
        pl.concat_str(pl.lit("fortinet_fortigate."), pl.col("_kind").fill_null("log")).alias(
            "event.dataset"
        ),
        pl.coalesce("devname", "_host").alias("observer.name"),
        pl.lit("firewall").alias("observer.type"),
        pl.col("logid").alias("event.code"),
        (pl.col("duration").cast(pl.Int64, strict=False) * 1_000_000_000).alias("event.duration"),
        pl.col("proto")
        .replace_strict(_IANA, default=None, return_dtype=pl.String)
        .alias("network.transport"),
        pl.col("service").str.to_lowercase().alias("network.protocol"),
    ]


# --------------------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------------------


def _flows(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``flows`` table from traffic logs."""
    text = ("user", "unauthuser", "policyname", "service", "srcintf", "dstintf", "action")
    df = df.with_columns(_absent(pl.col(k)).alias(k) for k in text)
    val = _Values(df)
    src_ip, dst_ip = val.ip("srcip"), val.ip("dstip")
    nat_src, nat_dst = val.ip("transip"), val.ip("tranip")
    src_port, dst_port = val.port("srcport"), val.port("dstport")
    sent, rcvd = val.count("sentbyte"), val.count("rcvdbyte")
    spkt, rpkt = val.count("sentpkt"), val.count("rcvdpkt")
    action = pl.col("action")
    failed = (action == "deny") | pl.col("logid").is_in(_TRAFFIC_FAILED)
    ended = (
        pl.col("duration").is_not_null()
        & (action != "start").fill_null(True)
        & ~pl.col("logid").is_in(_TRAFFIC_STATS).fill_null(False)
    )
    out = (
        df.with_columns(src_ip.alias("source.ip"), dst_ip.alias("destination.ip"))
        .with_columns(
            _private(pl.col("source.ip")).alias("_sp"),
            _private(pl.col("destination.ip")).alias("_dp"),
        )
        .select(
            *_common(),
            action.alias("event.action"),
            pl.when(action.is_not_null() | pl.col("logid").is_not_null())
            .then(pl.when(failed).then(pl.lit("failure")).otherwise(pl.lit("success")))
            .alias("event.outcome"),
            pl.when(ended).then(pl.col("_ts")).alias("event.end"),
            pl.col("source.ip"),
            src_port.alias("source.port"),
            sent.alias("source.bytes"),
            spkt.alias("source.packets"),
            nat_src.alias("source.nat.ip"),
            pl.col("destination.ip"),
            dst_port.alias("destination.port"),
            rcvd.alias("destination.bytes"),
            rpkt.alias("destination.packets"),
            nat_dst.alias("destination.nat.ip"),
            (sent + rcvd).alias("network.bytes"),
            (spkt + rpkt).alias("network.packets"),
            pl.coalesce(
                _roles(pl.col("srcintfrole"), pl.col("dstintfrole")),
                _direction(pl.col("_sp"), pl.col("_dp")),
            ).alias("network.direction"),
            action.alias("flow.state"),
            pl.col("sessionid").alias("flow.id"),
            pl.coalesce("user", "unauthuser").alias("user.name"),
            pl.coalesce("policyname", "policyid").alias("rule.name"),
            pl.col("srcintf").alias("observer.ingress.interface.name"),
            pl.col("dstintf").alias("observer.egress.interface.name"),
        )
    )
    return out, val.dropped


def _events(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``events`` table: VPN, admin, user, system and UTM logs."""
    vpn = pl.col("_vpn")
    in_parens = r"\(([0-9A-Fa-f:.]+)\)$"
    text = pl.col("_text")
    way = pl.col("_way")
    df = df.with_columns(
        # (keys no row of the chunk has are left as they are: null)
        *(
            _absent(pl.col(k)).alias(k)
            for k in _ALL_KEYS
            if k not in _HEAD_KEYS and df[k].null_count() < len(df)
        ),
        pl.coalesce("msg", "desc").str.to_lowercase().alias("_text"),
    ).with_columns(
        (pl.col("subtype") == "vpn").fill_null(False).alias("_vpn"),
        (pl.col("_kind") != "event").fill_null(False).alias("_utm"),
        pl.col("action").str.to_lowercase().alias("_act"),
        pl.col("status").str.to_lowercase().alias("_status"),
        pl.col("result").str.to_lowercase().alias("_result"),
        pl.coalesce("dir", "direction")
        .str.to_lowercase()
        .replace({"outgoing": "outbound", "incoming": "inbound"})
        .alias("_way"),
        (text.str.contains("login|logged in").fill_null(False)).alias("_login"),
        text.str.contains("fail").fill_null(False).alias("_fail_text"),
        text.str.contains("success|accepted").fill_null(False).alias("_ok_text"),
        text.str.contains("logout|logged out|logoff").fill_null(False).alias("_logoff_text"),
    )
    sides = df.with_columns(
        pl.when(vpn)
        .then(pl.coalesce("remip", "srcip"))
        .otherwise(
            pl.coalesce(
                "srcip",
                "remote_ip",
                pl.col("ui").str.extract(in_parens, 1),
                pl.col("userfrom").str.extract(in_parens, 1),
            )
        )
        .alias("_sip"),
        pl.when(vpn).then(pl.coalesce("locip", "dstip")).otherwise("dstip").alias("_dip"),
        pl.when(vpn)
        .then(pl.coalesce("remport", "srcport"))
        .otherwise(pl.coalesce("srcport", "src_port", "remote_port"))
        .alias("_sport"),
        pl.when(vpn)
        .then(pl.coalesce("locport", "dstport"))
        .otherwise(pl.coalesce("dstport", "dst_port"))
        .alias("_dport"),
        # The gateway counts: what it received came from the client (source) side.
        pl.when(vpn).then("rcvdbyte").otherwise("sentbyte").alias("_sbytes"),
        pl.when(vpn).then("sentbyte").otherwise("rcvdbyte").alias("_dbytes"),
        pl.when(vpn).then("rcvdpkt").otherwise("sentpkt").alias("_spkts"),
        pl.when(vpn).then("sentpkt").otherwise("rcvdpkt").alias("_dpkts"),
        pl.when(vpn).then(pl.coalesce("tunnelip", "assignip")).alias("_tunnel"),
        _category().alias("event.category"),
    )
    val = _Values(sides)
    sides = sides.with_columns(
        val.ip("_sip").alias("source.ip"),
        val.ip("_dip").alias("destination.ip"),
        val.ip("_tunnel").alias("vpn.tunnel_ip"),
        val.ip("transip").alias("source.nat.ip"),
        val.ip("tranip").alias("destination.nat.ip"),
        val.port("_sport").alias("source.port"),
        val.port("_dport").alias("destination.port"),
        val.count("_sbytes").alias("source.bytes"),
        val.count("_dbytes").alias("destination.bytes"),
        val.count("_spkts").alias("source.packets"),
        val.count("_dpkts").alias("destination.packets"),
    )
    sides = sides.with_columns(
        _private(pl.col("source.ip")).alias("_sp"), _private(pl.col("destination.ip")).alias("_dp")
    )
    known_way = ("inbound", "outbound", "internal", "external", "ingress", "egress")
    names = {code: f"FortiGate-event-{name}" for code, name in _MESSAGE_NAMES.items()}
    out = sides.select(
        *_common(),
        pl.lit("event").alias("event.kind"),
        "event.category",
        _type().alias("event.type"),
        # As Elastic's pipeline: "login" for login messages, else the log id's message name.
        pl.coalesce(
            pl.when("_login").then(pl.lit("login")),
            pl.col("logid").replace_strict(names, default=None, return_dtype=pl.String),
            pl.col("action"),
        ).alias("event.action"),
        _outcome().alias("event.outcome"),
        pl.coalesce("reason", "eventsubtype").alias("event.reason"),
        pl.col("level")
        .replace_strict(_SEVERITY, default=None, return_dtype=pl.Int32)
        .alias("event.severity"),
        pl.col("_zone").alias("event.timezone"),
        pl.col("level").alias("log.level"),
        pl.coalesce("msg", "desc").alias("message"),
        pl.col("devid").alias("observer.serial_number"),
        pl.col("srcname").alias("host.hostname"),
        pl.when(vpn)
        .then(
            pl.coalesce(
                "xauthuser",
                "eapuser",
                # IPsec logs put the peer's address in ``user`` when nobody logged in.
                pl.when(pl.col("user") != pl.col("remip").fill_null("")).then("user"),
            )
        )
        .otherwise(pl.coalesce("user", "unauthuser"))
        .alias("user.name"),
        pl.coalesce(
            "adminprof",
            pl.when(pl.col("msg").str.starts_with("Administrator ")).then(pl.lit("Administrator")),
        ).alias("user.roles"),
        pl.coalesce("group", "xauthgroup", "eapauthgroup").alias("group.name"),
        pl.col("agent").alias("user_agent.original"),
        pl.coalesce("policyname", "policyid").alias("rule.name"),
        pl.col("logdesc").alias("rule.description"),
        "source.ip",
        "source.port",
        "source.bytes",
        "source.packets",
        "source.nat.ip",
        "destination.ip",
        "destination.port",
        "destination.bytes",
        "destination.packets",
        "destination.nat.ip",
        (pl.col("source.bytes") + pl.col("destination.bytes")).alias("network.bytes"),
        (pl.col("source.packets") + pl.col("destination.packets")).alias("network.packets"),
        pl.when(way.is_in(known_way))
        .then(way)
        .otherwise(_direction(pl.col("_sp"), pl.col("_dp")))
        .alias("network.direction"),
        "vpn.tunnel_ip",
        pl.when(vpn & (pl.col("tunnelid") != "0")).then("tunnelid").alias("vpn.session_id"),
        pl.when(vpn)
        .then(
            pl.coalesce(
                pl.col("tunneltype").replace_strict(
                    _TUNNEL_TYPES, default=None, return_dtype=pl.String
                ),
                pl.when(pl.col("logid").str.contains(_IPSEC_IDS)).then(pl.lit("ipsec")),
                pl.when(pl.col("logid").str.contains(_SSL_IDS)).then(pl.lit("ssl")),
            )
        )
        .alias("vpn.tunnel_type"),
        pl.when(vpn).then(pl.coalesce("group", "vpntunnel")).alias("vpn.group"),
    )
    return out, val.dropped


_LOGON: Final = ("login", "fsso-logon", "auth-logon", "authentication", "ssl-login-fail")
_LOGOFF: Final = ("logout", "fsso-logoff", "auth-logout", "auth-timeout")


def _config() -> pl.Expr:
    """A configuration change (log ids LOGID_EVENT_CONFIG_*, or a ``cfgpath``)."""
    return pl.col("logid").is_in(_CONFIG_IDS) | pl.col("cfgpath").is_not_null()


def _category() -> pl.Expr:
    """``event.category``: VPN tunnels ``session``, their statistics and IKE negotiation
    ``network`` (as Elastic), logins and FSSO/firewall logons ``authentication``, config
    changes ``configuration``, UTM by profile, the rest ``host``."""
    act, vpn = pl.col("_act"), pl.col("_vpn")
    return (
        pl.when(vpn & act.is_in(["tunnel-up", "tunnel-down"]))
        .then(pl.lit("session"))
        .when(vpn & (act == "ssl-login-fail"))
        .then(pl.lit("authentication"))
        .when(vpn)
        .then(pl.lit("network"))
        .when(_config())
        .then(pl.lit("configuration"))
        .when(act.is_in(_LOGON + _LOGOFF) | pl.col("_login") | (pl.col("subtype") == "user"))
        .then(pl.lit("authentication"))
        .when("_utm")
        .then(
            pl.col("subtype").replace_strict(
                _UTM_CATEGORY, default="network", return_dtype=pl.String
            )
        )
        .otherwise(pl.lit("host"))
    )


def _type() -> pl.Expr:
    """``event.type`` for the category: start/end, connection, creation/change/deletion,
    UTM ``allowed``/``denied``, else ``info``."""
    act, category = pl.col("_act"), pl.col("event.category")
    cfg_type = act.replace_strict(
        {"add": "creation", "delete": "deletion"}, default="change", return_dtype=pl.String
    )
    return (
        pl.when(category == "session")
        .then(pl.when(act == "tunnel-up").then(pl.lit("start")).otherwise(pl.lit("end")))
        .when(category == "authentication")
        .then(
            pl.when(act.is_in(_LOGOFF) | pl.col("_logoff_text"))
            .then(pl.lit("end"))
            .otherwise(pl.lit("start"))
        )
        .when("_vpn")
        .then(pl.lit("connection"))
        .when(category == "configuration")
        .then(cfg_type)
        .when(pl.col("_utm") & act.is_in(_DENY_ACTIONS))
        .then(pl.lit("denied"))
        .when(pl.col("_utm") & act.is_in(_ALLOW_ACTIONS))
        .then(pl.lit("allowed"))
        .otherwise(pl.lit("info"))
    )


def _outcome() -> pl.Expr:
    """``event.outcome``: ``status``, else ``result``, else what the action or a login
    message says."""
    act, status, result = pl.col("_act"), pl.col("_status"), pl.col("_result")
    return (
        pl.when(status.is_in(_FAIL_WORDS))
        .then(pl.lit("failure"))
        .when(status.is_in(_OK_WORDS))
        .then(pl.lit("success"))
        .when(status.str.contains(r"^[1-5]\d\d$"))  # REST API: the HTTP status
        .then(pl.when(status < "400").then(pl.lit("success")).otherwise(pl.lit("failure")))
        .when(result == "error")
        .then(pl.lit("failure"))
        .when(result == "ok")
        .then(pl.lit("success"))
        .when(act == "ssl-login-fail")
        .then(pl.lit("failure"))
        .when(act.is_in(["tunnel-up", "fsso-logon", "fsso-logoff", "auth-logon", "auth-logout"]))
        .then(pl.lit("success"))
        .when(pl.col("_login") & pl.col("_fail_text"))
        .then(pl.lit("failure"))
        .when(pl.col("_login") & pl.col("_ok_text"))
        .then(pl.lit("success"))
        .when(_config())
        .then(pl.lit("success"))
        .when(pl.col("_utm") & act.is_in(_DENY_ACTIONS))
        .then(pl.lit("failure"))
        .when(pl.col("_utm") & act.is_in(_ALLOW_ACTIONS))
        .then(pl.lit("success"))
    )
