"""Palo Alto Networks PAN-OS syslog (CSV): GlobalProtect, system, traffic, config logs.

Format. PAN-OS forwards every log type as one comma-separated line in the default syslog
format ("Syslog Field Descriptions", PAN-OS 9.1 to 11.x): ``FUTURE_USE, Receive Time,
Serial Number, Type, Subtype, FUTURE_USE, Generated Time, ...``, then the fields of the
type at fixed positions. A value that contains a comma is double-quoted (``"Microsoft
Windows 10 Pro , 64-bit"``) and a quote inside it doubled. Lines arrive behind any syslog
header :mod:`vpnsentry.parse.syslog` reads (the device usually writes ``<14>Mar 2
09:55:42 PA-220 1,2021/03/02 ...``), or bare. Times are the device's wall time
(``2021/03/02 09:55:39``, read in ``ctx.tz``) or, from some collectors and PAN-OS 9.1 on
Cortex, ISO 8601 with a zone. ``@timestamp`` is the Generated Time, as in Elastic's
pipeline; then the Receive Time; then the relay's syslog header.

What becomes of a line:

* ``TRAFFIC`` goes to ``flows`` (addresses, NAT addresses and ports, rule, user, zones'
  interfaces, bytes and packets each way, elapsed time, action, session end reason as
  ``flow.state``, session id as ``flow.id``).
* ``GLOBALPROTECT`` (PAN-OS 9.1+): one event per step of a client's connection, by
  Event ID. The remote client is the ECS *source*: ``source.ip`` is the Public IP
  (Elastic's pipeline puts the Private IP there; we keep the address the connection came
  from in ``source.ip`` for every vendor, so geo and login detections read the same
  column), and the Private IP is ``vpn.tunnel_ip`` on the gateway steps where it is the
  address the gateway gave the client (register, connected, tunnel set-up, latency,
  config release, logout). ``vpn.group`` is the portal or gateway name.
* ``SYSTEM`` with subtype ``globalprotect`` (the GlobalProtect events PAN-OS logged before
  9.1 and still logs): the user, client address, tunnel address and reason are read from
  the description text. Subtype ``auth`` and the ``general`` admin login lines are
  administrator logins (``user.roles`` ``Administrator``). Other system logs are ``host``
  events with their description as ``message``.
* ``CONFIG``: configuration changes by an administrator (``event.category``
  ``configuration``, the command as ``event.action``, the admin's client address as
  ``source.ip``).
* ``THREAT`` and the other types (``AUTHENTICATION``, ``USERID``, ``HIPMATCH`` ...): events
  with the fields their common positions hold.
* A line that is not PAN-OS CSV: ``no_match``; one with fewer fields than its type needs:
  ``truncated``; no usable time: ``bad_timestamp``.

``event.action`` reuses the vocabulary of the other gateway parsers where the meaning is
the same (``logged-in``, ``logon-failed``, ``logged-out``, ``client-vpn-connected``,
``client-vpn-tunnel-established``, ``client-vpn-disconnected``, ``address-assigned``,
``address-released``); other GlobalProtect steps keep their Event ID. The CEF and LEEF
custom formats PAN-OS can forward are read by the generic ``cef`` and ``leef`` readers:
PAN-OS fills their standard keys, so nothing is lost by not reading them here.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.ecsmap import absent, classification, finish, headed, keep, transport
from vpnsentry.parse.fields import rejects
from vpnsentry.parse.timeparse import parse_iso, parse_naive, plausible

#: The start every PAN-OS CSV line has: FUTURE_USE, Receive Time, Serial, Type.
_START: Final = (
    r"^\d+,(?:\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}|\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-][\d:]+)?),"
    r"[^,]*,(?P<type>[A-Z][A-Z0-9-]*),"
)
_START_RE: Final = re.compile(_START)
#: Stands for a comma inside a quoted field while the line is split (see _split_csv).
_COMMA: Final = "\x01"
#: Fields PAN-OS may quote (free text); addresses, numbers and times never are.
_TEXT: Final = frozenset(
    {
        "rule", "srcuser", "app", "misc", "threatid", "stage", "auth_method", "machinename",
        "client_os", "client_os_ver", "reason", "error", "description", "portal", "object",
        "module", "admin", "path", "before", "after", "user", "event", "device_name",
        "eventid", "command", "client", "result", "client_ver", "end_reason", "tunnel_type",
    }
)  # fmt: skip

#: Field positions per log type (PAN-OS 10.x syslog field order; 9.1 is a prefix of it).
_COMMON: Final = {"receive_time": 1, "serial": 2, "type": 3, "subtype": 4, "gen_time": 6}
_TRAFFIC: Final = {
    **_COMMON,
    "src": 7, "dst": 8, "natsrc": 9, "natdst": 10, "rule": 11, "srcuser": 12, "app": 14,
    "from_if": 18, "to_if": 19, "sessionid": 22, "sport": 24, "dport": 25, "natsport": 26,
    "natdport": 27, "proto": 29, "action": 30, "bytes": 31, "bytes_sent": 32,
    "bytes_received": 33, "packets": 34, "elapsed": 36, "pkts_sent": 44,
    "pkts_received": 45, "end_reason": 46, "device_name": 52,
}  # fmt: skip
_THREAT: Final = {
    **_COMMON,
    "src": 7, "dst": 8, "natsrc": 9, "natdst": 10, "rule": 11, "srcuser": 12, "app": 14,
    "sport": 24, "dport": 25, "proto": 29, "action": 30, "misc": 31, "threatid": 32,
    "severity": 34, "device_name": 59,
}  # fmt: skip
_GLOBALPROTECT: Final = {
    **_COMMON,
    "eventid": 8, "stage": 9, "auth_method": 10, "tunnel_type": 11, "srcuser": 12,
    "machinename": 14, "public_ip": 15, "public_ipv6": 16, "private_ip": 17,
    "private_ipv6": 18, "client_ver": 21, "client_os": 22, "client_os_ver": 23,
    "reason": 25, "error": 26, "description": 27, "status": 28, "login_duration": 30,
    "portal": 33, "device_name": 47,
}  # fmt: skip
_SYSTEM: Final = {
    **_COMMON,
    "eventid": 8, "object": 9, "module": 12, "severity": 13, "description": 14,
    "device_name": 22,
}  # fmt: skip
_CONFIG: Final = {
    **_COMMON,
    "host": 7, "command": 9, "admin": 10, "client": 11, "result": 12, "path": 13,
    "before": 14, "after": 15, "device_name": 23,
}  # fmt: skip
_AUTHENTICATION: Final = {
    **_COMMON, "ip": 8, "user": 9, "description": 18, "event": 20, "device_name": 29,
}  # fmt: skip
_OTHER: Final = {**_COMMON}
#: type -> (positions, fields a complete line has at least). Fewer is a truncated line.
_LAYOUTS: Final = {
    "TRAFFIC": (_TRAFFIC, 37),
    "THREAT": (_THREAT, 35),
    "GLOBALPROTECT": (_GLOBALPROTECT, 36),
    "SYSTEM": (_SYSTEM, 15),
    "CONFIG": (_CONFIG, 13),
    "AUTHENTICATION": (_AUTHENTICATION, 21),
}
_ALL_FIELDS: Final = tuple(dict.fromkeys(k for lay, _ in _LAYOUTS.values() for k in lay))

_SEVERITY: Final = {"critical": 2, "high": 3, "medium": 4, "low": 5, "informational": 6}
#: GlobalProtect Event ID -> (event.action, event.category, event.type). Auth outcomes
#: pick the action (success: ``logged-in``, failure: ``logon-failed``).
_GP_STEPS: Final = {
    "gateway-register": ("address-assigned", "network", "info"),
    "gateway-connected": ("client-vpn-connected", "session", "start"),
    "gateway-setup-ipsec": ("client-vpn-tunnel-established", "network", "start"),
    "gateway-setup-ssl": ("client-vpn-tunnel-established", "network", "start"),
    "gateway-switch-to-ssl": ("client-vpn-tunnel-established", "network", "start"),
    "gateway-logout": ("client-vpn-disconnected", "session", "end"),
    "portal-logout": ("logged-out", "authentication", "end"),
    "gateway-config-release": ("address-released", "network", "info"),
}
_GP_AUTH: Final = ("portal-auth", "gateway-auth")
#: Gateway steps whose Private IP is the tunnel address the gateway assigned.
_GP_TUNNEL: Final = (
    "gateway-register",
    "gateway-connected",
    "gateway-setup-ipsec",
    "gateway-setup-ssl",
    "gateway-switch-to-ssl",
    "gateway-tunnel-latency",
    "gateway-config-release",
    "gateway-logout",
)
#: SYSTEM ``globalprotect`` Event IDs (``globalprotect<portal|gateway>-<what>-<succ|fail>``).
_SYS_GP: Final = {
    "auth": ("logged-in", "logon-failed", "authentication"),
    "logout": ("client-vpn-disconnected", "client-vpn-disconnected", "session"),
    "regist": ("address-assigned", "client-vpn-error", "network"),
    "config-release": ("address-released", "address-released", "network"),
}
#: Fields the SYSTEM description text names (GlobalProtect and admin login messages).
_DESC: Final = {
    "_d_from": r"(?:Login from: |From: | from )([0-9A-Fa-f:.]*[0-9A-Fa-f])",
    "_d_user": r"User name: ([^,]*)",
    "_d_admin": r"user '([^']*)'",
    "_d_admin2": r"^User (\S+) logged (?:in|out) via ",
    "_d_private": r"Private IP: ([0-9A-Fa-f:.]*[0-9A-Fa-f])",
    "_d_reason": r"Reason: (.*?)\s*(?:, Auth type:|\. From:|\.?$)",
    "_d_ver": r"Client version: ([^,]*)",
    "_d_os": r"Client OS version: ([^,]*(?:, 64-bit)?)",
}
_ADMIN_LOGIN: Final = r"^User \S+ logged in via "
_ADMIN_LOGOUT: Final = r"^User \S+ logged out via "


def _addr(name: str) -> pl.Expr:
    """An address field; PAN-OS writes ``0.0.0.0`` for "none" (no NAT, no tunnel yet)."""
    return absent(pl.col(name), "0.0.0.0")  # noqa: S104


def _time(text: pl.Expr, tz: str, iso: bool) -> pl.Expr:
    """A PAN-OS time: ``2021/03/02 09:55:39`` in ``tz``, or (``iso``: the chunk has such
    values) ISO 8601 with its zone."""
    naive = parse_naive(text, "%Y/%m/%d %H:%M:%S", tz)
    if not iso:
        return naive
    return pl.when(text.str.contains("T", literal=True)).then(parse_iso(text, tz)).otherwise(naive)


def _dequote(value: pl.Expr) -> pl.Expr:
    """A text field as split: outer quotes removed, ``""`` and protected commas restored."""
    quoted = value.str.starts_with('"') & value.str.ends_with('"') & (value.str.len_chars() >= 2)
    inner = value.str.slice(1, value.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
    text = pl.when(quoted).then(inner).otherwise(value)
    return text.str.replace_all(_COMMA, ",", literal=True)


def _split_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``_f``, the list of CSV fields of ``_body`` (quoted ones still quoted).

    Commas inside quotes are protected first: split on ``"``, the odd pieces are inside a
    quoted field (a doubled ``""`` adds an empty piece and keeps the parity), their commas
    become a placeholder, and the line is joined again. Then one literal split on ``,``:
    several times cheaper than a regex that reads quoted fields. Lines without a quote (most
    traffic logs) skip the protection.
    """
    has_quote = frame["_body"].str.contains('"', literal=True)
    plain = frame.filter(~has_quote).with_columns(pl.col("_body").str.split(",").alias("_f"))
    inside = pl.int_range(pl.len()) % 2 == 1
    protected = (
        pl.col("_body")
        .str.replace_all(_COMMA, "\ufffd", literal=True)
        .str.split('"')
        .list.eval(
            pl.when(inside)
            .then(pl.element().str.replace_all(",", _COMMA, literal=True))
            .otherwise(pl.element())
        )
        .list.join('"')
    )
    quoted = frame.filter(has_quote).with_columns(protected.str.split(",").alias("_f"))
    return pl.concat([plain, quoted])


