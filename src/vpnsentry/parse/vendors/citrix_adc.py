"""Citrix ADC / NetScaler Gateway native syslog: SSL VPN, AAA and management messages.

Format (NetScaler "Syslog message reference" and the appliance's ``syslogAction``). One line
is ``<PRI> 01/16/2026:14:17:00 GMT gw-host 0-PPE-0 : default SSLVPN LOGIN 2345680 0 :
<message>``: device time (``MM/DD/YYYY`` by default; ``DD/MM/YYYY`` and ``YYYY/MM/DD`` are
configurable and read too, a first field above 12 being a day), ``GMT`` when the action
logs UTC and nothing when it logs local time (then ``--tz`` applies), the host name (may be
empty), the packet engine, the partition, the module (``SSLVPN``, ``AAA``, ``AAATM``,
``UI`` ...; some forwarders drop it), the event name, a sequence number and a level. The
message is a list of ``Name value`` pairs separated by `` - `` (``User alice - Client_ip
192.0.2.1 - Vserver 198.51.100.1:443 - ...``); values with spaces are quoted, and some
releases escape those quotes (``\\"``).

What becomes of a line:

* ``TCPCONNSTAT``, ``UDPFLOWSTAT`` and ``ICAEND_CONNSTAT`` (one per connection through the
  gateway, at its end, with duration and bytes) go to ``flows`` (``flow-expiration``, as
  the firewall parsers call a closed connection).
* Everything else is an ``events`` row: ``LOGIN`` (``logged-in``), ``LOGOUT`` (the session
  summary with duration, bytes, resources and logout method: ``client-vpn-disconnected``),
  ``LOGIN_FAILED`` (``logon-failed``), ``TCPCONN_TIMEDOUT``, ``REMOVE_SESSION_DEBUG``,
  ``HTTPREQUEST``, ``CMD_EXECUTED`` (management commands: ``configuration`` events, a
  change unless the command only reads: ``show``, ``stat``) and ``Message`` lines.
* Time: the header's; lines whose header lost it (some relays) take the time the message
  itself states (``End_time`` of a logout or connection, the request time of
  ``HTTPREQUEST``) and are ``bad_timestamp`` without one. No header layout: ``no_match``.

Entities: the remote user's address is the ECS source (``Client_ip``, else the address of
``Context user@address``, else the first ``X-Forwarded-For_ip``), the gateway's virtual
server the destination, ``Nat_ip`` (the intranet address the gateway gave the user;
``"Mapped Ip"`` when it gave none) ``vpn.tunnel_ip``. The byte counters are the client's
view (``Total_bytes_send`` is what the client sent: in real logs ``recv`` dwarfs ``send``,
as downloads do).

Hostile text: fields are read by name. ``User`` is read at its first occurrence (the name
precedes every other field but ``Context``/``SessionId``), the others at their last, so a
user name that contains `` - Client_ip 1.2.3.4`` cannot choose the address a detection sees.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import (
    canonical_ips,
    count,
    events_and_flows,
    rejects,
    split_header_if_any,
)
from vpnsentry.parse.timeparse import local_to_utc, plausible

_DATE: Final = r"\d{2}/\d{2}/\d{4}|\d{4}/\d{2}/\d{2}"
#: The NetScaler header, after any relay's syslog header, up to the message.
_HEAD_PARTS: Final = (
    rf"\s*(?:(?P<date>{_DATE}):(?P<clock>\d{{2}}:\d{{2}}:\d{{2}})(?: (?P<zone>GMT|UTC))?"
    r"(?: (?P<host>[^\s:]+))? +\d+-PPE-\d+ : )?"
    r"(?P<partition>[\w.\-]+) (?:(?P<module>[A-Z][A-Z0-9_]*) )?"
    r"(?P<event>[A-Za-z][A-Za-z0-9_]*) (?P<seq>\d+) (?P<level>\d+) :\s?"
)
#: The header and the message.
_LINE: Final = rf"^{_HEAD_PARTS}(?P<msg>.*)$"
#: The header alone, its text as ``head``: the message is the rest of the line. Capturing
#: the message itself costs several times the header (captures cost per byte).
_HEAD: Final = rf"^(?P<head>{_HEAD_PARTS})"
#: What follows a ``<PRI>`` when NetScaler wrote the line itself: the date.
_DATE_OPENING: Final = rf"(?:{_DATE}):"
#: The header without the message: a line that has it but no `` : <message>`` was cut.
_STARTED: Final = rf"(?:^|\s)(?:{_DATE}):\d{{2}}:\d{{2}}:\d{{2}}(?: GMT| UTC)?(?: \S+)? +\d+-PPE-"
#: A time inside a message: ``"01/16/2026:14:11:48 GMT"`` (quotes and the space optional).
_TIME: Final = rf"(?P<d>{_DATE}):(?P<c>\d{{2}}:\d{{2}}:\d{{2}}) ?(?P<z>GMT|UTC)?"
#: A field value: quoted (with or without escaped quotes) or one bare token.
_VALUE: Final = r'(\\?"[^"]*"|[^\s,]*)'

#: Event name -> (event.action, category, type, outcome). Flow events are listed apart.
_EVENTS: Final[dict[str, tuple[str, str, str, str | None]]] = {
    "LOGIN": ("logged-in", "authentication", "start", "success"),
    "LOGOUT": ("client-vpn-disconnected", "session", "end", "success"),
    "LOGIN_FAILED": ("logon-failed", "authentication", "start", "failure"),
    "TCPCONN_TIMEDOUT": ("tcp-connection-timeout", "network", "end", None),
    "REMOVE_SESSION_DEBUG": ("session-removed", "session", "end", None),
    "HTTPREQUEST": ("http-request", "web", "access", None),
    "ICASTART": ("ica-session-started", "session", "start", "success"),
    "CMD_EXECUTED": ("command-executed", "configuration", "change", None),
    "Message": ("message", "network", "info", None),
}
_FLOW_EVENTS: Final = ("TCPCONNSTAT", "UDPFLOWSTAT", "ICAEND_CONNSTAT")
#: Management commands that only read (``show``, ``stat``): ``info``, not a change.
_READ_ONLY: Final = r"^(?:show|stat|sh|get|ping|traceroute|help|history|whoami|exit|quit)\b"


#: Named fields read at their last occurrence: (literal name, regex name, column).
_LAST: Final = (
    ("Client_ip", "Client_ip", "_client"),
    ("Nat_ip", "Nat_ip", "_nat"),
    ("X-Forwarded-For_ip", "X-Forwarded-For_ip", "_xff"),
    ("Remote_ip", "Remote_ip", "_remote"),
    ("Vserver", "Vserver", "_vserver"),
    ("Vserver_ip", "Vserver_ip", "_vserver_ip"),
    ("Source", "Source", "_src"),
    ("Destination", "Destination", "_dst"),
    ("Start_time", "Start_time", "_start_a"),
    ("startTime", "startTime", "_start_b"),
    ("End_time", "End_time", "_end_a"),
    ("endTime", "endTime", "_end_b"),
    ("Duration", "Duration", "_duration"),
    ("Total_bytes_send", "Total_bytes_send", "_send"),
    ("Total_bytes_recv", "Total_bytes_recv", "_recv"),
    ("Browser_type", "Browser_type", "_browser"),
    ("Group(s)", r"Group\(s\)", "_group_a"),
    ("LogoutMethod", "LogoutMethod", "_reason_a"),
    ("Errmsg", "Errmsg", "_reason_b"),
    ("Failure_reason", "Failure_reason", "_reason_c"),
    ("Reason", "Reason", "_reason_d"),
    ("Command", "Command", "_command"),
    ("Status", "Status", "_status"),
)
#: Fields read at their first occurrence, on the rows that contain their literal:
#: (literal, regex with the wanted groups, {group: column}).
_FIRST: Final = (
    (
        "User ",
        r"(?:^|[\s\]])User (?P<u>.*?)(?: +- [A-Z][\w()\-]*[ :]| : Group| *$)",
        {"u": "_user_raw"},
    ),
    (
        "username:domainname ",
        r"(?:^|\s)username:domainname (?P<u>\S+?):(?P<d>\S*)",
        {"u": "_ica_user", "d": "_ica_domain"},
    ),
    ("Context ", r"^\s*Context \S*@(?P<ip>[0-9A-Fa-f.:]+) ", {"ip": "_ctx_ip"}),
    ("ession", r"Session[Ii]d:? (?P<sid>\d+)", {"sid": "_sid"}),
    ("[Remote ip = ", r"\[Remote ip = (?P<ip>[0-9A-Fa-f.:]+?):\d+\]", {"ip": "_remote_msg"}),
    (
        " : ",
        rf" - (?P<t>(?:{_DATE}):\d{{2}}:\d{{2}}:\d{{2}} ?(?:GMT|UTC)?) : ",
        {"t": "_req_time"},
    ),
    (" - Access ", r" - Access (?P<a>Allowed|Denied)", {"a": "_access"}),
    ("connectionId ", r"connectionId (?P<c>\d+)", {"c": "_conn_id"}),
    (" : Group(s) ", r" : Group\(s\) (?P<g>\S+) :", {"g": "_group_b"}),
)


def _where(msg: pl.Series, literal: str, read: pl.Expr) -> pl.DataFrame:
    """``read`` (an expression of column ``m``, giving a struct or a string) on the rows of
    ``msg`` that contain ``literal``, null elsewhere. A regex pass costs in proportion to
    the rows it scans, and a field's name must be written for its pattern to match."""
    at = msg.str.contains(literal, literal=True).fill_null(False).arg_true()
    found = pl.DataFrame({"m": msg.gather(at)}).select(read.alias("v"))
    if found.schema["v"] == pl.Struct:
        found = found.unnest("v")
    out = pl.DataFrame(
        {c: pl.Series(c, [None] * len(msg), dtype=found[c].dtype) for c in found.columns}
    )
    return out.with_columns(out[c].scatter(at, found[c]) for c in found.columns)


