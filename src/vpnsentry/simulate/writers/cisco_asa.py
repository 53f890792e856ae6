"""Cisco ASA syslog messages (ASA 9.x with ``logging timestamp`` and ``logging device-id
hostname``): ``<PRI>Mmm dd yyyy HH:MM:SS hostname : %ASA-sev-id: text``.

Message texts follow Cisco's "ASA Series Syslog Messages" guide and the shared corpus
(``cisco_asa/log/*.log``, ``cisco_ftd/log/*.log``):

* AnyConnect: 113004 AAA authentication successful, 113039 parent session started, 722022 SVC
  connection established (TCP, then UDP/DTLS), 722051 address assigned, 722023 SVC connection
  terminated, 113019 session disconnected (``Duration: 1h:24m:30s, Bytes xmt: …, Bytes rcv:
  …``); 113005 AAA authentication rejected.
* Admin: 605005/605004 SSH login permitted/denied, 111008 and 111010 commands.
* Connections: 302013/302014 (TCP) and 302015/302016 (UDP) built/teardown; a VPN client's
  connections carry its user name in parentheses at the end, as the ASA appends it.

The ASA clock runs in UTC (``clock timezone UTC``), as its timestamps carry no zone.
``Bytes xmt`` counts what the ASA sent to the client.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import TCP_STATES, US, ip_text
from vpnsentry.simulate.layout import Layout, Lines, vocab
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import escape, frame_layout, frame_parts, stamp, strf

_FACILITY = 20 * 8  # local4, the ASA default

FAIL_REASON = {
    "bad_password": "AAA failure",
    "unknown_user": "AAA failure",
    "expired": "Password has expired",
    "locked": "Account has been locked out",
}

#: Zeek-style state to the ASA's teardown reason.
_TEARDOWN = {
    "SF": "TCP FINs",
    "S0": "SYN Timeout",
    "REJ": "TCP Reset-O",
    "RSTO": "TCP Reset-I",
    "RSTR": "TCP Reset-O",
}


def _msg(
    dev: Device,
    df: pl.DataFrame,
    ts: pl.Expr,
    sev: int,
    msgid: str,
    text: pl.Expr | list[pl.Expr],
) -> pl.DataFrame:
    """One ASA message per row at true time ``ts``; ``text`` is the message or its pieces."""
    if not len(df):
        return pl.DataFrame(schema={"_order": pl.Int64, "line": pl.String, "tag": pl.Int32})
    dts = ts + dev.skew_us
    arrival = ts + pl.col("_delay")
    head = frame_parts(df, dev, arrival=arrival, device_ts=dts, pri=_FACILITY + sev, app="%ASA")
    stamp = f"%b %d %Y %H:%M:%S {escape(dev.hostname)} : %%ASA-"
    line = pl.concat_str(
        [*head, pl.lit(strf(df, dts, stamp)), pl.lit(f"{sev}-{msgid}: "), *_pieces(text)]
    )
    return df.select(arrival.alias("_order"), line.alias("line"), pl.col("tag"))


def _pieces(text: pl.Expr | list[pl.Expr]) -> list[pl.Expr]:
    return text if isinstance(text, list) else [text]


def _gu(prefix: str = "") -> list[pl.Expr]:
    """``Group <g> User <u> IP <ip>``."""
    return [
        pl.lit(f"{prefix}Group <"),
        pl.col("group"),
        pl.lit("> User <"),
        pl.col("user"),
        pl.lit("> IP <"),
        ip_text("src"),
        pl.lit(">"),
    ]


def _hms(us: pl.Expr, style: str) -> pl.Expr:
    """Durations: ``h:mm:ss`` (302014) or ``1h:24m:30s`` (113019)."""
    s = us // US
    h, m, sec = s // 3600, (s // 60) % 60, s % 60
    if style == "colon":
        return pl.concat_str(
            [h.cast(pl.String), m.cast(pl.String).str.zfill(2), sec.cast(pl.String).str.zfill(2)],
            separator=":",
        )
    return pl.concat_str(
        [
            h.cast(pl.String),
            pl.lit("h:"),
            m.cast(pl.String).str.zfill(2),
            pl.lit("m:"),
            sec.cast(pl.String).str.zfill(2),
            pl.lit("s"),
        ]
    )


def session_lines(dev: Device, df: pl.DataFrame, aaa: str) -> pl.DataFrame:
    """The AnyConnect login sequence at ``start`` and the disconnect at ``end``.

    ``aaa`` is the authentication server's address (a domain controller via RADIUS/LDAP).
    """
    start, end = pl.col("start"), pl.col("end")
    reason = pl.col("reason").replace_strict(
        {"user": "User Requested", "idle": "Idle Timeout", "timeout": "Max time exceeded"},
        default="User Requested",
    )
    parts = [
        _msg(
            dev,
            df,
            start - 3 * US,
            6,
            "113004",
            pl.concat_str(
                [
                    pl.lit(f"AAA user authentication Successful : server = {aaa} : user = "),
                    pl.col("user"),
                ]
            ),
        ),
        _msg(
            dev,
            df,
            start - 2 * US,
            6,
            "113039",
            pl.concat_str([*_gu(), pl.lit(" AnyConnect parent session started.")]),
        ),
        _msg(
            dev,
            df,
            start - US,
            6,
            "722022",
            pl.concat_str([*_gu(), pl.lit(" TCP SVC connection established without compression")]),
        ),
        _msg(
            dev,
            df,
            start,
            4,
            "722051",
            pl.concat_str(
                [
                    *_gu(),
                    pl.lit(" IPv4 Address <"),
                    ip_text("tunnel"),
                    pl.lit("> IPv6 address <::> assigned to session"),
                ]
            ),
        ),
        _msg(
            dev,
            df,
            start + US,
            6,
            "722022",
            pl.concat_str([*_gu(), pl.lit(" UDP SVC connection established without compression")]),
        ),
        _msg(
            dev,
            df,
            end - US,
            6,
            "722023",
            pl.concat_str([*_gu(), pl.lit(" UDP SVC connection terminated without compression")]),
        ),
        _msg(
            dev,
            df,
            end - US,
            6,
            "722023",
            pl.concat_str([*_gu(), pl.lit(" TCP SVC connection terminated without compression")]),
        ),
        _msg(
            dev,
            df,
            end,
            4,
            "113019",
            pl.concat_str(
                [
                    pl.lit("Group = "),
                    pl.col("group"),
                    pl.lit(", Username = "),
                    pl.col("user"),
                    pl.lit(", IP = "),
                    ip_text("src"),
                    pl.lit(", Session disconnected. Session Type: AnyConnect-Parent, Duration: "),
                    _hms(end - start, "hms"),
                    pl.lit(", Bytes xmt: "),
                    pl.col("in_bytes").cast(pl.String),
                    pl.lit(", Bytes rcv: "),
                    pl.col("out_bytes").cast(pl.String),
                    pl.lit(", Reason: "),
                    reason,
                ]
            ),
        ),
    ]
    return pl.concat(parts)


def fail_lines(dev: Device, df: pl.DataFrame, aaa: str) -> pl.DataFrame:
    """113005 for each rejected login."""
    reason = pl.col("reason").replace_strict(FAIL_REASON, default="AAA failure")
    return _msg(
        dev,
        df,
        pl.col("ts"),
        6,
        "113005",
        pl.concat_str(
            [
                pl.lit("AAA user authentication Rejected : reason = "),
                reason,
                pl.lit(f" : server = {aaa} : user = "),
                pl.col("user"),
                pl.lit(" : user IP = "),
                ip_text("src"),
            ]
        ),
    )


def admin_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """SSH logins (605005/605004) and commands (111008 and 111010 for each command)."""
    out = []
    login = [
        ip_text("src"),
        pl.lit("/"),
        (pl.col("ts") % 40000 + 20000).cast(pl.String),
        pl.lit(f' to inside:{dev.management}/ssh for user "'),
        pl.col("user"),
        pl.lit('"'),
    ]
    ok = df.filter(pl.col("kind") == "login_ok")
    if len(ok):
        out.append(
            _msg(
                dev,
                ok,
                pl.col("ts"),
                6,
                "605005",
                pl.concat_str([pl.lit("Login permitted from "), *login]),
            )
        )
    bad = df.filter(pl.col("kind") == "login_fail")
    if len(bad):
        out.append(
            _msg(
                dev,
                bad,
                pl.col("ts"),
                6,
                "605004",
                pl.concat_str([pl.lit("Login denied from "), *login]),
            )
        )
    cmd = df.filter(pl.col("kind").is_in(["command", "config", "config_attr", "config_obj"]))
    if len(cmd):
        out.append(
            _msg(
                dev,
                cmd,
                pl.col("ts"),
                5,
                "111010",
                pl.concat_str(
                    [
                        pl.lit("User '"),
                        pl.col("user"),
                        pl.lit("', running 'CLI' from IP "),
                        ip_text("src"),
                        pl.lit(", executed '"),
                        pl.col("attr"),
                        pl.lit("'"),
                    ]
                ),
            )
        )
        out.append(
            _msg(
                dev,
                cmd,
                pl.col("ts"),
                5,
                "111008",
                pl.concat_str(
                    [
                        pl.lit("User '"),
                        pl.col("user"),
                        pl.lit("' executed the '"),
                        pl.col("attr"),
                        pl.lit("' command."),
                    ]
                ),
            )
        )
    if not out:
        return pl.DataFrame(schema={"_order": pl.Int64, "line": pl.String, "tag": pl.Int32})
    return pl.concat(out)


#: Interface names a connection message can carry (``identity``: the box itself).
_IFACES = ("outside", "inside", "identity")


def _msg_layout(
    dev: Device, ts: npt.NDArray[np.int64], delay: npt.NDArray[np.int64], sev: int, msgid: str
) -> Layout:
    """The framing and ``%ASA-sev-id:`` header of :func:`_msg` as a :class:`Layout`."""
    dts = ts + dev.skew_us
    lay = Layout(len(ts))
    frame_layout(lay, dev, arrival=ts + delay, device_ts=dts, pri=_FACILITY + sev, app="%ASA")
    stamp(lay, dts, f"%b %d %Y %H:%M:%S {escape(dev.hostname)} : %%ASA-")
    return lay.text(f"{sev}-{msgid}: ")


def conn_lines(dev: Device, df: pl.DataFrame) -> list[Lines]:
    """302013/302014 (TCP) or 302015/302016 (UDP) for each connection through the ASA.

    Expects the router's columns ``inbound`` (Boolean: initiated from the lower-security
    side), ``src_if``/``dst_if`` (interface names), ``nat`` (mapped source or null) and
    ``connid``. Inbound messages name the initiator first ("for outside:client to
    inside:server"), outbound ones the responder first, as the ASA does.
    """
    cols = ("ts", "dur", "src", "dst", "sport", "dport", "proto", "connid", "ob", "rb")
    c = {k: df[k].to_numpy() for k in (*cols, "tag", "_delay", "inbound")}
    iface = {
        side: df.select(
            (pl.col(f"{side}_if") == "inside").cast(pl.Int64)
            + (pl.col(f"{side}_if") == "identity").cast(pl.Int64) * 2
        )
        .to_series()
        .to_numpy()
        for side in ("src", "dst")
    }
    mapped = df.select(pl.col("nat").fill_null(pl.col("src"))).to_series().to_numpy()
    users, ucode = vocab(df["user"], " ({})")
    state = df["state"].to_physical().to_numpy()
    secs = c["dur"] // US
    clock = [f":{m:02d}:{s:02d} bytes " for m in range(60) for s in range(60)]
    teardown_reason = [f" {_TEARDOWN[s]}" for s in TCP_STATES]
    ifname = [f" for {name}:" for name in _IFACES]
    parts = []
    for tcp, (b_id, t_id, proto) in (
        (True, ("302013", "302014", "TCP")),
        (False, ("302015", "302016", "UDP")),
    ):
        for inbound in (True, False):
            m = np.flatnonzero(((c["proto"] == 6) == tcp) & (c["inbound"] == inbound))
            if not len(m):
                continue
            ip = {"src": c["src"][m], "dst": c["dst"][m]}
            port = {"src": c["sport"][m], "dst": c["dport"][m]}
            paren = {"src": mapped[m], "dst": ip["dst"]}
            code = {"src": iface["src"][m], "dst": iface["dst"][m]}
            first, second = ("src", "dst") if inbound else ("dst", "src")
            ts, delay, tag = c["ts"][m], c["_delay"][m], c["tag"][m]
            built = _msg_layout(dev, ts, delay, 6, b_id)
            built.text(f"Built {'inbound' if inbound else 'outbound'} {proto} connection ")
            built.num(c["connid"][m]).pick(ifname, code[first])
            built.ip(ip[first]).text("/").num(port[first]).text(" (")
            built.ip(paren[first]).text("/").num(port[first])
            built.pick([f") to {n}:" for n in _IFACES], code[second])
            built.ip(ip[second]).text("/").num(port[second]).text(" (")
            built.ip(paren[second]).text("/").num(port[second]).text(")").pick(users, ucode[m])
            parts.append(Lines.of(built, ts + delay, tag))
            end = ts + c["dur"][m]
            down = _msg_layout(dev, end, delay, 6, t_id)
            down.text(f"Teardown {proto} connection ").num(c["connid"][m])
            down.pick(ifname, code[first]).ip(ip[first]).text("/").num(port[first])
            down.pick([f" to {n}:" for n in _IFACES], code[second])
            down.ip(ip[second]).text("/").num(port[second]).text(" duration ")
            down.num(secs[m] // 3600).pick(clock, secs[m] % 3600).num(c["ob"][m] + c["rb"][m])
            if tcp:
                down.pick(teardown_reason, state[m])
            parts.append(Lines.of(down.pick(users, ucode[m]), end + delay, tag))
    return parts
