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

from vpnsentry.simulate.core import US, ip_text
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import fraction, strf

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
    "SH": "...S.F",
    "OTH": ".A....",
}
_REV_FLAGS: Final = {
    "SF": ".AP.SF",
    "S0": "......",
    "REJ": ".A.R..",
    "RSTO": ".AP.S.",
    "RSTR": ".APRS.",
    "SH": ".A....",
    "OTH": ".A....",
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


def flow_lines(dev: Device, df: pl.DataFrame) -> pl.DataFrame:
    """Forward and (when the responder answered) reverse records for each flow.

    Expects the router's ``src_here`` column (the originator is on the exporter's LAN side)
    for the interface indexes (1 = WAN, 2 = LAN).
    """
    hdr = pl.when(pl.col("proto") == 6).then(40).otherwise(28)
    first_reply = pl.min_horizontal(pl.col("dur"), pl.lit(20_000))
    fwd = df.select(
        pl.col("ts").alias("_s"),
        (pl.col("ts") + pl.col("dur")).alias("_e"),
        pl.col("src").alias("_sa"),
        pl.col("dst").alias("_da"),
        pl.col("sport").alias("_sp"),
        pl.col("dport").alias("_dp"),
        "proto",
        pl.col("state").replace_strict(_FWD_FLAGS, default="......").alias("_flg"),
        pl.col("op").alias("_p"),
        (pl.col("ob") + pl.col("op") * hdr).alias("_b"),
        pl.when(pl.col("src_here")).then(2).otherwise(1).alias("_in"),
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
        "proto",
        pl.col("state").replace_strict(_REV_FLAGS, default="......").alias("_flg"),
        pl.col("rp").alias("_p"),
        (pl.col("rb") + pl.col("rp") * hdr).alias("_b"),
        pl.when(pl.col("src_here")).then(1).otherwise(2).alias("_in"),
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
    # Protocol and flags together: a handful of distinct values, looked up once each.
    key = pl.col("proto").cast(pl.String) + pl.lit("|") + pl.col("_flg")
    combos = {f"6|{f}": f"TCP,{f}" for f in {*_FWD_FLAGS.values(), *_REV_FLAGS.values()}}
    combos |= {"17|" + f: "UDP,......" for f in {*_FWD_FLAGS.values(), *_REV_FLAGS.values()}}
    line = pl.concat_str(
        [
            pl.lit(strf(rec, s, "%Y-%m-%d %H:%M:%S,")),
            pl.lit(strf(rec, e, "%Y-%m-%d %H:%M:%S,")),
            (td // US).cast(pl.String),
            pl.lit("."),
            (td % US // 1000).cast(pl.String).str.zfill(3),
            pl.lit(","),
            ip_text("_sa"),
            pl.lit(","),
            ip_text("_da"),
            pl.lit(","),
            pl.col("_sp").cast(pl.String),
            pl.lit(","),
            pl.col("_dp").cast(pl.String),
            pl.lit(","),
            key.replace_strict(combos, default="ICMP,......"),
            pl.lit(",0,0,"),
            pl.col("_p").cast(pl.String),
            pl.lit(","),
            pl.col("_b").cast(pl.String),
            pl.when(pl.col("_in") == 2).then(pl.lit(",0,0,2,1")).otherwise(pl.lit(",0,0,1,2")),
            pl.lit(_MIDDLE + dev.ip + ",0/0,1,"),
            pl.lit(strf(rec, received, "%Y-%m-%d %H:%M:%S.")),
            fraction(received, 3),
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
