"""Lateral movement, discovery and collection: lateral_new_admin_connection, lateral_fan_out,
lateral_admin_chain and collection_share_sweep.

Hand-written flows over the bundled estate (Tokyo HQ 10.10/16, Shanghai branch 10.20/16,
crown jewels 10.10.33.0/24, jump host 10.10.40.10, scanner 10.10.40.50, backup server
10.10.32.60, the Shanghai DC gateway's inside address 10.60.250.1) pin thresholds,
baselines and allow-lists; the shared estate checks the detections on the simulator's
attack steps and benign traps.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import polars as pl
import pytest
from tests.detect.conftest import Estate, ts

from vpnsentry.enrich.sites import Inventory

NEW_ADMIN = "lateral_new_admin_connection"
FAN_OUT = "lateral_fan_out"
CHAIN = "lateral_admin_chain"
SWEEP = "collection_share_sweep"
MINE = (NEW_ADMIN, FAN_OUT, CHAIN, SWEEP)

BRANCH_PC = "10.20.0.30"  # sha-br workstation
BRANCH_DC, BRANCH_FS = "10.20.32.10", "10.20.32.20"
HQ_PC, HQ_PC2 = "10.10.0.92", "10.10.0.95"
HQ_DC, HQ_FS = "10.10.32.10", "10.10.32.20"
CROWN_SRC, CROWN_FS = "10.10.33.10", "10.10.33.20"
GW_INSIDE = "10.60.250.1"
SCANNER, BACKUP, JUMP = "10.10.40.50", "10.10.32.60", "10.10.40.10"
BRANCH_FILE_SERVERS = ("10.30.32.20", "10.40.32.20", "10.50.32.20", "10.35.32.20")


def flow(
    src: str,
    dst: str,
    dport: int,
    at: dt.datetime,
    *,
    rb: int = 20_000,
    ob: int = 2_000,
    sensor: str = "zeek-tyo-hq",
) -> dict[str, Any]:
    """One Zeek-style connection (bidirectional: reply bytes in destination.bytes)."""
    return {
        "@timestamp": at,
        "event.module": "zeek_conn",
        "observer.name": sensor,
        "source.ip": src,
        "source.port": 50_000,
        "destination.ip": dst,
        "destination.port": dport,
        "network.transport": "tcp",
        "source.bytes": ob,
        "destination.bytes": rb,
        "flow.state": "SF",
    }


def daily(
    src: str, targets: Iterable[tuple[str, int]], days: Iterable[int], hour: float = 2
) -> list[dict[str, Any]]:
    """``src`` reaches every (dst, port) once on each of ``days`` (its routine)."""
    return [flow(src, d, p, ts(days=day, hours=hour)) for day in days for d, p in targets]


#: A branch PC's ordinary day: its own domain controller and file server.
BRANCH_ROUTINE = ((BRANCH_DC, 389), (BRANCH_FS, 445))
HQ_ROUTINE = ((HQ_DC, 389), (HQ_FS, 445))


def vpn_session(
    user: str, tunnel: str, start: dt.datetime, end: dt.datetime, sid: str
) -> list[dict[str, Any]]:
    """A FortiGate SSL VPN tunnel up/down pair (what enrich/sessions.py pairs)."""
    base = {
        "event.module": "fortinet_fortigate",
        "observer.name": "FGT-SHA-DC01",
        "event.category": "session",
        "vpn.session_id": sid,
        "vpn.tunnel_type": "ssl-tunnel",
        "user.name": user,
        "source.ip": "126.1.2.3",
        "vpn.tunnel_ip": tunnel,
    }
    return [
        {**base, "@timestamp": start, "event.type": "start", "event.action": "tunnel-up"},
        {**base, "@timestamp": end, "event.type": "end", "event.action": "tunnel-down"},
    ]


def evidence(alerts: pl.DataFrame, i: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(alerts["alert.evidence"][i])
    return out


# -- lateral_new_admin_connection -----------------------------------------------------------


def branch_to_hq(day: float) -> list[dict[str, Any]]:
    """The branch PC opens SMB and WinRM to two HQ PCs."""
    at = ts(days=day, hours=3)
    return [
        flow(BRANCH_PC, HQ_PC, 445, at, rb=31_000, ob=1_400_000),
        flow(BRANCH_PC, HQ_PC, 5985, at + dt.timedelta(seconds=30)),
        flow(BRANCH_PC, HQ_PC2, 445, at + dt.timedelta(minutes=40), ob=1_400_000),
    ]


def test_new_admin_branch_pc_to_hq_pcs(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(9)) + branch_to_hq(9)
    alerts = run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["source.ip"] == BRANCH_PC
    assert a["alert.key"] == f"ip:{BRANCH_PC}|2025-03-12"
    assert a["alert.severity"] == "high"  # PC-to-PC
    assert a["@timestamp"] == ts(days=9, hours=3)
    assert set(a["related.ip"]) == {BRANCH_PC, HQ_PC, HQ_PC2}
    ev = evidence(alerts)
    assert ev["new_hosts"] == 2 and ev["workstation_hosts"] == 2
    assert ev["ports"] == [445, 5985] and ev["other_sites"] == ["tyo-hq"]
    assert "2 host(s)" in a["alert.summary"] and "tyo-hq" in a["alert.summary"]


def test_new_admin_cold_start(run_detection: Any, bundled_inventory: Inventory) -> None:
    """Six days of history is less than learning_days (7): nothing is judged yet."""
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(6)) + branch_to_hq(6)
    assert run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory).is_empty()
    alerts = run_detection(
        NEW_ADMIN, flows=flows, inventory=bundled_inventory, params={"learning_days": 5}
    )
    assert alerts.height == 1


def test_new_admin_old_edges_are_not_new(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(10)) + daily(BRANCH_PC, [(HQ_PC, 445)], [1])
    flows += [flow(BRANCH_PC, HQ_PC, 445, ts(days=9, hours=5))]
    assert run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory).is_empty()


def test_new_admin_established_admin_is_silent(
    run_detection: Any, bundled_inventory: Inventory
) -> None:
    """A PC that RDPed to five servers in its first week is an admin workstation."""
    pc = "10.10.0.40"
    servers = [("10.10.32.30", 3389), ("10.10.32.31", 3389), ("10.10.32.40", 22)]
    servers += [("10.10.32.50", 5985), ("10.10.32.51", 3389)]
    flows = daily(pc, HQ_ROUTINE, range(10)) + daily(pc, servers, [1, 2])
    flows += [flow(pc, "10.20.32.20", 3389, ts(days=9, hours=4))]
    assert run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory).is_empty()
    # The same first RDP from a PC without that history is an alert.
    flows = [*daily(pc, HQ_ROUTINE, range(10)), flow(pc, "10.20.32.20", 3389, ts(days=9, hours=4))]
    alerts = run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory)
    assert alerts["source.ip"].to_list() == [pc]
    assert alerts["alert.severity"].to_list() == ["medium"]


def test_new_admin_admin_history_must_predate_the_burst(
    run_detection: Any, bundled_inventory: Inventory
) -> None:
    """A burst to many hosts on day 9 does not make day 10's next hops an admin's routine."""
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(11))
    flows += [flow(BRANCH_PC, f"10.10.0.{10 + i}", 3389, ts(days=9, hours=3)) for i in range(6)]
    flows += [flow(BRANCH_PC, "10.10.0.60", 5985, ts(days=10, hours=3))]
    alerts = run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory)
    assert sorted(alerts["alert.key"].to_list()) == [
        f"ip:{BRANCH_PC}|2025-03-12",
        f"ip:{BRANCH_PC}|2025-03-13",
    ]


def test_new_admin_allow_listed_jump_host(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = [*daily(JUMP, [(HQ_DC, 389)], range(10)), flow(JUMP, HQ_PC, 3389, ts(days=9))]
    assert run_detection(NEW_ADMIN, flows=flows, inventory=bundled_inventory).is_empty()
    # Without the inventory's allow-list the same connection is judged like any other.
    assert run_detection(NEW_ADMIN, flows=flows, inventory=None).height == 1


def test_new_admin_peer_routine_edge(run_detection: Any, bundled_inventory: Inventory) -> None:
    """An R&D PC's first visit to the R&D file server is what its subnet does."""
    pc = "10.10.16.30"
    peers = ["10.10.16.31", "10.10.16.32", "10.10.16.33"]
    flows = [*daily(pc, HQ_ROUTINE, range(10)), flow(pc, CROWN_FS, 445, ts(days=9, hours=4))]
    routine = flows + [f for p in peers for f in daily(p, [(CROWN_FS, 445)], range(3))]
    assert run_detection(NEW_ADMIN, flows=routine, inventory=bundled_inventory).is_empty()
    rare = flows + [f for p in peers[:2] for f in daily(p, [(CROWN_FS, 445)], range(3))]
    alerts = run_detection(NEW_ADMIN, flows=rare, inventory=bundled_inventory)
    assert alerts.height == 1
    assert evidence(alerts)["crown_jewel_hosts"] == 1
    assert alerts["alert.severity"][0] == "high"


