"""SonicWall firewall and SMA/SSL-VPN syslog (SonicOS "default" key=value format).

Format (SonicOS Log Events reference, "Syslog field descriptions"). One line is
``id=firewall sn=<serial> time="2022-02-22 18:24:30 UTC" fw=<WAN ip> pri=6 c=1024 m=537
msg="Connection Closed" n=<count> src=<ip>:<port>:<zone>[:<host>] dst=... proto=tcp/https
sent=... rcvd=... usr="..."``, optionally behind a syslog header or a bare relay host.
``time`` is device wall time, in UTC when it ends in `` UTC`` (SonicOS 6.5+ with "Display
UTC in logs"), else in ``--tz``. ``m`` is the event id, ``c`` the category bit mask. IPv6
addresses travel in ``srcV6``/``dstV6`` with the address part of ``src``/``dst`` empty.
Values are bare, or quoted with ``"`` or ``'`` when they may hold spaces.

Reading: the compiled quote-aware tokenizer of ``parse/kv.py`` (one scan per chunk for
the keys we map; 3-4x less CPU than a regex ``extract_all`` and a pivot). A quoted value
is consumed whole, so `` src=10.0.0.1`` written inside a user name or URL never becomes a
field; a key written twice (the IPS ``msg``) keeps its first value; an empty value is
absent.

What becomes of a line:

* Connection and traffic events (m=98 opened, 537 closed, 97 web site hit, 14 web site
  denied, 36/37/38/41 packet dropped, 1153 SSL VPN traffic, and any line whose ``msg`` is
  "Connection Opened/Closed") go to ``flows``: ``flow-creation``/``flow-expiration`` as
  the other firewall parsers say, ``cdur`` (ms) as duration, ``sent``/``rcvd`` as the
  initiator's and responder's bytes.
* Everything else is an ``events`` row. User and administrator logins (SSL-VPN,
  NetExtender, Virtual Office, web management), their failures (bad credentials, lockout)
  and logouts map to ``logged-in``/``logon-failed``/``logged-out``; address assignment to
  ``address-assigned`` with ``vpn.tunnel_ip``; IKE/IPsec negotiation to
  ``ike-negotiation`` (failure where the message says so); configuration changes to
  ``configuration``. These are recognised by the message text, which SonicOS keeps
  across releases while the ids move. ``user.roles`` is ``Administrator`` for the
  administrator messages, as for the other vendors.
* No ``id`` key: ``no_match``; an ``id`` but neither ``m`` nor ``msg``: ``truncated``;
  no usable time: ``bad_timestamp``.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from vpnsentry.parse import kv
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import (
    canonical_ips,
    count,
    events_and_flows,
    rejects,
    split_header_if_any,
)
from vpnsentry.parse.timeparse import iso_to_utc

#: The keys we map; others stay in ``event.original``.
_KEYS: Final = (
    "id", "sn", "time", "fw", "pri", "c", "m", "msg", "n", "src", "dst", "srcV6", "dstV6",
    "proto", "sent", "rcvd", "spkt", "rpkt", "cdur", "usr", "user", "natSrc", "natDst",
    "rule", "note", "sess", "fw_action", "vpnpolicy", "dstname", "arg", "srcZone", "dstZone",
)  # fmt: skip
#: Values are quoted with ``"`` or ``'``, consumed whole, without escapes.
_KEYSET: Final = kv.KeySet(_KEYS, quotes="\"'", escapes=False)
#: Event ids of connection and traffic records.
_FLOW_IDS: Final = ("14", "36", "37", "38", "41", "97", "98", "537", "1153")
_DROP_IDS: Final = ("14", "36", "37", "38", "41")
#: Actions of the flow ids (lines of some releases omit ``msg``); others: the ``msg`` words.
_FLOW_ACTIONS: Final = {
    "98": "flow-creation",
    "537": "flow-expiration",
    "97": "web-site-hit",
    "14": "web-site-access-denied",
    "36": "tcp-packet-dropped",
    "37": "udp-packet-dropped",
    "38": "icmp-packet-dropped",
    "1153": "ssl-vpn-traffic",
}
#: A relay's bare host before the first key (``10.0.0.1 id=firewall``).
_LEAD_HOST: Final = r"^(?:<\d{1,3}>)?\s*([\w.\-:]+)\s+id="

# Message texts (lower case) by meaning; SonicOS words them alike across releases.
_LOGIN_OK: Final = (
    r"login allowed|log ?in successful|login succe|logged in|successful (?:administrator |"
    r"user )?login|user login from|remote user login allowed"
)
_LOGIN_FAIL: Final = (
    r"login denied|login failed|log ?in fail|bad credentials|authentication fail|locked out"
    r"|incorrect password|invalid (?:user|password)|user login failure"
)
_LOGOUT: Final = r"logged out|log ?out|logout|session (?:ended|terminated)|timed out"
_ASSIGN: Final = r"assigned (?:ip|address|virtual)|ip address assigned|assigning ip"
_IKE: Final = r"\bike\b|ikev2|ipsec|phase [12]|quick mode|main mode|aggressive mode|notify:"
_IKE_FAIL: Final = r"fail|invalid|mismatch|error|denied|dropped|no proposal|not |unable|timeout"
_CONFIG: Final = r"configuration (?:changed|updated|modified)|settings? (?:changed|modified)"
_SSLVPN: Final = r"ssl ?vpn|netextender|virtual office|mobile connect|sma"


@register
class SonicwallFirewall(Parser):
    """SonicWall SonicOS firewall and SSL-VPN syslog, key=value."""

    name = "sonicwall_firewall"
    title = "SonicWall firewall / SSL-VPN (SonicOS syslog key=value)"
    vendor = "SonicWall"
    product = "SonicOS"
    datasets = ("events", "flows")
    sniff_literals = (" sn=",)
    sample = (
        'id=firewall sn=0017C5A1B2C3 time="2024-05-06 16:10:06 UTC" fw=192.0.2.1 pri=6 '
        'c=1024 m=537 msg="Connection Closed" src=10.20.24.228:56783:X4 dst=203.0.113.12:53:X6 '
        'usr="alice" proto=udp/dns sent=63 rcvd=115 spkt=1 rpkt=1 cdur=30016 sess="sslvpnc" '
        'rule="157 (SSLVPN->SERVER)" n=54094499 fw_action="NA"'
    )

    def sniff(self, head: list[str]) -> float:
        """Share of head lines that open with SonicOS's ``id=... sn=... time=`` keys."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        s = pl.Series(lines, dtype=pl.String)
        hits = s.str.contains(r'(?:^|[\s>])id=\S+\s+sn=\S+\s+time="')
        return float(hits.sum()) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        head = split_header_if_any(lines, ctx, "id=")
        n = len(lines)
        rows = pl.int_range(0, n, dtype=pl.UInt32, eager=True)
        wide = kv.extract(lines, _KEYSET)
        df = pl.DataFrame(
            {
                "_row": rows,
                "_sys_ts": head["_sys_ts"],
                "_host": head["_sys_host"].fill_null(lines.str.extract(_LEAD_HOST, 1)),
            }
        ).hstack(wide.select(pl.when(pl.col(k) != "").then(pl.col(k)).alias(k) for k in _KEYS))
        has_id = pl.col("id").is_not_null()
        # Cut lines: no message id or text, or a quote left open.
        balanced = lines.str.count_matches('"', literal=True) % 2 == 0
        df = df.with_columns(balanced.alias("_balanced"))
        complete = (pl.col("m").is_not_null() | pl.col("msg").is_not_null()) & pl.col("_balanced")
        rejected = [
            rejects(df.filter(~has_id), Reason.NO_MATCH, "no SonicOS id= key"),
            rejects(df.filter(has_id & ~complete), Reason.TRUNCATED, "no m=/msg=, or open quote"),
        ]
        df = _prepare(df.filter(has_id & complete), ctx)
        flow = pl.col("m").is_in(_FLOW_IDS).fill_null(False) | pl.col("msg").str.contains(
            r"^Connection (?:Opened|Closed)$"
        ).fill_null(False)
        tables, no_ts, dropped = events_and_flows(
            df, flow, _events, _flows, "no valid time= or header"
        )
        return ParseResult(
            tables=tables, rejected=pl.concat([*rejected, *no_ts]), dropped_values=dropped
        )


