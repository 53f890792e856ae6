"""End to end: the simulated estate's alerts grouped into incidents (vpnsentry.correlate).

The appliance breach must come out as one incident that follows the intruder from the
gateway to the branch PCs and on to HQ, and the other scenarios must not be swallowed into
it. Which alerts belong to which attack is decided from the simulator's ground truth with
the matching ``vpnsentry evaluate`` uses (window with slack, an attacker-side entity, a
technique of the step at parent level).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from tests.detect.conftest import Estate

from vpnsentry.correlate.incidents import correlate
from vpnsentry.detect.base import TACTICS

BREACH = "vpn-appliance-breach"
OTHERS = ("password-spray", "rogue-admin", "session-hijack", "slow-exfil", "stolen-credential")
#: The steps from the gateway onwards: gateway -> branch PCs -> HQ -> crown jewels -> out.
CHAIN = range(102, 110)
ATTACKER_KEYS = {
    "attacker_ips",
    "attacker_ip",
    "source_ip",
    "source_host",
    "tunnel_ip",
    "user",
    "hosts",
    "c2_ip",
    "destination_ip",
    "gateway",
    "gateway_outside",
    "new_account",
}
SLACK = dt.timedelta(hours=2)


def _values(v: Any) -> Iterator[str]:
    if isinstance(v, list | tuple):
        for x in v:
            yield from _values(x)
    elif v is not None:
        yield str(v)


def _user(u: str) -> str:
    return "user:" + u.rsplit("\\", 1)[-1].split("@", 1)[0].lower()


def _ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def _step_entities(estate: Estate, step: dict[str, Any], users: bool) -> set[str]:
    names = {g.id: g.hostname.lower() for g in estate.inventory.gateways}
    out: set[str] = set()
    for key, value in (step.get("entities") or {}).items():
        if key not in ATTACKER_KEYS:
            continue
        for v in _values(value):
            if key == "gateway":
                out |= {"host:" + v.lower(), "host:" + names.get(v, v)}
            elif key in ("user", "new_account"):
                if users:
                    out.add(_user(v))
            else:
                out.add("ip:" + v)
    return out


def _alert_entities(row: dict[str, Any]) -> set[str]:
    out = {"ip:" + x for x in row["related.ip"] or ()}
    out |= {_user(u) for u in row["related.user"] or ()}
    hosts = [*(row["related.hosts"] or ()), row["observer.name"]]
    out |= {"host:" + h.lower() for h in hosts if h}
    return out


def _detecting(estate: Estate, step: dict[str, Any], users: bool = True) -> set[str]:
    """Ids of the active alerts that detect ``step``."""
    w = step.get("window") or {}
    if not w.get("start") or not w.get("end"):
        return set()
    start, end = _ts(w["start"]), _ts(w["end"])
    wanted = _step_entities(estate, step, users)
    techniques = {t.split(".")[0] for t in step.get("techniques", ())}
    out: set[str] = set()
    for r in estate.alerts.iter_rows(named=True):
        if r["alert.suppressed"]:
            continue
        a0, a1 = r["@timestamp"], r["event.end"] or r["@timestamp"]
        if a1 < start - SLACK or a0 > end + SLACK:
            continue
        if not _alert_entities(r) & wanted:
            continue
        if techniques & {t.split(".")[0] for t in r["threat.technique.id"] or ()}:
            out.add(r["alert.id"])
    return out


def test_appliance_breach_is_one_incident_and_swallows_no_other_attack(estate: Estate) -> None:
    steps = {s["id"]: s for s in estate.truth["steps"]}
    breach = set().union(
        *(_detecting(estate, s) for s in steps.values() if s["scenario"] == BREACH)
    )
    if not breach:
        pytest.skip("no detection fires on the appliance breach yet")
    incidents = correlate(estate.alerts, estate.inventory)
    where = {a: inc for inc in incidents for a in inc.alert_ids}
    main = max(incidents, key=lambda i: len(breach & set(i.alert_ids)))

    # Every alert on the intruder's way from the gateway onwards (named by an address or the
    # gateway, not only by the stolen account) is in the main incident.
    chain = {sid: _detecting(estate, steps[sid], users=False) for sid in CHAIN if sid in steps}
    for sid, ids in chain.items():
        outside = {a: where[a].title for a in ids if where[a].id != main.id}
        assert not outside, f"step {sid} alerts outside {main.title!r}: {outside}"
    assert len(breach & set(main.alert_ids)) >= 0.8 * len(breach)

    # Its entities: the gateway and the branch and HQ hosts the intruder reached.
    gateway = steps[101]["entities"]["gateway"] if 101 in steps else "vpn-sha-dc01"
    if any(chain.values()):
        assert gateway in main.gateways
    for sid in (103, 105):
        if chain.get(sid):
            hosts = set(steps[sid]["entities"]["hosts"]) | {
                steps[sid]["entities"].get("source_host")
            }
            assert hosts & set(main.hosts), (sid, main.hosts)
    if chain.get(103) and chain.get(105):
        assert {"sha-br", "tyo-hq"} <= set(main.sites)
        assert main.path and main.path[0].first_seen <= main.path[-1].first_seen
        assert any(e.src == gateway for e in main.path)
    order = list(TACTICS)
    assert [t for t, _ in main.tactics] == sorted((t for t, _ in main.tactics), key=order.index)

    # No other attack is merged into it.
    for scenario in OTHERS:
        theirs = set().union(
            *(_detecting(estate, s) for s in steps.values() if s["scenario"] == scenario)
        )
        swallowed = (theirs - breach) & set(main.alert_ids)
        assert not swallowed, f"{scenario} alerts in the breach incident: {sorted(swallowed)}"
