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
server the destination. The byte counters are the client's view (``Total_bytes_send`` is
what the client sent: in real logs ``recv`` dwarfs ``send``, as downloads do).

Hostile text: fields are read by name. ``User`` is read at its first occurrence (the name
precedes every other field but ``Context``/``SessionId``), the others at their last, so a
user name that contains `` - Client_ip 1.2.3.4`` cannot choose the address a detection sees.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import canonical_ip, count, keep_rows, rejects
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import local_to_utc, plausible

_DATE: Final = r"\d{2}/\d{2}/\d{4}|\d{4}/\d{2}/\d{2}"
#: The NetScaler header and message, after any relay's syslog header.
_LINE: Final = (
    rf"^\s*(?:(?P<date>{_DATE}):(?P<clock>\d{{2}}:\d{{2}}:\d{{2}})(?: (?P<zone>GMT|UTC))?"
    r"(?: (?P<host>[^\s:]+))? +\d+-PPE-\d+ : )?"
    r"(?P<partition>[\w.\-]+) (?:(?P<module>[A-Z][A-Z0-9_]*) )?"
    r"(?P<event>[A-Za-z][A-Za-z0-9_]*) (?P<seq>\d+) (?P<level>\d+) :\s?(?P<msg>.*)$"
)
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


def _field(name: str, *, first: bool = False) -> pl.Expr:
    """Value of the ``name value`` (or ``name: value``) pair of the message, unquoted, null
    when empty or ``-``; the last occurrence unless ``first``."""
    lead = "" if first else ".*"
    raw = pl.col("msg").str.extract(rf"{lead}(?:^|[\s\]]){name}:? ?{_VALUE}", 1)
    value = raw.str.strip_chars('\\"').str.strip_chars()
    return pl.when(~value.is_in(["", "-", "N/A"])).then(value)


def _time(text: pl.Expr, ctx: ParseContext) -> pl.Expr:
    """UTC from NetScaler date parts in a struct of ``d`` (date), ``c`` (clock), ``z``
    (zone): ``MM/DD/YYYY`` unless the first field is a day above 12, or ``YYYY/MM/DD``."""
    parts = text.str.extract_groups(_TIME)
    d = parts.struct.field("d")
    a = d.str.slice(0, 2).cast(pl.Int32, strict=False)
    iso = (
        pl.when(d.str.contains(r"^\d{4}/"))
        .then(d.str.replace_all("/", "-", literal=True))
        .when(a > 12)
        .then(pl.format("{}-{}-{}", d.str.slice(6, 4), d.str.slice(3, 2), d.str.slice(0, 2)))
        .otherwise(pl.format("{}-{}-{}", d.str.slice(6, 4), d.str.slice(0, 2), d.str.slice(3, 2)))
    )
    naive = pl.format("{} {}", iso, parts.struct.field("c")).str.strptime(
        pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False
    )
    utc = naive.dt.replace_time_zone("UTC").cast(UTC_TS)
    return plausible(
        pl.when(parts.struct.field("z").is_not_null())
        .then(utc)
        .otherwise(local_to_utc(naive, ctx.tz)),
        ctx.now,
    )


def _hms_ns(text: pl.Expr) -> pl.Expr:
    """``HH:MM:SS`` (hours may exceed 24) as nanoseconds."""
    p = text.str.extract_groups(r"^(\d+):(\d{2}):(\d{2})$")
    h, m, s = (p.struct.field(str(i)).cast(pl.Int64, strict=False) for i in (1, 2, 3))
    return ((h * 60 + m) * 60 + s) * 1_000_000_000


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
        head = split_header(lines, ctx)
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
            .with_columns(pl.col("_body").str.extract_groups(_LINE).alias("_g"))
            .unnest("_g")
        )
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
        flow_rows = pl.col("event").is_in(_FLOW_EVENTS)
        tables: dict[str, pl.DataFrame] = {}
        for name, part, build in (
            ("events", rows.filter(~flow_rows), _events),
            ("flows", rows.filter(flow_rows), _flows),
        ):
            if not len(part):
                continue
            table, lost = build(part)
            dropped += lost
            no_ts = table.filter(pl.col("@timestamp").is_null())
            rejected.append(rejects(no_ts, Reason.BAD_TIMESTAMP, "no header or message time"))
            table = keep_rows(table, pl.col("@timestamp").is_not_null())
            if len(table):
                tables[name] = table
        return ParseResult(tables=tables, rejected=pl.concat(rejected), dropped_values=dropped)