def _user(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``user.name`` and ``user.domain`` from ``domain\\user`` or ``user@domain``."""
    parts = text.str.extract_groups(
        r"^(?:(?P<pre>[^\\@]*)\\+)?(?P<name>[^\\@]*)(?:@(?P<post>.*))?$"
    )
    name = pl.coalesce(parts.struct.field("name").replace("", None), text)
    domain = pl.coalesce(parts.struct.field("pre"), parts.struct.field("post")).replace("", None)
    return name, domain


@register
class PanwPanos(Parser):
    """Palo Alto Networks PAN-OS syslog in the default CSV format."""

    name = "panw_panos"
    title = "Palo Alto Networks PAN-OS syslog (GlobalProtect, system, traffic, config)"
    vendor = "Palo Alto Networks"
    product = "PAN-OS"
    datasets = ("events", "flows")
    sniff_literals = (
        ",GLOBALPROTECT,",
        ",TRAFFIC,",
        ",SYSTEM,",
        ",CONFIG,",
        ",THREAT,",
        ",AUTHENTICATION,",
    )
    sample = (
        "<14>Mar  2 09:55:42 PA-220 1,2021/03/02 09:55:42,012801096514,GLOBALPROTECT,0,2305,"
        "2021/03/02 09:55:39,vsys1,gateway-auth,login,LDAP,,jdoe,US,PC1234,203.0.113.40,"
        "0.0.0.0,0.0.0.0,0.0.0.0,985e865f-7da3-43b4-89a9-299b1bb0c975,SERIALNR,5.1.1,Windows,"
        '"Microsoft Windows 10 Enterprise , 64-bit",1,,,,success,,0,pre-logon,0,GP-GW,'
        "6894571632887748064,0x8000000000000000"
    )

    def sniff(self, head: list[str]) -> float:
        """Share of head lines that start (after a syslog header) like PAN-OS CSV."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        body = re.compile(_START[1:])  # unanchored: after whatever syslog header
        hits = sum(1 for ln in lines if body.search(ln))
        return hits / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Split header and CSV, map each log type, send traffic to ``flows``."""
        frame = headed(lines, ctx).with_columns(
            pl.col("_body").str.extract(_START, 1).alias("type")
        )
        frame, no_match = keep(
            frame, pl.col("type").is_not_null(), Reason.NO_MATCH, "not PAN-OS CSV syslog"
        )
        frame = _split_csv(frame)
        need = pl.col("type").replace_strict(
            {t: n for t, (_, n) in _LAYOUTS.items()}, default=7, return_dtype=pl.UInt32
        )
        short = pl.col("_f").list.len() < need
        truncated = rejects(
            frame.filter(short),
            Reason.TRUNCATED,
            pl.format(
                "{} fields, a {} line has at least {}",
                pl.col("_f").list.len(),
                pl.col("type"),
                need,
            ),
        )
        frame = frame.filter(~short)
        parts = []
        for (kind,), part in frame.partition_by("type", as_dict=True).items():
            layout = _LAYOUTS.get(str(kind), (_OTHER, 7))[0]
            parts.append(_fields(part, layout))
        if parts:
            df = pl.concat(parts, how="diagonal_relaxed")
            df = df.with_columns(
                pl.lit(None, pl.String).alias(k) for k in _ALL_FIELDS if k not in df.columns
            )
            result = finish(_map(df, ctx), self.datasets, "no valid Generated or Receive Time")
        else:
            result = ParseResult()
        result.rejected = pl.concat([no_match, truncated, result.rejected])
        return result


def _fields(part: pl.DataFrame, layout: dict[str, int]) -> pl.DataFrame:
    """The named fields of one log type's rows, as strings (null when empty)."""
    get = pl.col("_f").list.get
    return part.select(
        "_row",
        "_sys_ts",
        "_sys_host",
        "_body",
        *(
            absent(
                _dequote(get(i, null_on_oob=True)) if name in _TEXT else get(i, null_on_oob=True)
            ).alias(name)
            for name, i in layout.items()
        ),
    )


def _map(df: pl.DataFrame, ctx: ParseContext) -> pl.DataFrame:
    """ECS columns (addresses, ports and counters still text) for every log type."""
    f = pl.col
    kind = f("type")
    gp, system, config = kind == "GLOBALPROTECT", kind == "SYSTEM", kind == "CONFIG"
    traffic = kind == "TRAFFIC"
    eventid = f("eventid")
    iso = bool(df.select(f("gen_time").str.contains("T", literal=True).any()).item())
    ts = pl.coalesce(
        plausible(_time(f("gen_time"), ctx.tz, iso), ctx.now),
        plausible(_time(f("receive_time"), ctx.tz, iso), ctx.now),
        f("_sys_ts"),
    )
    desc = f("description")
    sys_gp = system & (f("subtype") == "globalprotect")
    df = df.with_columns(
        ts.alias("@timestamp"),
        *(pl.when(system).then(desc.str.extract(rx, 1)).alias(name) for name, rx in _DESC.items()),
        # SYSTEM globalprotect ids: globalprotectgateway-auth-succ -> ("auth", "succ")
        eventid.str.extract(r"^globalprotect(?:portal|gateway)-(.+)-(?:succ|fail)$", 1).alias(
            "_sys_step"
        ),
        eventid.str.ends_with("-fail").alias("_sys_fail"),
    )
    gp_ok = f("status").str.to_lowercase() == "success"
    gp_fail = f("status").str.to_lowercase().is_in(["failure", "fail", "failed"])
    step = eventid.replace_strict(
        {k: v[0] for k, v in _GP_STEPS.items()}, default=None, return_dtype=pl.String
    )
    sys_step = f("_sys_step")
    sys_action = (
        pl.when(f("_sys_fail"))
        .then(sys_step.replace_strict({k: v[1] for k, v in _SYS_GP.items()}, default=None))
        .otherwise(sys_step.replace_strict({k: v[0] for k, v in _SYS_GP.items()}, default=None))
    )
    admin_sys = system & (
        (f("subtype") == "auth")
        | desc.str.contains(_ADMIN_LOGIN).fill_null(False)
        | desc.str.contains(_ADMIN_LOGOUT).fill_null(False)
    )
    admin_in = desc.str.contains(_ADMIN_LOGIN).fill_null(False) | (eventid == "auth-success")
    admin_out = desc.str.contains(_ADMIN_LOGOUT).fill_null(False)
    action = (
        pl.when(gp & eventid.is_in(_GP_AUTH))
        .then(pl.when(gp_fail).then(pl.lit("logon-failed")).otherwise(pl.lit("logged-in")))
        .when(gp)
        .then(pl.coalesce(step, eventid))
        .when(sys_gp)
        .then(pl.coalesce(sys_action, eventid))
        .when(admin_sys)
        .then(
            pl.when(admin_out)
            .then(pl.lit("logged-out"))
            .when(admin_in)
            .then(pl.lit("logged-in"))
            .otherwise(pl.lit("logon-failed"))
        )
        .when(system)
        .then(eventid)
        .when(config)
        .then(f("command"))
        .when(kind == "AUTHENTICATION")
        .then(f("event"))
        .otherwise(f("action"))
    )
    category = (
        pl.when(gp & eventid.is_in(_GP_AUTH))
        .then(pl.lit("authentication"))
        .when(gp)
        .then(
            eventid.replace_strict(
                {k: v[1] for k, v in _GP_STEPS.items()}, default="network", return_dtype=pl.String
            )
        )
        .when(sys_gp)
        .then(
            sys_step.replace_strict(
                {k: v[2] for k, v in _SYS_GP.items()}, default="network", return_dtype=pl.String
            )
        )
        .when(admin_sys | (kind == "AUTHENTICATION"))
        .then(pl.lit("authentication"))
        .when(system)
        .then(pl.lit("host"))
        .when(config)
        .then(pl.lit("configuration"))
        .when(kind == "THREAT")
        .then(pl.lit("intrusion_detection"))
        .otherwise(pl.lit("network"))
    )
    failed = (
        pl.when(gp)
        .then(pl.when(gp_fail).then(True).when(gp_ok).then(False))
        .when(sys_gp & sys_step.is_not_null())
        .then(f("_sys_fail"))
        .when(admin_sys)
        .then(~(admin_in | admin_out))
        .when(config)
        .then(
            pl.when(f("result").str.to_lowercase() == "failed")
            .then(True)
            .when(f("result").is_not_null())
            .then(False)
        )
        .when(traffic | (kind == "THREAT"))
        .then(
            pl.when(f("action").is_in(["allow", "alert"]))
            .then(False)
            .when(f("action").is_not_null())
            .then(True)
        )
    )
    etype = (
        pl.when(category == "authentication")
        .then(
            pl.when(action == "logged-out")
            .then(pl.lit("end"))
            .when(failed)
            .then(pl.lit("denied"))
            .otherwise(pl.lit("allowed"))
        )
        .when(gp)
        .then(
            eventid.replace_strict(
                {k: v[2] for k, v in _GP_STEPS.items()}, default="info", return_dtype=pl.String
            )
        )
        .when(category == "session")
        .then(pl.lit("end"))
        .when(config)
        .then(
            f("command").replace_strict(
                {"add": "creation", "clone": "creation", "delete": "deletion"},
                default="change",
                return_dtype=pl.String,
            )
        )
        .when(kind == "THREAT")
        .then(pl.when(failed).then(pl.lit("denied")).otherwise(pl.lit("info")))
        .otherwise(pl.lit("info"))
    )
    user_text = pl.coalesce(
        pl.when(gp).then(f("srcuser")),
        pl.when(system).then(pl.coalesce("_d_user", "_d_admin", "_d_admin2")),
        pl.when(config).then(f("admin")),
        pl.when(kind == "AUTHENTICATION").then(f("user")),
        f("srcuser"),
    )
    user_name, user_domain = _user(user_text.str.strip_chars())
    tunnel = pl.when(gp & eventid.is_in(_GP_TUNNEL)).then(
        pl.coalesce(_addr("private_ip"), _addr("private_ipv6"))
    )
    tunnel_type = pl.coalesce(
        f("tunnel_type").str.to_lowercase().replace({"ipsec": "ipsec", "ssl": "ssl"}),
        pl.when(eventid.str.contains("ipsec")).then(pl.lit("ipsec")),
        pl.when(eventid.str.contains("ssl")).then(pl.lit("ssl")),
    )
    seconds = pl.coalesce(f("elapsed"), f("login_duration")).cast(pl.Int64, strict=False)
    severity = f("severity").str.to_lowercase()
    message = pl.coalesce(
        pl.when(kind == "THREAT").then(f("threatid")),
        pl.when(config).then(
            pl.concat_str(
                f("command"),
                f("path"),
                pl.when(f("before").is_not_null() | f("after").is_not_null()).then(
                    pl.format("{} -> {}", f("before").fill_null(""), f("after").fill_null(""))
                ),
                separator=" ",
                ignore_nulls=True,
            )
        ),
        desc,
    )
    return df.select(
        "_row",
        pl.when(traffic).then(pl.lit("flows")).otherwise(pl.lit("events")).alias("_dataset"),
        "@timestamp",
        pl.concat_str(pl.lit("panw_panos."), kind.str.to_lowercase()).alias("event.dataset"),
        pl.coalesce("device_name", "_sys_host").alias("observer.name"),
        pl.lit("firewall").alias("observer.type"),
        f("serial").alias("observer.serial_number"),
        *classification(category, etype, action, failed),
        pl.coalesce(
            eventid, pl.when(kind == "AUTHENTICATION").then(f("event")), f("subtype")
        ).alias("event.code"),
        pl.coalesce(f("reason"), f("error"), f("_d_reason"), f("end_reason")).alias("event.reason"),
        severity.replace_strict(_SEVERITY, default=None, return_dtype=pl.Int32).alias(
            "event.severity"
        ),
        severity.alias("log.level"),
        pl.when(seconds.is_between(0, 10**9)).then(seconds * 1_000_000_000).alias("event.duration"),
        pl.when(traffic & (f("subtype") == "end")).then(f("@timestamp")).alias("event.end"),
        message.alias("message"),
        f("machinename").alias("host.hostname"),
        user_name.alias("user.name"),
        user_domain.alias("user.domain"),
        pl.when(admin_sys | config).then(pl.lit("Administrator")).alias("user.roles"),
        f("rule").alias("rule.name"),
        pl.coalesce(
            _addr("public_ip"),
            _addr("public_ipv6"),
            f("src"),
            f("host"),
            f("ip"),
            f("_d_from"),
        ).alias("source.ip"),
        f("sport").alias("source.port"),
        f("bytes_sent").alias("source.bytes"),
        f("pkts_sent").alias("source.packets"),
        _addr("natsrc").alias("source.nat.ip"),
        f("dst").alias("destination.ip"),
        f("dport").alias("destination.port"),
        f("bytes_received").alias("destination.bytes"),
        f("pkts_received").alias("destination.packets"),
        _addr("natdst").alias("destination.nat.ip"),
        f("bytes").alias("network.bytes"),
        f("packets").alias("network.packets"),
        transport(f("proto")).alias("network.transport"),
        f("app").alias("network.protocol"),
        f("end_reason").alias("flow.state"),
        f("sessionid").alias("flow.id"),
        f("from_if").alias("observer.ingress.interface.name"),
        f("to_if").alias("observer.egress.interface.name"),
        pl.coalesce(tunnel, pl.when(sys_gp).then(f("_d_private"))).alias("vpn.tunnel_ip"),
        pl.when(gp | sys_gp).then(tunnel_type).alias("vpn.tunnel_type"),
        pl.when(gp).then(f("portal")).alias("vpn.group"),
        pl.coalesce(f("client_ver"), f("_d_ver")).alias("vpn.client_version"),
        pl.coalesce(f("client_os_ver"), f("client_os"), f("_d_os")).alias("vpn.client_os"),
    )