def remote_days(user: str, days: Iterable[int]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """One VPN session a day, each with a new tunnel address; the address per day."""
    events: list[dict[str, Any]] = []
    tunnels: dict[int, str] = {}
    for day in days:
        tunnels[day] = f"10.101.0.{10 + day}"
        events += vpn_session(
            user, tunnels[day], ts(days=day, hours=1), ts(days=day, hours=9), f"{user}-{day}"
        )
    return events, tunnels


def test_new_admin_vpn_user_rdp_to_own_pc(run_detection: Any, bundled_inventory: Inventory) -> None:
    events, tun = remote_days("KASUMI\\j.li", range(11))
    flows = [flow(tun[d], BRANCH_FS, 445, ts(days=d, hours=2)) for d in range(11)]
    own_pc = [flow(tun[9], BRANCH_PC, 3389, ts(days=9, hours=3))]
    alerts = run_detection(
        NEW_ADMIN, events=events, flows=flows + own_pc, inventory=bundled_inventory
    )
    assert alerts.is_empty()
    # A second office PC the next day is not "my desk" any more.
    other_pc = [flow(tun[10], "10.20.0.31", 3389, ts(days=10, hours=3))]
    alerts = run_detection(
        NEW_ADMIN, events=events, flows=flows + own_pc + other_pc, inventory=bundled_inventory
    )
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["user.name"] == "KASUMI\\j.li"
    assert a["alert.key"] == "user:j.li|2025-03-13"
    assert a["related.user"] == ["KASUMI\\j.li"]
    assert a["source.ip"] == tun[10]


# -- lateral_fan_out ------------------------------------------------------------------------


def sweep_hosts(src: str, day: float, n: int, port: int = 445, rb: int = 0) -> list[dict[str, Any]]:
    at = ts(days=day, hours=4)
    return [
        flow(src, f"10.20.0.{1 + i}", port, at + dt.timedelta(seconds=i), rb=rb) for i in range(n)
    ]


def test_fan_out_scan(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = daily(HQ_PC, (*HQ_ROUTINE, (CROWN_FS, 445)), range(8)) + sweep_hosts(HQ_PC, 8, 40)
    alerts = run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["source.ip"] == HQ_PC and a["related.ip"] == [HQ_PC]
    assert a["alert.severity"] == "high"  # none answered
    ev = evidence(alerts)
    assert ev["hosts"] == 40 and ev["silent_hosts"] == 40
    assert ev["baseline_max_hosts"] == 3 and ev["baseline_days"] == 8
    assert ev["top_ports"] == [{"port": 445, "hosts": 40}]
    # Below min_hosts: silent.
    flows = daily(HQ_PC, HQ_ROUTINE, range(8)) + sweep_hosts(HQ_PC, 8, 24)
    assert run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory).is_empty()


def test_fan_out_no_history_is_judged(run_detection: Any, bundled_inventory: Inventory) -> None:
    """A breached gateway's inside address that suddenly scans has no baseline to hide in."""
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(3)) + sweep_hosts(GW_INSIDE, 2, 30)
    alerts = run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory)
    assert alerts["source.ip"].to_list() == [GW_INSIDE]
    assert "no earlier history" in alerts["alert.summary"][0]
    # On the first day of the data nobody has history: not judged.
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(2, 3)) + sweep_hosts(GW_INSIDE, 2, 30)
    assert run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory).is_empty()


