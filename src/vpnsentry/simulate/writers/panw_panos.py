"""Palo Alto Networks PAN-OS (10.x) syslog in the default CSV format: GlobalProtect, system,
config and traffic logs.

Every line is one comma-separated record, ``FUTURE_USE, Receive Time, Serial Number, Type,
Subtype, FUTURE_USE, Generated Time, ...`` and then the fields of its type at fixed positions
("Syslog Field Descriptions", PAN-OS 10.x; the layouts of ``tests/golden/parse/panw_panos/``).
A value holding a comma is double-quoted (``"Microsoft Windows 10 Enterprise , 64-bit"``).
The firewall sends the record itself with a BSD header (``<14>Mar  2 09:55:42 PA-220 1,...``,
facility user, severity informational); the collector may re-frame it as any other syslog.
Messages written:

* ``GLOBALPROTECT`` (PAN-OS 9.1+): a login is ``portal-auth`` and ``gateway-auth`` (status
  ``success``), ``gateway-register`` (the Private IP the gateway assigns), ``gateway-setup-ssl``
  and ``gateway-connected``; the end ``gateway-logout`` with its reason and Login Duration. A
  rejected password is one ``portal-auth`` with status ``failure`` and the error text (the
  client authenticates to the portal first and stops there).
* ``SYSTEM``: administrator logins (``auth-success`` / ``auth-fail`` of subtype ``auth``, and
  ``User … logged in via Web`` of subtype ``general``).
* ``CONFIG``: an administrator's ``set``/``edit``/``delete``/``commit`` with the path and the
  value after the change.
* ``TRAFFIC`` subtype ``end``: each session through the firewall when it closes (zones,
  interfaces, rule, App-ID, NAT, bytes and packets each way, session end reason), and the
  TLS connections that reach the GlobalProtect portal on the untrust interface.

The firewall's clock runs in UTC (``deviceconfig system timezone UTC``): PAN-OS writes its
times without a zone, and one zone for every firewall of a multinational estate is what lets
the collector read them without per-device settings.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from vpnsentry.simulate.core import (
    STATE,
    TCP_STATES,
    US,
    fixed_width_text,
    hex_digits,
    ip_parts,
    ip_text,
    port_text,
    text_table,
)
from vpnsentry.simulate.writers import LINE_SCHEMA, Device
from vpnsentry.simulate.writers.syslog import escape, frame_parts, strf

#: facility user, severity informational: PAN-OS's default syslog server profile.
_PRI: Final = 14
_TIME: Final = "%Y/%m/%d %H:%M:%S"
#: Names of the GlobalProtect portal and gateway configurations (``Portal`` field).
PORTAL: Final = "GP-Portal"
GATEWAY: Final = "GP-Gateway"
CLIENT_VERSION: Final = "6.2.4-110"
#: How PAN-OS writes "no address" (no NAT, no tunnel address yet).
_NO_IP: Final = "0.0.0.0"  # noqa: S104

#: Failed-login reasons as GlobalProtect words them in the Error field.
FAIL_ERROR: Final = {
    "bad_password": "Authentication failed: Invalid username or password",
    "unknown_user": "Authentication failed: Invalid username or password",
    "expired": "Authentication failed: Password expired",
    "locked": "Authentication failed: Account locked",
}
#: Why a session ended (the simulator's reason) as gateway-logout's Reason field.
LOGOUT_REASON: Final = {
    "user": "client logout",
    "idle": "inactivity timeout",
    "timeout": "login lifetime expired",
}
#: Zeek-style connection state -> PAN-OS Session End Reason.
_END_REASON: Final = {
    "SF": "tcp-fin",
    "S0": "aged-out",
    "REJ": "tcp-rst-from-server",
    "RSTO": "tcp-rst-from-client",
    "RSTR": "tcp-rst-from-server",
}
#: Client operating systems (Client OS, Client OS Version), picked per user.
_CLIENT_OS: Final = (
    ("Microsoft Windows", '"Microsoft Windows 11 Enterprise , 64-bit"'),
    ("Microsoft Windows", '"Microsoft Windows 10 Enterprise , 64-bit"'),
    ("Mac", "Apple Mac OS X 14.4.1"),
)
_EMPTY: Final = pl.DataFrame(schema=LINE_SCHEMA)


def _record(
    dev: Device, df: pl.DataFrame, ts: pl.Expr, head: str, rest: list[pl.Expr]
) -> pl.DataFrame:
    """Lines for event time ``ts``: syslog framing, ``1,<recv>,<serial>,`` + ``head`` (type,
    subtype, FUTURE_USE), ``,<generated>,`` and ``rest``; ``_order`` is the arrival."""
    if not len(df):
        return _EMPTY
    dts = ts + dev.skew_us
    arrival = ts + pl.col("_delay")
    frame = frame_parts(df, dev, arrival=arrival, device_ts=dts, pri=_PRI)
    if dev.header == "pri":  # the datagram as the firewall sends it: BSD stamp and hostname
        frame.append(pl.lit(strf(df, dts, f"%b %e %H:%M:%S {escape(dev.hostname)} ")))
    stamp = pl.lit(strf(df, dts, _TIME))
    line = pl.concat_str(
        [
            *frame,
            pl.lit("1,"),
            stamp,
            pl.lit(f",{dev.serial},{head},"),
            stamp,
            pl.lit(","),
            *rest,
        ]
    )
    return df.select(arrival.alias("_order"), line.alias("line"), pl.col("tag"))


def _seq(ts: pl.Expr, dev: Device) -> pl.Expr:
    """Sequence Number: the log's serial on the firewall, rising with time."""
    return ((ts + dev.skew_us) // 100).cast(pl.String)


def _tail(dev: Device) -> str:
    """Device Group hierarchy (four zeros), Virtual System Name and Device Name."""
    return f"0,0,0,0,,{dev.hostname}"


# ---- GlobalProtect ----------------------------------------------------------------------


def _client(df: pl.DataFrame) -> pl.DataFrame:
    """Per-user client columns from a hash of the user name (the same laptop every time):
    machine name, host id, client serial number and operating system."""
    h = df["user"].hash(7).to_numpy()
    hexd = hex_digits(h, 16)
    upper = np.where(hexd >= ord("a"), hexd - 32, hexd).astype(np.uint8)
    n = len(df)
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    host_id = np.concatenate(
        [
            hexd[:, :8],
            dash,
            hexd[:, 8:12],
            dash,
            hexd[:, 12:],
            dash,
            hexd[:, :4],
            dash,
            hexd[:, 4:],
        ],
        axis=1,
    )
    machine = np.concatenate([np.tile(np.frombuffer(b"KE-", np.uint8), (n, 1)), upper[:, 8:]], 1)
    os_pick = pl.Series(np.minimum((h % np.uint64(10)).astype(np.int64) // 4, 2))
    return df.with_columns(
        fixed_width_text(machine).alias("_machine"),
        fixed_width_text(host_id).alias("_hostid"),
        fixed_width_text(upper[:, 2:10].copy()).alias("_cserial"),
        pl.lit(pl.Series([o for o, _ in _CLIENT_OS])).gather(os_pick).alias("_os"),
        pl.lit(pl.Series([v for _, v in _CLIENT_OS])).gather(os_pick).alias("_osver"),
    )


def _gp(
    dev: Device,
    df: pl.DataFrame,
    ts: pl.Expr,
    *,
    event: str,
    stage: str,
    auth: str = "",
    tunnel: str = "",
    private: pl.Expr | None = None,
    reason: pl.Expr | None = None,
    error: pl.Expr | None = None,
    description: pl.Expr | None = None,
    status: str = "success",
    duration: pl.Expr | None = None,
    portal: str = GATEWAY,
) -> pl.DataFrame:
    """One GLOBALPROTECT record per row of ``df`` (which has :func:`_client`'s columns)."""
    none = pl.lit("")
    rest = [
        pl.lit(f"vsys1,{event},{stage},{auth},{tunnel},"),
        pl.col("user"),
        pl.lit(","),
        pl.col("region"),
        pl.lit(","),
        pl.col("_machine"),
        pl.lit(","),
        ip_text("src"),
        pl.lit(",,"),
        pl.lit(_NO_IP) if private is None else private,
        pl.lit(",,"),
        pl.col("_hostid"),
        pl.lit(","),
        pl.col("_cserial"),
        pl.lit(f",{CLIENT_VERSION},"),
        pl.col("_os"),
        pl.lit(","),
        pl.col("_osver"),
        pl.lit(",1,"),
        none if reason is None else reason,
        pl.lit(","),
        none if error is None else error,
        pl.lit(","),
        none if description is None else description,
        pl.lit(f",{status},,"),
        pl.lit("0") if duration is None else duration,
        pl.lit(",user-logon,0," + portal + ","),
        _seq(ts, dev),
        pl.lit(",0x8000000000000000,"),
        pl.lit(strf(df, ts + dev.skew_us, "%Y-%m-%dT%H:%M:%S")),
        pl.lit(text_table("ms", "+00:00,,0,auto,,,", ".")).gather(
            (ts + dev.skew_us) % 1_000_000 // 1000
        ),
        pl.lit(_tail(dev) + ",1"),
    ]
    return _record(dev, df, ts, "GLOBALPROTECT,0,2561", rest)


def session_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """The GlobalProtect connect sequence at ``start`` and gateway-logout at ``end``.

    Expects ``region`` (Source Region of the public address) next to the session columns.
    """
    if not len(df):
        return _EMPTY
    df = _client(df)
    start, end = pl.col("start"), pl.col("end")
    tunnel_ip = ip_text("tunnel")
    described = pl.concat_str(
        [
            pl.lit(f'"Client version: {CLIENT_VERSION}, Device name: '),
            pl.col("_machine"),
            pl.lit('"'),
        ]
    )
    secs = ((end - start) // US).cast(pl.String)
    reason = pl.col("reason").replace_strict(LOGOUT_REASON, default="client logout")
    return pl.concat(
        [
            _gp(dev, df, start - 3 * US, event="portal-auth", stage="login", auth="LDAP",
                portal=PORTAL),
            _gp(dev, df, start - 2 * US, event="gateway-auth", stage="login", auth="LDAP"),
            _gp(dev, df, start - US, event="gateway-register", stage="register", tunnel="SSL",
                private=tunnel_ip, description=described),
            _gp(dev, df, start, event="gateway-setup-ssl", stage="tunnel", tunnel="SSL",
                private=tunnel_ip),
            _gp(dev, df, start, event="gateway-connected", stage="connected", tunnel="SSL",
                private=tunnel_ip),
            _gp(dev, df, end, event="gateway-logout", stage="logout", tunnel="SSL",
                private=tunnel_ip, reason=reason, duration=secs),
        ]
    )  # fmt: skip


def fail_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """One failed ``portal-auth`` per rejected login (``region`` column expected)."""
    if not len(df):
        return _EMPTY
    error = pl.col("reason").replace_strict(FAIL_ERROR, default=FAIL_ERROR["bad_password"])
    return _gp(
        dev,
        _client(df),
        pl.col("ts"),
        event="portal-auth",
        stage="login",
        auth="LDAP",
        error=error,
        status="failure",
        portal=PORTAL,
    )


# ---- system and config --------------------------------------------------------------------


def _system(
    dev: Device, df: pl.DataFrame, subtype: str, event: str, severity: str, text: list[pl.Expr]
) -> pl.DataFrame:
    """A SYSTEM record: Event ID, module ``general``, severity and the quoted description."""
    rest = [
        pl.lit(f',{event},,0,0,general,{severity},"'),
        *text,
        pl.lit('",'),
        _seq(pl.col("ts"), dev),
        pl.lit(",0x0," + _tail(dev)),
    ]
    return _record(dev, df, pl.col("ts"), f"SYSTEM,{subtype},0", rest)


def admin_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """Administrator logins (SYSTEM) and configuration changes (CONFIG).

    ``config*`` rows carry the PAN-OS command in ``action`` (set, edit, delete, commit), the
    configuration path in ``path`` and the value after the change in ``attr``; ``command``
    rows (a CLI line in ``attr``) become a ``set`` from the CLI.
    """
    src = ip_text("src")
    out = []
    ok = df.filter(pl.col("kind") == "login_ok")
    if len(ok):
        who = [pl.lit("authenticated for user '"), pl.col("user"), pl.lit("'.  From: "), src]
        out.append(_system(dev, ok, "auth", "auth-success", "informational", [*who, pl.lit(".")]))
        web = [pl.lit("User "), pl.col("user"), pl.lit(" logged in via Web from "), src]
        out.append(
            _system(
                dev,
                ok.with_columns(pl.col("ts") + US),
                "general",
                "general",
                "informational",
                [*web, pl.lit(" using https")],
            )
        )
    bad = df.filter(pl.col("kind") == "login_fail")
    if len(bad):
        text = [
            pl.lit("failed authentication for user '"),
            pl.col("user"),
            pl.lit("'.  Reason: Invalid username/password. From: "),
            src,
            pl.lit("."),
        ]
        out.append(_system(dev, bad, "auth", "auth-fail", "medium", text))
    cfg = df.filter(pl.col("kind").is_in(["command", "config", "config_attr", "config_obj"]))
    if len(cfg):
        cli = pl.col("kind") == "command"
        command = pl.when(cli).then(pl.lit("set")).otherwise(pl.col("action").str.to_lowercase())
        path = pl.when(cli).then(pl.col("attr")).otherwise(pl.col("path")).fill_null("")
        after = pl.when(cli).then(pl.lit("")).otherwise(pl.col("attr")).fill_null("")
        result = (
            pl.when(command == "commit").then(pl.lit("Succeeded")).otherwise(pl.lit("Submitted"))
        )
        rest = [
            src,
            pl.lit(",vsys1,"),
            command,
            pl.lit(","),
            pl.col("user"),
            pl.when(cli).then(pl.lit(",CLI,")).otherwise(pl.lit(",Web,")),
            result,
            pl.lit(","),
            _quoted(path),
            pl.lit(",,"),
            _quoted(after),
            pl.lit(","),
            _seq(pl.col("ts"), dev),
            pl.lit(",0x0," + _tail(dev)),
        ]
        out.append(_record(dev, cfg, pl.col("ts"), "CONFIG,0,0", rest))
    return pl.concat(out) if out else _EMPTY


def _quoted(text: pl.Expr) -> pl.Expr:
    """A CSV value as PAN-OS writes it: quoted (quotes doubled) when it holds a comma or
    quote, bare otherwise."""
    needs = text.str.contains('[,"]')
    return (
        pl.when(needs)
        .then(
            pl.concat_str([pl.lit('"'), text.str.replace_all('"', '""', literal=True), pl.lit('"')])
        )
        .otherwise(text)
    )


# ---- traffic ------------------------------------------------------------------------------


def traffic_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """``TRAFFIC,end`` for each session through the firewall, at its end.

    Expects the router's columns: ``from_zone``/``to_zone``, ``from_if``/``to_if``, ``rule``,
    ``app`` (App-ID), ``nat`` (translated source or null), ``sessionid``, ``src_loc``/
    ``dst_loc`` (country code, or the private range) next to the flow columns.
    """
    if not len(df):
        return _EMPTY
    end = pl.col("ts") + pl.col("dur")
    nat = pl.col("nat").is_not_null()
    sent = pl.col("ob") + pl.col("op") * 40
    rcvd = pl.col("rb") + pl.col("rp") * 40
    tcp = pl.col("proto") == 6
    state = pl.col("state").cast(STATE).to_physical()
    reason = pl.lit(pl.Series([_END_REASON[s] for s in TCP_STATES])).gather(state)
    reason = pl.when(tcp).then(reason).otherwise(pl.lit("aged-out"))
    failed = tcp & state.is_in([TCP_STATES.index("S0"), TCP_STATES.index("REJ")])
    app = pl.when(failed).then(pl.lit("incomplete")).otherwise(pl.col("app"))
    user = pl.col("user").fill_null("")
    rest = [
        *ip_parts("src", ","),
        *ip_parts("dst", ","),
        pl.when(nat).then(ip_text("nat")).otherwise(pl.lit(_NO_IP)),
        pl.lit(f",{_NO_IP},"),
        pl.col("rule"),
        pl.lit(","),
        user,
        pl.lit(",,"),
        app,
        pl.lit(",vsys1,"),
        pl.col("from_zone"),
        pl.lit(","),
        pl.col("to_zone"),
        pl.lit(","),
        pl.col("from_if"),
        pl.lit(","),
        pl.col("to_if"),
        pl.lit(",default,"),
        pl.lit(strf(df, end + dev.skew_us, _TIME)),
        pl.lit(","),
        pl.col("sessionid").cast(pl.String),
        pl.lit(",1,"),
        port_text("sport", ","),
        port_text("dport", ","),
        pl.when(nat).then(port_text("sport")).otherwise(pl.lit("0")),
        pl.when(nat).then(pl.lit(",0,0x400053,")).otherwise(pl.lit(",0,0x19,")),
        pl.when(tcp).then(pl.lit("tcp,allow,")).otherwise(pl.lit("udp,allow,")),
        (sent + rcvd).cast(pl.String),
        pl.lit(","),
        sent.cast(pl.String),
        pl.lit(","),
        rcvd.cast(pl.String),
        pl.lit(","),
        (pl.col("op") + pl.col("rp")).cast(pl.String),
        pl.lit(","),
        pl.lit(strf(df, pl.col("ts") + dev.skew_us, _TIME)),
        pl.lit(","),
        (pl.col("dur") // US).cast(pl.String),
        pl.lit(",any,0,"),
        _seq(end, dev),
        pl.lit(",0x0,"),
        pl.col("src_loc"),
        pl.lit(","),
        pl.col("dst_loc"),
        pl.lit(",0,"),
        pl.col("op").cast(pl.String),
        pl.lit(","),
        pl.col("rp").cast(pl.String),
        pl.lit(","),
        reason,
        pl.lit("," + _tail(dev) + ",from-policy,,,0,,0,,N/A,0,0,0,0"),
    ]
    return _record(dev, df, end, "TRAFFIC,end,2561", rest)


def portal_lines(dev: Device, probes: pl.DataFrame, region: str) -> pl.DataFrame:
    """TLS connections to the GlobalProtect portal that never log in (probes, scanners):
    traffic from the untrust zone to the firewall's own untrust interface. ``probes`` are
    flows with ``_id`` and ``src_loc``; ``region`` is the firewall's own country."""
    return traffic_lines(
        dev,
        probes.with_columns(
            pl.lit("untrust").alias("from_zone"),
            pl.lit("untrust").alias("to_zone"),
            pl.lit("ethernet1/1").alias("from_if"),
            pl.lit("ethernet1/1").alias("to_if"),
            pl.lit("allow-gp-portal").alias("rule"),
            pl.lit("panos-global-protect").alias("app"),
            pl.col("_id").alias("sessionid"),
            pl.lit(region).alias("dst_loc"),
        ),
    )
