"""Ivanti Connect Secure / Pulse Connect Secure syslog: user access, admin and event logs.

Format. The appliance sends each log line by syslog in one of the formats chosen under
*System > Log/Monitoring > Settings*:

* **Standard**: ``2021-10-19 09:10:35 - pcs-node1 - [89.160.20.156] user(REALM)[ROLES] -
  <message>``: device time, node name, client address, the user with realm and roles
  (9.1R12 and later prefix the network zone ``Default Network::`` and append a short
  session id ``[5f934b7c31]``; system messages are ``System()[]``). Behind an RFC 5424
  header (``<134>1 2023-03-03T17:21:09+01:00 10.5.2.3 PulseSecure: - - - ...``), whose
  stamp, with its offset, is the time we use; relays may wrap that in an RFC 3164 header.
* **WELF** (WebTrends): ``id=firewall time="..." pri=6 fw=<device ip> vpn=<node>
  user=<user> realm="..." roles="..." proto= src=<client> dst= dstname= type=vpn op=
  arg="..." result= sent= rcvd= agent="..." duration= msg="AUT24414: <message>"``: fixed
  key order, empty values bare; ``msg`` starts with the message id.

Messages (the Ivanti "Log Messages" reference; the id where the format shows it, e.g.
AUT24414 agent login, AUT23457 login failed, AUT22673 logout, NWC23464/NWC23465 VPN
Tunneling session start/end, AUT24326 primary authentication, ADMxxxxx admin actions) are
recognised by their fixed opening words, one anchored alternation over the whole chunk,
and mapped to the vocabulary of the other gateway parsers (``logged-in``, ``logon-failed``,
``logged-out``, ``client-vpn-connected``, ``client-vpn-disconnected``,
``client-vpn-resumed``, ``client-vpn-tunnel-established``, ``session-timeout``). The
remote client is the ECS source; the address assigned inside the tunnel is
``vpn.tunnel_ip``; the realm is ``vpn.group``; the roles are ``user.roles``, written
``Administrator`` when they include the built-in ``.Administrators`` role so that admin
logins are told apart as for the other vendors. One wrong password is logged as up to
three lines (``Login failed``, ``Primary authentication failed``, ``Login failed using
auth server``), each an authentication failure, as the appliance reports them.

What becomes of a line: neither layout found: ``no_match`` (``truncated`` when the line
stops inside the standard prefix or the WELF key list). Every recognised line is an
``events`` row; unknown messages keep ``message`` and the user/address fields.

Limit: the appliance does not escape the user name it writes before `` - <message>``; a
name that itself contains ``(realm)[roles] - `` ends the prefix early. We take the first
complete prefix, as the format defines it, and say so here rather than guess.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import (
    canonical_ip,
    count,
    keep_rows,
    rejects,
    seconds_to_ns,
)
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import iso_to_utc

#: The standard layout after any syslog header (an RFC 5424 header nested in an RFC 3164
#: one stays in the body; its stamp is read separately).
_STANDARD: Final = (
    r"(?:^|\s)(?P<date>\d{4}-\d{2}-\d{2}) (?P<clock>\d{2}:\d{2}:\d{2}) - (?P<node>\S*) - "
    r"\[(?P<src>[^\]]*)\] (?:(?P<zone>[^:\[\]()]*)::)?"
    r"(?P<user>.*?)\((?P<realm>[^()\[\]]*)\)\[(?P<roles>[^\]]*)\]"
    r"(?:\[(?P<sid>[0-9A-Fa-f]*)\])? - (?P<msg>.*)$"
)
#: WELF: Pulse writes the keys always in this order.
_WELF: Final = (
    r'(?:^|\s)id=firewall time="(?P<date>\d{4}-\d{2}-\d{2}) (?P<clock>\d{2}:\d{2}:\d{2})"'
    r" pri=(?P<pri>\d*) fw=(?P<fw>\S*) vpn=(?P<node>\S*) user=(?P<user>.*?)"
    r' realm="(?P<realm>[^"]*)" roles="(?P<roles>[^"]*)" proto=(?P<proto>\S*)'
    r" src=(?P<src>\S*) dst=(?P<dst>\S*) dstname=(?P<dstname>\S*) type=\S* op=\S*"
    r' arg="(?P<arg>.*?)" result=(?P<result>\S*) sent=(?P<sent>\S*) rcvd=(?P<rcvd>\S*)'
    r' agent="(?P<agent>.*?)" duration=(?P<duration>\S*) msg="(?P<msg>.*)"\s*$'
)
#: Lines that start either layout but stop before its message: cut short, not foreign.
_STARTED: Final = (
    r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} - \S* - \[|id=firewall time=\"[^\"]*\" pri=\d* fw="
)
#: The RFC 5424 stamp of the header (outer, or nested behind a relay's RFC 3164 header).
_STAMP5424: Final = (
    r"(?:^|\s|>)1 (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) "
)
#: The message id (``AUT24414``) that WELF and some standard templates put first.
_CODE: Final = r"^([A-Z]{3}\d{5}): "

#: Opening words of each message kind -> (event.action, category, type, outcome). Longer
#: openings first where one starts another.
_KINDS: Final[dict[str, tuple[str, str, str, str | None]]] = {
    "Agent login succeeded": ("logged-in", "authentication", "start", "success"),
    "Login succeeded": ("logged-in", "authentication", "start", "success"),
    "Login failed using auth server": ("auth-server-failed", "authentication", "info", "failure"),
    "Login failed": ("logon-failed", "authentication", "start", "failure"),
    "Primary authentication successful": (
        "authentication-succeeded", "authentication", "info", "success",
    ),
    "Primary authentication failed": (
        "authentication-failed", "authentication", "info", "failure",
    ),
    "Secondary authentication successful": (
        "authentication-succeeded", "authentication", "info", "success",
    ),
    "Secondary authentication failed": (
        "authentication-failed", "authentication", "info", "failure",
    ),
    "User Limit realm restrictions successfully passed": (
        "realm-restrictions-passed", "authentication", "info", "success",
    ),
    "Logout": ("logged-out", "authentication", "end", "success"),
    "VPN Tunneling: Session started": ("client-vpn-connected", "session", "start", "success"),
    "VPN Tunneling: Session ended": ("client-vpn-disconnected", "session", "end", "success"),
    "VPN Tunneling: User with IP": (
        "client-vpn-tunnel-established", "network", "start", "success",
    ),
    "VPN Tunneling: Optimized ACE": ("vpn-tunneling-info", "network", "info", None),
    "Session created": ("session-created", "session", "start", "success"),
    "Session resumed": ("client-vpn-resumed", "session", "start", "success"),
    "Session timed out": ("session-timeout", "session", "end", "success"),
    "Max session timeout": ("session-timeout", "session", "end", "success"),
    "Session:[": ("session-end", "session", "end", "success"),
    "Session extended": ("session-extended", "session", "info", "success"),
    "Closed connection to": ("connection-closed", "network", "end", "success"),
    "WebRequest completed": ("web-request", "web", "access", "success"),
    ":Client connection done": ("client-connection-done", "network", "end", None),
    "User Accounts modified": ("user-accounts-modified", "configuration", "change", "success"),
    "Account lockout": ("account-locked", "authentication", "info", "failure"),
}  # fmt: skip
#: Admin-log openings that change the configuration (ADM2xxxx "... modified"/"changed").
_CONFIG_WORDS: Final = (
    r"(?i)(?-u:\b)(?:modified|changed|added|deleted|removed|imported|created)(?-u:\b)"
)

_KIND_RE: Final = "^(" + "|".join(k.replace("[", r"\[") for k in _KINDS) + ")"


def _table(field: int) -> dict[str, str]:
    """One column of ``_KINDS`` (opening words -> value), without the empty entries."""
    return {k: str(v[field]) for k, v in _KINDS.items() if v[field] is not None}


@register
class PulseConnectSecure(Parser):
    """Ivanti (Pulse) Connect Secure user access and admin logs, standard syslog and WELF."""

    name = "pulse_connect_secure"
    title = "Ivanti / Pulse Connect Secure (syslog standard and WELF)"
    vendor = "Ivanti"
    product = "Connect Secure"
    datasets = ("events",)
    sniff_literals = (" - [", "vpn=")
    sample = (
        "<134>1 2021-10-19T09:10:35+02:00 10.5.2.3 PulseSecure: - - - 2021-10-19 09:10:35 - "
        "pcs-node1 - [192.0.2.10] alice(Users)[Users] - VPN Tunneling: Session started for "
        "user (session: sid74fa8e00ca6012) with IPv4 address 10.20.27.209, hostname Desktop"
    )

    def sniff(self, head: list[str]) -> float:
        """Share of head lines in either layout (a bare `` - [`` or ``vpn=`` is not enough)."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        s = pl.Series(lines, dtype=pl.String)
        hits = s.str.contains(_STANDARD) | s.str.contains(_WELF)
        return float(hits.sum()) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        frame = pl.DataFrame(
            {"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True), "_line": lines}
        )
        line = pl.col("_line")
        welf_rows = line.str.contains(" vpn=", literal=True) & line.str.contains(
            "id=firewall", literal=True
        )
        std = frame.filter(~welf_rows).with_columns(line.str.extract_groups(_STANDARD).alias("_g"))
        welf = frame.filter(welf_rows).with_columns(line.str.extract_groups(_WELF).alias("_g"))
        parts = [std.unnest("_g"), welf.unnest("_g")]
        df = pl.concat(parts, how="diagonal_relaxed")
        matched = df.filter(pl.col("msg").is_not_null())
        missed = df.filter(pl.col("msg").is_null())
        # Started a layout but does not reach its end (WELF's closing quote, a message).
        cut = missed["_line"].str.contains(_STARTED) & ~missed["_line"].str.contains(r'"\s*$')
        rejected = pl.concat(
            [
                rejects(missed.filter(cut), Reason.TRUNCATED, "line ends inside the prefix"),
                rejects(
                    missed.filter(~cut), Reason.NO_MATCH, "no Connect Secure standard/WELF layout"
                ),
            ]
        )
        events, dropped = _events(_with_relay_header(matched, ctx), ctx)
        no_ts = events.filter(pl.col("@timestamp").is_null())
        events = keep_rows(events, pl.col("@timestamp").is_not_null())
        bad_ts = rejects(no_ts, Reason.BAD_TIMESTAMP, "no valid device or syslog time")
        return ParseResult(
            tables={"events": events} if len(events) else {},
            rejected=pl.concat([rejected, bad_ts]),
            dropped_values=dropped,
        )


def _with_relay_header(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """Add ``_sys_ts``/``_sys_host`` from the syslog header, read only on rows without a
    node name (the header costs more than the rest of the line, and only those need it)."""
    need = df.filter(pl.col("node").fill_null("").str.strip_chars() == "")
    head = split_header(need["_line"], ctx)
    found = pl.DataFrame(
        {"_row": need["_row"], "_sys_ts": head["_sys_ts"], "_sys_host": head["_sys_host"]}
    )
    return df.join(found, on="_row", how="left")


def _blank(name: str) -> pl.Expr:
    """Column ``name`` stripped, with empty values as null (WELF writes ``dst=``)."""
    v = pl.col(name).str.strip_chars()
    return pl.when(v != "").then(v).alias(name)


def _events(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, int]:
    """The ``events`` table from matched rows (standard and WELF columns)."""
    for c in ("pri", "fw", "dst", "sent", "rcvd", "agent", "duration", "arg", "sid", "zone"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c))
    df = df.with_columns(
        *(_blank(c) for c in ("user", "realm", "roles", "src", "dst", "sid", "agent", "node")),
        pl.col("msg").str.extract(_CODE, 1).alias("_code"),
        pl.col("msg").str.replace(_CODE, "").str.strip_chars().alias("_text"),
    )
    text = pl.col("_text")
    df = df.with_columns(
        text.str.extract(_KIND_RE, 1).alias("_kind"),
        text.str.extract(r"(?:with IPv[46] address|User with IP) ([0-9A-Fa-f.:]+)", 1).alias(
            "_tunnel"
        ),
        pl.coalesce(
            text.str.extract(r"\(session: ?(sid[0-9A-Fa-f]+)\)", 1),
            text.str.extract(r"^Session:\[([0-9A-Fa-f]+)\]", 1),
            text.str.extract(r"Client connection done for (sid[0-9A-Fa-f]+)", 1),
        ).alias("_long_sid"),
        text.str.extract(r"^Closed connection to (\S+)", 1).alias("_peer"),
        text.str.extract(r"^Closed connection to \S+ port (\d+)", 1).alias("_peer_port"),
        text.str.extract(r" after (\d+) seconds", 1).alias("_secs"),
        text.str.extract(r"with (\d+) bytes read", 1).alias("_read"),
        text.str.extract(r"and (\d+) bytes written", 1).alias("_written"),
        text.str.extract(r"Bandwidth consumed \[(\d*)\] bytes", 1).alias("_bw"),
        text.str.extract(r"connected with (\w+) transport mode", 1).alias("_mode"),
        pl.coalesce(
            text.str.extract(r"Reason: (.*)", 1).str.strip_suffix("."),
            text.str.extract(r" due to (inactivity)", 1),
            text.str.extract(r"reason code (\d+)", 1),
        ).alias("_reason"),
        pl.coalesce(
            text.str.extract(r"^Agent login succeeded .* from \S+ with (.+)", 1).str.strip_suffix(
                "."
            ),
            text.str.extract(r"^Session resumed from user agent '(.*)'", 1),
            pl.col("agent"),
        ).alias("_agent"),
        text.str.extract(r"^Session created for user: \[([^\]/]*)", 1).alias("_created_user"),
        # "for user.name/REALM": the name in the message where the prefix has none.
        text.str.extract(r" for ([^\s/]+)/", 1).alias("_msg_user"),
    )
    sips, bad_src = canonical_ip(df["src"])
    tips, bad_tun = canonical_ip(df["_tunnel"])
    peers, _ = canonical_ip(df["_peer"])  # a host name is not an address: not a loss
    dips, bad_dst = canonical_ip(df["dst"])
    oips, bad_fw = canonical_ip(df["fw"])
    df = df.with_columns(
        sips.alias("source.ip"),
        tips.alias("vpn.tunnel_ip"),
        pl.coalesce(dips, peers).alias("destination.ip"),
        oips.alias("observer.ip"),
    )
    dropped = bad_src + bad_tun + bad_dst + bad_fw
    kind = pl.col("_kind")

    def meta(field: int) -> pl.Expr:
        return kind.replace_strict(_table(field), default=None, return_dtype=pl.String)

    admin = pl.col("roles").str.contains(r"(?:^|,\s*)\.Administrators(?:,|$)").fill_null(False)
    # Admin-log changes: an ADM message id (WELF) or an administrator (standard layout).
    by_admin = admin | pl.col("_code").str.starts_with("ADM").fill_null(False)
    config = (kind.is_null() & by_admin & text.str.contains(_CONFIG_WORDS)) | (
        kind == "User Accounts modified"
    )
    cfg_type = (
        pl.when(text.str.contains(r"(?i)(?-u:\b)(?:added|created|imported)(?-u:\b)"))
        .then(pl.lit("creation"))
        .when(text.str.contains(r"(?i)(?-u:\b)(?:deleted|removed)(?-u:\b)"))
        .then(pl.lit("deletion"))
        .otherwise(pl.lit("change"))
    )
    mode = pl.col("_mode").str.to_uppercase()
    # Times in stages: as one expression, parse_iso re-runs its regex for every reference.
    stamp = df.select(pl.col("_line").str.extract(_STAMP5424, 1)).to_series()
    body = df.select(pl.format("{} {}", pl.col("date"), pl.col("clock"))).to_series()
    ts = pl.coalesce(
        iso_to_utc(stamp, ctx.tz, ctx.now), iso_to_utc(body, ctx.tz, ctx.now), pl.col("_sys_ts")
    )
    user = pl.coalesce(
        pl.when(~pl.col("user").is_in(["System", ""])).then(pl.col("user")),
        pl.col("_created_user"),
        pl.when(kind.is_not_null()).then(pl.col("_msg_user")),
    )
    # Materialised once: eager ``select`` evaluates a shared expression once per reference.
    df = df.with_columns(
        admin.alias("_admin"),
        config.alias("_config"),
        cfg_type.alias("_cfg_type"),
        count(pl.col("_read")).alias("_read"),
        count(pl.col("_written")).alias("_written"),
    )
    admin, config, cfg_type = pl.col("_admin"), pl.col("_config"), pl.col("_cfg_type")
    read, written = pl.col("_read"), pl.col("_written")
    out = df.select(
        "_row",
        ts.alias("@timestamp"),
        pl.lit("pulse_connect_secure.log").alias("event.dataset"),
        pl.coalesce("node", "_sys_host").alias("observer.name"),
        pl.lit("vpn").alias("observer.type"),
        "observer.ip",
        pl.lit("event").alias("event.kind"),
        pl.when(config)
        .then(pl.lit("configuration"))
        .otherwise(pl.coalesce(meta(1), pl.lit("host")))
        .alias("event.category"),
        pl.when(config).then(cfg_type).otherwise(meta(2).fill_null("info")).alias("event.type"),
        pl.when(config)
        .then(pl.coalesce(meta(0), pl.lit("configuration")))
        .otherwise(meta(0))
        .alias("event.action"),
        pl.when(config).then(pl.lit("success")).otherwise(meta(3)).alias("event.outcome"),
        pl.col("_code").alias("event.code"),
        pl.col("_reason").alias("event.reason"),
        pl.col("pri").cast(pl.Int32, strict=False).alias("event.severity"),
        seconds_to_ns(pl.coalesce("_secs", "duration")).alias("event.duration"),
        pl.col("_text").alias("message"),
        user.alias("user.name"),
        pl.when(admin).then(pl.lit("Administrator")).otherwise("roles").alias("user.roles"),
        pl.col("_agent").alias("user_agent.original"),
        "source.ip",
        "destination.ip",
        pl.col("_peer_port").cast(pl.Int32, strict=False).alias("destination.port"),
        # The gateway reads what the client (source) sent and writes what it receives.
        pl.coalesce(read, count(pl.col("sent"))).alias("source.bytes"),
        pl.coalesce(written, count(pl.col("rcvd"))).alias("destination.bytes"),
        pl.coalesce(
            read + written,
            count(pl.col("_bw")),
            count(pl.col("sent")) + count(pl.col("rcvd")),
        ).alias("network.bytes"),
        "vpn.tunnel_ip",
        pl.coalesce("sid", "_long_sid").alias("vpn.session_id"),
        pl.when(mode == "ESP")
        .then(pl.lit("ipsec"))
        .when(mode == "SSL")
        .then(pl.lit("ssl"))
        .alias("vpn.tunnel_type"),
        pl.col("realm").alias("vpn.group"),
    )
    return out, dropped
