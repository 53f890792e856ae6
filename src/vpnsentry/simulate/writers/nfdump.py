"""NetFlow v9 records as ``nfdump -r nfcapd.… -o csv`` prints them (nfdump 1.6.x).

The CSV has nfdump's fixed 48-column header, one line per *unidirectional* flow record (a
router exports the request and the reply as two records, so ``opkt``/``obyt`` are 0), and the
``Summary`` block nfdump appends unless run with ``-q``. Times are the exporter's clock in
UTC; ``tr`` is when the collector received the record. Records appear in export order, which
is the order flows end.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import TCP_STATES, US
from vpnsentry.simulate.layout import Layout, Lines, Table
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers.syslog import stamp

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


def footer(day: dt.date, rows: dict[str, npt.NDArray[np.int64]]) -> list[str]:
    """nfdump's ``Summary`` block for the day's records (their ``_b``/``_p``/``_t0``/``_t1``)."""
    flows = len(rows["_b"])
    if not flows:
        return ["Summary", "flows,bytes,packets,avg_bps,avg_pps,avg_bpp", "0,0,0,0,0,0"]
    nbytes = int(rows["_b"].sum())
    pkts = int(rows["_p"].sum())
    span = max((int(rows["_t1"].max()) - int(rows["_t0"].min())) / US, 1.0)
    return [
        "Summary",
        "flows,bytes,packets,avg_bps,avg_pps,avg_bpp",
        f"{flows},{nbytes},{pkts},{int(nbytes * 8 / span)},{int(pkts / span)},"
        f"{nbytes // max(pkts, 1)}",
    ]


@functools.cache
def _proto_flags() -> Table:
    """``pr,flg,fwd,stos,`` for every (direction, protocol, state), indexed by
    ``(reverse * 3 + proto_code) * len(TCP_STATES) + state_code`` (proto_code 0: TCP,
    1: UDP, 2: other)."""
    rows = []
    for direction in (_FWD_FLAGS, _REV_FLAGS):
        rows += [f"TCP,{direction.get(s, '......')},0,0," for s in TCP_STATES]
        rows += [f"{p},......,0,0," for p in ("UDP", "ICMP") for _ in TCP_STATES]
    return Table.of(rows)


def flow_lines(dev: Device, df: pl.DataFrame) -> Lines:
    """Forward and (when the responder answered) reverse records for each flow.

    Expects the router's ``src_here`` column (the originator is on the exporter's LAN side)
    for the interface indexes (1 = WAN, 2 = LAN). Forward records come first, then the
    reverse ones; the caller orders the file on ``_order`` (arrival at the collector).
    """
    c = {k: df[k].to_numpy() for k in ("ts", "dur", "src", "dst", "sport", "dport", "proto")}
    c |= {k: df[k].to_numpy() for k in ("ob", "rb", "op", "rp", "tag", "_delay", "src_here")}
    n_states = len(TCP_STATES)
    proto = c["proto"]
    hdr = np.where(proto == 6, 40, 28)
    proto_code = np.where(proto == 6, 0, np.where(proto == 17, 1, 2))
    pf = proto_code * n_states + df["state"].to_physical().to_numpy().astype(np.int64)
    r = np.flatnonzero(c["rp"] > 0)
    end = c["ts"] + c["dur"]
    here = c["src_here"].astype(np.int64)
    s = np.concatenate([c["ts"], c["ts"][r] + np.minimum(c["dur"][r], 20_000)])
    e = np.concatenate([end, end[r]])
    sa = np.concatenate([c["src"], c["dst"][r]])
    da = np.concatenate([c["dst"], c["src"][r]])
    sp = np.concatenate([c["sport"], c["dport"][r]])
    dp = np.concatenate([c["dport"], c["sport"][r]])
    pfc = np.concatenate([pf, pf[r] + 3 * n_states])
    pkts = np.concatenate([c["op"], c["rp"][r]])
    nbytes = np.concatenate([c["ob"] + c["op"] * hdr, (c["rb"] + c["rp"] * hdr)[r]])
    inside = np.concatenate([here, 1 - here[r]])
    tag = np.concatenate([c["tag"], c["tag"][r]])
    delay = np.concatenate([c["_delay"], c["_delay"][r]])
    ds, de = s + dev.skew_us, e + dev.skew_us
    td = e - s
    received = de + delay * 40
    tail = _MIDDLE + dev.ip + ",0/0,1,"
    lay = Layout(len(s))
    stamp(lay, ds, "%Y-%m-%d %H:%M:%S").text(",")
    stamp(lay, de, "%Y-%m-%d %H:%M:%S").text(",")
    lay.num(td // US).text(".").pad(td % US // 1000, 3).text(",")
    lay.ip(sa).text(",").ip(da).text(",").num(sp).text(",").num(dp).text(",")
    lay.pick(_proto_flags(), pfc).num(pkts).text(",").num(nbytes)
    lay.pick([",0,0,1,2" + tail, ",0,0,2,1" + tail], inside)
    stamp(lay, received, "%Y-%m-%d %H:%M:%S").text(".").pad(received % US // 1000, 3)
    return Lines.of(lay, received, tag, _b=nbytes, _p=pkts, _t0=s, _t1=e)
