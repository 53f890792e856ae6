"""Check Point logs exported by Log Exporter (R80.20 and later) or the older LEA relays.

Formats read (``cp_log_export`` ``--format``):

* ``syslog``: RFC 5424 with the fields as structured data,
  ``<134>1 2020-03-29T13:19:22Z gw-da58d3 CheckPoint 1930 - [action:"Accept"; src:"...";
  ...]``. Values are double-quoted; inside them ``\\"``, ``\\\\`` and ``\\]`` are escapes.
  A few fields are written with two colons (``sys_message::"..."``). Releases since R81 may
  write ``key="value"`` pairs separated by spaces, which are read the same way.
* ``generic``/``splunk``/key=value: ``time=1585487925|hostname=gw|action=Accept|...``, pairs
  separated by ``|``, values bare.
* CEF and LEEF exports go to the generic ``cef``/``leef`` readers (see their precedence
  note): Check Point fills the standard keys there.

Quoted values are consumed whole, escapes included, before the next key is looked for, so a
user name such as ``x"; src:"192.0.2.1`` (written escaped by the exporter) cannot become a
field. Pairs are turned into columns by one regex pass and a pivot
(:func:`vpnsentry.parse.ecsmap.pairs_to_columns`).

Time: the syslog header (RFC 5424 with zone), else ``time`` (epoch seconds, generic format).
``observer.name`` is the syslog host (the exporting gateway or server), else the ``o=``
name of ``originsicname``, else ``origin``; ``origin`` (the logging gateway's address) is
``observer.ip``.

What becomes of a line:

* Firewall decisions (``action`` Accept, Drop, Reject, Block, Encrypt, Decrypt, with both
  addresses) go to ``flows``: ``src``/``s_port``, ``dst``/``service`` (Check Point's
  destination port), ``proto`` (IANA number), ``xlatesrc``/``xlatedst`` (``0.0.0.0`` is
  "no NAT"), client/server byte and packet counters, ``rule_name`` (else ``rule``), the
  interface by ``ifdir``, ``loguid`` as ``flow.id``, the user when identity awareness names
  one.
* Remote access VPN (``Log In``, ``Failed Log In``, ``Log Out`` of ``VPN-1 & FireWall-1``,
  ``Mobile Access``, ``Endpoint Security VPN``, ``Remote Access``): ``authentication``
  events in the shared vocabulary (``logged-in``, ``logon-failed``, ``logged-out``),
  ``office_mode_ip`` as ``vpn.tunnel_ip``, ``community`` as ``vpn.group``, client name and
  version. ``vpn.tunnel_type``: ``ipsec`` when ``vpn_feature_name`` names IKE/IPsec; for
  Mobile Access ``ssl`` (SSL Network Extender, which gets an office-mode address) or
  ``clientless`` (the portal).
* IKE (``Key Install``, ``Key Install Failed``, lines with ``ike`` fields): ``network``
  events ``ike-negotiation``, failed when Check Point says so (``Failed``, a ``reason`` or
  an IKE failure text).
* Administrator audit (``operation`` with ``administrator``): ``Log In``/``Log Out``/failed
  logins as admin logins (``user.roles`` Administrator), object and policy changes as
  ``configuration`` events.
* Anything else (System Monitor, updates, blades' own logs) is a ``host`` event with its
  ``description``/``sys_message``/``comment`` as ``message``.
* No Check Point key at all: ``no_match``; structured data opened but not closed (a line
  cut by a collector): ``truncated``; no usable time: ``bad_timestamp``.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.ecsmap import (
    absent,
    classification,
    finish,
    keep,
    pairs_to_columns,
    transport,
)
from vpnsentry.parse.fields import epoch_to_utc
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import iso_to_utc, plausible

_KEY: Final = r"[A-Za-z_][\w.-]*"
#: One quoted pair (syslog and ``key="value"`` styles), escapes consumed inside the value.
_QUOTED: Final = rf'{_KEY}(?::{{1,2}}|=)"(?:[^"\\]|\\.)*"'
_PAIR_RE: Final = rf"(?s)^[\s\[-]*(?P<k>{_KEY})(?::{{1,2}}|=)(?P<v>.*)$"
#: The RFC 5424 header up to the structured data (see _header).
_RFC5424: Final = r"^(?P<hdr>(?:<\d{1,3}>)?1 (?P<ts>\S+) (?P<host>\S+) \S+ \S+ \S+ )"
#: Keys that only Check Point lines carry near their start; one of them makes a line ours.
_MARKERS: Final = r"(?:^|[\s\[;|])(?:loguid|originsicname|origin_sic_name|product|origin)[:=]"
_SNIFF: Final = re.compile(_MARKERS)

_KEYS: Final = (
    "time", "action", "product", "origin", "originsicname", "hostname", "src", "dst",
    "s_port", "service", "proto", "xlatesrc", "xlatedst", "rule_name", "rule", "ifname",
    "ifdir", "loguid", "user", "src_user_name", "client_outbound_bytes",
    "server_outbound_bytes", "client_outbound_packets", "server_outbound_packets",
    "sent_bytes", "received_bytes", "duration", "elapsed", "office_mode_ip",
    "vpn_feature_name", "community", "auth_method", "client_name", "client_version",
    "os_name", "reason", "failure_reason", "ike", "description", "sys_message", "comment",
    "operation", "administrator", "client_ip", "status", "subject", "severity",
    "objecttype", "objectname", "session_uid", "src_machine_name",
)  # fmt: skip
_ALLOW: Final = ("accept", "encrypt", "decrypt", "allow")
_DENY: Final = ("drop", "reject", "block", "prevent", "deny")
_VPN_PRODUCTS: Final = (
    "VPN-1 & FireWall-1",
    "Mobile Access",
    "Endpoint Security VPN",
    "Remote Access",
    "VPN",
    "Firewall",
)
_SEVERITY: Final = {"critical": 2, "high": 3, "medium": 4, "low": 5, "informational": 6}
_NO_NAT: Final = "0.0.0.0"  # noqa: S104  (Check Point writes it for "not translated")


def _unquote(value: pl.Expr) -> pl.Expr:
    """A value as written: quotes removed, ``\\"``, ``\\]`` and ``\\\\`` unescaped."""
    quoted = value.str.starts_with('"') & value.str.ends_with('"') & (value.str.len_chars() >= 2)
    inner = value.str.slice(1, value.str.len_chars() - 2)
    text = pl.when(quoted).then(inner.str.replace_all(r'\\(["\]\\])', "$1")).otherwise(value)
    return absent(text.str.strip_chars())


