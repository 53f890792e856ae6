"""The PAN-OS writer's records, read back by the PAN-OS parser in every collector framing.

Small hand-made event frames (one session, failed logins, admin actions, a portal probe)
go through :mod:`vpnsentry.simulate.writers.panw_panos` and then :mod:`vpnsentry.parse`, and
the ECS fields that sessions and detections rely on are checked one by one: nothing is
quarantined, and each record has the field count of its type in the reviewed golden files.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from tests.conftest import make_ctx
from tests.helpers import run_lines
from tests.simulate.layouts import fields, golden_layouts
from vpnsentry.simulate.core import (
    ADMIN_SCHEMA,
    FAIL_SCHEMA,
    SESSION_SCHEMA,
    STATE,
    US,
    frame,
    ip_u32,
)
from vpnsentry.simulate.writers import Device
from vpnsentry.simulate.writers import panw_panos as w

T0 = int(dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC).timestamp()) * US
HOME, TUNNEL, ATTACKER = "198.51.100.23", "10.100.0.9", "203.0.113.66"


def device(header: str) -> Device:
    return Device(
        id="vpn-test",
        hostname="PA-TEST01",
        ip="192.0.2.1",
        tz="Asia/Tokyo",
        skew_us=1_500_000,
        header=header,
        serial="013201027814",
        outside="192.0.2.200",
        management="192.0.2.1",
        vendor="panw_panos",
    )


def lines(dev: Device) -> pl.DataFrame:
    """Every kind of record, for one user, one attacker and one admin."""
    extra = [pl.lit(250_000, dtype=pl.Int64).alias("_delay"), pl.lit("JP").alias("region")]
    session = frame(
        SESSION_SCHEMA,
        gw=[0], user=["alice"], group=[""], src=[ip_u32(HOME)], sport=[50000],
        tunnel=[ip_u32(TUNNEL)], start=[T0], end=[T0 + 2 * 3600 * US], out_bytes=[1000],
        in_bytes=[9000], sid=[1], reason=["idle"], tag=[-1],
    ).with_columns(extra)  # fmt: skip
    fails = frame(
        FAIL_SCHEMA,
        gw=[0, 0], user=["bob", "admin"], src=[ip_u32(ATTACKER)] * 2, sport=[1, 2],
        ts=[T0 - 60 * US, T0 - 50 * US], reason=["bad_password", "locked"], tag=[7, 7],
    ).with_columns(extra)  # fmt: skip
    admin = frame(
        ADMIN_SCHEMA,
        gw=[0] * 5,
        ts=[T0 + k * 60 * US for k in range(5)],
        user=["netadmin"] * 5,
        src=[ip_u32("192.0.2.10")] * 5,
        kind=["login_ok", "login_fail", "config", "config", "command"],
        action=[None, None, "set", "commit", None],
        path=[None, None, " vsys  vsys1 address  srv-1", None, None],
        obj=[None] * 5,
        attr=[None, None, "ip-netmask: 10.10.32.7/32", None, 'set address "a, b"'],
        tag=[-1] * 5,
    ).with_columns(extra[0])
    probe = pl.DataFrame(
        {"ts": [T0 - 3600 * US], "dur": [2 * US], "src": [ip_u32(ATTACKER)], "sport": [4000],
         "dst": [ip_u32("192.0.2.200")], "dport": [443], "proto": [6], "ob": [517], "rb": [1830],
         "op": [5], "rp": [6], "state": ["RSTO"], "user": [None], "tag": [-1], "_delay": [9],
         "nat": [None], "_id": [42], "src_loc": ["DE"]},
        schema_overrides={"src": pl.UInt32, "dst": pl.UInt32, "proto": pl.UInt8,
                          "state": STATE, "user": pl.String, "nat": pl.UInt32, "tag": pl.Int32},
    )  # fmt: skip
    return pl.concat(
        [
            w.session_lines(dev, session),
            w.fail_lines(dev, fails),
            w.admin_lines(dev, admin),
            w.portal_lines(dev, probe, "JP"),
        ]
    )


def parse(text: list[str]) -> dict[str, list[dict[str, Any]]]:
    res = run_lines("panw_panos", text, make_ctx(path="gw.log"), strict=False)
    return {name: table.to_dicts() for name, table in res.tables.items()}


@pytest.mark.parametrize("header", ["pri", "rfc3339", "bsd", "rfc5424"])
def test_every_record_parses_back(header: str) -> None:
    text = lines(device(header))["line"].to_list()
    tables = parse(text)
    assert "quarantine" not in tables or not tables["quarantine"], tables.get("quarantine")
    events, flows = tables["events"], tables["flows"]
    assert len(events) + len(flows) == len(text) == 6 + 2 + 6 + 1  # admin login: 2 lines
    assert {e["observer.name"] for e in events} == {"PA-TEST01"}
    by_action: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_action.setdefault(e["event.action"], []).append(e)
    # The session: authenticated twice, then an address, a tunnel and the logout.
    ok = by_action["logged-in"]
    vpn = [e for e in ok if e["user.roles"] is None]
    assert [(e["user.name"], e["source.ip"]) for e in vpn] == [("alice", HOME)] * 2
    for action in ("address-assigned", "client-vpn-tunnel-established", "client-vpn-connected"):
        [e] = by_action[action]
        assert (e["user.name"], e["source.ip"], e["vpn.tunnel_ip"]) == ("alice", HOME, TUNNEL)
        assert e["@timestamp"] <= dt.datetime.fromtimestamp(T0 / US + 1.5, dt.UTC)
    [bye] = by_action["client-vpn-disconnected"]
    assert bye["event.reason"] == "inactivity timeout"
    assert bye["event.duration"] == 2 * 3600 * 10**9
    # Generated Time: the firewall's clock (1.5 s fast) in UTC, to the second.
    assert bye["@timestamp"] == dt.datetime(2025, 3, 3, 11, 0, 1, tzinfo=dt.UTC)
    # Failed logins: one portal-auth each, with GlobalProtect's error text.
    failed = [e for e in by_action["logon-failed"] if e["user.roles"] is None]
    assert sorted((e["user.name"], e["source.ip"], e["event.reason"]) for e in failed) == [
        ("admin", ATTACKER, "Authentication failed: Account locked"),
        ("bob", ATTACKER, "Authentication failed: Invalid username or password"),
    ]
    # The administrator: logins (SYSTEM) and changes (CONFIG), all as Administrator.
    admin = [e for e in events if e["user.roles"] == "Administrator"]
    assert {(e["user.name"], e["source.ip"]) for e in admin} == {("netadmin", "192.0.2.10")}
    assert sorted(e["event.action"] for e in admin) == [
        "commit", "logged-in", "logged-in", "logon-failed", "set", "set",
    ]  # fmt: skip
    messages = {e["message"] for e in admin if e["event.category"] == "configuration"}
    assert "set  vsys  vsys1 address  srv-1  -> ip-netmask: 10.10.32.7/32" in messages
    assert 'set set address "a, b"' in messages  # the comma stayed inside its field
    # The portal probe: a connection to the firewall's own outside address.
    [probe] = flows
    assert (probe["source.ip"], probe["destination.ip"], probe["destination.port"]) == (
        ATTACKER,
        "192.0.2.200",
        443,
    )
    assert probe["flow.state"] == "tcp-rst-from-client"


def test_records_have_the_golden_field_counts() -> None:
    golden = golden_layouts()
    for line in lines(device("pri"))["line"]:
        f = fields(line)
        assert len(f) in golden[f[3]], (f[3], len(f), line)
