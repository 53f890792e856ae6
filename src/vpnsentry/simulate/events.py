"""Event batches and the vectorized flow builder shared by benign life and the scenarios."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import (
    ADMIN_SCHEMA,
    BENIGN,
    FAIL_SCHEMA,
    FLOW_SCHEMA,
    GAP_SCHEMA,
    I64,
    PORTAL_SCHEMA,
    SESSION_SCHEMA,
    STATE,
    TCP_STATES,
    U32,
    empty,
)
from vpnsentry.simulate.route import SERVICES
from vpnsentry.simulate.services import Service

#: How often each of :data:`TCP_STATES` occurs in office TCP traffic.
TCP_STATE_P = (0.93, 0.02, 0.01, 0.025, 0.015)


#: A batch of flows as numpy columns: ``svc`` indexes :data:`SERVICE_NAMES`, ``state``
#: :data:`TCP_STATES`, ``user`` the estate's user names (-1: none). Kept as arrays until a
#: whole day is assembled, because one Polars frame per small batch costs more than the
#: batch itself.
FlowBatch = dict[str, npt.NDArray[Any]]

SERVICE_NAMES: tuple[str, ...] = tuple(SERVICES)
_SVC_CODE = {name: i for i, name in enumerate(SERVICE_NAMES)}
_FLOW_COLS = (
    "ts",
    "dur",
    "src",
    "sport",
    "dst",
    "dport",
    "proto",
    "svc",
    "ob",
    "rb",
    "op",
    "rp",
    "state",
    "user",
    "tag",
)


@dataclass
class Events:
    """Events of every kind, to be routed to the log sources that record them."""

    flows: list[FlowBatch] = field(default_factory=list)
    sessions: list[pl.DataFrame] = field(default_factory=list)
    fails: list[pl.DataFrame] = field(default_factory=list)
    admin: list[pl.DataFrame] = field(default_factory=list)
    portal: list[pl.DataFrame] = field(default_factory=list)
    gaps: list[pl.DataFrame] = field(default_factory=list)

    def extend(self, other: Events) -> None:
        for name in ("flows", "sessions", "fails", "admin", "portal", "gaps"):
            getattr(self, name).extend(getattr(other, name))

    def flow_table(self, names: pl.Series) -> pl.DataFrame:
        """All flow batches as one frame in :data:`FLOW_SCHEMA` (user names from ``names``)."""
        batches = [b for b in self.flows if len(b["ts"])]
        if not batches:
            return empty(FLOW_SCHEMA)
        cols = {c: np.concatenate([b[c] for b in batches]) for c in _FLOW_COLS}
        df = pl.DataFrame(cols)
        return df.with_columns(
            pl.col("svc").replace_strict(dict(enumerate(SERVICE_NAMES)), return_dtype=pl.String),
            pl.col("svc").alias("svc_id"),
            pl.col("state").replace_strict(dict(enumerate(TCP_STATES)), return_dtype=STATE),
            pl.when(pl.col("user") >= 0)
            .then(pl.lit(names).gather(pl.col("user").clip(0)))
            .otherwise(pl.lit(None, dtype=pl.String))
            .alias("user"),
        ).select([pl.col(c).cast(t) for c, t in FLOW_SCHEMA.items()])

    def table(self, name: str) -> pl.DataFrame:
        """All frames of one non-flow kind as one frame (empty with the schema if none)."""
        schema = {
            "sessions": SESSION_SCHEMA,
            "fails": FAIL_SCHEMA,
            "admin": ADMIN_SCHEMA,
            "portal": PORTAL_SCHEMA,
            "gaps": GAP_SCHEMA,
        }[name]
        frames = [f for f in getattr(self, name) if len(f)]
        if not frames:
            return empty(schema)
        out: pl.DataFrame = pl.concat(
            [f.select([pl.col(c).cast(t) for c, t in schema.items()]) for f in frames]
        )
        return out


def make_flows(
    rng: np.random.Generator,
    svc: Service,
    ts: I64,
    src: U32,
    dst: U32,
    *,
    user: npt.NDArray[np.int64] | None = None,
    tag: int | npt.NDArray[np.int32] = BENIGN,
    ob: I64 | None = None,
    rb: I64 | None = None,
    dur: I64 | None = None,
    state: str | None = None,
    dport: int | npt.NDArray[np.int64] | None = None,
    sport: npt.NDArray[np.int32] | None = None,
) -> FlowBatch:
    """``len(ts)`` flows of service ``svc``; sizes drawn from the service unless given.

    ``user`` indexes the estate's user names (-1: none), for gateways that attribute traffic
    to users. ``state`` forces a connection state (scanners see REJ and S0, beacons SF).
    """
    n = len(ts)
    d_ob, d_rb, d_dur = svc.sizes(rng, n)
    ob = d_ob if ob is None else np.asarray(ob, dtype=np.int64)
    rb = d_rb if rb is None else np.asarray(rb, dtype=np.int64)
    dur = d_dur if dur is None else np.asarray(dur, dtype=np.int64)
    if state is not None:
        code = np.full(n, TCP_STATES.index(state), dtype=np.int8)
    elif svc.proto == 6:
        code = rng.choice(len(TCP_STATES), size=n, p=TCP_STATE_P).astype(np.int8)
    else:
        code = np.where(rng.random(n) < 0.08, 1, 0).astype(np.int8)
    s0, rej = code == 1, code == 2
    fail = s0 | rej
    ob = np.where(fail, 0, ob)
    rb = np.where(fail, 0, rb)
    dur = np.where(rej, 300 + rng.integers(0, 5000, n), dur)
    dur = np.where(s0, (3_000_000 if svc.proto == 6 else 0) + rng.integers(0, 500, n), dur)
    if svc.proto == 6:
        op = np.where(s0, 2, np.where(rej, 1, ob // 1200 + 3))
        rp = np.where(s0, 0, np.where(rej, 1, rb // 1300 + 2))
    else:
        op = ob // 1000 + 1
        rp = np.where(rb > 0, rb // 1000 + 1, 0)
    port = svc.dport if dport is None else dport
    return {
        "ts": np.asarray(ts, dtype=np.int64),
        "dur": dur.astype(np.int64),
        "src": np.broadcast_to(np.asarray(src, dtype=np.uint32), (n,)),
        "sport": rng.integers(49152, 65535, n).astype(np.int32)
        if sport is None
        else np.asarray(sport, dtype=np.int32),
        "dst": np.broadcast_to(np.asarray(dst, dtype=np.uint32), (n,)),
        "dport": np.broadcast_to(np.asarray(port, dtype=np.int32), (n,)),
        "proto": np.full(n, svc.proto, dtype=np.uint8),
        "svc": np.full(n, _SVC_CODE[svc.name], dtype=np.int16),
        "ob": ob.astype(np.int64),
        "rb": rb.astype(np.int64),
        "op": op.astype(np.int64),
        "rp": rp.astype(np.int64),
        "state": code,
        "user": np.full(n, -1, dtype=np.int64)
        if user is None
        else np.broadcast_to(np.asarray(user, dtype=np.int64), (n,)),
        "tag": np.broadcast_to(np.asarray(tag, dtype=np.int32), (n,)),
    }
