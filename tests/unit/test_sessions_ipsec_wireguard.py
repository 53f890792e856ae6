"""Sessions of strongSwan, Juniper SRX and WireGuard: their golden logs, ingested, paired.

The logs are the parsers' golden files (real line shapes), so a parser change that breaks
pairing shows up here. Each store is built the way production builds one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from tests.conftest import GOLDEN
from tests.helpers import read_lines
from vpnsentry.ecs import conform
from vpnsentry.enrich.sessions import build_sessions
from vpnsentry.ingest import ingest
from vpnsentry.parse.base import ParseContext, get_parser
from vpnsentry.store.store import Store

UTC = dt.UTC


def sessions(tmp_path: Path, *cases: str) -> list[dict[str, Any]]:
    """Ingest golden ``<format>/<case>.log`` files (one folder each) and pair them."""
    for case in cases:
        src = GOLDEN / "parse" / f"{case}.log"
        dst = tmp_path / "logs" / case.replace("/", "_") / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    ingest([str(tmp_path / "logs")], tmp_path / "store")
    con: duckdb.DuckDBPyConnection = Store.open(tmp_path / "store", create=False).reader()
    build_sessions(con)
    cur = con.execute('SELECT * FROM sessions ORDER BY "session.start", "user.name"')
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_strongswan_sessions(tmp_path: Path) -> None:
    got = sessions(tmp_path, "strongswan/syslog-ikev2-eap", "strongswan/filelog-ikev1-xauth")
    carol, dave = (next(s for s in got if s["user.name"] == u) for u in ("carol", "dave"))
    # IKEv2 EAP, named IKE_SA lines: the EAP name (not the client's IP identity), virtual IP,
    # the CHILD_SA's byte counters, the IKE_SA's deletion as the end.
    assert carol["observer.name"] == "vpn-gw1"
    assert carol["vpn.session_id"] == "ikev2-eap[1]"
    assert carol["vpn.tunnel_ip"] == "10.10.10.1"
    assert carol["vpn.tunnel_type"] == "ikev2"
    assert carol["source.ip"] == "203.0.113.5"
    assert carol["session.start"] == dt.datetime(2026, 3, 21, 12, 35, 12, tzinfo=UTC)
    assert carol["session.end"] == dt.datetime(2026, 3, 21, 13, 2, 40, tzinfo=UTC)
    assert not carol["session.end_inferred"]
    assert (carol["source.bytes"], carol["destination.bytes"]) == (2464912, 31460192)
    # IKEv1 XAuth from charon's file log without ike_name: lines paired through their jobs.
    assert dave["vpn.session_id"] == "xauth-psk[7]"
    assert dave["vpn.tunnel_ip"] == "10.3.0.9"
    assert dave["vpn.tunnel_type"] == "ikev1"
    assert dave["session.end"] == dt.datetime(2026, 7, 3, 11, 20, tzinfo=UTC)
    # Failed attempts and the cut IKE_SA line make no session; eve's virtual IP (after her
    # login, invalid in the line) does: a session without tunnel address.
    assert {s["user.name"] for s in got} == {"carol", "dave", "eve"}


def test_juniper_srx_sessions(tmp_path: Path) -> None:
    got = sessions(tmp_path, "juniper_srx/srx-structured-and-plain")
    by_user = {s["user.name"]: s for s in got}
    # Site-to-site tunnels carry no user and are not user sessions.
    assert set(by_user) == {"alice", "bob"}
    alice, bob = by_user["alice"], by_user["bob"]
    assert alice["vpn.tunnel_ip"] == "10.10.10.5"
    assert alice["source.ip"] == "203.0.113.50"
    assert alice["session.start"] == dt.datetime(2026, 3, 10, 12, 41, tzinfo=UTC)
    assert alice["session.end"] == dt.datetime(2026, 3, 10, 13, 52, 10, tzinfo=UTC)
    assert alice["session.end_reason"] == "Received delete from peer"
    assert bob["session.start"] == dt.datetime(2026, 3, 10, 13, 5, 21, tzinfo=UTC)
    assert bob["session.end"] == dt.datetime(2026, 3, 10, 14, 5, 21, tzinfo=UTC)


def test_wireguard_sessions(tmp_path: Path) -> None:
    got = sessions(tmp_path, "wireguard/dump-snapshots")
    a = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
    b = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
    peer_b = [s for s in got if s["user.name"] == b]
    assert len(peer_b) == 1
    # Up at its handshake, down when its keys expired (handshake + 180 s), bytes of that
    # session only (the counters before it subtracted).
    assert peer_b[0]["session.start"] == dt.datetime(2026, 3, 26, 10, 1, 50, tzinfo=UTC)
    assert peer_b[0]["session.end"] == dt.datetime(2026, 3, 26, 10, 4, 50, tzinfo=UTC)
    assert not peer_b[0]["session.end_inferred"]
    assert (peer_b[0]["source.bytes"], peer_b[0]["destination.bytes"]) == (1000, 2000)
    assert peer_b[0]["vpn.tunnel_type"] == "wireguard"
    # Peer A: one session from 10:00:42, then the interface restarted (counters from zero):
    # a second session from the next handshake; the first one's end is inferred from it.
    peer_a = [s for s in got if s["user.name"] == a]
    assert [s["session.start"] for s in peer_a] == [
        dt.datetime(2026, 3, 26, 10, 0, 42, tzinfo=UTC),
        dt.datetime(2026, 3, 26, 10, 7, 50, tzinfo=UTC),
    ]
    assert peer_a[0]["vpn.tunnel_ip"] == "10.8.0.2"
    assert peer_a[0]["session.end"] == peer_a[1]["session.start"]
    assert peer_a[0]["session.end_inferred"]


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_wireguard_snapshots_span_chunks(chunk: int) -> None:
    """The peer state is carried from chunk to chunk: any split gives the same events."""
    lines = read_lines(GOLDEN / "parse" / "wireguard" / "dump-snapshots.log")[:18]
    parser = get_parser("wireguard")

    def run(size: int) -> list[tuple[Any, ...]]:
        ctx = ParseContext(path="x", now=dt.datetime(2026, 6, 1, tzinfo=UTC))
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(lines), size):
            res = parser.parse(pl.Series(lines[i : i + size], dtype=pl.String), ctx)
            for df in res.tables.values():
                cols = ["@timestamp", "event.action", "user.name", "source.bytes"]
                out += conform(df, "events").select(cols).rows()
        return sorted(out, key=str)

    assert run(chunk) == run(len(lines))
