"""Zeek ``conn.log`` in Zeek's default TSV format, with the full header block.

The field list is the classic 21-column ``conn.log`` of Zeek 4.x-7.0 (``Conn::Info`` in
``base/protocols/conn/main.zeek``; no MAC, community-id or ip_proto add-ons loaded). A line is
written when the connection ends (Zeek logs on removal), so ``_order`` is the end time while
``ts`` is the first packet. ``local_orig``/``local_resp`` are T for RFC 1918 addresses
(``Site::local_nets``). Unset values are ``-``, an empty set is ``(empty)``.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import TCP_STATES, US, base62, mix
from vpnsentry.simulate.events import SERVICE_NAMES
from vpnsentry.simulate.layout import Layout, Lines, Table
from vpnsentry.simulate.route import SERVICES
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


def footer(day: dt.date, rows: dict[str, npt.NDArray[np.int64]]) -> list[str]:
    """The ``#close`` line written at rotation (the next midnight)."""
    nxt = day + dt.timedelta(days=1)
    return [f"#close\t{nxt.strftime('%Y-%m-%d-00-00-00')}"]


def _private(ip: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return (
        ((ip >= 0x0A000000) & (ip <= 0x0AFFFFFF))
        | ((ip >= 0xAC100000) & (ip <= 0xAC1FFFFF))
        | ((ip >= 0xC0A80000) & (ip <= 0xC0A8FFFF))
    ).astype(np.int64)


@functools.cache
def _service_table() -> Table:
    """``proto\tservice\t`` per service code (a service has one protocol)."""
    names = {6: "tcp", 17: "udp"}
    return Table.of(
        [f"{names.get(SERVICES[s].proto, 'icmp')}\t{SERVICES[s].zeek}\t" for s in SERVICE_NAMES]
    )


@functools.cache
def _state_table() -> Table:
    """``conn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t`` per code
    ``((udp * n_states + state) * 2 + local_orig) * 2 + local_resp``."""
    rows = []
    for proto in ("tcp", "udp"):
        for state in TCP_STATES:
            for lo in "FT":
                for lr in "FT":
                    history = _HISTORY.get((proto, state), "-")
                    rows.append(f"{state}\t{lo}\t{lr}\t0\t{history}\t")
    return Table.of(rows)


def conn_lines(dev: Device, df: pl.DataFrame) -> Lines:
    """One ``conn.log`` row per flow, ordered (by the caller) on the flow's end."""
    c = {k: df[k].to_numpy() for k in ("ts", "dur", "src", "sport", "dst", "dport", "proto")}
    c |= {k: df[k].to_numpy() for k in ("svc_id", "ob", "rb", "op", "rp", "tag")}
    ts = c["ts"] + dev.skew_us
    h = mix(c["ts"], c["src"], c["sport"], len(dev.id))
    src, dst = c["src"].astype(np.int64), c["dst"].astype(np.int64)
    udp = (c["proto"] == 17).astype(np.int64)
    code = df["state"].to_physical().to_numpy().astype(np.int64)
    state = ((udp * len(TCP_STATES) + code) * 2 + _private(src)) * 2 + _private(dst)
    hdr = np.where(c["proto"] == 6, 40, 28)
    lay = Layout(len(df))
    lay.num(ts // US).text(".").pad(ts % US, 6).text("\tC").fixed(base62(h, 17))
    lay.text("\t").ip(src).text("\t").num(c["sport"]).text("\t")
    lay.ip(dst).text("\t").num(c["dport"]).text("\t")
    lay.pick(_service_table(), c["svc_id"]).num(c["dur"] // US).text(".").pad(c["dur"] % US, 6)
    lay.text("\t").num(c["ob"]).text("\t").num(c["rb"]).text("\t").pick(_state_table(), state)
    lay.num(c["op"]).text("\t").num(c["ob"] + c["op"] * hdr).text("\t").num(c["rp"])
    lay.text("\t").num(c["rb"] + c["rp"] * hdr).text("\t(empty)")
    return Lines.of(lay, c["ts"] + c["dur"] + dev.skew_us, c["tag"])