def _last_value(msg: pl.Series, literal: str, name: str) -> pl.Series:
    """Raw value of the last ``name value`` (or ``name: value``) pair of each message.

    The last occurrence is what the hostile-text rule needs; a regex finds it only with a
    leading ``.*``, which resolves captures across the whole line (several times the cost
    of the pair itself). So the pair is read at its first occurrence, which is the last
    where the name occurs once (counted by a capture-free pass), and ``.*`` runs only on
    the rows that name it again.
    """
    at = msg.str.contains(literal, literal=True).fill_null(False).arg_true()
    sub = msg.gather(at)
    value = sub.str.extract(rf"(?:^|[\s\]]){name}:? ?{_VALUE}", 1)
    again = (sub.str.count_matches(rf"(?:^|[\s\]]){name}") > 1).arg_true()
    if len(again):
        last = sub.gather(again).str.extract(rf".*(?:^|[\s\]]){name}:? ?{_VALUE}", 1)
        value = value.scatter(again, last)
    return pl.Series(name=None, values=[None] * len(msg), dtype=pl.String).scatter(at, value)


def _clean(raw: pl.Expr) -> pl.Expr:
    """A field value unquoted, null when empty, ``-`` or ``N/A``."""
    value = raw.str.strip_chars('\\"').str.strip_chars()
    return pl.when(~value.is_in(["", "-", "N/A"])).then(value)


