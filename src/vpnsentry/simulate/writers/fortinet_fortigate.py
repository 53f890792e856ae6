"""FortiGate (FortiOS 7.0-7.4) event and traffic logs: syslog-wrapped ``key=value``.

Field order and wording follow real FortiOS output as documented in the FortiOS Log Message
Reference and seen in the shared corpus (``fortinet_fortigate/log/test-fortinet*.log``):
``date time devname devid eventtime tz logid type subtype level vd`` first, string values
quoted, numbers and addresses bare, ``eventtime`` in nanoseconds. Messages written:

* SSL-VPN: 39943 new connection (``ssl-new-con``), 39424 tunnel up ``ssl-web``
  (``reason="login successfully"``: the login), 39947 tunnel up ``ssl-tunnel`` with
  ``tunnelip``, 39948 tunnel down with ``duration``/``sentbyte``/``rcvdbyte``, 39426 login fail
  (``msg="SSL user failed to logged in"``, FortiOS's own grammar).
* Admin: 32001 login successful, 32002 login failed; configuration 44545 (object),
  44546 (attribute) and 44547 (object attribute) with ``cfgpath``/``cfgobj``/``cfgattr``.
* Traffic: ``type="traffic" subtype="forward"`` at session close, one line per session.

``sentbyte``/``rcvdbyte`` in 39948 are counted by the gateway, as in its IPsec statistics:
``rcvdbyte`` is what the client sent (the tunnel's upload), ``sentbyte`` what it got. The
parser reads them the same way (and so does Elastic's pipeline).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from vpnsentry.simulate.core import TCP_STATES, US, ip_text
from vpnsentry.simulate.layout import Layout, Lines, vocab
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import frame, frame_layout, stamp, strf

#: syslog facility local7 (FortiOS default), severities by ``level``.
_PRI = {"information": 190, "notice": 189, "warning": 188, "alert": 185}

#: Failed-login reasons as FortiOS names them.
FAIL_REASON = {
    "bad_password": "sslvpn_login_permission_denied",
    "unknown_user": "sslvpn_login_unknown_user",
    "expired": "sslvpn_login_password_expired",
    "locked": "sslvpn_login_permission_denied",
}

#: Zeek-style connection state to FortiOS session-close action.
_ACTION = {
    "SF": "close",
    "S0": "timeout",
    "REJ": "server-rst",
    "RSTO": "client-rst",
    "RSTR": "server-rst",
}


def _head(
    df: pl.DataFrame, dev: Device, us: pl.Expr, logid: str, typ: str, subtype: str, level: str
) -> list[pl.Expr]:
    """``date=… time=… devname=… devid=… eventtime=… tz=… logid=… type=… subtype=… level=…
    vd=``, in the device's clock and zone."""
    dts = us + dev.skew_us
    return [
        pl.lit(strf(df, dts, "date=%Y-%m-%d time=%H:%M:%S", dev.tz)),
        pl.lit(f' devname="{dev.hostname}" devid="{dev.serial}" eventtime='),
        (dts * 1000 + (dts % 997)).cast(pl.String),
        pl.lit(' tz="'),
        pl.lit(strf(df, dts, "%z", dev.tz)),
        pl.lit(f'" logid="{logid}" type="{typ}" subtype="{subtype}" level="{level}" vd="root" '),
    ]


def _wrap(
    dev: Device,
    df: pl.DataFrame,
    ts: pl.Expr,
    logid: str,
    typ: str,
    subtype: str,
    level: str,
    rest: list[pl.Expr],
) -> pl.DataFrame:
    """Whole lines for event time ``ts``; ``_order`` is the collector's arrival."""
    if not len(df):
        return pl.DataFrame(schema={"_order": pl.Int64, "line": pl.String, "tag": pl.Int32})
    arrival = ts + pl.col("_delay")
    body = pl.concat_str([*_head(df, dev, ts, logid, typ, subtype, level), *rest])
    line = frame(df, body, dev, arrival=arrival, device_ts=ts + dev.skew_us, pri=_PRI[level])
    return df.select(arrival.alias("_order"), pl.lit(line).alias("line"), pl.col("tag"))


def _ip(col: str) -> pl.Expr:
    return ip_text(col)


def portal_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """39943 for TLS connections to the SSL-VPN portal (probes, scans, the start of logins)."""
    return _wrap(
        dev,
        df,
        pl.col("ts"),
        "0101039943",
        "event",
        "vpn",
        "information",
        [
            pl.lit(
                'logdesc="SSL VPN new connection" action="ssl-new-con" tunneltype="ssl"'
                " tunnelid=0 remip="
            ),
            _ip("src"),
            pl.lit(' user="N/A" group="N/A" dst_host="N/A" reason="N/A" msg="SSL new connection"'),
        ],
    )