def _prepare(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """Time, endpoints, protocol and user of every kept row. Parts that are referenced
    more than once are split into columns first (an eager expression is evaluated once
    per reference)."""
    parts = df.select(
        pl.col("time")
        .str.extract_groups(r"^(?P<t>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?P<utc> UTC)?$")
        .alias("clock"),
        *(
            pl.col(side).str.splitn(":", 4).struct.rename_fields([f"_{side}_{f}" for f in _SIDE])
            for side in ("src", "dst")
        ),
        pl.col("proto").str.splitn("/", 2).struct.rename_fields(["_p0", "_p1"]),
    ).unnest("clock", "src", "dst", "proto")
    in_utc = iso_to_utc(parts["t"], "UTC", ctx.now)
    local = in_utc if ctx.tz == "UTC" else iso_to_utc(parts["t"], ctx.tz, ctx.now)
    stamp = pl.select(pl.when(parts["utc"].is_not_null()).then(in_utc).otherwise(local)).to_series()
    user = pl.coalesce("usr", "user")
    service = pl.col("_p1")
    return pl.concat([df, parts.drop("t", "utc")], how="horizontal").with_columns(
        pl.coalesce(stamp, pl.col("_sys_ts")).alias("_ts"),
        *(
            pl.coalesce(pl.col(f"{side}V6"), pl.col(f"_{side}_ip").replace("", None)).alias(
                f"_{side}_ip"
            )
            for side in ("src", "dst")
        ),
        *(
            pl.col(f"_{side}_{f}").replace("", None)
            for side in ("src", "dst")
            for f in ("port", "zone")
        ),
        pl.col("natSrc").str.extract(r"^([^:]*):", 1).alias("_nat_src"),
        pl.col("natDst").str.extract(r"^([^:]*):", 1).alias("_nat_dst"),
        pl.col("_p0").str.to_lowercase().alias("_transport"),
        pl.when(~service.str.contains(r"^\d*$")).then(service.str.to_lowercase()).alias("_service"),
        # "Unknown (SSO failed)" and the like name nobody.
        pl.when(~user.str.starts_with("Unknown")).then(user).alias("_user"),
        pl.col("msg").str.to_lowercase().alias("_text"),
    )


#: Parts of ``src``/``dst``: ``<ip>:<port>:<zone>[:<host>]`` (IPv6 in ``srcV6``/``dstV6``).
_SIDE: Final = ("ip", "port", "zone", "host")


def _port(name: str) -> pl.Expr:
    value = pl.col(name).cast(pl.Int32, strict=False)
    return pl.when(value.is_between(0, 65535)).then(value)


def _common() -> list[pl.Expr]:
    """Columns every row carries, events or flows."""
    return [
        pl.col("_row"),
        pl.col("_ts").alias("@timestamp"),
        pl.lit("sonicwall_firewall.log").alias("event.dataset"),
        pl.coalesce("_host", "fw").alias("observer.name"),
        pl.lit("firewall").alias("observer.type"),
        pl.col("observer.ip"),
        pl.col("m").alias("event.code"),
        pl.col("source.ip"),
        _port("_src_port").alias("source.port"),
        pl.col("destination.ip"),
        _port("_dst_port").alias("destination.port"),
        pl.col("source.nat.ip"),
        pl.col("destination.nat.ip"),
        pl.col("_transport").alias("network.transport"),
        pl.col("_service").alias("network.protocol"),
        pl.col("_user").alias("user.name"),
        pl.col("rule").alias("rule.name"),
    ]


_IPS: Final = {
    "_src_ip": "source.ip",
    "_dst_ip": "destination.ip",
    "_nat_src": "source.nat.ip",
    "_nat_dst": "destination.nat.ip",
    "fw": "observer.ip",
}


def _flows(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``flows`` table: connections opened/closed, web hits, drops."""
    df, lost = canonical_ips(df, _IPS)
    m, action = pl.col("m"), pl.col("fw_action").str.to_lowercase()
    sent, rcvd = count(pl.col("sent")), count(pl.col("rcvd"))
    spkt, rpkt = count(pl.col("spkt")), count(pl.col("rpkt"))
    closed = (m == "537") | (pl.col("msg") == "Connection Closed")
    slug = pl.col("_text").str.replace_all(r"[^a-z0-9]+", "-").str.strip_chars("-")
    out = df.select(
        *_common(),
        pl.coalesce(
            m.replace_strict(_FLOW_ACTIONS, default=None, return_dtype=pl.String),
            pl.when(closed).then(pl.lit("flow-expiration")),
            slug,
        ).alias("event.action"),
        pl.when(m.is_in(_DROP_IDS) | action.is_in(["drop", "reject", "block"]))
        .then(pl.lit("failure"))
        .otherwise(pl.lit("success"))
        .alias("event.outcome"),
        pl.when(closed).then(pl.col("_ts")).alias("event.end"),
        (count(pl.col("cdur")) * 1_000_000).alias("event.duration"),
        sent.alias("source.bytes"),
        rcvd.alias("destination.bytes"),
        spkt.alias("source.packets"),
        rpkt.alias("destination.packets"),
        (sent + rcvd).alias("network.bytes"),
        (spkt + rpkt).alias("network.packets"),
        pl.when(action != "na").then(action).alias("flow.state"),
        pl.col("_src_zone").alias("observer.ingress.interface.name"),
        pl.col("_dst_zone").alias("observer.egress.interface.name"),
    )
    return out, lost


def _events(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``events`` table: logins, logouts, VPN and IKE messages, admin, IPS and the rest."""
    df, lost = canonical_ips(
        df.with_columns(
            pl.coalesce(
                pl.col("msg").str.extract(r"(?i)assigned[^0-9]*(\d{1,3}(?:\.\d{1,3}){3})", 1),
                pl.col("note").str.extract(r"(?i)assigned[^0-9]*(\d{1,3}(?:\.\d{1,3}){3})", 1),
            ).alias("_tunnel")
        ),
        {**_IPS, "_tunnel": "vpn.tunnel_ip"},
    )
    text = pl.col("_text").fill_null("")
    admin = text.str.contains("administrator|admin login|management")
    ike = text.str.contains(_IKE)
    sslvpn = text.str.contains(_SSLVPN) | pl.col("sess").str.starts_with("sslvpn").fill_null(False)
    kind = (
        pl.when(text.str.contains(_LOGIN_FAIL))
        .then(pl.lit("fail"))
        .when(text.str.contains(_LOGIN_OK))
        .then(pl.lit("login"))
        .when(text.str.contains(_LOGOUT))
        .then(pl.lit("logout"))
        .when(text.str.contains(_ASSIGN))
        .then(pl.lit("assign"))
        .when(ike)
        .then(pl.lit("ike"))
        .when(text.str.contains(_CONFIG))
        .then(pl.lit("config"))
        .when(text.str.contains(r"^ips (?:detection|prevention) alert"))
        .then(pl.lit("ips"))
    )
    df = df.with_columns(kind.alias("_kind"))
    k = pl.col("_kind")
    meta = {
        "fail": ("logon-failed", "authentication", "start", "failure"),
        "login": ("logged-in", "authentication", "start", "success"),
        "logout": ("logged-out", "authentication", "end", "success"),
        "assign": ("address-assigned", "network", "info", "success"),
        "ike": ("ike-negotiation", "network", "connection", None),
        "config": ("configuration", "configuration", "change", "success"),
        "ips": ("ips-alert", "intrusion_detection", "info", None),
    }

    def col(i: int) -> pl.Expr:
        table = {key: str(v[i]) for key, v in meta.items() if v[i] is not None}
        return k.replace_strict(table, default=None, return_dtype=pl.String)

    ike_outcome = (
        pl.when(text.str.contains(_IKE_FAIL)).then(pl.lit("failure")).otherwise(pl.lit("success"))
    )
    pri = pl.col("pri").cast(pl.Int32, strict=False)
    out = df.select(
        *_common(),
        pl.lit("event").alias("event.kind"),
        pl.coalesce(col(1), pl.lit("network")).alias("event.category"),
        pl.coalesce(col(2), pl.lit("info")).alias("event.type"),
        col(0).alias("event.action"),
        pl.when(k == "ike").then(ike_outcome).otherwise(col(3)).alias("event.outcome"),
        pl.coalesce("note", pl.when(k == "fail").then(pl.col("msg"))).alias("event.reason"),
        pl.when(pri.is_between(0, 7)).then(pri).alias("event.severity"),
        pl.col("msg").alias("message"),
        pl.col("sn").alias("observer.serial_number"),
        pl.when(admin & k.is_in(["fail", "login", "logout"]))
        .then(pl.lit("Administrator"))
        .alias("user.roles"),
        count(pl.col("sent")).alias("source.bytes"),
        count(pl.col("rcvd")).alias("destination.bytes"),
        "vpn.tunnel_ip",
        pl.when(ike | pl.col("vpnpolicy").is_not_null())
        .then(pl.lit("ipsec"))
        .when(sslvpn)
        .then(pl.lit("ssl"))
        .alias("vpn.tunnel_type"),
        pl.col("vpnpolicy").alias("vpn.group"),
    )
    return out, lost