def _time(df: pl.DataFrame, d: str, c: str, z: str, ctx: ParseContext) -> pl.Series:
    """UTC from NetScaler date parts in columns ``d`` (date), ``c`` (clock), ``z`` (zone):
    ``MM/DD/YYYY`` unless the first field is a day above 12, or ``YYYY/MM/DD``. Evaluated
    in stages: each part is referenced several times."""
    date = pl.col(d)
    a = date.str.slice(0, 2).cast(pl.Int32, strict=False)
    iso = (
        pl.when(date.str.contains(r"^\d{4}/"))
        .then(date.str.replace_all("/", "-", literal=True))
        .when(a > 12)
        .then(
            pl.format("{}-{}-{}", date.str.slice(6, 4), date.str.slice(3, 2), date.str.slice(0, 2))
        )
        .otherwise(
            pl.format("{}-{}-{}", date.str.slice(6, 4), date.str.slice(0, 2), date.str.slice(3, 2))
        )
    )
    naive = df.select(
        pl.format("{} {}", iso, pl.col(c))
        .str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
        .alias("n"),
        pl.col(z).alias("z"),
    )
    utc = pl.col("n").dt.replace_time_zone("UTC").cast(UTC_TS)
    return naive.select(
        plausible(
            pl.when(pl.col("z").is_not_null())
            .then(utc)
            .otherwise(local_to_utc(pl.col("n"), ctx.tz)),
            ctx.now,
        )
    ).to_series()


