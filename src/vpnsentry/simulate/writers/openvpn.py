"""OpenVPN 2.6 server log (``--log`` file, ``--verb 3``), or the same lines via syslog.

Message texts are OpenVPN's own format strings (``src/openvpn/ssl_verify.c``, ``ssl.c``,
``multi.c``, ``sig.c``); the server runs with per-user client certificates (CN = user name),
``username-as-common-name`` and a password check, hence ``[CN SET]``. A log-file line is
``YYYY-MM-DD HH:MM:SS <prefix> <message>``, where the prefix is ``ip:port`` until the client
is established and ``cn/ip:port`` after. The server clock runs in UTC.

A successful connection: Initial packet, VERIFY OK (CA, then client), Username/Password
authentication succeeded, Control Channel, ``[cn] Peer Connection Initiated with
[AF_INET]ip:port``, ``MULTI_sva: pool returned IPv4=…``, ``MULTI: Learn: …``, ``MULTI: primary
virtual IP …``; the end: ``SIGTERM[soft,remote-exit] received, client-instance exiting`` (or an
inactivity timeout). A failed password: ``TLS Auth Error: Auth Username/Password verification
failed for peer`` and ``SENT CONTROL [cn]: 'AUTH_FAILED' (status=1)``. A TLS probe without a
client certificate: ``TLS Error: TLS key negotiation failed to occur within 60 seconds`` and
``TLS Error: TLS handshake failed``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from vpnsentry.simulate.core import US, fixed_width_text, hex_digits, ip_text, mix
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import frame, strf

_PRI = 3 * 8 + 5  # daemon.notice

CA_CN = "Kasumi Electric VPN CA"
_CONTROL = (
    "Control Channel: TLSv1.3, cipher TLSv1.3 TLS_AES_256_GCM_SHA384, peer certificate:"
    " 2048 bits RSA, signature: RSA-SHA256, peer temporary key: 253 bits X25519"
)


def _line(dev: Device, df: pl.DataFrame, ts: pl.Expr, text: pl.Expr, pid: int) -> pl.DataFrame:
    if not len(df):
        return pl.DataFrame(schema={"_order": pl.Int64, "line": pl.String, "tag": pl.Int32})
    dts = ts + dev.skew_us
    if dev.header == "file":
        body = pl.concat_str([pl.lit(strf(df, dts, "%Y-%m-%d %H:%M:%S ")), text])
    else:
        body = pl.concat_str([pl.lit(f"openvpn[{pid}]: "), text])
    arrival = ts + pl.col("_delay")
    order = dts if dev.header == "file" else arrival
    line = frame(df, body, dev, arrival=arrival, device_ts=dts, pri=_PRI, app="openvpn")
    return df.select(order.alias("_order"), pl.lit(line).alias("line"), pl.col("tag"))


def _peer() -> pl.Expr:
    return pl.concat_str([ip_text("src"), pl.lit(":"), pl.col("sport").cast(pl.String)])


def _with_sid(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``_sid``: the peer's TLS session id as OpenVPN prints it (``sid=8f1c2b3a 4d5e6f70``)."""
    h = mix(df["src"].to_numpy(), df["sport"].to_numpy(), 3)
    digits = hex_digits(h, 16)
    mat = np.concatenate(
        [
            np.full((len(df), 4), np.frombuffer(b"sid=", dtype=np.uint8)),
            digits[:, :8],
            np.full((len(df), 1), ord(" "), dtype=np.uint8),
            digits[:, 8:],
        ],
        axis=1,
    ).astype(np.uint8)
    return df.with_columns(fixed_width_text(mat).alias("_sid"))


def _handshake(dev: Device, df: pl.DataFrame, t: pl.Expr, pid: int) -> list[pl.DataFrame]:
    peer = _peer()
    return [
        _line(
            dev,
            df,
            t,
            pl.concat_str(
                [
                    peer,
                    pl.lit(" TLS: Initial packet from [AF_INET]"),
                    peer,
                    pl.lit(", "),
                    pl.col("_sid"),
                ]
            ),
            pid,
        ),
        _line(dev, df, t, pl.concat_str([peer, pl.lit(f" VERIFY OK: depth=1, CN={CA_CN}")]), pid),
        _line(
            dev,
            df,
            t,
            pl.concat_str([peer, pl.lit(" VERIFY OK: depth=0, CN="), pl.col("user")]),
            pid,
        ),
    ]