def test_fan_out_baseline_and_allow_list(run_detection: Any, bundled_inventory: Inventory) -> None:
    # A source that reaches 40 hosts every day is not scanning when it reaches 45.
    busy = "10.10.32.51"
    flows = [f for d in range(8) for f in sweep_hosts(busy, d, 40, rb=5000)]
    flows += sweep_hosts(busy, 8, 45, rb=5000)
    assert run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory).is_empty()
    # ... but 3x its busiest day is.
    flows += [flow(busy, f"10.30.0.{i}", 445, ts(days=8, hours=5)) for i in range(1, 80)]
    assert run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory).height == 1
    # The allow-listed scanner may sweep everything.
    scan = daily(BRANCH_PC, BRANCH_ROUTINE, range(4)) + sweep_hosts(SCANNER, 3, 200)
    assert run_detection(FAN_OUT, flows=scan, inventory=bundled_inventory).is_empty()
    assert run_detection(FAN_OUT, flows=scan, inventory=None).height == 1


def test_fan_out_ignores_reply_halves(run_detection: Any, bundled_inventory: Inventory) -> None:
    """NetFlow's server -> client records go to the clients' ephemeral ports."""
    wsus = "10.10.32.50"
    flows = [
        flow(wsus, f"10.10.0.{i}", 49_152 + i, ts(days=5, hours=3), sensor="nf")
        for i in range(1, 120)
    ]
    assert run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory).is_empty()