def _text_time(text: pl.Series, ctx: ParseContext) -> pl.Series:
    """UTC from a time written inside a message (``"01/16/2026:14:11:48 GMT"``)."""
    parts = (
        pl.DataFrame({"t": text})
        .select(pl.col("t").str.extract_groups(_TIME).alias("p"))
        .unnest("p")
    )
    return _time(parts, "d", "c", "z", ctx)


def _hms_ns(text: pl.Series) -> pl.Series:
    """``HH:MM:SS`` (hours may exceed 24) as nanoseconds."""
    p = (
        pl.DataFrame({"t": text})
        .select(pl.col("t").str.extract_groups(r"^(\d+):(\d{2}):(\d{2})$").alias("p"))
        .unnest("p")
    )
    h, m, s = (pl.col(str(i)).cast(pl.Int64, strict=False) for i in (1, 2, 3))
    return p.select(((h * 60 + m) * 60 + s) * 1_000_000_000).to_series()


@register
class CitrixAdc(Parser):
    """Citrix ADC / NetScaler Gateway native syslog (SSLVPN, AAA, AAATM, UI)."""

    name = "citrix_adc"
    title = "Citrix ADC / NetScaler Gateway (native syslog)"
    vendor = "Citrix"
    product = "NetScaler ADC"
    datasets = ("events", "flows")
    sniff_literals = ("-PPE-", "SSLVPN ", "AAATM ", "CMD_EXECUTED ", "AAA ")
    sample = (
        "<135> 01/16/2026:14:17:00 GMT gw-dmz-01 0-PPE-0 : default SSLVPN LOGIN 2345680 0 :  "
        'User alice - Client_ip 203.0.113.44 - Nat_ip "Mapped Ip" - Vserver '
        '198.51.100.1:443 - Browser_type "Mozilla/5.0" - Group(s) "VPN_Users"'
    )

    def sniff(self, head: list[str]) -> float:
        """Share of head lines with the NetScaler header and an ``<seq> <level> :`` tail."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        s = pl.Series(lines, dtype=pl.String).str.replace(r"^<\d{1,3}>", "")
        hits = s.str.contains(r"\d+-PPE-\d+ : \S+ ") | s.str.contains(
            r"^\s*default (?:[A-Z][A-Z0-9_]* )?[A-Za-z][A-Za-z0-9_]* \d+ \d+ : "
        )
        return float(hits.sum()) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        head = split_header_if_any(lines, ctx, _DATE_OPENING)
        df = (
            pl.DataFrame(
                {
                    "_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True),
                    "_body": head["_body"],
                    "_sys_ts": head["_sys_ts"],
                    "_sys_host": head["_sys_host"],
                    "_sys_pri": head["_sys_pri"],
                }
            )
            .with_columns(pl.col("_body").str.extract_groups(_HEAD).alias("_g"))
            .unnest("_g")
            .with_columns(pl.col("_body").str.slice(pl.col("head").str.len_chars()).alias("msg"))
        )
        # ``_LINE`` ends in ``.*$``, which no line break passes: read such rows by it.
        odd = df["msg"].str.contains("\n", literal=True).fill_null(False).arg_true()
        if len(odd):
            again = (
                df[:, ["_body"]]
                .gather(odd)
                .select(pl.col("_body").str.extract_groups(_LINE).alias("g"))
                .unnest("g")
            )
            df = df.with_columns(df[c].scatter(odd, again[c]) for c in again.columns)
        matched = df.filter(pl.col("msg").is_not_null())
        missed = df.filter(pl.col("msg").is_null())
        cut = missed["_body"].str.contains(_STARTED)
        rejected = [
            rejects(missed.filter(cut), Reason.TRUNCATED, "header without a message"),
            rejects(missed.filter(~cut), Reason.NO_MATCH, "no NetScaler header"),
        ]
        rows = _fields(matched, ctx)
        # Counters and ports that are present but not numbers in range: dropped, counted.
        checks = {"_send": count, "_recv": count, **dict.fromkeys(_PORTS, _port_value)}
        dropped = int(
            rows.select(
                pl.sum_horizontal(
                    (pl.col(c).is_not_null() & conv(pl.col(c)).is_null()).sum()
                    for c, conv in checks.items()
                )
            ).item()
            or 0
        )
        tables, no_ts, lost = events_and_flows(
            rows, pl.col("event").is_in(_FLOW_EVENTS), _events, _flows, "no header or message time"
        )
        return ParseResult(
            tables=tables, rejected=pl.concat([*rejected, *no_ts]), dropped_values=dropped + lost
        )


def _fields(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """The named message fields, the time and the addresses (as text) of matched rows.

    Each pattern runs only on the rows whose message contains its literal; every read is
    materialised as a column before anything refers to it twice (an eager expression is
    evaluated once per reference).
    """
    msg = df["msg"]
    raw = pl.DataFrame({c: _last_value(msg, lit, name) for lit, name, c in _LAST})
    first = [
        _where(msg, lit, pl.col("m").str.extract_groups(regex)).rename(names)
        for lit, regex, names in _FIRST
    ]
    fields = raw.select(_clean(pl.col(c)).alias(c) for c in raw.columns)
    df = pl.concat([df, fields, *first], how="horizontal")
    df = df.with_columns(
        # Up to the next " - Name " or " : Group(s)": a name may hold spaces and quotes.
        pl.col("_user_raw").str.strip_chars().alias("_user"),
        pl.coalesce("_start_a", "_start_b").alias("_start"),
        pl.coalesce("_end_a", "_end_b").alias("_end"),
        pl.coalesce("_group_a", "_group_b").replace("N/A", None).alias("_group"),
        pl.coalesce("_reason_a", "_reason_b", "_reason_c", "_reason_d").alias("_reason"),
        *(
            pl.col(src)
            .str.extract_groups(r"^(?P<ip>.*):(?P<port>\d+)$")
            .struct.rename_fields([f"{dst}_ip", f"{dst}_port"])
            .alias(dst)
            for src, dst in (("_vserver", "_vs"), ("_src", "_src"), ("_dst", "_dst"))
        ),
    ).unnest("_vs", "_src", "_dst")
    header = _time(df, "date", "clock", "zone", ctx)
    end = _text_time(df["_end"], ctx)
    return df.with_columns(
        pl.coalesce(header, end, _text_time(df["_req_time"], ctx), df["_sys_ts"]).alias("_ts"),
        _text_time(df["_start"], ctx).alias("_start_ts"),
        end.alias("_end_ts"),
        _hms_ns(df["_duration"]).alias("_dur_ns"),
    )


_PORTS: Final = ("_vs_port", "_src_port", "_dst_port")
#: The address of an unset Vserver: absent, not a lost value.
_UNSET: Final = ("0.0.0.0",)  # noqa: S104
#: ``Nat_ip`` when the user has no intranet address (the gateway's mapped address is used).
_NO_INTRANET_IP: Final = "Mapped Ip"


def _port_value(text: pl.Expr) -> pl.Expr:
    """A TCP/UDP port 1-65535, else null."""
    value = text.cast(pl.Int32, strict=False)
    return pl.when(value.is_between(1, 65535)).then(value)


def _port(name: str) -> pl.Expr:
    return _port_value(pl.col(name))


def _common() -> list[pl.Expr]:
    """Columns of every row, events or flows."""
    return [
        pl.col("_row"),
        pl.col("_ts").alias("@timestamp"),
        pl.lit("citrix_adc.log").alias("event.dataset"),
        pl.coalesce("host", "_sys_host").alias("observer.name"),
        pl.lit("vpn").alias("observer.type"),
        pl.concat_str([pl.col("module"), pl.col("event")], separator=" ", ignore_nulls=True).alias(
            "event.code"
        ),
        pl.col("_dur_ns").alias("event.duration"),
        count(pl.col("_send")).alias("source.bytes"),
        count(pl.col("_recv")).alias("destination.bytes"),
        (count(pl.col("_send")) + count(pl.col("_recv"))).alias("network.bytes"),
    ]


def _meta(field: int) -> pl.Expr:
    table = {k: str(v[field]) for k, v in _EVENTS.items() if v[field] is not None}
    return pl.col("event").replace_strict(table, default=None, return_dtype=pl.String)


def _events(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``events`` table: logins, logouts, failures, requests, commands, messages."""
    df, lost = canonical_ips(
        df.with_columns(
            pl.coalesce("_client", "_ctx_ip", pl.col("_xff"), "_remote", "_remote_msg").alias(
                "_sip"
            ),
            pl.coalesce("_vs_ip", "_vserver_ip").alias("_dip"),
        ),
        {"_sip": "source.ip", "_dip": "destination.ip", "_nat": "vpn.tunnel_ip"},
        absent=(*_UNSET, _NO_INTRANET_IP),
    )
    command = pl.col("_command")
    cmd = pl.col("event") == "CMD_EXECUTED"
    status = pl.col("_status").str.to_lowercase()
    out = df.select(
        *_common(),
        pl.lit("event").alias("event.kind"),
        pl.coalesce(_meta(1), pl.lit("host")).alias("event.category"),
        pl.when(cmd & command.str.contains(_READ_ONLY))
        .then(pl.lit("info"))
        .otherwise(pl.coalesce(_meta(2), pl.lit("info")))
        .alias("event.type"),
        _meta(0).alias("event.action"),
        pl.when(cmd)
        .then(pl.when(status == "success").then(pl.lit("success")).otherwise(pl.lit("failure")))
        .otherwise(_meta(3))
        .alias("event.outcome"),
        pl.col("_reason").alias("event.reason"),
        (pl.col("_sys_pri") % 8).alias("event.severity"),  # the syslog severity
        pl.col("_start_ts").alias("event.start"),
        pl.col("msg").str.strip_chars().alias("message"),
        pl.coalesce("_user", "_ica_user").alias("user.name"),
        pl.col("_ica_domain").alias("user.domain"),
        pl.when(cmd).then(pl.lit("Administrator")).alias("user.roles"),
        pl.col("_group").alias("group.name"),
        pl.col("_browser").alias("user_agent.original"),
        pl.col("source.ip"),
        pl.col("destination.ip"),
        _port("_vs_port").alias("destination.port"),
        pl.col("vpn.tunnel_ip"),
        pl.col("_sid").alias("vpn.session_id"),
        pl.when(pl.col("module").is_in(["SSLVPN", "AAATM"]))
        .then(pl.lit("ssl"))
        .alias("vpn.tunnel_type"),
        pl.col("_group").alias("vpn.group"),
    )
    return out, lost


