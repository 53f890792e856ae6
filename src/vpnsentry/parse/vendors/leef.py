"""IBM Log Event Extended Format (LEEF) 1.0 and 2.0, the QRadar export many devices offer.

Format (IBM "Log Event Extended Format (LEEF)" guide): ``LEEF:1.0|Vendor|Product|Version|
EventID|`` followed by tab-separated ``key=value`` attributes; LEEF 2.0 adds a sixth header
field naming the attribute delimiter, a character (``^``, ``|``...) or its hex code
(``x09``, ``0x5E``); without it the delimiter is a tab, as in 1.0. Lines may sit behind a
syslog header. Predefined keys: ``devTime`` (the event time, in ``devTimeFormat``, a Java
``SimpleDateFormat`` pattern, else ``MMM dd yyyy HH:mm:ss`` or epoch milliseconds),
``src``/``dst``/``srcPort``/``dstPort``, ``srcPreNAT``/``srcPostNAT``/``dstPreNAT``/
``dstPostNAT``, ``proto``, ``usrName``, ``accountName``, ``domain``, ``realm``, ``role``,
``identHostName``, ``sev``, ``cat``, ``srcBytes``/``dstBytes``, ``srcPackets``/
``dstPackets``, ``policy``, ``vSrc`` (the VPN client's virtual address), ``identGrp``/
``groupID``, ``isLoginEvent``/``isLogoutEvent``, ``url``, ``action``, ``msg``, ``reason``.

The keys are renamed to their CEF equivalents and mapped by the CEF reader's
:func:`vpnsentry.parse.vendors.cef.to_ecs`, so both formats give the same ECS for the same
facts (see that module for the mapping, the login vocabulary and when a line is a flow):
``vSrc`` is ``vpn.tunnel_ip``, ``realm``/``identGrp``/``groupID`` ``vpn.group``, ``role``
``user.roles``, ``policy`` ``rule.name``, ``isLoginEvent``/``isLogoutEvent`` make a login
or logout. ``devTimeFormat`` patterns are converted once per distinct pattern (a file uses
one or two), never per line; a pattern with a zone name (``z``) or a letter we cannot
convert leaves the time to the default forms, then to the syslog header.

Precedence: LEEF from any vendor (PAN-OS, Check Point, FortiGate all offer it) is read here,
for the reason given in the CEF module. No ``LEEF:`` header: ``no_match``; fewer than six
header fields: ``truncated``.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.ecsmap import finish, headed, keep, pairs_to_columns, split_header_fields
from vpnsentry.parse.timeparse import local_to_utc, plausible
from vpnsentry.parse.vendors.cef import KEYS, to_ecs, with_times

_SEP: Final = "\x01"
#: LEEF keys -> the CEF names (or extra columns) :func:`to_ecs` reads.
_TO_CEF: Final = {
    "devTime": "rt",
    "srcPort": "spt",
    "dstPort": "dpt",
    "srcPostNAT": "sourceTranslatedAddress",
    "dstPostNAT": "destinationTranslatedAddress",
    "usrName": "suser",
    "accountName": "suser",
    "domain": "sntdom",
    "identHostName": "shost",
    "srcBytes": "in",
    "dstBytes": "out",
    "action": "act",
    "srcPackets": "_spk",
    "dstPackets": "_dpk",
    "role": "_roles",
    "isLoginEvent": "_login",
    "isLogoutEvent": "_logout",
    "policy": "_rule",
    "vSrc": "_tunnel",
    "realm": "_group",
    "identGrp": "_group",
    "groupID": "_group",
}
_EXTRA: Final = ("_spk", "_dpk", "_roles", "_login", "_logout", "_rule", "_tunnel", "_group")
_WANTED: Final = (*KEYS, *_EXTRA, "devTimeFormat", "sev")
#: Java ``SimpleDateFormat`` letters -> strftime, longest first.
_JAVA: Final = (
    ("yyyy", "%Y"), ("yy", "%y"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"),
    ("hh", "%I"), ("mm", "%M"), ("ss", "%S"), ("SSS", "%3f"), ("XXX", "%:z"), ("Z", "%z"),
    ("a", "%p"),
)  # fmt: skip
_JAVA_RE: Final = re.compile("|".join(re.escape(j) for j, _ in _JAVA) + r"|'[^']*'|[A-Za-z]")


def java_to_strftime(pattern: str) -> str | None:
    """A ``SimpleDateFormat`` pattern as strftime; None when it has a letter we cannot read."""
    table = dict(_JAVA)
    out: list[str] = []
    pos = 0
    for m in _JAVA_RE.finditer(pattern):
        out.append(pattern[pos : m.start()].replace("%", "%%"))
        token = m.group()
        if token.startswith("'"):
            out.append(token.strip("'").replace("%", "%%"))
        elif token in table:
            out.append(table[token])
        else:
            return None
        pos = m.end()
    out.append(pattern[pos:].replace("%", "%%"))
    return "".join(out)


def _delimiter(code: str) -> str:
    """The attribute delimiter a LEEF 2.0 header names (``^``, ``x09``, ``0x5E``, ``\\t``)."""
    if code == "\\t":
        return "\t"
    hexa = re.fullmatch(r"(?:0x|x)([0-9A-Fa-f]{2,4})", code)
    return chr(int(hexa.group(1), 16)) if hexa else code


def _dev_time(df: pl.DataFrame, ctx: ParseContext) -> pl.Expr:
    """``devTime`` read with each row's ``devTimeFormat`` (one conversion per pattern)."""
    exprs = []
    for pattern in df["devTimeFormat"].drop_nulls().unique().to_list():
        fmt = java_to_strftime(pattern)
        if fmt is None:
            continue
        text = pl.col("rt")
        if "%z" in fmt:
            parsed = text.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False)
        else:
            parsed = local_to_utc(text.str.strptime(pl.Datetime("us"), fmt, strict=False), ctx.tz)
        exprs.append(pl.when(pl.col("devTimeFormat") == pattern).then(parsed))
    return (
        plausible(pl.coalesce(exprs), ctx.now) if exprs else pl.lit(None, pl.Datetime("us", "UTC"))
    )


