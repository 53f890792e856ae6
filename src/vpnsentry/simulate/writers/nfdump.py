"""NetFlow v9 records as ``nfdump -r nfcapd.… -o csv`` prints them (nfdump 1.6.x).

The CSV has nfdump's fixed 48-column header, one line per *unidirectional* flow record (a
router exports the request and the reply as two records, so ``opkt``/``obyt`` are 0), and the
``Summary`` block nfdump appends unless run with ``-q``. Times are the exporter's clock in
UTC; ``tr`` is when the collector received the record. Records appear in export order, which
is the order flows end.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from vpnsentry.simulate.core import TCP_STATES, US, ip_parts, port_text, text_table
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import strf

HEADER: Final = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,"
    "nh,nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,"
    "mpls10,cl,sl,al,ra,eng,exid,tr"
)

_FWD_FLAGS: Final = {
    "SF": ".AP.SF",
    "S0": "....S.",
    "REJ": "....S.",
    "RSTO": ".APRS.",
    "RSTR": ".AP.S.",
}
_REV_FLAGS: Final = {
    "SF": ".AP.SF",
    "S0": "......",
    "REJ": ".A.R..",
    "RSTO": ".AP.S.",
    "RSTR": ".APRS.",
}
_MIDDLE: Final = (
    ",0,0,0,0,0,0,0.0.0.0,0.0.0.0,0,0,"
    + ",".join(["00:00:00:00:00:00"] * 4)
    + ","
    + ",".join(["0-0-0"] * 10)
    + ",    0.000,    0.000,    0.000,"
)


def header(day: dt.date) -> list[str]:
    """The CSV header line."""
    return [HEADER]


def footer(day: dt.date, rows: pl.DataFrame) -> list[str]:
    """nfdump's ``Summary`` block for the records in ``rows`` (``_b``/``_p``/``_t0``/``_t1``)."""
    flows = len(rows)
    if not flows:
        return ["Summary", "flows,bytes,packets,avg_bps,avg_pps,avg_bpp", "0,0,0,0,0,0"]
    nbytes = int(rows["_b"].sum())
    pkts = int(rows["_p"].sum())
    span = max((int(rows["_t1"].max()) - int(rows["_t0"].min())) / US, 1.0)  # type: ignore[arg-type]
    return [
        "Summary",
        "flows,bytes,packets,avg_bps,avg_pps,avg_bpp",
        f"{flows},{nbytes},{pkts},{int(nbytes * 8 / span)},{int(pkts / span)},"
        f"{nbytes // max(pkts, 1)}",
    ]


def _proto_flags(direction: dict[str, str]) -> pl.Series:
    """``pr,flg,fwd,stos,`` for every (protocol, state) code pair, indexed by
    ``proto_code * len(TCP_STATES) + state_code`` (proto_code 0: TCP, 1: UDP, 2: other)."""
    tcp = [f"TCP,{direction.get(s, '......')},0,0," for s in TCP_STATES]
    other = [f"{p},......,0,0," for p in ("UDP", "ICMP") for _ in TCP_STATES]
    return pl.Series([*tcp, *other], dtype=pl.String)


def flow_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """Forward and (when the responder answered) reverse records for each flow.

    Expects the router's ``src_here`` column (the originator is on the exporter's LAN side)
    for the interface indexes (1 = WAN, 2 = LAN). Every field that comes from a small
    domain (addresses by halves, ports, protocol and flags, milliseconds, the constant
    middle with the interface pair) is a table lookup, so a line is one ``concat_str`` of
    17 pieces.
    """
    hdr = pl.when(pl.col("proto") == 6).then(40).otherwise(28)
    first_reply = pl.min_horizontal(pl.col("dur"), pl.lit(20_000))
    n_states = len(TCP_STATES)
    proto_code = (
        pl.when(pl.col("proto") == 6).then(0).when(pl.col("proto") == 17).then(1).otherwise(2)
    )
    pf_code = (proto_code * n_states + pl.col("state").to_physical()).cast(pl.UInt32)
    fwd = df.select(
        pl.col("ts").alias("_s"),
        (pl.col("ts") + pl.col("dur")).alias("_e"),
        pl.col("src").alias("_sa"),
        pl.col("dst").alias("_da"),
        pl.col("sport").alias("_sp"),
        pl.col("dport").alias("_dp"),
        pf_code.alias("_pf"),
        pl.col("op").alias("_p"),
        (pl.col("ob") + pl.col("op") * hdr).alias("_b"),
        pl.when(pl.col("src_here")).then(1).otherwise(0).cast(pl.UInt32).alias("_in"),
        "tag",
        "_delay",
    )
    rev = df.filter(pl.col("rp") > 0).select(
        (pl.col("ts") + first_reply).alias("_s"),
        (pl.col("ts") + pl.col("dur")).alias("_e"),
        pl.col("dst").alias("_sa"),
        pl.col("src").alias("_da"),
        pl.col("dport").alias("_sp"),
        pl.col("sport").alias("_dp"),
        (pf_code + 3 * n_states).alias("_pf"),
        pl.col("rp").alias("_p"),
        (pl.col("rb") + pl.col("rp") * hdr).alias("_b"),
        pl.when(pl.col("src_here")).then(0).otherwise(1).cast(pl.UInt32).alias("_in"),
        "tag",
        "_delay",
    )
    rec = pl.concat([fwd, rev])
    if not len(rec):
        return rec.select(
            pl.col("_s").alias("_order"),
            pl.lit("").alias("line"),
            "tag",
            "_b",
            "_p",
            pl.col("_s").alias("_t0"),
            pl.col("_e").alias("_t1"),
        )
    s = pl.col("_s") + dev.skew_us
    e = pl.col("_e") + dev.skew_us
    td = pl.col("_e") - pl.col("_s")
    received = e + pl.col("_delay") * 40
    flags = pl.concat([_proto_flags(_FWD_FLAGS), _proto_flags(_REV_FLAGS)])
    tail = _MIDDLE + dev.ip + ",0/0,1,"
    in_out = pl.Series([",0,0,1,2" + tail, ",0,0,2,1" + tail], dtype=pl.String)
    line = pl.concat_str(
        [
            pl.lit(strf(rec, s, "%Y-%m-%d %H:%M:%S,")),
            pl.lit(strf(rec, e, "%Y-%m-%d %H:%M:%S,")),
            (td // US).cast(pl.String),
            pl.lit(text_table("ms", ",", ".")).gather(td % US // 1000),
            *ip_parts("_sa", ","),
            *ip_parts("_da", ","),
            port_text("_sp", ","),
            port_text("_dp", ","),
            pl.lit(flags).gather(pl.col("_pf")),
            pl.col("_p").cast(pl.String),
            pl.lit(","),
            pl.col("_b").cast(pl.String),
            pl.lit(in_out).gather(pl.col("_in")),
            pl.lit(strf(rec, received, "%Y-%m-%d %H:%M:%S.")),
            pl.lit(text_table("ms")).gather(received % US // 1000),
        ]
    )
    return rec.select(
        received.alias("_order"),
        line.alias("line"),
        "tag",
        "_b",
        "_p",
        pl.col("_s").alias("_t0"),
        pl.col("_e").alias("_t1"),
    )
