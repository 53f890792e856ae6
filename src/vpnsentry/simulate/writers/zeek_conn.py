"""Zeek ``conn.log`` in Zeek's default TSV format, with the full header block.

The field list is the classic 21-column ``conn.log`` of Zeek 4.x-7.0 (``Conn::Info`` in
``base/protocols/conn/main.zeek``; no MAC, community-id or ip_proto add-ons loaded). A line is
written when the connection ends (Zeek logs on removal), so ``_order`` is the end time while
``ts`` is the first packet. ``local_orig``/``local_resp`` are T for RFC 1918 addresses
(``Site::local_nets``). Unset values are ``-``, an empty set is ``(empty)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import polars as pl

from vpnsentry.simulate.core import (
    TCP_STATES,
    US,
    base62,
    fixed_width_text,
    ip_parts,
    mix,
    port_text,
    text_table,
)
from vpnsentry.simulate.events import SERVICE_NAMES
from vpnsentry.simulate.route import SERVICES
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import strf

FIELDS: Final = (
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
)
TYPES: Final = (
    "time",
    "string",
    "addr",
    "port",
    "addr",
    "port",
    "enum",
    "string",
    "interval",
    "count",
    "count",
    "string",
    "bool",
    "bool",
    "count",
    "string",
    "count",
    "count",
    "count",
    "count",
    "set[string]",
)

_HISTORY: Final = {
    ("tcp", "SF"): "ShADadFf",
    ("tcp", "S0"): "S",
    ("tcp", "REJ"): "Sr",
    ("tcp", "RSTO"): "ShADadR",
    ("tcp", "RSTR"): "ShADadr",
    ("udp", "SF"): "Dd",
    ("udp", "S0"): "D",
}


def header(day: dt.date) -> list[str]:
    """The header block Zeek writes when it opens the day's log."""
    opened = day.strftime("%Y-%m-%d-00-00-00")
    return [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        f"#open\t{opened}",
        "#fields\t" + "\t".join(FIELDS),
        "#types\t" + "\t".join(TYPES),
    ]


def footer(day: dt.date, rows: pl.DataFrame) -> list[str]:
    """The ``#close`` line written at rotation (the next midnight)."""
    nxt = day + dt.timedelta(days=1)
    return [f"#close\t{nxt.strftime('%Y-%m-%d-00-00-00')}"]


def _private(col: str) -> pl.Expr:
    x = pl.col(col).cast(pl.Int64)
    return (
        ((x >= 0x0A000000) & (x <= 0x0AFFFFFF))
        | ((x >= 0xAC100000) & (x <= 0xAC1FFFFF))
        | ((x >= 0xC0A80000) & (x <= 0xC0A8FFFF))
    )


def _service_table() -> pl.Series:
    """``proto\tservice\t`` per service code (a service has one protocol)."""
    names = {6: "tcp", 17: "udp"}
    return pl.Series(
        [f"{names.get(SERVICES[s].proto, 'icmp')}\t{SERVICES[s].zeek}\t" for s in SERVICE_NAMES],
        dtype=pl.String,
    )


def _state_table() -> pl.Series:
    """``conn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t`` per code
    ``((udp * n_states + state) * 2 + local_orig) * 2 + local_resp``."""
    rows = []
    for proto in ("tcp", "udp"):
        for state in TCP_STATES:
            for lo in "FT":
                for lr in "FT":
                    history = _HISTORY.get((proto, state), "-")
                    rows.append(f"{state}\t{lo}\t{lr}\t0\t{history}\t")
    return pl.Series(rows, dtype=pl.String)


def conn_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """One ``conn.log`` row per flow, ordered (by the caller) on the flow's end.

    Tabs are part of the looked-up pieces (times, addresses, ports, the service and the
    state block), so a row is one ``concat_str`` of 24 pieces.
    """
    n = len(df)
    h = mix(df["ts"].to_numpy(), df["src"].to_numpy(), df["sport"].to_numpy(), len(dev.id))
    uid = np.concatenate(
        [
            np.full((n, 1), ord("C"), dtype=np.uint8),
            base62(h, 17),
            np.full((n, 1), ord("\t"), dtype=np.uint8),
        ],
        axis=1,
    )
    udp = (pl.col("proto") == 17).cast(pl.UInt32)
    state = (
        ((udp * len(TCP_STATES) + pl.col("state").to_physical()) * 2 + _private("src")) * 2
        + _private("dst")
    ).cast(pl.UInt32)
    hdr = pl.when(pl.col("proto") == 6).then(40).otherwise(28)
    ts = pl.col("ts") + dev.skew_us
    body = pl.concat_str(
        [
            pl.lit(strf(df, ts, "%s.")),
            pl.lit(text_table("us", "\t")).gather(ts % US),
            pl.col("_uid"),
            *ip_parts("src", "\t"),
            port_text("sport", "\t"),
            *ip_parts("dst", "\t"),
            port_text("dport", "\t"),
            pl.lit(_service_table()).gather(pl.col("svc_id")),
            (pl.col("dur") // US).cast(pl.String),
            pl.lit(text_table("us", "\t", ".")).gather(pl.col("dur") % US),
            pl.col("ob").cast(pl.String),
            pl.lit("\t"),
            pl.col("rb").cast(pl.String),
            pl.lit("\t"),
            pl.lit(_state_table()).gather(state),
            pl.col("op").cast(pl.String),
            pl.lit("\t"),
            (pl.col("ob") + pl.col("op") * hdr).cast(pl.String),
            pl.lit("\t"),
            pl.col("rp").cast(pl.String),
            pl.lit("\t"),
            (pl.col("rb") + pl.col("rp") * hdr).cast(pl.String),
            pl.lit("\t(empty)"),
        ]
    )
    return df.with_columns(fixed_width_text(uid).alias("_uid")).select(
        (pl.col("ts") + pl.col("dur") + dev.skew_us).alias("_order"),
        body.alias("line"),
        pl.col("tag"),
    )