@register
class Checkpoint(Parser):
    """Check Point Log Exporter syslog and key=value exports."""

    name = "checkpoint"
    title = "Check Point Log Exporter (syslog structured data, key=value)"
    vendor = "Check Point"
    product = "Quantum Security Gateway"
    datasets = ("events", "flows")
    sniff_literals = ("loguid", "originsicname", "origin_sic_name", "product:", "product=")
    sample = (
        '<134>1 2026-11-30T09:12:01Z gw-hq CheckPoint 2211 - [action:"Log In"; '
        'loguid:"{0x6560a1f1,0x0,0x6401a8c0,0x3c7878a}"; origin:"192.0.2.1"; '
        'product:"VPN-1 & FireWall-1"; src:"198.51.100.23"; user:"jdoe"; '
        'office_mode_ip:"10.8.0.12"; auth_method:"Username and Password"]'
    )

    def sniff(self, head: list[str]) -> float:
        """Share of head lines with Check Point keys and no CEF/LEEF header (those go to
        the generic readers)."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        ours = [ln for ln in lines if _SNIFF.search(ln) and "CEF:" not in ln and "LEEF:" not in ln]
        return len(ours) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Extract the pairs of every line, map firewall lines to flows, the rest to events."""
        frame = _header(lines, ctx)
        line = pl.col("_line")
        ours = line.str.contains(_MARKERS) & ~line.str.contains("CEF:|LEEF:")
        frame, no_match = keep(frame, ours, Reason.NO_MATCH, "no Check Point fields")
        # Structured data opened but never closed: the line was cut (collector limit).
        cut = line.str.contains(r'\[[A-Za-z_][\w.-]*:{1,2}"') & ~line.str.ends_with("]")
        frame, truncated = keep(frame, ~cut, Reason.TRUNCATED, "structured data not closed")
        quoted = frame["_line"].str.contains(r'(?::{1,2}|=)"')
        frame = pl.concat(
            [
                frame.filter(quoted).with_columns(line.str.extract_all(_QUOTED).alias("_pairs")),
                frame.filter(~quoted).with_columns(pl.col("_body").str.split("|").alias("_pairs")),
            ]
        )
        wide = pairs_to_columns(frame, "_pairs", _PAIR_RE, _KEYS)
        wide = wide.with_columns(_unquote(pl.col(k)).alias(k) for k in _KEYS)
        result = finish(_map(wide, ctx), self.datasets, "no syslog time and no time field")
        result.rejected = pl.concat([no_match, truncated, result.rejected])
        return result