def fail_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """39943 then 39426 for each rejected login."""
    reason = pl.col("reason").replace_strict(FAIL_REASON, default="sslvpn_login_permission_denied")
    fails = _wrap(
        dev,
        df,
        pl.col("ts"),
        "0101039426",
        "event",
        "vpn",
        "alert",
        [
            pl.lit(
                'logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web"'
                " tunnelid=0 remip="
            ),
            _ip("src"),
            pl.lit(' user="'),
            pl.col("user"),
            pl.lit('" group="N/A" dst_host="N/A" reason="'),
            reason,
            pl.lit('" msg="SSL user failed to logged in"'),
        ],
    )
    pre = portal_lines(dev, df.with_columns(pl.col("ts") - US))
    return pl.concat([pre, fails])


def session_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """39943, 39424 (login), 39947 (tunnel up) at the start and 39948 at the end."""
    remip = [pl.lit(" remip="), _ip("src")]
    ident = [
        pl.lit(' user="'),
        pl.col("user"),
        pl.lit('" group="'),
        pl.col("group"),
        pl.lit('" dst_host="N/A"'),
    ]
    tunnelip = [pl.lit(" tunnelip="), _ip("tunnel")]
    new = portal_lines(
        dev, df.select((pl.col("start") - 2 * US).alias("ts"), "src", "sport", "tag", "_delay")
    )
    login = _wrap(
        dev,
        df,
        pl.col("start") - US,
        "0101039424",
        "event",
        "vpn",
        "information",
        [
            pl.lit('logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-web" tunnelid='),
            (pl.col("sid") - 1).cast(pl.String),
            *remip,
            *ident,
            pl.lit(' reason="login successfully" msg="SSL tunnel established"'),
        ],
    )
    up = _wrap(
        dev,
        df,
        pl.col("start"),
        "0101039947",
        "event",
        "vpn",
        "information",
        [
            pl.lit(
                'logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-tunnel" tunnelid='
            ),
            pl.col("sid").cast(pl.String),
            *remip,
            *tunnelip,
            *ident,
            pl.lit(' reason="tunnel established" msg="SSL tunnel established"'),
        ],
    )
    down = _wrap(
        dev,
        df,
        pl.col("end"),
        "0101039948",
        "event",
        "vpn",
        "information",
        [
            pl.lit(
                'logdesc="SSL VPN tunnel down" action="tunnel-down" tunneltype="ssl-tunnel"'
                " tunnelid="
            ),
            pl.col("sid").cast(pl.String),
            *remip,
            *tunnelip,
            *ident,
            pl.lit(' reason="N/A" duration='),
            ((pl.col("end") - pl.col("start")) // US).cast(pl.String),
            pl.lit(" sentbyte="),
            pl.col("in_bytes").cast(pl.String),
            pl.lit(" rcvdbyte="),
            pl.col("out_bytes").cast(pl.String),
            pl.lit(' msg="SSL tunnel shutdown"'),
        ],
    )
    return pl.concat([new, login, up, down])


def admin_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """Admin logins (32001/32002) and configuration changes (44545/44546/44547)."""
    ui = pl.concat_str([pl.lit("https("), _ip("src"), pl.lit(")")])
    out = []
    descs = {
        "config": "Object attribute configured",
        "config_attr": "Attribute configured",
        "config_obj": "Object configured",
    }
    logids = {
        "login_ok": "0100032001",
        "login_fail": "0100032002",
        "config": "0100044547",
        "config_attr": "0100044546",
        "config_obj": "0100044545",
    }
    for kind, logid in logids.items():
        part = df.filter(pl.col("kind") == kind)
        if not len(part):
            continue
        if kind == "login_ok":
            level = "information"
            rest = [
                pl.lit('logdesc="Admin login successful" sn="'),
                ((pl.col("ts") + dev.skew_us) // US).cast(pl.String),
                pl.lit('" user="'),
                pl.col("user"),
                pl.lit('" ui="'),
                ui,
                pl.lit('" method="https" srcip='),
                _ip("src"),
                pl.lit(
                    f' dstip={dev.management} action="login" status="success" reason="none"'
                    ' profile="super_admin" msg="Administrator '
                ),
                pl.col("user"),
                pl.lit(" logged in successfully from "),
                ui,
                pl.lit('"'),
            ]
        elif kind == "login_fail":
            level = "alert"
            rest = [
                pl.lit('logdesc="Admin login failed" sn="0" user="'),
                pl.col("user"),
                pl.lit('" ui="'),
                ui,
                pl.lit('" method="https" srcip='),
                _ip("src"),
                pl.lit(
                    f' dstip={dev.management} action="login" status="failed"'
                    ' reason="passwd_invalid" msg="Administrator '
                ),
                pl.col("user"),
                pl.lit(" login failed from "),
                ui,
                pl.lit(' because of invalid password"'),
            ]
        else:
            level = "information"
            obj = [pl.lit(' cfgobj="'), pl.col("obj"), pl.lit('"')] if kind != "config_attr" else []
            attr = (
                [pl.lit(' cfgattr="'), pl.col("attr"), pl.lit('"')] if kind != "config_obj" else []
            )
            msg_obj = [pl.lit(" "), pl.col("obj")] if kind != "config_attr" else []
            rest = [
                pl.lit(f'logdesc="{descs[kind]}" user="'),
                pl.col("user"),
                pl.lit('" ui="'),
                ui,
                pl.lit('" action="'),
                pl.col("action"),
                pl.lit('" cfgtid='),
                (pl.col("ts") // 1000 % 1_000_000_000).cast(pl.String),
                pl.lit(' cfgpath="'),
                pl.col("path"),
                pl.lit('"'),
                *obj,
                *attr,
                pl.lit(' msg="'),
                pl.col("action"),
                pl.lit(" "),
                pl.col("path"),
                *msg_obj,
                pl.lit('"'),
            ]
        out.append(_wrap(dev, part, pl.col("ts"), logid, "event", "system", level, rest))
    if not out:
        return pl.DataFrame(schema={"_order": pl.Int64, "line": pl.String, "tag": pl.Int32})
    return pl.concat(out)


def traffic_lines(dev: Device, df: pl.DataFrame) -> Lines:
    """``type="traffic" subtype="forward"`` at the end of each flow through the gateway.

    Expects the router's columns: ``srcintf``/``dstintf``, their roles, ``srccountry``/
    ``dstcountry`` names, ``policyid``, ``forti`` (service name), ``nat`` (UInt32 or null)
    and ``sessionid``. Assembled as a :class:`Layout` (the busiest FortiGate message).
    """
    c = {k: df[k].to_numpy() for k in ("ts", "dur", "src", "sport", "dst", "dport", "proto")}
    c |= {k: df[k].to_numpy() for k in ("sessionid", "policyid", "ob", "rb", "op", "rp")}
    c |= {k: df[k].to_numpy() for k in ("tag", "_delay")}
    end = c["ts"] + c["dur"]
    dts = end + dev.skew_us
    arrival = end + c["_delay"]
    actions = [_ACTION[s] for s in TCP_STATES]
    action = np.where(
        c["proto"] == 17, len(actions), df["state"].to_physical().to_numpy().astype(np.int64)
    )
    has_user = df["user"].is_not_null().to_numpy()
    has_nat = df["nat"].is_not_null().to_numpy()
    nat = df["nat"].fill_null(0).to_numpy()
    lay = Layout(len(df))
    frame_layout(lay, dev, arrival=arrival, device_ts=dts, pri=_PRI["notice"])
    stamp(lay, dts, "date=%Y-%m-%d time=%H:%M:%S", dev.tz)
    lay.text(f' devname="{dev.hostname}" devid="{dev.serial}" eventtime=')
    lay.num(dts * 1000 + dts % 997).text(' tz="')
    stamp(lay, dts, "%z", dev.tz)
    lay.text('" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" ')
    lay.text("srcip=").ip(c["src"]).text(" srcport=").num(c["sport"])
    for label, col in (("srcintf", "srcintf"), ("srcintfrole", "srcintfrole")):
        lay.text(f' {label}="').pick(*vocab(df[col])).text('"')
    lay.text(" dstip=").ip(c["dst"]).text(" dstport=").num(c["dport"])
    for col in ("dstintf", "dstintfrole", "srccountry", "dstcountry"):
        lay.text(f' {col}="').pick(*vocab(df[col])).text('"')
    lay.text(" sessionid=").num(c["sessionid"]).text(" proto=").num(c["proto"])
    lay.text(' action="').pick([*actions, "accept"], action).text('" policyid=')
    lay.num(c["policyid"]).text(' policytype="policy"')
    users, groups = vocab(df["user"]), vocab(df["group"])
    lay.optional(
        has_user,
        lambda w: w.text(' user="').pick(*users).text('" group="').pick(*groups).text('"'),
    )
    lay.text(' service="').pick(*vocab(df["forti"])).text('"')
    lay.optional(
        has_nat,
        lambda w: w.text(' trandisp="snat" transip=').ip(nat).text(" transport=").num(c["sport"]),
    )
    lay.optional(~has_nat, lambda w: w.text(' trandisp="noop"'))
    lay.text(" duration=").num(c["dur"] // US)
    lay.text(" sentbyte=").num(c["ob"] + c["op"] * 40)
    lay.text(" rcvdbyte=").num(c["rb"] + c["rp"] * 40)
    lay.text(" sentpkt=").num(c["op"]).text(" rcvdpkt=").num(c["rp"])
    lay.text(' appcat="unscanned"')
    return Lines.of(lay, arrival, c["tag"])
