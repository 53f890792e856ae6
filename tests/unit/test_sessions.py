"""The session table: per vendor, lines as the gateways write them, ingested, then paired.

Every store here is built the way production builds one (log files -> ingest -> store ->
reader), so a parser change that breaks pairing shows up here and not in a detection.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import GOLDEN
from vpnsentry.enrich.sessions import attribute_sql, build_sessions
from vpnsentry.enrich.sites import load_inventory
from vpnsentry.ingest import ingest
from vpnsentry.simulate import simulate
from vpnsentry.store.store import Store

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)


def at(day: int, h: int, m: int = 0, s: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, h, m, s, tzinfo=UTC)


def build(tmp_path: Path, files: dict[str, list[str]], **kw: Any) -> duckdb.DuckDBPyConnection:
    """Write ``files`` (relative path -> lines) under a log folder, ingest, build sessions."""
    for name, lines in files.items():
        path = tmp_path / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest([str(tmp_path / "logs")], tmp_path / "store")
    con = Store.open(tmp_path / "store", create=False).reader()
    build_sessions(con, **kw)
    return con


@pytest.fixture(scope="module")
def fgt_con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """The FortiGate store, ingested once; each test builds the sessions it needs."""
    return build(tmp_path_factory.mktemp("fgt"), {"fgt/fgt.log": FGT_LOG})


def rows(
    con: duckdb.DuckDBPyConnection, sql: str = "SELECT * FROM sessions"
) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def by_user(con: duckdb.DuckDBPyConnection, user: str) -> list[dict[str, Any]]:
    return rows(
        con, f'SELECT * FROM sessions WHERE "user.name" = \'{user}\' ORDER BY "session.start"'
    )


# --------------------------------------------------------------------------------------
# FortiGate
# --------------------------------------------------------------------------------------


def fgt(ts: dt.datetime, logid: str, body: str) -> str:
    return (
        f'date={ts:%Y-%m-%d} time={ts:%H:%M:%S} devname="FGT-T1" devid="FGVM01" logid="{logid}" '
        f'type="event" subtype="vpn" level="information" vd="root" {body}'
    )


def fgt_up(ts: dt.datetime, tid: int, user: str, ip: str, tunnel: str) -> list[str]:
    """The portal login and, a second later, the tunnel FortiOS logs for a FortiClient login
    (the portal login has a tunnel id of its own)."""
    who = f'remip={ip} user="{user}" group="VPN-Users" dst_host="N/A"'
    return [
        fgt(
            ts,
            "0101039424",
            f'logdesc="SSL VPN tunnel up" action="tunnel-up" tunneltype="ssl-web" '
            f'tunnelid={tid - 1} {who} reason="login successfully" msg="SSL tunnel established"',
        ),
        fgt(
            ts + SECOND,
            "0101039947",
            f'logdesc="SSL VPN tunnel up" action="tunnel-up" '
            f'tunneltype="ssl-tunnel" tunnelid={tid} tunnelip={tunnel} {who} '
            'reason="tunnel established" msg="SSL tunnel established"',
        ),
    ]


def fgt_down(
    ts: dt.datetime, tid: int, user: str, ip: str, tunnel: str, dur: int, sent: int, rcvd: int
) -> str:
    return fgt(
        ts,
        "0101039948",
        f'logdesc="SSL VPN tunnel down" action="tunnel-down" '
        f'tunneltype="ssl-tunnel" tunnelid={tid} remip={ip} tunnelip={tunnel} user="{user}" '
        f'group="VPN-Users" dst_host="N/A" reason="User requested termination of service" '
        f'duration={dur} sentbyte={sent} rcvdbyte={rcvd} msg="SSL tunnel shutdown"',
    )


FGT_LOG = [
    # alice: portal login, tunnel, statistics, logout.
    *fgt_up(at(2, 9), 101, "alice", "203.0.113.10", "10.212.134.10"),
    fgt(
        at(2, 9, 10, 1),
        "0101039949",
        'logdesc="SSL VPN statistics" action="tunnel-stats" '
        'tunneltype="ssl-tunnel" tunnelid=101 remip=203.0.113.10 tunnelip=10.212.134.10 '
        'user="alice" group="VPN-Users" dst_host="N/A" nextstat=600 duration=600 sentbyte=100 '
        'rcvdbyte=50 msg="SSL tunnel statistics"',
    ),
    fgt_down(at(2, 10, 0, 1), 101, "alice", "203.0.113.10", "10.212.134.10", 3600, 5000, 2000),
    # bob: logged out before the log begins: only his tunnel-down.
    fgt_down(at(2, 8, 30), 301, "bob", "198.51.100.20", "10.212.134.30", 1800, 700, 300),
    # carol: two places at once (home, and a hosting address).
    *fgt_up(at(2, 12), 401, "carol", "198.51.100.7", "10.212.134.40"),
    *fgt_up(at(2, 12, 40), 403, "carol", "203.0.113.99", "10.212.134.41"),
    fgt_down(at(2, 13, 30), 403, "carol", "203.0.113.99", "10.212.134.41", 3000, 9, 8),
    fgt_down(at(2, 14, 0, 1), 401, "carol", "198.51.100.7", "10.212.134.40", 7200, 7, 6),
    # gus: the tunnel comes up 45 s after the portal login; its duration counts from there.
    fgt_up(at(2, 15), 601, "gus", "192.0.2.70", "10.212.134.60")[0],
    fgt_up(at(2, 15, 0, 44), 601, "gus", "192.0.2.70", "10.212.134.60")[1],
    fgt_down(at(2, 16, 0, 45), 601, "gus", "192.0.2.70", "10.212.134.60", 3600, 50, 40),
    # hana: the web portal only (clientless): no tunnel, no tunnel address.
    fgt_up(at(2, 16), 701, "hana", "192.0.2.80", "")[0],
    fgt(
        at(2, 16, 30),
        "0101039425",
        'logdesc="SSL VPN tunnel down" action="tunnel-down" tunneltype="ssl-web" tunnelid=700 '
        'remip=192.0.2.80 user="hana" group="VPN-Users" dst_host="N/A" reason="logout" '
        'duration=1800 sentbyte=30 rcvdbyte=20 msg="SSL tunnel shutdown"',
    ),
    # dave: no logout at all; the log goes on for two more days.
    *fgt_up(at(2, 11), 201, "dave", "192.0.2.50", "10.212.134.20"),
    *fgt_up(at(4, 18), 501, "erin", "192.0.2.60", "10.212.134.50"),
]


def test_fortigate_sessions(fgt_con: duckdb.DuckDBPyConnection) -> None:
    con = fgt_con
    build_sessions(con)
    [alice] = by_user(con, "alice")
    assert alice == {
        "observer.name": "FGT-T1",
        "event.module": "fortinet_fortigate",
        "user.name": "alice",
        "source.ip": "203.0.113.10",
        "source.port": None,
        "vpn.tunnel_ip": "10.212.134.10",
        "vpn.session_id": "101",  # the tunnel's id, not the portal login's (100)
        "vpn.tunnel_type": "ssl",
        "vpn.group": "VPN-Users",
        "session.start": at(2, 9),  # the portal login starts it
        "session.end": at(2, 10, 0, 1),
        "session.end_inferred": False,
        "session.end_reason": "User requested termination of service",
        "source.bytes": 2000,  # the gateway's rcvdbyte: what the client uploaded
        "destination.bytes": 5000,
        "event.duration": 3600 * 10**9,
        "session.evidence": "FortiGate-event-ssl-vpn-user-tunnel-up"
        " > FortiGate-event-ssl-vpn-session-tunnel-up"
        " > FortiGate-event-ssl-vpn-session-tunnel-stats"
        " > FortiGate-event-ssl-vpn-session-tunnel-down",
    }
    [bob] = by_user(con, "bob")
    assert (bob["session.start"], bob["session.end"]) == (at(2, 8), at(2, 8, 30))
    assert bob["vpn.tunnel_ip"] == "10.212.134.30"
    assert "start = end - logged duration" in bob["session.evidence"]
    home, away = by_user(con, "carol")
    assert (home["source.ip"], home["vpn.tunnel_ip"]) == ("198.51.100.7", "10.212.134.40")
    assert (away["source.ip"], away["vpn.tunnel_ip"]) == ("203.0.113.99", "10.212.134.41")
    assert home["session.start"] < away["session.start"] < away["session.end"]
    assert away["session.end"] < home["session.end"] == at(2, 14, 0, 1)
    [gus] = by_user(con, "gus")
    assert (gus["session.start"], gus["session.end"]) == (at(2, 15), at(2, 16, 0, 45))
    assert gus["vpn.session_id"] == "601" and gus["session.end_inferred"] is False
    [hana] = by_user(con, "hana")
    assert (hana["vpn.tunnel_type"], hana["vpn.tunnel_ip"]) == ("clientless", None)
    assert (hana["session.start"], hana["session.end"]) == (at(2, 16), at(2, 16, 30))
    assert hana["session.end_reason"] == "logout"
    # dave never logged out; the data goes on past 24 h: ended by the cap, inferred.
    [dave] = by_user(con, "dave")
    assert dave["session.end"] == at(3, 11) and dave["session.end_inferred"]
    assert dave["event.duration"] is None and dave["source.bytes"] is None
    # erin logged in near the end of the data: still open.
    [erin] = by_user(con, "erin")
    assert erin["session.end"] is None and erin["session.end_inferred"] is False
    assert rows(con, "SELECT * FROM sessions_skipped") == []


def test_max_open_hours(fgt_con: duckdb.DuckDBPyConnection) -> None:
    con = fgt_con
    build_sessions(con, max_open_hours=2)
    [dave] = by_user(con, "dave")
    assert dave["session.end"] == at(2, 13) and dave["session.end_inferred"]
    with pytest.raises(ValueError, match="max_open_hours"):
        build_sessions(con, max_open_hours=0)


# --------------------------------------------------------------------------------------
# Cisco ASA
# --------------------------------------------------------------------------------------


def asa(ts: dt.datetime, tag: str, text: str) -> str:
    return f"<166>{ts:%b %d %Y %H:%M:%S} asa-t1 : %ASA-{tag}: {text}"


def asa_login(ts: dt.datetime, user: str, ip: str, tunnel: str) -> list[str]:
    who = f"Group <GP-Corp> User <{user}> IP <{ip}>"
    return [
        asa(
            ts,
            "6-113004",
            f"AAA user authentication Successful : server = 192.0.2.20 : user = {user}",
        ),
        asa(ts, "6-113039", f"{who} AnyConnect parent session started."),
        asa(
            ts + SECOND,
            "6-722051",
            f"{who} IPv4 Address <{tunnel}> IPv6 address <::> assigned to session",
        ),
        asa(ts + SECOND, "6-722022", f"{who} TCP SVC connection established without compression"),
        asa(ts + SECOND, "6-722022", f"{who} UDP SVC connection established without compression"),
    ]


def asa_logout(ts: dt.datetime, user: str, ip: str, dur: str, xmt: int, rcv: int) -> list[str]:
    who = f"Group <GP-Corp> User <{user}> IP <{ip}>"
    return [
        asa(ts, "6-722023", f"{who} UDP SVC connection terminated without compression"),
        asa(
            ts,
            "4-113019",
            f"Group = GP-Corp, Username = {user}, IP = {ip}, Session "
            f"disconnected. Session Type: AnyConnect-Parent, Duration: {dur}, Bytes xmt: {xmt}, "
            f"Bytes rcv: {rcv}, Reason: User Requested",
        ),
    ]


ASA_LOG = [
    # r.mizrahi: only the logout, with its duration (the log started mid-session).
    asa(
        at(2, 2, 5, 44),
        "4-113019",
        "Group = GP-Corp, Username = r.mizrahi, IP = 203.0.113.61, "
        "Session disconnected. Session Type: SSL, Duration: 1d 19h:41m:14s, Bytes xmt: 187, "
        "Bytes rcv: 28, Reason: Idle Timeout",
    ),
    # A lone SVC teardown: no login, no duration; cannot be placed.
    asa(
        at(2, 2, 6),
        "6-722023",
        "Group <GP-Corp> User <ghost> IP <203.0.113.62> UDP SVC "
        "connection terminated without compression",
    ),
    # dana: the golden AnyConnect session, roaming to a new address midway.
    *asa_login(at(2, 8, 2, 10), "dana", "203.0.113.24", "192.0.2.137"),
    asa(
        at(2, 9, 15, 2),
        "6-716059",
        "Group <GP-Corp> User <dana> IP <203.0.113.24> AnyConnect "
        "session resumed connection from IP <198.51.100.77>.",
    ),
    *asa_logout(at(2, 17, 45, 1), "dana", "198.51.100.77", "9h:42m:50s", 1873301542, 211874390),
    # frank: a session, then a second one from the same address (two devices behind one
    # NAT); the first ends first, so its logout follows the second login.
    *asa_login(at(3, 9), "frank", "192.0.2.77", "192.0.2.140"),
    *asa_login(at(3, 10), "frank", "192.0.2.77", "192.0.2.141"),
    *asa_logout(at(3, 11, 0, 1), "frank", "192.0.2.77", "2h:00m:00s", 10, 1),
    *asa_logout(at(3, 12, 0, 1), "frank", "192.0.2.77", "2h:00m:00s", 20, 2),
    # gina: at home and, at the same time, somewhere else.
    *asa_login(at(3, 13), "gina", "198.51.100.9", "192.0.2.150"),
    *asa_login(at(3, 13, 40), "gina", "5.9.51.72", "192.0.2.151"),
    *asa_logout(at(3, 15), "gina", "5.9.51.72", "1h:19m:59s", 30, 3),
]


def test_cisco_asa_sessions(tmp_path: Path) -> None:
    con = build(tmp_path, {"asa/asa.log": ASA_LOG})
    [dana] = by_user(con, "dana")
    assert {k: dana[k] for k in dana if k != "session.evidence"} == {
        "observer.name": "asa-t1",
        "event.module": "cisco_asa",
        "user.name": "dana",
        "source.ip": "203.0.113.24",  # where the session was opened
        "source.port": None,
        "vpn.tunnel_ip": "192.0.2.137",
        "vpn.session_id": None,
        "vpn.tunnel_type": "anyconnect",
        "vpn.group": "GP-Corp",
        "session.start": at(2, 8, 2, 10),
        "session.end": at(2, 17, 45, 1),  # logged from the address it roamed to
        "session.end_inferred": False,
        "session.end_reason": "User Requested",
        "source.bytes": 211874390,  # "Bytes rcv": what the ASA received from the client
        "destination.bytes": 1873301542,
        "event.duration": (9 * 3600 + 42 * 60 + 50) * 10**9,
    }
    assert dana["session.evidence"].startswith("client-vpn-connected > address-assigned")
    assert "client-vpn-resumed" in dana["session.evidence"]
    [mizrahi] = by_user(con, "r.mizrahi")
    assert mizrahi["session.end"] == at(2, 2, 5, 44)
    assert mizrahi["session.start"] == at(2, 2, 5, 44) - dt.timedelta(
        days=1, hours=19, minutes=41, seconds=14
    )
    assert mizrahi["session.end_reason"] == "Idle Timeout"
    assert rows(con, "SELECT * FROM sessions_skipped") == [
        {
            "observer.name": "asa-t1",
            "event.module": "cisco_asa",
            "reason": "end without start or logged duration",
            "events": 1,
        }
    ]
    first, second = by_user(con, "frank")
    assert (first["vpn.tunnel_ip"], first["session.end"]) == ("192.0.2.140", at(3, 11, 0, 1))
    assert (second["vpn.tunnel_ip"], second["session.end"]) == ("192.0.2.141", at(3, 12, 0, 1))
    assert (first["destination.bytes"], second["destination.bytes"]) == (10, 20)
    home, away = by_user(con, "gina")
    assert home["source.ip"] == "198.51.100.9" and away["source.ip"] == "5.9.51.72"
    assert away["session.end"] == at(3, 15)
    assert home["session.end"] is None  # within a day of the end of the data: still open


# --------------------------------------------------------------------------------------
# OpenVPN log and status file
# --------------------------------------------------------------------------------------


def ovpn(ts: dt.datetime, text: str) -> str:
    return f"{ts:%Y-%m-%d %H:%M:%S} {text}"


def ovpn_connect(ts: dt.datetime, cn: str, user: str, peer: str, tunnel: str) -> list[str]:
    return [
        ovpn(ts, f"{peer} VERIFY OK: depth=0, CN={cn}"),
        ovpn(ts, f"{peer} TLS: Username/Password authentication succeeded for username '{user}' "),
        ovpn(ts, f"{peer} [{cn}] Peer Connection Initiated with [AF_INET]{peer}"),
        ovpn(ts, f"{cn}/{peer} MULTI_sva: pool returned IPv4={tunnel}, IPv6=(Not enabled)"),
        ovpn(ts, f"{cn}/{peer} MULTI: Learn: {tunnel} -> {cn}/{peer}"),
        ovpn(ts, f"{cn}/{peer} MULTI: primary virtual IP for {cn}/{peer}: {tunnel}"),
    ]


def ovpn_exit(ts: dt.datetime, client: str, why: str = "SIGTERM[soft,remote-exit]") -> str:
    return ovpn(ts, f"{client} {why} received, client-instance exiting")


OVPN_LOG = [
    ovpn(at(2, 8, 59), "Initialization Sequence Completed"),
    # A client instance connected before the log began: no duration, cannot be placed.
    ovpn_exit(at(2, 8, 59, 30), "zoe/203.0.113.90:1194"),
    *ovpn_connect(at(2, 9), "alice-laptop", "alice", "203.0.113.11:60076", "10.8.0.2"),
    # bob's password is wrong, yet OpenVPN initiates the peer connection first.
    ovpn(at(2, 9, 5), "203.0.113.12:60349 VERIFY OK: depth=0, CN=bob"),
    ovpn(
        at(2, 9, 5),
        "203.0.113.12:60349 TLS Auth Error: Auth Username/Password verification failed for peer",
    ),
    ovpn(
        at(2, 9, 5),
        "203.0.113.12:60349 [bob] Peer Connection Initiated with [AF_INET]203.0.113.12:60349",
    ),
    ovpn_exit(at(2, 9, 5, 5), "203.0.113.12:60349", "SIGTERM[soft,delayed-exit]"),
    *ovpn_connect(at(2, 9, 10), "carol", "carol", "203.0.113.15:38099", "10.8.0.3"),
    ovpn_exit(at(2, 10), "alice-laptop/203.0.113.11:60076"),
    ovpn(
        at(2, 11, 16, 56),
        "carol/203.0.113.15:38099 [carol] Inactivity timeout (--ping-restart), restarting",
    ),
    ovpn(
        at(2, 11, 16, 56),
        "carol/203.0.113.15:38099 SIGUSR1[soft,ping-restart] received, client-instance restarting",
    ),
    # alice again, from the same client address and port as before.
    *ovpn_connect(at(2, 12), "alice-laptop", "alice", "203.0.113.11:60076", "10.8.0.5"),
    ovpn_exit(at(2, 12, 30), "alice-laptop/203.0.113.11:60076"),
    *ovpn_connect(at(2, 13), "dave-laptop", "dave", "203.0.113.14:38169", "10.10.0.4"),
]


def test_openvpn_sessions(tmp_path: Path) -> None:
    con = build(tmp_path, {"ovpn/server.log": OVPN_LOG})
    first, again = by_user(con, "alice")
    assert {k: first[k] for k in first if k != "session.evidence"} == {
        "observer.name": None,  # OpenVPN's own log names no device
        "event.module": "openvpn",
        "user.name": "alice",  # the username, not the certificate's name
        "source.ip": "203.0.113.11",
        "source.port": 60076,
        "vpn.tunnel_ip": "10.8.0.2",
        "vpn.session_id": None,
        "vpn.tunnel_type": "openvpn",
        "vpn.group": None,
        "session.start": at(2, 9),
        "session.end": at(2, 10),
        "session.end_inferred": False,
        "session.end_reason": "remote-exit",
        "source.bytes": None,  # OpenVPN logs no bytes at logout
        "destination.bytes": None,
        "event.duration": 3600 * 10**9,
    }
    assert first["session.evidence"] == (
        "connection-initiated > pool-address-assigned > primary-address-assigned > session-end"
    )
    assert (again["vpn.tunnel_ip"], again["session.end"]) == ("10.8.0.5", at(2, 12, 30))
    assert by_user(con, "bob") == []  # authentication failed: no session
    [carol] = by_user(con, "carol")
    assert carol["session.end"] == at(2, 11, 16, 56)
    assert carol["session.end_reason"] == "ping-restart"
    [dave] = by_user(con, "dave")
    assert dave["session.end"] is None
    assert rows(con, 'SELECT "event.module", events FROM sessions_skipped') == [
        {"event.module": "openvpn", "events": 1}
    ]


def test_openvpn_status_snapshots(tmp_path: Path) -> None:
    """Two snapshots: alice and carol leave after the first, dave stays. dave's session is
    also in the server log (same client address and start): one session, bytes from status."""
    status = (
        (GOLDEN / "parse" / "openvpn_status" / "status-v3-two-snapshots.log")
        .read_text("utf-8")
        .splitlines()
    )
    since = dt.datetime(2026, 11, 30, 5, 16, 41, tzinfo=UTC)
    log = ovpn_connect(since, "dave-laptop", "dave", "203.0.113.14:38169", "10.10.0.4")
    con = build(tmp_path, {"ovpn/status.log": status, "ovpn/server.log": log})
    got = {r["user.name"]: r for r in rows(con)}
    assert set(got) == {"alice", "carol", "dave"}
    alice = got["alice"]
    assert alice["event.module"] == "openvpn_status"
    assert (alice["source.ip"], alice["source.port"]) == ("203.0.113.11", 35037)
    assert alice["vpn.tunnel_ip"] == "10.10.0.2" and alice["vpn.session_id"] == "0"
    assert alice["session.start"] == since
    # Last seen in the first snapshot, gone from the second: ended then, by inference.
    assert alice["session.end"] == since + 6 * SECOND
    assert alice["session.end_inferred"] is True
    assert (alice["source.bytes"], alice["destination.bytes"]) == (2189, 2413)
    dave = got["dave"]
    assert dave["event.module"] == "openvpn" and dave["vpn.tunnel_ip"] == "10.10.0.4"
    assert dave["session.end"] is None  # still listed in the latest snapshot
    assert (dave["source.bytes"], dave["destination.bytes"]) == (2708, 2916)


# --------------------------------------------------------------------------------------
# Attribution of flows
# --------------------------------------------------------------------------------------


def test_attribute_sql(fgt_con: duckdb.DuckDBPyConnection) -> None:
    con = fgt_con
    build_sessions(con)
    con.execute(
        """CREATE OR REPLACE TEMP TABLE f AS SELECT * FROM (VALUES
            (1, '10.212.134.10', TIMESTAMPTZ '2026-03-02 09:30:00+00'),  -- inside alice's
            (2, '10.212.134.10', TIMESTAMPTZ '2026-03-02 10:01:00+00'),  -- within the grace
            (3, '10.212.134.10', TIMESTAMPTZ '2026-03-02 10:05:00+00'),  -- after logout + grace
            (4, '10.212.134.10', TIMESTAMPTZ '2026-03-02 08:59:00+00'),  -- clock skew at start
            (5, '10.212.134.41', TIMESTAMPTZ '2026-03-02 13:00:00+00'),  -- carol, away
            (6, '10.212.134.20', TIMESTAMPTZ '2026-03-04 10:00:00+00'),  -- dave, open
            (7, '10.0.0.1', TIMESTAMPTZ '2026-03-02 09:30:00+00'),       -- no pool address
            (8, NULL, NULL)
        ) v(n, "source.ip", "@timestamp")"""
    )
    got = con.execute(
        f'SELECT n, "session.user", "session.gateway" FROM ({attribute_sql("f")}) ORDER BY n'
    ).fetchall()
    assert got == [
        (1, "alice", "FGT-T1"),
        (2, "alice", "FGT-T1"),
        (3, None, None),
        (4, "alice", "FGT-T1"),
        (5, "carol", "FGT-T1"),
        (6, None, None),  # dave's session was ended by the 24 h cap on day 3
        (7, None, None),
        (8, None, None),
    ]
    tight = attribute_sql("f", grace_seconds=0)
    sql = f'SELECT count("session.user") FROM ({tight}) WHERE n IN (2, 4)'
    assert con.execute(sql).fetchone() == (0,)


def test_attribute_prefers_the_holder_at_a_hand_over(tmp_path: Path) -> None:
    """An address given to a new user a minute after the last one left: a flow between the
    two belongs to the one who left (within grace), not to the one about to arrive."""
    log = [
        *fgt_up(at(2, 9), 101, "alice", "203.0.113.10", "10.212.134.10"),
        fgt_down(at(2, 10), 101, "alice", "203.0.113.10", "10.212.134.10", 3600, 5, 2),
        *fgt_up(at(2, 10, 1), 103, "bob", "203.0.113.20", "10.212.134.10"),
    ]
    con = build(tmp_path, {"fgt/fgt.log": log})
    flow = "(SELECT TIMESTAMPTZ '2026-03-02 10:00:30+00' AS ts, '10.212.134.10' AS ip)"
    sql = attribute_sql(flow, ip_column="ip", ts_column="ts")
    assert con.execute(f'SELECT "session.user" FROM ({sql})').fetchall() == [("alice",)]


# --------------------------------------------------------------------------------------
# A small simulated estate
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, duckdb.DuckDBPyConnection]:
    root = tmp_path_factory.mktemp("sim")
    simulate(
        root / "sim",
        days=3,
        users=30,
        scenarios=["stolen-credential", "session-hijack"],
        seed=7,
        sites=None,
    )
    # Gateways and Zeek; the NetFlow exports would repeat Zeek's flows.
    ingest([str(root / "sim" / "logs" / d) for d in ("gateways", "zeek")], root / "store")
    con = Store.open(root / "store", create=False).reader()
    build_sessions(con)
    return root / "sim", con


def test_simulated_sessions_are_sane(sim: tuple[Path, duckdb.DuckDBPyConnection]) -> None:
    out, con = sim
    sessions = rows(con)
    assert len(sessions) > 20
    assert all(s["session.end"] is None or s["session.start"] <= s["session.end"] for s in sessions)
    assert all(s["user.name"] for s in sessions)
    inventory = load_inventory(out / "sites.yaml")
    pools = {g.hostname: g.pool for g in inventory.gateways}
    # OpenVPN's own log names no device: its sessions may come from any OpenVPN pool.
    anonymous = [g.pool for g in inventory.gateways if g.vendor == "openvpn"]
    for s in sessions:
        if s["vpn.tunnel_ip"] is None:
            continue
        allowed = [pools[s["observer.name"]]] if s["observer.name"] else anonymous
        tunnel = ipaddress.ip_address(s["vpn.tunnel_ip"])
        assert any(tunnel in pool for pool in allowed), s


def _step(out: Path, name: str) -> dict[str, Any]:
    truth = json.loads((out / "ground_truth.json").read_text())
    [step] = [s for s in truth["steps"] if s["name"] == name]
    return dict(step)


def test_stolen_credential_gives_overlapping_sessions(
    sim: tuple[Path, duckdb.DuckDBPyConnection],
) -> None:
    out, con = sim
    who = _step(out, "concurrent-login-from-elsewhere")["entities"]
    mine = {(s["source.ip"], s["vpn.tunnel_ip"]): s for s in by_user(con, who["user"])}
    home = mine[(who["home_ip"], who["home_tunnel_ip"])]
    away = mine[(who["source_ip"], who["tunnel_ip"])]
    forever = dt.datetime.max.replace(tzinfo=UTC)
    assert home["session.start"] < (away["session.end"] or forever)
    assert away["session.start"] < (home["session.end"] or forever)


def test_tunnel_flows_are_attributed_except_the_hijacked(
    sim: tuple[Path, duckdb.DuckDBPyConnection],
) -> None:
    """Every flow from a tunnel address that sessions know is attributed (by the flow's start:
    firewall teardown lines are stamped at the end), except the hijacked tunnel's traffic
    after its user logged out."""
    out, con = sim
    step = _step(out, "traffic-after-logout")
    minute = dt.timedelta(minutes=1)  # the sensors' clocks differ a little from the script's
    hijack = (
        step["entities"]["tunnel_ip"],
        dt.datetime.fromisoformat(step["window"]["start"]) - minute,
        dt.datetime.fromisoformat(step["window"]["end"]) + minute,
    )
    start = 'coalesce("event.end" - to_microseconds("event.duration" // 1000), "@timestamp")'
    got = con.execute(
        f"""SELECT "source.ip" = ? AND "@timestamp" BETWEEN ? AND ? AS hijacked,
                count(*), count("session.user")
            FROM ({attribute_sql("flows", ts_column=start)})
            WHERE "source.ip" IN (SELECT "vpn.tunnel_ip" FROM sessions)
            GROUP BY hijacked ORDER BY hijacked""",
        list(hijack),
    ).fetchall()
    (_, benign, benign_users), (_, hijacked, hijacked_users) = got
    assert benign > 100 and benign_users == benign
    assert hijacked > 10 and hijacked_users == 0