def _header(lines: pl.Series, ctx: ParseContext) -> pl.DataFrame:
    """``_row``, ``_line``, ``_sys_ts``, ``_sys_host`` and ``_body`` of every line.

    Log Exporter's RFC 5424 lines are read with a short anchored pattern (time and host are
    all we need; the structured data is read as pairs): the general syslog splitter
    captures the whole structured data, which costs more than the rest of the parse. Other
    headers go through :func:`split_header`.
    """
    frame = pl.DataFrame(
        {"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True), "_line": lines}
    )
    frame = frame.with_columns(pl.col("_line").str.extract_groups(_RFC5424).alias("_h")).unnest(
        "_h"
    )
    has = pl.col("ts").is_not_null()
    fast = frame.filter(has)
    fast = fast.select(
        "_row",
        "_line",
        iso_to_utc(fast["ts"], ctx.tz, ctx.now).alias("_sys_ts"),
        pl.when(pl.col("host") != "-").then(pl.col("host")).alias("_sys_host"),
        pl.col("_line").str.slice(pl.col("hdr").str.len_chars()).alias("_body"),
    )
    other = frame.filter(~has).select("_row", "_line")
    if other.height:
        split = split_header(other["_line"], ctx).select("_sys_ts", "_sys_host", "_body")
        other = other.hstack(split)
        return pl.concat([fast, other])
    return fast


def _map(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """ECS columns from Check Point's fields (addresses, ports and counters still text)."""
    f = pl.col
    act = f("action").str.to_lowercase()
    op = f("operation").str.to_lowercase()
    status = f("status").str.to_lowercase()
    admin = f("administrator").is_not_null() & f("operation").is_not_null()
    login_words = pl.coalesce(act, op)
    vpn_product = f("product").is_in(_VPN_PRODUCTS).fill_null(False)
    failed_login = login_words.is_in(["failed log in", "failed login", "login failed"])
    login = login_words.is_in(["log in", "login"]) | failed_login
    logout = login_words.is_in(["log out", "logout"])
    auth = (admin & (login | logout)) | (~admin & vpn_product & (login | logout))
    ike = act.str.starts_with("key install") | f("ike").is_not_null()
    config = admin & ~(login | logout)
    flow = (
        ~auth & ~ike & f("src").is_not_null() & f("dst").is_not_null() & act.is_in(_ALLOW + _DENY)
    ).fill_null(False)
    reason = pl.coalesce(f("failure_reason"), f("reason"), f("ike"))
    failed = (
        pl.when(auth)
        .then(failed_login | status.is_in(["failure", "failed"]).fill_null(False))
        .when(ike)
        .then(
            act.str.contains("fail")
            | reason.str.to_lowercase().str.contains(r"fail|error|mismatch|no proposal|timeout")
        )
        .when(act.is_in(_ALLOW))
        .then(False)
        .when(act.is_in(_DENY))
        .then(True)
        .when(config)
        .then(status.is_in(["failure", "failed"]))
    ).fill_null(pl.when(ike | config | auth).then(False))
    df = df.with_columns(
        auth.fill_null(False).alias("_auth"),
        ike.fill_null(False).alias("_ike"),
        config.fill_null(False).alias("_config"),
        failed.alias("_failed"),
        logout.fill_null(False).alias("_logout"),
    )
    auth, ike, config, failed, logout = (
        f("_auth"),
        f("_ike"),
        f("_config"),
        f("_failed"),
        f("_logout"),
    )
    action = (
        pl.when(auth & logout)
        .then(pl.lit("logged-out"))
        .when(auth & failed)
        .then(pl.lit("logon-failed"))
        .when(auth)
        .then(pl.lit("logged-in"))
        .when(ike)
        .then(pl.lit("ike-negotiation"))
        .when(config)
        .then(op)
        .otherwise(act)
    )
    category = (
        pl.when(auth)
        .then(pl.lit("authentication"))
        .when(ike)
        .then(pl.lit("network"))
        .when(config)
        .then(pl.lit("configuration"))
        .when(act.is_not_null())
        .then(pl.lit("network"))
        .otherwise(pl.lit("host"))
    )
    etype = (
        pl.when(auth & logout)
        .then(pl.lit("end"))
        .when(auth)
        .then(pl.when(failed).then(pl.lit("denied")).otherwise(pl.lit("allowed")))
        .when(ike)
        .then(pl.lit("connection"))
        .when(config)
        .then(
            pl.when(op.str.contains("create|add|new"))
            .then(pl.lit("creation"))
            .when(op.str.contains("delete|remove"))
            .then(pl.lit("deletion"))
            .otherwise(pl.lit("change"))
        )
        .when(act.is_in(_DENY))
        .then(pl.lit("denied"))
        .when(act.is_in(_ALLOW))
        .then(pl.lit("allowed"))
        .otherwise(pl.lit("info"))
    )
    ts = pl.coalesce(f("_sys_ts"), epoch_to_utc(f("time")))
    seconds = pl.coalesce(f("duration"), f("elapsed")).cast(pl.Int64, strict=False)
    inbound = f("ifdir") == "inbound"
    severity = f("severity").str.to_lowercase()
    user = pl.coalesce(f("administrator"), f("user"), f("src_user_name"))
    return df.select(
        "_row",
        pl.when(flow).then(pl.lit("flows")).otherwise(pl.lit("events")).alias("_dataset"),
        plausible(ts, ctx.now).alias("@timestamp"),
        pl.concat_str(
            pl.lit("checkpoint."), pl.when(flow).then(pl.lit("firewall")).otherwise(pl.lit("log"))
        ).alias("event.dataset"),
        pl.coalesce(
            f("_sys_host"),
            f("hostname"),
            f("originsicname").str.extract(r"o=([^,.]+)", 1),
            f("origin"),
        ).alias("observer.name"),
        f("origin").alias("observer.ip"),
        pl.lit("firewall").alias("observer.type"),
        *classification(category, etype, action, failed),
        pl.when(seconds.is_between(0, 10**9)).then(seconds * 1_000_000_000).alias("event.duration"),
        reason.alias("event.reason"),
        severity.replace_strict(_SEVERITY, default=None, return_dtype=pl.Int32).alias(
            "event.severity"
        ),
        pl.coalesce(f("description"), f("sys_message"), f("comment"), f("subject")).alias(
            "message"
        ),
        f("src_machine_name").alias("host.hostname"),
        user.alias("user.name"),
        pl.when(admin).then(pl.lit("Administrator")).alias("user.roles"),
        pl.coalesce(f("rule_name"), f("rule")).alias("rule.name"),
        pl.coalesce(f("src"), f("client_ip")).alias("source.ip"),
        f("s_port").alias("source.port"),
        pl.coalesce(f("client_outbound_bytes"), f("sent_bytes")).alias("source.bytes"),
        f("client_outbound_packets").alias("source.packets"),
        absent(f("xlatesrc"), _NO_NAT).alias("source.nat.ip"),
        f("dst").alias("destination.ip"),
        f("service").alias("destination.port"),
        pl.coalesce(f("server_outbound_bytes"), f("received_bytes")).alias("destination.bytes"),
        f("server_outbound_packets").alias("destination.packets"),
        absent(f("xlatedst"), _NO_NAT).alias("destination.nat.ip"),
        transport(f("proto")).alias("network.transport"),
        f("loguid").alias("flow.id"),
        pl.when(inbound).then(f("ifname")).alias("observer.ingress.interface.name"),
        pl.when(~inbound).then(f("ifname")).alias("observer.egress.interface.name"),
        f("office_mode_ip").alias("vpn.tunnel_ip"),
        f("session_uid").alias("vpn.session_id"),
        pl.when(auth | ike)
        .then(
            pl.when(f("vpn_feature_name").str.to_lowercase().str.contains("ike|ipsec"))
            .then(pl.lit("ipsec"))
            .when(f("product") == "Mobile Access")
            # SSL Network Extender gets an office-mode address; the portal alone does not.
            .then(
                pl.when(f("office_mode_ip").is_not_null())
                .then(pl.lit("ssl"))
                .otherwise(pl.lit("clientless"))
            )
        )
        .alias("vpn.tunnel_type"),
        f("community").alias("vpn.group"),
        pl.concat_str(f("client_name"), f("client_version"), separator=" ", ignore_nulls=True)
        .replace("", None)
        .alias("vpn.client_version"),
        f("os_name").alias("vpn.client_os"),
    )
