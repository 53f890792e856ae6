"""Sessions of the login/logout gateways: Ivanti/Pulse, Citrix, SonicWall, Check Point, CEF, LEEF.

The logs are the parsers' golden files (real line shapes: Elastic's corpus samples and lines
written from the vendors' references), ingested into one store the way production builds
one, then paired. Every expected value below was read off the log lines by hand (the line
numbers are those of the golden ``.log`` files). Beyond the session table, each vendor's
successful login must reach the detections' ``logins`` table (they see logins only through
sessions) and a flow from its tunnel address must be attributed to the user.
"""

from __future__ import annotations

import datetime as dt
import shutil
from typing import Any

import duckdb
import pytest

from tests.conftest import GOLDEN
from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context
from vpnsentry.enrich.sessions import attribute_sql
from vpnsentry.ingest import ingest
from vpnsentry.store.store import Store

UTC = dt.UTC
FORMATS = ("pulse_connect_secure", "citrix_adc", "sonicwall_firewall", "checkpoint", "cef", "leef")


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Context:
    """All golden logs of the six formats in one store (one folder each), and the detection
    context over its reader with ``sessions`` and ``logins`` built."""
    tmp = tmp_path_factory.mktemp("login_gateways")
    for name in FORMATS:
        folder = tmp / "logs" / name
        folder.mkdir(parents=True)
        for log in (GOLDEN / "parse" / name).glob("*.log"):
            shutil.copy(log, folder / log.name)
    ingest([str(tmp / "logs")], tmp / "store")
    context = Context(Store.open(tmp / "store", create=False).reader(), None, Config())
    context.need(["logins"])
    return context


def sessions(con: duckdb.DuckDBPyConnection, module: str, user: str) -> list[dict[str, Any]]:
    """The sessions of ``user`` paired from ``module``'s lines, in start order."""
    cur = con.execute(
        'SELECT * FROM sessions WHERE "event.module" = ? AND "user.name" = ? '
        'ORDER BY "session.start"',
        [module, user],
    )
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_pulse_sessions(ctx: Context) -> None:
    # welf_and_admin.log 2-5: agent login, VPN tunnel with 10.200.1.17, tunnel end with the
    # tunnel's bytes and duration (NWC23465), logout a second later (AUT22673).
    (alice,) = sessions(ctx.con, "pulse_connect_secure", "alice")
    assert alice["observer.name"] == "ics-edge-01"
    assert alice["source.ip"] == "203.0.113.45"
    assert alice["vpn.tunnel_ip"] == "10.200.1.17"
    assert alice["vpn.group"] == "Users"
    assert alice["session.start"] == at(2024, 2, 5, 10, 14, 3)
    assert alice["session.end"] == at(2024, 2, 5, 11, 2, 42)
    assert not alice["session.end_inferred"]
    assert (alice["source.bytes"], alice["destination.bytes"]) == (1048576, 73400320)
    assert alice["event.duration"] == 2919 * 10**9
    # corpus_vpn.log 2-4, 10-12 (standard format, 9.1): login, tunnel with 172.22.27.209 over
    # SSL, tunnel end, logout; the time is the RFC 5424 stamp with its +02:00 offset.
    first, *later = sessions(ctx.con, "pulse_connect_secure", "user.name")
    assert first["source.ip"] == "89.160.20.156"
    assert first["vpn.tunnel_ip"] == "172.22.27.209"
    assert first["vpn.tunnel_type"] == "ssl"
    assert first["session.start"] == at(2021, 10, 19, 7, 10, 35)
    assert first["session.end"] == at(2021, 10, 19, 7, 49, 41)
    # corpus_vpn.log 19/21: "deleted" and "timed out" of one session (whose start is not in
    # the log) make no session; the 22.x session at 12:59:02 (line 23) runs on unclosed.
    assert [s["session.start"] for s in later] == [
        at(2026, 4, 3, 12, 57, 46),
        at(2026, 4, 3, 12, 59, 2),
    ]
    assert later[1]["vpn.tunnel_type"] == "ipsec"
    assert later[1]["session.end"] is None
    # Administrator logins to the admin console are not VPN sessions.
    assert sessions(ctx.con, "pulse_connect_secure", "admin") == []
    skipped = ctx.con.execute(
        "SELECT events FROM sessions_skipped WHERE \"event.module\" = 'pulse_connect_secure'"
    ).fetchall()
    assert skipped == [(3,)]  # byes.sma's and user.name's deletions, jvl's tunnel end