@register
class Leef(Parser):
    """IBM LEEF 1.0 and 2.0 from any device, with or without a syslog header."""

    name = "leef"
    title = "IBM Log Event Extended Format (LEEF 1.0/2.0), any vendor"
    vendor = "IBM LEEF"
    product = "LEEF"
    datasets = ("events", "flows")
    sniff_literals = ("LEEF:1.0|", "LEEF:2.0|")
    sample = (
        "<13>Nov 30 09:12:01 vpn01 LEEF:2.0|Acme|SSL VPN|4.2|UserLogin|^|devTime=Nov 30 "
        "2026 09:12:01^src=198.51.100.23^usrName=jdoe^vSrc=10.8.0.12^isLoginEvent=true"
    )
    priority = -1

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Split header and attributes, rename keys to CEF's, map them like CEF."""
        text = pl.col("_body").str.extract(r"(LEEF:[12]\.0\|.*)$", 1)
        frame = headed(lines, ctx).with_columns(text.str.replace_all(_SEP, "\ufffd").alias("_leef"))
        frame, no_match = keep(frame, pl.col("_leef").is_not_null(), Reason.NO_MATCH, "no LEEF:")
        frame, truncated = split_header_fields(frame, "_leef", 6, "LEEF header of < 6 fields")
        # LEEF 2.0: a delimiter field before the attributes (one character, a pipe too, or a
        # hex code); an empty one means tab.
        named = pl.col("field_5").str.extract_groups(
            r"^(?P<code>(?:0x|x)[0-9A-Fa-f]{2,4}|\\t|\||[^=|]?)\|(?P<rest>.*)$"
        )
        frame = frame.with_columns(named.alias("_d")).unnest("_d")
        v2 = (pl.col("field_0") == "LEEF:2.0") & pl.col("rest").is_not_null()
        frame = frame.with_columns(
            pl.when(v2 & (pl.col("code") != ""))
            .then("code")
            .otherwise(pl.lit("x09"))
            .alias("_code"),
            pl.when(v2).then("rest").otherwise("field_5").alias("_attrs"),
        )
        codes = frame["_code"].unique().to_list()
        split = pl.coalesce(
            pl.lit(None, pl.String),
            *(
                pl.when(pl.col("_code") == c).then(
                    pl.col("_attrs").str.replace_all(_delimiter(c), _SEP, literal=True)
                )
                for c in codes
            ),
        )
        frame = frame.select(
            "_row",
            "_sys_ts",
            "_sys_host",
            pl.col("field_1").alias("vendor"),
            pl.col("field_2").alias("product"),
            pl.col("field_4").alias("sig"),
            pl.lit(None, pl.String).alias("cef_name"),
            split.str.split(_SEP).alias("_pairs"),
        )
        wide = pairs_to_columns(frame, "_pairs", "=", _WANTED, _TO_CEF)
        wide = with_times(wide, ctx).with_columns(
            pl.coalesce(_dev_time(wide, ctx), "_t_rt", "_sys_ts").alias("_ts"),
            pl.col("sev").alias("_severity"),
        )
        result = finish(to_ecs(wide, ctx, "leef"), self.datasets, "no valid devTime")
        result.rejected = pl.concat([no_match, truncated, result.rejected])
        return result