def _flows(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``flows`` table: one row per connection through the gateway, at its end."""
    df, lost = canonical_ips(
        df, {"_src_ip": "source.ip", "_dst_ip": "destination.ip"}, absent=_UNSET
    )
    transport = (
        pl.when(pl.col("event") == "UDPFLOWSTAT").then(pl.lit("udp")).otherwise(pl.lit("tcp"))
    )
    out = df.select(
        *_common(),
        pl.lit("flow-expiration").alias("event.action"),
        pl.when(pl.col("_access") == "Denied")
        .then(pl.lit("failure"))
        .when(pl.col("_access") == "Allowed")
        .then(pl.lit("success"))
        .alias("event.outcome"),
        pl.coalesce("_end_ts", "_ts").alias("event.end"),
        pl.col("source.ip"),
        _port("_src_port").alias("source.port"),
        pl.col("destination.ip"),
        _port("_dst_port").alias("destination.port"),
        transport.alias("network.transport"),
        pl.when(pl.col("event") == "ICAEND_CONNSTAT").then(pl.lit("ica")).alias("network.protocol"),
        pl.col("_conn_id").alias("flow.id"),
        pl.coalesce("_user", "_ica_user").alias("user.name"),
        pl.col("_access").str.to_lowercase().alias("flow.state"),
    )
    return out, lost