def test_fan_out_vertical_scan(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = daily(HQ_PC, HQ_ROUTINE, range(8))
    flows += [flow(HQ_PC, HQ_FS, port, ts(days=8, hours=3), rb=0) for port in range(1, 23)]
    alerts = run_detection(FAN_OUT, flows=flows, inventory=bundled_inventory)
    assert alerts.height == 1
    assert evidence(alerts)["max_ports_one_host"] == 22


def test_fan_out_follows_the_vpn_user(run_detection: Any, bundled_inventory: Inventory) -> None:
    events, tun = remote_days("p.saelim", range(9))
    flows = [flow(tun[d], BRANCH_FS, 445, ts(days=d, hours=2)) for d in range(9)]
    flows += sweep_hosts(tun[8], 8, 30)
    alerts = run_detection(FAN_OUT, events=events, flows=flows, inventory=bundled_inventory)
    a = alerts.row(0, named=True)
    assert a["user.name"] == "p.saelim" and a["source.ip"] == tun[8]
    assert a["alert.key"] == f"user:p.saelim|{tun[8]}|2025-03-11"
    assert evidence(alerts)["baseline_days"] == 8


# -- lateral_admin_chain --------------------------------------------------------------------


def chain_flows(hop1_day: float, scanner_hop: bool = False) -> list[dict[str, Any]]:
    a = SCANNER if scanner_hop else GW_INSIDE
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(10))
    flows += [flow(a, BRANCH_PC, 445, ts(days=hop1_day), ob=1_400_000)]
    return flows + branch_to_hq(9)


