"""ArcSight Common Event Format (CEF), the export format of many gateways and SIEM relays.

Format ("Implementing ArcSight CEF", revision 25):
``CEF:Version|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|
Severity|Extension``, optionally behind a syslog header. In the header a pipe is written
``\\|`` and a backslash ``\\\\``. The extension is space-separated ``key=value`` pairs whose
values may contain spaces; in values ``=`` is written ``\\=``, a backslash ``\\\\`` and a
line break ``\\n``/``\\r``. Keys are the short names of the standard dictionary (``src``,
``dst``, ``spt``, ``dpt``, ``suser``, ``act`` ...) or their full names (``sourceAddress``),
which we read as the short ones; ``cs1``..``cs6`` carry vendor strings named by
``cs1Label``..``cs6Label``.

How a line is split, without a Python loop: escapes are swapped for placeholder characters
(control characters a log line cannot carry: any already in the line become U+FFFD first,
so hostile text cannot forge a separator), the header is split on the remaining pipes, and a
separator is inserted before every `` key=`` of the extension (a key is a word directly
followed by an unescaped ``=``; a value's escaped ``\\=`` can never start one). The pairs
are exploded and pivoted into columns (:func:`vpnsentry.parse.ecsmap.pairs_to_columns`).

Mapping (shared with the LEEF reader, which renames its keys to these first):

* ``rt`` (else ``end``, ``start``, then the syslog header) is ``@timestamp``. CEF times are
  epoch milliseconds or ``MMM dd [yyyy] HH:mm:ss[.SSS] [zone]``; ISO 8601 is accepted too.
  A zone other than UTC/GMT/Z is not applied: the time is read in ``ctx.tz`` (``--tz``).
* Addresses, ports, NAT addresses, ``in``/``out`` (bytes from the source / from the
  destination, as Elastic's CEF module reads them), ``proto``, ``app``, ``suser``/``duser``
  (user), ``sntdom`` (domain), ``shost`` (client host), ``dvchost`` (observer name, else
  the syslog host, else ``deviceExternalId``, which PAN-OS and FortiOS fill with a serial
  number), ``dvc`` (observer address), ``act``, ``outcome``, ``reason`` (for flows: how the
  connection ended, ``flow.state``), ``msg`` (else the Name), Device Event Class ID as
  ``event.code``, ``requestClientApplication`` as the user agent, interfaces. The
  header's vendor and product become ``observer.vendor``/``observer.product``.
* Custom strings by label: a rule or policy name is ``rule.name``; a tunnel, virtual,
  assigned or office-mode address is ``vpn.tunnel_ip``; a portal, gateway, realm, tunnel
  group or connection profile is ``vpn.group``.
* Logins: a Name, action or category saying log in / log on / authentication is an
  ``authentication`` event (``logged-in`` or, when it failed, ``logon-failed``); log out /
  log off is ``logged-out``: the vocabulary of the other gateway parsers. Outcome from
  ``outcome``, else from the action (accept/allow: success; drop/deny/block/reject:
  failure), else from the words of a login line.
* Connection records go to ``flows``: no login or logout, both addresses, a port or
  protocol, and an accept/drop style action, byte counts or a traffic name/category.
  Everything else goes to ``events``.

Precedence. CEF exported by a vendor that has its own parser here (Check Point, PAN-OS,
FortiGate) is read by this reader: those exports put the addresses, ports, user, action and
times in the standard keys, which are what the vendor parsers would read too. Check Point's
``Log In``/``Failed Log In``/``Log Out`` actions and PAN-OS's ``TRAFFIC`` Name are
recognised by the rules above. Lines without a ``CEF:`` header are ``no_match``; a header
with fewer than seven fields is ``truncated``.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.ecsmap import (
    absent,
    classification,
    finish,
    headed,
    keep,
    pairs_to_columns,
    split_header_fields,
    transport,
)
from vpnsentry.parse.fields import epoch_to_utc
from vpnsentry.parse.timeparse import parse_bsd, parse_iso, plausible

#: Placeholders for escaped characters and the pair separator (see the module docstring).
_SEP, _BACKSLASH, _PIPE, _EQUALS = "\x01", "\x02", "\x03", "\x04"
_PLACEHOLDERS: Final = f"[{_SEP}{_BACKSLASH}{_PIPE}{_EQUALS}]"
#: A key of the extension: letters, digits, ``_``, ``.``, ``-`` and ``[]`` (vendor keys such as
#: Check Point's ``flexString1Label`` are plain words too).
_KEY: Final = r"[A-Za-z_][\w.\[\]-]*"

#: Full names of the standard dictionary -> the short names the mapping reads.
FULL_NAMES: Final = {
    "sourceAddress": "src",
    "destinationAddress": "dst",
    "sourcePort": "spt",
    "destinationPort": "dpt",
    "sourceUserName": "suser",
    "destinationUserName": "duser",
    "sourceNtDomain": "sntdom",
    "destinationNtDomain": "dntdom",
    "sourceHostName": "shost",
    "destinationHostName": "dhost",
    "deviceAction": "act",
    "eventOutcome": "outcome",
    "deviceReceiptTime": "rt",
    "startTime": "start",
    "endTime": "end",
    "transportProtocol": "proto",
    "applicationProtocol": "app",
    "bytesIn": "in",
    "bytesOut": "out",
    "deviceHostName": "dvchost",
    "deviceAddress": "dvc",
    "message": "msg",
    "deviceEventCategory": "cat",
    **{f"deviceCustomString{i}": f"cs{i}" for i in range(1, 7)},
    **{f"deviceCustomString{i}Label": f"cs{i}Label" for i in range(1, 7)},
}
#: The keys the mapping reads (after renaming full names).
KEYS: Final = (
    "rt", "start", "end", "src", "dst", "spt", "dpt", "shost", "suser", "duser", "sntdom",
    "dntdom", "act", "outcome", "reason", "msg", "proto", "app", "in", "out",
    "deviceExternalId", "dvchost", "dvc", "deviceInboundInterface", "deviceOutboundInterface",
    "sourceTranslatedAddress", "destinationTranslatedAddress", "cat", "externalId",
    "requestClientApplication",
    *(f"cs{i}" for i in range(1, 7)), *(f"cs{i}Label" for i in range(1, 7)),
)  # fmt: skip

#: Custom string labels (lower case, regex) -> the column they fill.
_LABELS: Final = {
    "_rule": r"^(?:rule|rule ?name|policy|policy ?name|access rule name)$",
    "_tunnel": r"tunnel ?ip|virtual ?ip|assigned ?ip|office ?mode ?ip|private ?ip|vpn ?ip",
    "_group": r"^(?:portal|gateway|realm|tunnel ?group|connection ?profile|vpn ?group)$",
}
_LOGIN: Final = r"log ?in|logon|log on|sign ?in|authenticat|\bauth\b"
_LOGOUT: Final = r"log ?out|logoff|log off|sign ?out"
_FAIL: Final = r"fail|denied|reject|invalid|locked"
_ALLOW: Final = ("accept", "allow", "allowed", "permit", "pass", "permitted")
_DENY: Final = ("drop", "deny", "denied", "block", "blocked", "reject", "reset", "dropped")
_SEVERITY_WORDS: Final = {"low": 3, "medium": 5, "high": 8, "very-high": 10}


_EPOCH: Final = r"^\d{9,13}(?:\.\d+)?$"
_BSD: Final = (
    r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?:(?P<year>\d{4}) )?"
    r"(?P<clock>\d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?)(?: (?P<zone>\S+))?$"
)


def arcsight_time(text: pl.Expr, ctx: ParseContext, shapes: frozenset[str]) -> pl.Expr:
    """A CEF/LEEF time: epoch ms (or s), ``MMM dd [yyyy] HH:mm:ss[.SSS] [zone]``, ISO 8601.

    ``shapes`` (``epoch``, ``bsd``, ``iso``) are the forms the chunk holds: a branch whose
    form is absent is not built, as Polars evaluates every branch of a when/then chain.
    """
    ts = pl.lit(None, UTC_TS)
    if "iso" in shapes:
        ts = parse_iso(text, ctx.tz)
    if "bsd" in shapes:
        parts = text.str.extract_groups(_BSD)
        field = parts.struct.field
        year = field("year").fill_null(pl.lit(str(ctx.year)))
        utc_zone = field("zone").is_in(["UTC", "GMT", "Z", "+0000", "+00:00"])
        local = parse_bsd(field("mon"), field("day"), year, field("clock"), ctx.tz, ctx.now)
        in_utc = parse_bsd(field("mon"), field("day"), year, field("clock"), "UTC", ctx.now)
        bsd = pl.when(utc_zone).then(in_utc).otherwise(local)
        ts = pl.when(field("mon").is_not_null()).then(bsd).otherwise(ts)
    if "epoch" in shapes:
        ts = pl.when(text.str.contains(_EPOCH)).then(epoch_to_utc(text)).otherwise(ts)
    return plausible(ts, ctx.now)


def with_times(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """``df`` with ``_t_rt``, ``_t_start``, ``_t_end``: its ``rt``/``start``/``end`` as UTC."""
    exprs = []
    for name in ("rt", "start", "end"):
        values = df[name].drop_nulls()
        epoch = values.str.contains(_EPOCH)
        bsd = values.str.contains(r"^[A-Z][a-z]{2} ")
        shapes = {
            s for s, hit in (("epoch", epoch), ("bsd", bsd), ("iso", ~epoch & ~bsd)) if hit.any()
        }
        exprs.append(arcsight_time(pl.col(name), ctx, frozenset(shapes)).alias(f"_t_{name}"))
    return df.with_columns(exprs)


def _unescape(value: pl.Expr) -> pl.Expr:
    """A CEF value with its escapes resolved (placeholders back to their characters)."""
    return (
        value.str.replace_all(r"\n", "\n", literal=True)
        .str.replace_all(r"\r", "\r", literal=True)
        .str.replace_all(_BACKSLASH, "\\", literal=True)
        .str.replace_all(_PIPE, "|", literal=True)
        .str.replace_all(_EQUALS, "=", literal=True)
    )


def _by_label(target: str) -> pl.Expr:
    """The first custom string whose label matches the pattern of ``target``."""
    pattern = "(?i)" + _LABELS[target]
    return pl.coalesce(
        pl.when(pl.col(f"cs{i}Label").str.contains(pattern)).then(pl.col(f"cs{i}"))
        for i in range(1, 7)
    )


@register
class Cef(Parser):
    """ArcSight CEF from any device, with or without a syslog header."""

    name = "cef"
    title = "ArcSight Common Event Format (CEF), any vendor"
    vendor = "ArcSight CEF"
    product = "CEF"
    datasets = ("events", "flows")
    sniff_literals = ("CEF:0|", "CEF:1|")
    sample = (
        "<134>Nov 30 09:12:01 fw01 CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|"
        "Log In|Unknown|act=Log In src=198.51.100.23 suser=jdoe rt=1796029921000 "
        "cs3Label=Office Mode IP cs3=10.8.0.12"
    )
    #: A vendor parser that reads the same lines (none today) should win ties.
    priority = -1

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Split header and extension, map the standard keys, split events and flows."""
        text = (
            pl.col("_body")
            .str.extract(r"(CEF:\d+\|.*)$", 1)
            .str.replace_all(_PLACEHOLDERS, "\ufffd")
            .str.replace_all(r"\\", _BACKSLASH, literal=True)
            .str.replace_all(r"\|", _PIPE, literal=True)
            .str.replace_all(r"\=", _EQUALS, literal=True)
        )
        frame = headed(lines, ctx).with_columns(text.alias("_cef"))
        frame, no_match = keep(frame, pl.col("_cef").is_not_null(), Reason.NO_MATCH, "no CEF:")
        frame, truncated = split_header_fields(frame, "_cef", 8, "CEF header of < 8 fields")
        names = ("version", "vendor", "product", "dev_version", "sig", "cef_name", "severity")
        frame = frame.select(
            "_row",
            "_sys_ts",
            "_sys_host",
            *(_unescape(pl.col(f"field_{i}")).alias(n) for i, n in enumerate(names)),
            pl.concat_str(
                pl.lit(_SEP),
                pl.col("field_7").str.replace_all(rf"\s+({_KEY})=", _SEP + "$1="),
            )
            .str.split(_SEP)
            .alias("_pairs"),
        )
        wide = pairs_to_columns(frame, "_pairs", "=", KEYS, FULL_NAMES, _unescape)
        wide = with_times(wide, ctx).with_columns(
            pl.coalesce("_t_rt", "_t_end", "_t_start", "_sys_ts").alias("_ts"),
            pl.col("severity").alias("_severity"),
        )
        result = finish(to_ecs(wide, ctx, "cef"), self.datasets, "no valid rt/end/start time")
        result.rejected = pl.concat([no_match, truncated, result.rejected])
        return result