def test_citrix_sessions(ctx: Context) -> None:
    # auth_admin_docs.log 3-4: SSLVPN LOGIN with intranet address (Nat_ip), LOGOUT summary.
    (bob,) = sessions(ctx.con, "citrix_adc", "bob")
    assert bob["observer.name"] == "gw-dmz-01"
    assert bob["source.ip"] == "203.0.113.9"
    assert bob["vpn.tunnel_ip"] == "10.30.0.17"
    assert bob["vpn.session_id"] == "5511"
    assert bob["session.start"] == at(2025, 10, 3, 15, 22, 1)
    assert bob["session.end"] == at(2025, 10, 3, 15, 52, 40)
    assert bob["session.end_reason"] == "Explicit"
    assert (bob["source.bytes"], bob["destination.bytes"]) == (1843200, 52428800)
    assert bob["event.duration"] == (30 * 60 + 39) * 10**9
    # corpus_sslvpn.log 4: a LOGOUT whose LOGIN is not in the log starts at its end minus
    # its Duration (00:36:00), which is its Start_time.
    (lone,) = sessions(ctx.con, "citrix_adc", "flsmsp0154@hs.mydomain.com")
    assert lone["session.start"] == at(2025, 7, 9, 18, 28, 20)
    assert lone["session.end"] == at(2025, 7, 9, 19, 4, 20)
    assert lone["session.end_reason"] == "TimedOut"
    assert lone["session.evidence"].endswith("(start = end - logged duration)")
    # "Mapped Ip" is no tunnel address; a login without logout ends when the cap passes.
    carol = sessions(ctx.con, "citrix_adc", "carol")
    assert [s["source.ip"] for s in carol] == ["198.51.100.200", "2001:db8::44"]
    assert carol[0]["vpn.tunnel_ip"] is None
    assert carol[0]["session.end_inferred"]


def test_sonicwall_sessions(ctx: Context) -> None:
    # sslvpn_and_admin_docs.log 1, 2, 4: NetExtender login, address assignment, logout.
    (alice,) = sessions(ctx.con, "sonicwall_firewall", "alice")
    assert alice["observer.name"] == "192.0.2.1"
    assert alice["source.ip"] == "203.0.113.45"
    assert alice["vpn.tunnel_ip"] == "10.50.0.23"
    assert alice["session.start"] == at(2024, 5, 6, 8, 1, 12)
    assert alice["session.end"] == at(2024, 5, 6, 9, 30, 2)
    assert alice["session.end_reason"] == "Logout by user"
    assert alice["session.evidence"] == "logged-in > address-assigned > logged-out"
    # SonicOS logs no byte counters at logout; the administrator's login is no session.
    assert alice["source.bytes"] is None
    assert sessions(ctx.con, "sonicwall_firewall", "admin") == []


def test_checkpoint_sessions(ctx: Context) -> None:
    # vpn.log 1 and 4: Endpoint Security VPN "Log In" with office-mode address, "Log Out"
    # with duration 35031 s (08:01:12 + 9:43:51 = 17:45:03).
    (jdoe,) = sessions(ctx.con, "checkpoint", "jdoe")
    assert jdoe["observer.name"] == "gw-hq"
    assert jdoe["source.ip"] == "198.51.100.23"
    assert jdoe["vpn.tunnel_ip"] == "10.8.0.12"
    assert jdoe["vpn.session_id"] == "{5A2F1E2C-0A1B-4C3D-9E8F-112233445566}"
    assert jdoe["session.start"] == at(2026, 11, 30, 8, 1, 12)
    assert jdoe["session.end"] == at(2026, 11, 30, 17, 45, 3)
    assert jdoe["event.duration"] == 35031 * 10**9
    # vpn.log 13 (key=value export) and 17 (Mobile Access, SSL Network Extender).
    (asmith,) = sessions(ctx.con, "checkpoint", "asmith")
    assert (asmith["observer.name"], asmith["vpn.tunnel_ip"]) == ("gw-branch", "10.9.0.5")
    (carol,) = sessions(ctx.con, "checkpoint", "carol")
    assert (carol["vpn.tunnel_ip"], carol["vpn.tunnel_type"]) == ("10.8.0.44", "ssl")
    # SmartConsole administrator logins (vpn.log 8) are not VPN sessions.
    assert sessions(ctx.con, "checkpoint", "admin") == []