def test_chain_gateway_to_branch_pc_to_hq(run_detection: Any, bundled_inventory: Inventory) -> None:
    alerts = run_detection(CHAIN, flows=chain_flows(8.5), inventory=bundled_inventory)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["alert.key"] == f"{BRANCH_PC}|2025-03-12"
    assert a["source.ip"] == BRANCH_PC
    assert a["@timestamp"] == ts(days=8.5)
    assert set(a["related.ip"]) == {GW_INSIDE, BRANCH_PC, HQ_PC, HQ_PC2}
    ev = evidence(alerts)
    assert ev["inbound_sources"] == [GW_INSIDE] and ev["outbound_count"] == 2
    assert ev["hours_between"] == 15.0
    assert a["alert.severity"] == "high"


def test_chain_needs_both_hops_in_order(run_detection: Any, bundled_inventory: Inventory) -> None:
    # The inbound hop after the outbound one is no chain.
    assert run_detection(CHAIN, flows=chain_flows(9.5), inventory=bundled_inventory).is_empty()
    # Too long before it.
    flows = chain_flows(8.5)
    assert run_detection(
        CHAIN, flows=flows, inventory=bundled_inventory, params={"max_hours": 12}
    ).is_empty()
    # A scanner's probe is not a hop.
    flows = chain_flows(8.5, scanner_hop=True)
    assert run_detection(CHAIN, flows=flows, inventory=bundled_inventory).is_empty()
    # No outbound half: the branch PC only did its routine.
    flows = [
        f
        for f in chain_flows(8.5)
        if f["source.ip"] != BRANCH_PC or f["destination.ip"] in (BRANCH_DC, BRANCH_FS)
    ]
    assert run_detection(CHAIN, flows=flows, inventory=bundled_inventory).is_empty()


def test_chain_to_crown_jewels_is_critical(
    run_detection: Any, bundled_inventory: Inventory
) -> None:
    flows = daily(HQ_PC, HQ_ROUTINE, range(12))
    flows += [flow(BRANCH_PC, HQ_PC, 5985, ts(days=9, hours=2))]
    flows += [flow(HQ_PC, CROWN_SRC, 445, ts(days=11, hours=2), rb=40_000_000)]
    alerts = run_detection(CHAIN, flows=flows, inventory=bundled_inventory)
    assert alerts["alert.severity"].to_list() == ["critical"]
    assert set(alerts["related.ip"][0]) == {BRANCH_PC, HQ_PC, CROWN_SRC}


# -- collection_share_sweep -----------------------------------------------------------------


def share_sweep(src: str, day: float, servers: Iterable[str], rb: int) -> list[dict[str, Any]]:
    at = ts(days=day, hours=6)
    return [
        flow(src, s, 445, at + dt.timedelta(minutes=5 * i), rb=rb) for i, s in enumerate(servers)
    ]