def session_lines(dev: Device, df: pl.DataFrame, pid: int) -> pl.DataFrame:
    """The connect sequence at ``start`` and the exit at ``end``."""
    peer = _peer()
    named = pl.concat_str([pl.col("user"), pl.lit("/"), peer])
    t0 = pl.col("start") - US
    df = _with_sid(df)
    parts = _handshake(dev, df, t0, pid)
    parts += [
        _line(
            dev,
            df,
            t0,
            pl.concat_str(
                [
                    peer,
                    pl.lit(" TLS: Username/Password authentication succeeded for username '"),
                    pl.col("user"),
                    pl.lit("' [CN SET]"),
                ]
            ),
            pid,
        ),
        _line(dev, df, t0, pl.concat_str([peer, pl.lit(" " + _CONTROL)]), pid),
        _line(
            dev,
            df,
            pl.col("start"),
            pl.concat_str(
                [
                    peer,
                    pl.lit(" ["),
                    pl.col("user"),
                    pl.lit("] Peer Connection Initiated with [AF_INET]"),
                    peer,
                ]
            ),
            pid,
        ),
        _line(
            dev,
            df,
            pl.col("start"),
            pl.concat_str(
                [
                    named,
                    pl.lit(" MULTI_sva: pool returned IPv4="),
                    ip_text("tunnel"),
                    pl.lit(", IPv6=(Not enabled)"),
                ]
            ),
            pid,
        ),
        _line(
            dev,
            df,
            pl.col("start"),
            pl.concat_str(
                [named, pl.lit(" MULTI: Learn: "), ip_text("tunnel"), pl.lit(" -> "), named]
            ),
            pid,
        ),
        _line(
            dev,
            df,
            pl.col("start"),
            pl.concat_str(
                [
                    named,
                    pl.lit(" MULTI: primary virtual IP for "),
                    named,
                    pl.lit(": "),
                    ip_text("tunnel"),
                ]
            ),
            pid,
        ),
    ]
    idle = pl.col("reason") == "idle"
    bye = (
        pl.when(idle)
        .then(
            pl.concat_str(
                [
                    named,
                    pl.lit(" ["),
                    pl.col("user"),
                    pl.lit("] Inactivity timeout (--ping-restart), restarting"),
                ]
            )
        )
        .otherwise(
            pl.concat_str(
                [named, pl.lit(" SIGTERM[soft,remote-exit] received, client-instance exiting")]
            )
        )
    )
    parts.append(_line(dev, df, pl.col("end"), bye, pid))
    idled = df.filter(pl.col("reason") == "idle")
    if len(idled):
        parts.append(
            _line(
                dev,
                idled,
                pl.col("end"),
                pl.concat_str(
                    [
                        pl.col("user"),
                        pl.lit("/"),
                        _peer(),
                        pl.lit(" SIGUSR1[soft,ping-restart] received, client-instance restarting"),
                    ]
                ),
                pid,
            )
        )
    return pl.concat(parts)


def fail_lines(dev: Device, df: pl.DataFrame, pid: int) -> pl.DataFrame:
    """A client whose certificate verifies but whose password is rejected."""
    peer = _peer()
    t = pl.col("ts")
    df = _with_sid(df)
    parts = _handshake(dev, df, t, pid)
    parts += [
        _line(
            dev,
            df,
            t,
            pl.concat_str(
                [
                    peer,
                    pl.lit(" TLS Auth Error: Auth Username/Password verification failed for peer"),
                ]
            ),
            pid,
        ),
        _line(dev, df, t, pl.concat_str([peer, pl.lit(" " + _CONTROL)]), pid),
        _line(
            dev,
            df,
            t,
            pl.concat_str(
                [
                    peer,
                    pl.lit(" ["),
                    pl.col("user"),
                    pl.lit("] Peer Connection Initiated with [AF_INET]"),
                    peer,
                ]
            ),
            pid,
        ),
        _line(
            dev,
            df,
            t + US,
            pl.concat_str(
                [
                    peer,
                    pl.lit(" SENT CONTROL ["),
                    pl.col("user"),
                    pl.lit("]: 'AUTH_FAILED' (status=1)"),
                ]
            ),
            pid,
        ),
        _line(
            dev,
            df,
            t + 5 * US,
            pl.concat_str(
                [peer, pl.lit(" SIGTERM[soft,delayed-exit] received, client-instance exiting")]
            ),
            pid,
        ),
    ]
    return pl.concat(parts)


def portal_lines(dev: Device, df: pl.DataFrame, pid: int) -> pl.DataFrame:
    """A TLS client without a valid certificate (scanner, probe): the handshake times out."""
    peer = _peer()
    t = pl.col("ts")
    df = _with_sid(df)
    return pl.concat(
        [
            _line(
                dev,
                df,
                t,
                pl.concat_str(
                    [
                        peer,
                        pl.lit(" TLS: Initial packet from [AF_INET]"),
                        peer,
                        pl.lit(", "),
                        pl.col("_sid"),
                    ]
                ),
                pid,
            ),
            _line(
                dev,
                df,
                t + 60 * US,
                pl.concat_str(
                    [
                        peer,
                        pl.lit(
                            " TLS Error: TLS key negotiation failed to occur within 60 seconds"
                            " (check your network connectivity)"
                        ),
                    ]
                ),
                pid,
            ),
            _line(
                dev,
                df,
                t + 60 * US,
                pl.concat_str([peer, pl.lit(" TLS Error: TLS handshake failed")]),
                pid,
            ),
        ]
    )