def _fields(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """The named message fields, the time and the addresses (as text) of matched rows."""
    msg = pl.col("msg")
    df = df.with_columns(
        # Up to the next " - Name " or " : Group(s)": a name may hold spaces and quotes.
        msg.str.extract(r"(?:^|[\s\]])User (.*?)(?: +- [A-Z][\w()\-]*[ :]| : Group| *$)", 1)
        .str.strip_chars()
        .alias("_user"),
        msg.str.extract(r"(?:^|\s)username:domainname (\S+?):(\S*)", 1).alias("_ica_user"),
        msg.str.extract(r"(?:^|\s)username:domainname (\S+?):(\S*)", 2).alias("_ica_domain"),
        msg.str.extract(r"^\s*Context \S*@([0-9A-Fa-f.:]+) ", 1).alias("_ctx_ip"),
        msg.str.extract(r"Session[Ii]d:? (\d+)", 1).alias("_sid"),
        _field("Client_ip").alias("_client"),
        _field("X-Forwarded-For_ip").alias("_xff"),
        _field("Remote_ip").alias("_remote"),
        msg.str.extract(r"\[Remote ip = ([0-9A-Fa-f.:]+?):\d+\]", 1).alias("_remote_msg"),
        _field("Vserver").alias("_vserver"),
        _field("Vserver_ip").alias("_vserver_ip"),
        _field("Source").alias("_src"),
        _field("Destination").alias("_dst"),
        pl.coalesce(_field("Start_time"), _field("startTime")).alias("_start"),
        pl.coalesce(_field("End_time"), _field("endTime")).alias("_end"),
        msg.str.extract(rf" - ((?:{_DATE}):\d{{2}}:\d{{2}}:\d{{2}} ?(?:GMT|UTC)?) : ", 1).alias(
            "_req_time"
        ),
        _field("Duration").alias("_duration"),
        _field("Total_bytes_send").alias("_send"),
        _field("Total_bytes_recv").alias("_recv"),
        _field("Browser_type").alias("_browser"),
        pl.coalesce(_field(r"Group\(s\)"), msg.str.extract(r" : Group\(s\) (\S+) :", 1))
        .replace("N/A", None)
        .alias("_group"),
        pl.coalesce(
            _field("LogoutMethod"), _field("Errmsg"), _field("Failure_reason"), _field("Reason")
        ).alias("_reason"),
        _field("Command").alias("_command"),
        _field("Status").alias("_status"),
        msg.str.extract(r" - Access (Allowed|Denied)", 1).alias("_access"),
        msg.str.extract(r"connectionId (\d+)", 1).alias("_conn_id"),
    )
    header = _time(pl.format("{}:{}{}", "date", "clock", pl.col("zone").fill_null("")), ctx)
    return df.with_columns(
        pl.coalesce(
            header,
            _time(pl.col("_end"), ctx),
            _time(pl.col("_req_time"), ctx),
            pl.col("_sys_ts"),
        ).alias("_ts"),
        _time(pl.col("_start"), ctx).alias("_start_ts"),
        _time(pl.col("_end"), ctx).alias("_end_ts"),
        _hms_ns(pl.col("_duration")).alias("_dur_ns"),
        pl.col("_vserver").str.extract(r"^(.*):(\d+)$", 1).alias("_vs_ip"),
        pl.col("_vserver").str.extract(r"^(.*):(\d+)$", 2).alias("_vs_port"),
        pl.col("_src").str.extract(r"^(.*):(\d+)$", 1).alias("_src_ip"),
        pl.col("_src").str.extract(r"^(.*):(\d+)$", 2).alias("_src_port"),
        pl.col("_dst").str.extract(r"^(.*):(\d+)$", 1).alias("_dst_ip"),
        pl.col("_dst").str.extract(r"^(.*):(\d+)$", 2).alias("_dst_port"),
    )


def _ips(df: pl.DataFrame, columns: dict[str, str]) -> tuple[pl.DataFrame, int]:
    """Validate and canonicalise the address columns (``{source: target}``); also return
    how many given values were not addresses (``0.0.0.0`` of an unset Vserver is absent)."""
    lost = 0
    out: list[pl.Series] = []
    for src, target in columns.items():
        text = df[src].replace({"0.0.0.0": None})  # noqa: S104
        ips, bad = canonical_ip(text)
        lost += bad
        out.append(ips.alias(target))
    return df.with_columns(out), lost


_PORTS: Final = ("_vs_port", "_src_port", "_dst_port")


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
    df, lost = _ips(
        df.with_columns(
            pl.coalesce("_client", "_ctx_ip", pl.col("_xff"), "_remote", "_remote_msg").alias(
                "_sip"
            ),
            pl.coalesce("_vs_ip", "_vserver_ip").alias("_dip"),
        ),
        {"_sip": "source.ip", "_dip": "destination.ip"},
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
        pl.col("_sid").alias("vpn.session_id"),
        pl.when(pl.col("module").is_in(["SSLVPN", "AAATM"]))
        .then(pl.lit("ssl"))
        .alias("vpn.tunnel_type"),
        pl.col("_group").alias("vpn.group"),
    )
    return out, lost


def _flows(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``flows`` table: one row per connection through the gateway, at its end."""
    df, lost = _ips(df, {"_src_ip": "source.ip", "_dst_ip": "destination.ip"})
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
