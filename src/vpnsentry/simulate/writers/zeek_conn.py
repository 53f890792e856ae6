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

from vpnsentry.simulate.core import US, base62, fixed_width_text, ip_text, mix
from vpnsentry.simulate.writers import Device

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
    ("tcp", "SH"): "ShAFf",
    ("tcp", "OTH"): "CC",
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


def conn_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """One ``conn.log`` row per flow, ordered (by the caller) on the flow's end."""
    n = len(df)
    h = mix(df["ts"].to_numpy(), df["src"].to_numpy(), df["sport"].to_numpy(), len(dev.id))
    uid = np.concatenate([np.full((n, 1), ord("C"), dtype=np.uint8), base62(h, 17)], axis=1)
    proto = (
        pl.when(pl.col("proto") == 6)
        .then(pl.lit("tcp"))
        .when(pl.col("proto") == 17)
        .then(pl.lit("udp"))
        .otherwise(pl.lit("icmp"))
    )
    key = pl.concat_str([proto, pl.lit("|"), pl.col("state")])
    history = key.replace_strict({f"{p}|{s}": v for (p, s), v in _HISTORY.items()}, default="-")
    hdr = pl.when(pl.col("proto") == 6).then(40).otherwise(28)
    ts = pl.col("ts") + dev.skew_us
    secs = (ts // US).cast(pl.String)
    frac = (ts % US).cast(pl.String).str.zfill(6)
    dur_s = (pl.col("dur") // US).cast(pl.String)
    dur_f = (pl.col("dur") % US).cast(pl.String).str.zfill(6)
    body = pl.concat_str(
        [
            pl.concat_str([secs, pl.lit("."), frac]),
            pl.col("_uid"),
            ip_text("src"),
            pl.col("sport").cast(pl.String),
            ip_text("dst"),
            pl.col("dport").cast(pl.String),
            proto,
            pl.col("zeek"),
            pl.concat_str([dur_s, pl.lit("."), dur_f]),
            pl.col("ob").cast(pl.String),
            pl.col("rb").cast(pl.String),
            pl.col("state"),
            pl.when(_private("src")).then(pl.lit("T")).otherwise(pl.lit("F")),
            pl.when(_private("dst")).then(pl.lit("T")).otherwise(pl.lit("F")),
            pl.lit("0"),
            history,
            pl.col("op").cast(pl.String),
            (pl.col("ob") + pl.col("op") * hdr).cast(pl.String),
            pl.col("rp").cast(pl.String),
            (pl.col("rb") + pl.col("rp") * hdr).cast(pl.String),
            pl.lit("(empty)"),
        ],
        separator="\t",
    )
    return df.with_columns(fixed_width_text(uid).alias("_uid")).select(
        (pl.col("ts") + pl.col("dur") + dev.skew_us).alias("_order"),
        body.alias("line"),
        pl.col("tag"),
    )