def test_cef_leef_sessions(ctx: Context) -> None:
    # leef/vendors.log: UserLogin then UserLogout with the session's bytes.
    (leef,) = sessions(ctx.con, "leef", "jdoe")
    assert leef["vpn.tunnel_ip"] == "10.8.0.12"
    assert leef["session.start"] == at(2026, 11, 30, 9, 12, 1)
    assert leef["session.end"] == at(2026, 11, 30, 9, 14, 1)
    assert (leef["source.bytes"], leef["destination.bytes"]) == (1048576, 52428800)
    # cef/vendors.log: a Check Point and a GlobalProtect login, no logouts in the file.
    cef = sessions(ctx.con, "cef", "jdoe")
    assert [s["observer.name"] for s in cef] == ["fw01", "PA-220"]
    assert cef[0]["vpn.tunnel_ip"] == "10.8.0.12"
    # All three are successful logins for the detections.
    logins = ctx.con.execute(
        'SELECT "event.module", "observer.name" FROM logins '
        "WHERE \"event.module\" IN ('cef', 'leef') AND \"event.outcome\" = 'success' ORDER BY ALL"
    ).fetchall()
    assert logins == [("cef", "PA-220"), ("cef", "fw01"), ("leef", "vpn01")]


#: Per vendor: a session's gateway, user, public and tunnel address, start, and a moment
#: inside it at which only this session holds the tunnel address.
CASES = [
    ("pulse_connect_secure", "ics-edge-01", "alice", "203.0.113.45", "10.200.1.17",
     at(2024, 2, 5, 10, 14, 3), at(2024, 2, 5, 10, 40)),
    ("citrix_adc", "gw-dmz-01", "bob", "203.0.113.9", "10.30.0.17",
     at(2025, 10, 3, 15, 22, 1), at(2025, 10, 3, 15, 30)),
    ("sonicwall_firewall", "192.0.2.1", "alice", "203.0.113.45", "10.50.0.23",
     at(2024, 5, 6, 8, 1, 12), at(2024, 5, 6, 9, 0)),
    ("checkpoint", "gw-hq", "jdoe", "198.51.100.23", "10.8.0.12",
     at(2026, 11, 30, 8, 1, 12), at(2026, 11, 30, 8, 30)),
]  # fmt: skip


@pytest.mark.parametrize(("module", "gw", "user", "ip", "tunnel", "start", "inside"), CASES)
def test_login_reaches_detections_and_tunnel_flows_are_attributed(
    ctx: Context,
    module: str,
    gw: str,
    user: str,
    ip: str,
    tunnel: str,
    start: dt.datetime,
    inside: dt.datetime,
) -> None:
    login = ctx.con.execute(
        'SELECT "observer.name", "source.ip", "vpn.tunnel_ip", "user.key" FROM logins '
        'WHERE "event.module" = ? AND "user.name" = ? AND "@timestamp" = ? '
        "AND \"event.outcome\" = 'success'",
        [module, user, start],
    ).fetchall()
    assert login == [(gw, ip, tunnel, user)]
    flows = (
        "(SELECT * FROM (VALUES (CAST($ip AS VARCHAR), CAST($inside AS TIMESTAMPTZ)), "
        "($ip, $start - INTERVAL 1 HOUR)) AS t(ip, ts))"
    )
    got = ctx.con.execute(
        f'SELECT ts, "session.user", "session.gateway" '
        f"FROM ({attribute_sql(flows, ip_column='ip', ts_column='ts')}) ORDER BY ts",
        {"ip": tunnel, "inside": inside, "start": start},
    ).fetchall()
    # An hour before the login the address was no one's; inside the session it is the user's.
    assert [(u, g) for _, u, g in got] == [(None, None), (user, gw)]


def test_sonicwall_traffic_log_is_attributed(ctx: Context) -> None:
    """SonicWall's own record of the tunnel's traffic (sslvpn_and_admin_docs.log 3: from
    10.50.0.23 to a file server) belongs to alice's session."""
    got = ctx.con.execute(
        f'SELECT "session.user", "session.gateway" FROM ({attribute_sql("flows")}) '
        "WHERE \"source.ip\" = '10.50.0.23'"
    ).fetchall()
    assert got == [("alice", "192.0.2.1")]