def to_ecs(df: pl.DataFrame, ctx: ParseContext, module: str) -> pl.DataFrame:
    """ECS columns from the standard CEF keys of ``df`` (see the module docstring).

    ``df`` has ``_row``, ``_ts`` (the event time), ``_t_start``/``_t_end`` (see
    :func:`with_times`), ``_sys_host``, ``vendor``, ``product``,
    ``sig``, ``cef_name``, ``_severity`` (text) and every name in :data:`KEYS`; the LEEF
    reader may add ``_spk``/``_dpk`` (packets), ``_roles``, ``_login``/``_logout`` (its
    ``isLoginEvent``/``isLogoutEvent``) and ``_rule``/``_tunnel``/``_group``.
    """
    f = pl.col
    extra = {"_spk", "_dpk", "_roles", "_login", "_logout", "_rule", "_tunnel", "_group"}
    df = df.with_columns(pl.lit(None, pl.String).alias(c) for c in extra if c not in df.columns)
    df = df.with_columns(
        *(pl.coalesce(f(c), _by_label(c)).alias(c) for c in _LABELS),
        pl.concat_str(f("cef_name"), f("act"), f("cat"), f("sig"), separator=" ", ignore_nulls=True)
        .str.to_lowercase()
        .alias("_words"),
        f("act").str.to_lowercase().alias("_act"),
        f("outcome").str.to_lowercase().str.strip_chars("/ ").alias("_out"),
    )
    words, act, out = f("_words"), f("_act"), f("_out")
    truthy = ("true", "1", "yes")

    def flag(name: str, pattern: str) -> pl.Expr:
        said = f(name).str.to_lowercase().is_in(truthy).fill_null(False)
        return said | words.str.contains(pattern).fill_null(False)

    logout = flag("_logout", _LOGOUT)
    login = ~logout & flag("_login", _LOGIN)
    failed_text = (
        pl.when(out.is_in(["failure", "failed", "fail"]))
        .then(True)
        .when(out.is_in(["success", "succeeded", "ok"]))
        .then(False)
        .when(act.is_in(_DENY))
        .then(True)
        .when(act.is_in(_ALLOW))
        .then(False)
        .when(login | logout)
        .then(words.str.contains(_FAIL))
    )
    df = df.with_columns(
        login.fill_null(False).alias("_is_login"),
        logout.fill_null(False).alias("_is_logout"),
        failed_text.alias("_failed"),
    )
    is_login, is_logout, failed = f("_is_login"), f("_is_logout"), f("_failed")
    flow = (
        ~is_login
        & ~is_logout
        & f("src").is_not_null()
        & f("dst").is_not_null()
        & (f("dpt").is_not_null() | f("proto").is_not_null())
        & (
            act.is_in(_ALLOW + _DENY)
            | f("in").is_not_null()
            | f("out").is_not_null()
            | words.str.contains(r"\btraffic\b|\bconnection\b|\bflow\b")
        )
    ).fill_null(False)
    action = (
        pl.when(is_logout)
        .then(pl.lit("logged-out"))
        .when(is_login & failed.fill_null(False))
        .then(pl.lit("logon-failed"))
        .when(is_login)
        .then(pl.lit("logged-in"))
        .otherwise(pl.coalesce(f("act"), f("cef_name")))
    )
    category = (
        pl.when(is_login | is_logout).then(pl.lit("authentication")).otherwise(pl.lit("network"))
    )
    etype = (
        pl.when(is_logout)
        .then(pl.lit("end"))
        .when(is_login)
        .then(pl.when(failed).then(pl.lit("denied")).otherwise(pl.lit("allowed")))
        .when(failed)
        .then(pl.lit("denied"))
        .when(~failed)
        .then(pl.lit("allowed"))
        .otherwise(pl.lit("info"))
    )
    sev = f("_severity").str.to_lowercase()
    start, end = f("_t_start"), f("_t_end")
    seconds = (end - start).dt.total_microseconds()
    user = pl.coalesce(absent(f("suser")), absent(f("duser")))
    return df.select(
        "_row",
        pl.when(flow).then(pl.lit("flows")).otherwise(pl.lit("events")).alias("_dataset"),
        f("_ts").alias("@timestamp"),
        pl.concat_str(
            pl.lit(f"{module}."), pl.when(flow).then(pl.lit("flow")).otherwise(pl.lit("event"))
        ).alias("event.dataset"),
        pl.coalesce(absent(f("dvchost")), f("_sys_host"), absent(f("deviceExternalId"))).alias(
            "observer.name"
        ),
        absent(f("vendor")).alias("observer.vendor"),
        absent(f("product")).alias("observer.product"),
        f("dvc").alias("observer.ip"),
        *classification(category, etype, action, failed),
        absent(f("sig")).alias("event.code"),
        f("reason").alias("event.reason"),
        pl.when(sev.str.contains(r"^\d{1,2}$"))
        .then(sev.cast(pl.Int32, strict=False))
        .otherwise(sev.replace_strict(_SEVERITY_WORDS, default=None, return_dtype=pl.Int32))
        .alias("event.severity"),
        pl.when(seconds >= 0).then(seconds * 1000).alias("event.duration"),
        pl.when(~flow).then(start).alias("event.start"),
        pl.when(flow).then(end).alias("event.end"),
        pl.coalesce(f("msg"), absent(f("cef_name"))).alias("message"),
        f("shost").alias("host.hostname"),
        user.alias("user.name"),
        pl.coalesce(f("sntdom"), f("dntdom")).alias("user.domain"),
        f("_roles").alias("user.roles"),
        f("requestClientApplication").alias("user_agent.original"),
        f("_rule").alias("rule.name"),
        f("src").alias("source.ip"),
        f("spt").alias("source.port"),
        f("in").alias("source.bytes"),
        f("_spk").alias("source.packets"),
        f("sourceTranslatedAddress").alias("source.nat.ip"),
        f("dst").alias("destination.ip"),
        f("dpt").alias("destination.port"),
        f("out").alias("destination.bytes"),
        f("_dpk").alias("destination.packets"),
        f("destinationTranslatedAddress").alias("destination.nat.ip"),
        transport(f("proto")).alias("network.transport"),
        f("app").str.to_lowercase().alias("network.protocol"),
        f("externalId").alias("flow.id"),
        pl.when(flow).then(f("reason")).alias("flow.state"),
        f("deviceInboundInterface").alias("observer.ingress.interface.name"),
        f("deviceOutboundInterface").alias("observer.egress.interface.name"),
        f("_tunnel").alias("vpn.tunnel_ip"),
        f("_group").alias("vpn.group"),
    )