def test_sweep_file_servers_across_sites(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = daily(BRANCH_PC, BRANCH_ROUTINE, range(2))
    flows += share_sweep(BRANCH_PC, 1, BRANCH_FILE_SERVERS, rb=60_000)
    alerts = run_detection(SWEEP, flows=flows, inventory=bundled_inventory)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["alert.key"] == f"ip:{BRANCH_PC}|2025-03-04"
    assert set(a["related.ip"]) == {BRANCH_PC, *BRANCH_FILE_SERVERS}
    ev = evidence(alerts)
    assert ev["new_servers"] == 4 and ev["sweep"] and not ev["crown_pull"]
    assert sorted(ev["sites"]) == ["bkk-br", "chi-br", "dus-br", "han-br"]
    assert a["alert.severity"] == "medium"


def test_sweep_negatives(run_detection: Any, bundled_inventory: Inventory) -> None:
    base = daily(BRANCH_PC, BRANCH_ROUTINE, range(2))
    # Refused probes (a scan) are not share sessions.
    flows = base + share_sweep(BRANCH_PC, 1, BRANCH_FILE_SERVERS, rb=120)
    assert run_detection(SWEEP, flows=flows, inventory=bundled_inventory).is_empty()
    # Two sites is what an ordinary user does.
    flows = base + share_sweep(BRANCH_PC, 1, (*BRANCH_FILE_SERVERS[:2], HQ_FS), rb=60_000)
    assert run_detection(SWEEP, flows=flows, inventory=bundled_inventory).is_empty()
    # The backup server reads everything, every night; another server doing so is news.
    for server, expected in ((BACKUP, 0), ("10.10.32.61", 1)):
        flows = share_sweep(server, 1, BRANCH_FILE_SERVERS, rb=9_000_000_000)
        flows += daily(server, [(HQ_DC, 389)], range(2))
        assert run_detection(SWEEP, flows=flows, inventory=bundled_inventory).height == expected
    # Servers the actor already used the day before are not new.
    flows = base + share_sweep(BRANCH_PC, 0, BRANCH_FILE_SERVERS, rb=60_000)
    flows += share_sweep(BRANCH_PC, 1, BRANCH_FILE_SERVERS, rb=60_000)
    alerts = run_detection(SWEEP, flows=flows, inventory=bundled_inventory)
    assert alerts.is_empty()  # day 0 is the actor's first day: no judgement either


def test_crown_jewel_pull(run_detection: Any, bundled_inventory: Inventory) -> None:
    flows = daily(HQ_PC, HQ_ROUTINE, range(9))
    pull = share_sweep(HQ_PC, 8, [CROWN_SRC], rb=60_000_000)
    alerts = run_detection(SWEEP, flows=flows + pull, inventory=bundled_inventory)
    assert alerts.height == 1
    a = alerts.row(0, named=True)
    assert a["alert.severity"] == "high" and a["destination.ip"] == CROWN_SRC
    assert a["network.bytes"] == 60_000_000
    assert evidence(alerts)["crown_pull"]
    # 40 MB is under min_crown_bytes.
    small = share_sweep(HQ_PC, 8, [CROWN_SRC], rb=40_000_000)
    assert run_detection(SWEEP, flows=flows + small, inventory=bundled_inventory).is_empty()
    # Cold start: a PC first seen four days ago.
    young = daily(HQ_PC, HQ_ROUTINE, range(4, 9)) + pull
    assert run_detection(SWEEP, flows=young, inventory=bundled_inventory).is_empty()
    # A crown-jewel server the PC always used: volume alone is not collection.
    used = flows + daily(HQ_PC, [(CROWN_SRC, 445)], range(8)) + pull
    assert run_detection(SWEEP, flows=used, inventory=bundled_inventory).is_empty()


# -- the shared estate ----------------------------------------------------------------------


def step_id(estate: Estate, name: str) -> int:
    """Step ids depend on the scenario order: find steps by name."""
    return int(next(s["id"] for s in estate.truth["steps"] if s["name"] == name))


@pytest.mark.parametrize(
    ("step", "rule"),
    [
        ("internal-discovery-from-gateway", FAN_OUT),
        ("network-scan-from-tunnel", FAN_OUT),
        ("directory-and-share-discovery", SWEEP),
        ("lateral-movement-branch-to-hq", NEW_ADMIN),
        ("lateral-movement-branch-to-hq", CHAIN),
        ("malware-delivery-to-branch", CHAIN),
        ("collection-from-crown-jewels", SWEEP),
        ("file-collection-over-vpn", SWEEP),
    ],
)
def test_estate_fires_on_steps(estate: Estate, step: str, rule: str) -> None:
    rules = estate.rules_for_step(step_id(estate, step))
    assert rule in rules, (step, rules)


@pytest.mark.parametrize(
    "trap",
    ["admin-cross-site", "rdp-from-home", "vulnerability-scan", "nightly-backup", "patch-day"],
)
def test_estate_silent_on_traps(estate: Estate, trap: str) -> None:
    assert estate.trap(trap)["instances"], trap  # the trap is in the estate
    _, rules = estate.evaluation.traps_fired.get(trap, (0, []))
    assert not set(rules) & set(MINE), (trap, rules)


@pytest.mark.parametrize("rule", MINE)
def test_estate_false_positives(estate: Estate, rule: str) -> None:
    assert not estate.of(rule).is_empty(), rule
    assert estate.evaluation.fp_by_rule.get(rule, 0) <= 1, estate.evaluation.fp_by_rule
