"""Correlation: alerts -> incidents that follow the attacker, on hand-built alert frames."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from vpnsentry.correlate import attack
from vpnsentry.correlate.incidents import Params, correlate, fmt_bytes, fmt_duration, incident_id
from vpnsentry.correlate.model import Incident, incident_from_dict, incident_to_dict
from vpnsentry.enrich.sites import Inventory, parse_inventory
from vpnsentry.simulate import default_estate_text
from vpnsentry.store.store import Store, ecs_alerts

T0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
MIB = 1024 * 1024
CREATED = dt.datetime(2025, 4, 2, 9, 0, tzinfo=dt.UTC)


def at(days: float, hours: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, hours=hours)


@pytest.fixture(scope="module")
def inv() -> Inventory:
    """The simulator's bundled estate: vpn-sha-dc01 (FGT-SHA-DC01) inside 10.60.250.1."""
    return parse_inventory(default_estate_text(), source="default_estate.yaml")


def alert(
    rule: str,
    start: dt.datetime,
    end: dt.datetime | None = None,
    *,
    key: str | None = None,
    sev: str = "high",
    tactics: tuple[str, ...] = (),
    techniques: tuple[str, ...] = (),
    src: str | None = None,
    dst: str | None = None,
    port: int | None = None,
    user: str | None = None,
    host: str | None = None,
    observer: str | None = None,
    ips: tuple[str, ...] = (),
    users: tuple[str, ...] = (),
    hosts: tuple[str, ...] = (),
    nbytes: int | None = None,
    summary: str = "",
    suppressed: bool = False,
    created: dt.datetime = CREATED,
    evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One alert row as the engine would write it (related.* filled the same way)."""
    from vpnsentry.detect.base import SEVERITIES, TACTICS

    k = key or f"{src}|{dst}|{user}|{start.isoformat()}"
    rel_ip = [x for x in (src, dst, *ips) if x]
    rel_user = [x for x in (user, *users) if x]
    rel_hosts = [x for x in (host, observer, *hosts) if x]
    return {
        "alert.id": hashlib.sha256(f"{rule}\x1f{k}".encode()).hexdigest()[:20],
        "@timestamp": start,
        "event.end": end or start,
        "event.created": created,
        "rule.id": rule,
        "rule.name": rule.replace("_", " ").capitalize(),
        "alert.severity": sev,
        "event.risk_score": SEVERITIES[sev],
        "threat.tactic.id": list(tactics),
        "threat.tactic.name": [TACTICS[t] for t in tactics],
        "threat.technique.id": list(techniques),
        "alert.key": k,
        "alert.summary": summary or f"{rule} {src or ''}->{dst or ''} {user or ''}",
        "alert.evidence": json.dumps(evidence or {}),
        "user.name": user,
        "source.ip": src,
        "destination.ip": dst,
        "destination.port": port,
        "host.name": host,
        "observer.name": observer,
        "network.bytes": nbytes,
        "related.ip": list(dict.fromkeys(rel_ip)) or None,
        "related.user": rel_user or None,
        "related.hosts": rel_hosts or None,
        "alert.suppressed": suppressed,
        "alert.suppression": "[x] test" if suppressed else None,
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    df = pl.DataFrame(
        rows,
        schema_overrides={
            "threat.tactic.id": pl.List(pl.String),
            "threat.tactic.name": pl.List(pl.String),
            "threat.technique.id": pl.List(pl.String),
            "related.ip": pl.List(pl.String),
            "related.user": pl.List(pl.String),
            "related.hosts": pl.List(pl.String),
        },
    )
    return ecs_alerts(df)


# The appliance breach, four alerts: gateway -> branch PC -> HQ server -> outside.
def breach() -> list[dict[str, Any]]:
    return [
        alert(
            "appliance_exploit",
            at(2, 18),
            at(2, 18.05),
            sev="critical",
            tactics=("TA0001",),
            techniques=("T1190",),
            src="5.9.7.203",
            observer="FGT-SHA-DC01",
            summary="Portal requests with oversized answers from 5.9.7.203",
        ),
        alert(
            "lateral_from_gateway",
            at(4, 19),
            at(5, 21),
            tactics=("TA0008",),
            techniques=("T1021.002", "T1570"),
            src="10.60.250.1",
            dst="10.20.0.30",
            port=445,
            observer="nf-sha-br",
        ),
        alert(
            "lateral_branch_to_hq",
            at(12, 1),
            at(13, 3),
            tactics=("TA0008",),
            techniques=("T1021.001",),
            src="10.20.0.30",
            dst="10.10.33.10",
            port=3389,
            user="KASUMI\\e.sasaki",
            observer="asa-tyo-hq01",
        ),
        alert(
            "exfil_large_upload",
            at(17, 1),
            at(17, 6),
            sev="critical",
            tactics=("TA0010",),
            techniques=("T1048.002",),
            src="10.10.33.10",
            dst="149.28.98.229",
            port=443,
            nbytes=200 * MIB,
            observer="asa-tyo-hq01",
        ),
    ]


def test_chain_gateway_branch_hq_outside_is_one_incident(inv: Inventory) -> None:
    rows = breach()
    random.Random(7).shuffle(rows)
    incidents = correlate(frame(rows), inv)
    assert len(incidents) == 1
    inc = incidents[0]
    assert len(inc.alert_ids) == 4
    assert [t for t, _ in inc.tactics] == ["TA0001", "TA0008", "TA0010"]
    assert inc.techniques == ("T1190", "T1021.002", "T1570", "T1021.001", "T1048.002")
    assert [(e.src, e.dst, e.port) for e in inc.path] == [
        ("vpn-sha-dc01", "10.20.0.30", 445),
        ("10.20.0.30", "10.10.33.10", 3389),
        ("10.10.33.10", "149.28.98.229", 443),
    ]
    assert inc.path[0].src_label == "vpn-sha-dc01 (gateway FGT-SHA-DC01, sha-dc)"
    assert inc.path[0].dst_label == "10.20.0.30 (workstations, sha-br)"
    assert inc.path[1].dst_label == "src-tyo01 10.10.33.10 (source_code, tyo-hq)"
    assert inc.path[2].dst_label.startswith("149.28.98.229 (external")
    assert inc.gateways[0] == "vpn-sha-dc01"
    assert {"10.20.0.30", "10.10.33.10"} <= set(inc.hosts)
    assert {"sha-dc", "sha-br", "tyo-hq"} <= set(inc.sites)
    assert inc.bytes_out == 200 * MIB and inc.destinations == ("149.28.98.229",)
    assert inc.title.startswith("VPN gateway vpn-sha-dc01 (FGT-SHA-DC01) compromised")
    assert "lateral movement to 2 hosts" in inc.title
    assert inc.title.endswith("200 MiB sent to 149.28.98.229")
    assert inc.severity == "critical" and inc.confidence > 0.8
    assert inc.first_seen == at(2, 18) and inc.last_seen == at(17, 6)
    assert inc.detected_at == CREATED
    assert inc.dwell_seconds == (CREATED - at(2, 18)).total_seconds()
    assert inc.users == ("KASUMI\\e.sasaki",)
    assert inc.id == incident_id(inc.extra["founding_alert"])  # type: ignore[arg-type]
    assert inc.extra["founding_alert"] == inc.alert_ids[0]
    assert len(inc.extra["links"]) == 3  # type: ignore[arg-type]


def test_progress_raises_confidence(inv: Inventory) -> None:
    one = correlate(frame(breach()[:1]), inv)[0]
    full = correlate(frame(breach()), inv)[0]
    assert one.confidence < full.confidence
    assert one.risk_score <= full.risk_score
    assert one.extra["stages"] == 1 and full.extra["stages"] == 3


def test_logins_through_one_gateway_are_not_joined_by_it(inv: Inventory) -> None:
    rows = [
        alert(
            "auth_hosting_asn",
            at(1),
            user="alice",
            src="45.32.1.10",
            observer="asa-tyo-hq01",
            tactics=("TA0001",),
            techniques=("T1078",),
            ips=("10.100.0.5",),
        ),
        alert(
            "auth_hosting_asn",
            at(1, 2),
            user="bob",
            src="139.59.2.20",
            observer="asa-tyo-hq01",
            tactics=("TA0001",),
            techniques=("T1078",),
        ),
    ]
    incidents = correlate(frame(rows), inv)
    assert len(incidents) == 2
    assert all(i.gateways == ("vpn-tyo-hq01",) for i in incidents)


def test_two_unrelated_attacks_weeks_apart_stay_two(inv: Inventory) -> None:
    first = [
        alert(
            "auth_hosting_asn",
            at(1),
            user="alice",
            src="45.32.1.10",
            observer="asa-tyo-hq01",
            tactics=("TA0001",),
            techniques=("T1078",),
            ips=("10.100.0.5",),
        ),
        alert(
            "lateral_new_admin_connection",
            at(1, 1),
            src="10.100.0.5",
            dst="10.10.32.20",  # fs-tyo01: a file server every user reaches
            port=445,
            tactics=("TA0008",),
            techniques=("T1021.002",),
        ),
    ]
    second = [
        alert(
            "auth_impossible_travel",
            at(22),
            user="alice",  # the same account, three weeks later: a new episode
            src="128.199.88.175",
            observer="ovpn-dus-br01",
            tactics=("TA0001",),
            techniques=("T1078",),
            ips=("10.102.0.9",),
        ),
        alert(
            "lateral_new_admin_connection",
            at(22, 1),
            src="10.102.0.9",
            dst="10.10.32.20",
            port=445,
            tactics=("TA0008",),
            techniques=("T1021.002",),
        ),
    ]
    incidents = correlate(frame(first + second), inv)
    assert len(incidents) == 2
    by_start = sorted(incidents, key=lambda i: i.first_seen)
    assert len(by_start[0].alert_ids) == 2 and len(by_start[1].alert_ids) == 2
    assert by_start[0].first_seen == at(1) and by_start[1].first_seen == at(22)
    assert by_start[0].title == (
        "VPN login as alice from 45.32.1.10 at vpn-tyo-hq01 → lateral movement to 1 host"
    )
    # A wider window joins them through the account.
    wide = correlate(frame(first + second), inv, params=Params(window=dt.timedelta(days=30)))
    assert len(wide) == 1


def _dc_alerts(n: int) -> list[dict[str, Any]]:
    """``n`` unrelated users each reach the domain controller, days apart."""
    return [
        alert(
            "lateral_new_admin_connection",
            at(i * 0.5),
            sev="medium",
            src=f"10.10.{i // 200}.{i % 200 + 20}",
            dst="10.10.32.10",
            port=389,
            user=f"user{i}",
            tactics=("TA0008",),
            techniques=("T1021",),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("with_inventory", [True, False])
def test_hub_entity_does_not_merge_everything(inv: Inventory, with_inventory: bool) -> None:
    rows = _dc_alerts(30)
    # The domain controller itself acting once would link every alert that reached it.
    rows.append(
        alert(
            "lateral_fan_out",
            at(3),
            src="10.10.32.10",
            dst="10.10.0.200",
            port=445,
            tactics=("TA0008",),
            techniques=("T1021.002",),
        )
    )
    incidents = correlate(frame(rows), inv if with_inventory else None)
    assert len(incidents) == 31
    hubs = {h for i in incidents for h in i.extra.get("hub_entities", [])}  # type: ignore[attr-defined]
    assert "ip:10.10.32.10" in hubs


def test_shared_target_links_unless_server(inv: Inventory) -> None:
    c2 = [
        alert(
            "c2_beacon",
            at(1),
            at(5),
            src=pc,
            dst="128.199.55.106",
            port=443,
            tactics=("TA0011",),
            techniques=("T1071.001",),
        )
        for pc in ("10.20.0.30", "10.20.0.40")
    ]
    assert len(correlate(frame(c2), inv)) == 1  # one C2 server: one intruder
    fs = [
        alert(
            "lateral_new_admin_connection",
            at(1),
            src=pc,
            dst="10.10.32.20",
            port=445,
            tactics=("TA0008",),
            techniques=("T1021.002",),
        )
        for pc in ("10.20.0.30", "10.40.0.12")
    ]
    assert len(correlate(frame(fs), inv)) == 2  # one file server: proves nothing


def test_suppressed_alerts_are_excluded(inv: Inventory) -> None:
    rows = breach()
    rows[1] = alert(**{**_kwargs(rows[1]), "suppressed": True})
    incidents = correlate(frame(rows), inv)
    ids = {a for i in incidents for a in i.alert_ids}
    assert rows[1]["alert.id"] not in ids
    assert len(ids) == 3
    # Without the gateway -> branch PC step, the exploit no longer reaches the branch PC.
    assert len(incidents) == 2


def _kwargs(row: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the arguments of :func:`alert` from a row (for variants of one alert)."""
    return {
        "rule": row["rule.id"],
        "start": row["@timestamp"],
        "end": row["event.end"],
        "key": row["alert.key"],
        "sev": row["alert.severity"],
        "tactics": tuple(row["threat.tactic.id"]),
        "techniques": tuple(row["threat.technique.id"]),
        "src": row["source.ip"],
        "dst": row["destination.ip"],
        "port": row["destination.port"],
        "user": row["user.name"],
        "observer": row["observer.name"],
        "nbytes": row["network.bytes"],
        "summary": row["alert.summary"],
    }


def test_stable_ids_and_extension_by_new_evidence(inv: Inventory) -> None:
    rows = breach()
    first = correlate(frame(rows[:2]), inv)
    assert len(first) == 1
    again = correlate(frame(rows[:2]), inv)
    assert again[0].id == first[0].id  # rerun: same id
    grown = correlate(frame(rows), inv, previous=first)
    assert len(grown) == 1 and grown[0].id == first[0].id
    assert set(first[0].alert_ids) < set(grown[0].alert_ids)

    # Evidence older than the founding alert (a new reconnaissance detection): the incident
    # keeps its id when the earlier run is given, and records the founding alert it kept.
    recon = alert(
        "appliance_portal_recon",
        at(0, 16),
        at(2, 15),
        sev="medium",
        tactics=("TA0043",),
        techniques=("T1595.002",),
        src="5.9.7.203",
        observer="FGT-SHA-DC01",
    )
    kept = correlate(frame([recon, *rows]), inv, previous=grown)
    assert kept[0].id == first[0].id
    assert kept[0].alert_ids[0] == recon["alert.id"]
    assert kept[0].extra["founding_alert"] == rows[0]["alert.id"]
    fresh = correlate(frame([recon, *rows]), inv)
    assert fresh[0].id == incident_id(recon["alert.id"]) != first[0].id


def test_merged_incidents_keep_the_id_opened_first(inv: Inventory) -> None:
    rows = breach()
    apart = correlate(frame([rows[0], rows[2], rows[3]]), inv)  # the link PC is missing
    assert len(apart) == 2
    small = min(apart, key=lambda i: len(i.alert_ids))  # the exploit alone
    large = max(apart, key=lambda i: len(i.alert_ids))
    # Opened in the same run: the larger incident keeps its id.
    joined = correlate(frame(rows), inv, previous=apart)
    assert len(joined) == 1
    assert joined[0].id == large.id
    assert joined[0].extra["merged_ids"] == [small.id]
    # The one opened first wins, whatever its size (a ticket may cite it).
    opened = [
        dataclasses.replace(small, opened_at=CREATED),
        dataclasses.replace(large, opened_at=CREATED + dt.timedelta(days=1)),
    ]
    joined = correlate(frame(rows), inv, previous=opened)
    assert joined[0].id == small.id and joined[0].extra["merged_ids"] == [large.id]


def test_tunnel_address_links_only_within_hours(inv: Inventory) -> None:
    tunnel = "10.100.0.77"  # in vpn-tyo-hq01's pool: handed to someone else next day
    rows = [
        alert(
            "auth_hosting_asn",
            at(1),
            user="carol",
            src="45.32.1.10",
            tactics=("TA0001",),
            techniques=("T1078",),
            ips=(tunnel,),
        ),
        alert(
            "lateral_fan_out",
            at(1, 1),
            src=tunnel,
            dst="10.10.0.61",
            tactics=("TA0007",),
            techniques=("T1046",),
        ),
        alert(
            "lateral_fan_out",
            at(3),
            src=tunnel,
            dst="10.10.0.99",
            tactics=("TA0007",),
            techniques=("T1046",),
        ),
    ]
    incidents = correlate(frame(rows), inv)
    assert sorted(len(i.alert_ids) for i in incidents) == [1, 2]


def test_attribution_blacktech_and_tick() -> None:
    by_id = {g.id: g for g in attack.groups()}
    blacktech, tick = by_id["G0098"], by_id["G0060"]
    assert blacktech.name == "BlackTech" and "Tick" in tick.aliases
    hints = attack.attribute(blacktech.techniques)
    assert hints[0].group_id == "G0098" and hints[0].score == 1.0
    assert hints[0].shared == tuple(sorted(blacktech.parents))
    hints = attack.attribute(tick.techniques)
    assert hints[0].group_id == "G0060"
    # Parent level: BlackTech's SSH (T1021.004) and our SMB (T1021.002) share T1021.
    mixed = attack.attribute(["T1190", "T1021.002", "T1046"])
    bt = next(h for h in mixed if h.group_id == "G0098")
    assert bt.shared == ("T1021", "T1046", "T1190")
    assert bt.group_techniques == len(blacktech.techniques)
    assert attack.attribute(["T1190"]) == ()  # one shared technique is no hint
    assert attack.attribute([]) == ()


def test_attack_data_header_and_names() -> None:
    meta = attack.metadata()
    assert meta["attack_version"] == "18.1"
    assert "MITRE" in meta["copyright"] and "license" in meta
    assert "enterprise-attack-18.1.json" in meta["source"]
    assert attack.technique_name("T1190") == "Exploit Public-Facing Application"
    assert attack.technique_name("T1021.002") == "Remote Services: SMB/Windows Admin Shares"
    assert attack.technique_name("T9999") == ""
    assert {g.id for g in attack.groups()} >= {"G0098", "G0060", "G1023", "G1017"}
    assert attack.CAVEAT.startswith("Technique overlap")


def test_profiles_from_stix_derivation() -> None:
    def ref(tid: str) -> list[dict[str, str]]:
        return [{"source_name": "mitre-attack", "external_id": tid}]

    bundle = {
        "objects": [
            {
                "type": "attack-pattern",
                "id": "ap1",
                "name": "Remote Services",
                "external_references": ref("T1021"),
            },
            {
                "type": "attack-pattern",
                "id": "ap2",
                "name": "SMB/Windows Admin Shares",
                "external_references": ref("T1021.002"),
            },
            {
                "type": "attack-pattern",
                "id": "ap3",
                "name": "Old",
                "revoked": True,
                "external_references": ref("T1000"),
            },
            {
                "type": "intrusion-set",
                "id": "intrusion-set--1",
                "name": "Grp",
                "aliases": ["Grp", "Alias"],
                "external_references": ref("G9999"),
            },
            {
                "type": "relationship",
                "id": "r1",
                "relationship_type": "uses",
                "source_ref": "intrusion-set--1",
                "target_ref": "ap2",
            },
            {
                "type": "relationship",
                "id": "r2",
                "relationship_type": "uses",
                "source_ref": "intrusion-set--1",
                "target_ref": "ap3",
            },
            {
                "type": "relationship",
                "id": "r3",
                "relationship_type": "uses",
                "source_ref": "intrusion-set--1",
                "target_ref": "ap1",
                "x_mitre_deprecated": True,
            },
        ]
    }
    profiles, names = attack.profiles_from_stix(bundle, ["G9999"])
    assert profiles[0]["techniques"] == ["T1021.002"]
    assert profiles[0]["aliases"] == ["Alias"]
    assert names == {
        "T1021": "Remote Services",
        "T1021.002": "Remote Services: SMB/Windows Admin Shares",
    }
    with pytest.raises(KeyError):
        attack.profiles_from_stix(bundle, ["G0001"])


def test_incident_dict_round_trip(inv: Inventory) -> None:
    inc = correlate(frame(breach()), inv)[0]
    inc = dataclasses.replace(inc, opened_at=CREATED)
    doc = json.loads(json.dumps(incident_to_dict(inc, {"T1190": "Exploit"})))
    assert doc["incident.id"] == inc.id and doc["network.bytes"] == 200 * MIB
    assert doc["threat.tactic.name"] == ["Initial Access", "Lateral Movement", "Exfiltration"]
    assert doc["threat.technique.name"][0] == "Exploit"
    assert incident_from_dict(doc) == inc


def test_store_keeps_incidents_and_their_creation_time(tmp_path: Path, inv: Inventory) -> None:
    store = Store.open(tmp_path / "s", create=True)
    assert store.incidents() == []
    first = correlate(frame(breach()[:2]), inv)
    with store.writer() as w:
        c1 = w.replace_incidents(first)
    assert (c1.new, c1.updated, c1.unchanged, c1.removed) == (1, 0, 0, 0)
    stored = store.incidents()
    assert [dataclasses.replace(i, opened_at=None) for i in stored] == first
    opened = stored[0].opened_at
    assert opened is not None
    with store.writer() as w:
        c2 = w.replace_incidents(first)
    assert (c2.new, c2.updated, c2.unchanged) == (0, 0, 1)
    grown = correlate(frame(breach()), inv, previous=stored)
    with store.writer() as w:
        c3 = w.replace_incidents(grown)
    assert (c3.new, c3.updated) == (0, 1)
    again = store.incidents()
    assert again[0].id == first[0].id and again[0].opened_at == opened
    assert len(again[0].alert_ids) == 4
    con = store.reader()
    del con
    with store._db(read_only=True) as db:
        n = db.execute("SELECT count(*) FROM incident_alerts").fetchone()
        row = db.execute("SELECT severity, title FROM incidents").fetchone()
    assert n is not None and n[0] == 4
    assert row is not None and row[0] == "critical" and row[1] == grown[0].title
    with store.writer() as w:
        c4 = w.replace_incidents([])
    assert c4.removed == 1 and store.incidents() == []


def test_formatting_helpers() -> None:
    assert fmt_bytes(200 * MIB) == "200 MiB"
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(1536) == "1.5 KiB"
    assert fmt_duration(93784) == "1d 2h 3m"
    assert fmt_duration(30) == "0m"


# -- CLI ------------------------------------------------------------------------------------

HOSTILE = ("<script>alert(1)</script>", "\x1b[31mred", "[bold]markup[/bold]")


def test_cli_prints_attacker_text_escaped(tmp_path: Path) -> None:
    from vpnsentry.cli import app

    root = tmp_path / "store"
    store = Store.open(root, create=True)
    rows = [
        alert(
            "auth_hosting_asn",
            at(1, i),
            user=name,
            src="45.32.1.10",
            host=f"pc-{name}",
            tactics=("TA0001",),
            techniques=("T1078",),
            summary=f"login as {name}",
        )
        for i, name in enumerate(HOSTILE)
    ]
    rules = ["auth_hosting_asn"]
    with store.writer() as w:
        w.replace_alerts(frame(rows), rules, None, None)
    runner = CliRunner()
    res = runner.invoke(app, ["correlate", "--store", str(root)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["incidents", "--store", str(root)])
    assert res.exit_code == 0, res.output
    assert "INC-" in res.output
    inc_id = store.incidents()[0].id
    res = runner.invoke(app, ["incident", inc_id[:8], "--store", str(root)])
    assert res.exit_code == 0, res.output
    text = res.output
    assert "\x1b" not in text
    assert "\\x1b[31mred" in text
    assert "<script>alert(1)</script>" in text
    assert "[bold]markup[/bold]" in text
    assert "timeline (3 of 3 alerts)" in text
    res = runner.invoke(app, ["incident", inc_id, "--store", str(root), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.output)
    assert doc["incident.id"] == inc_id and len(doc["incident.alerts"]) == 3
    assert "\x1b[31mred" in doc["related.user"]  # JSON keeps the value; JSON escapes it
    res = runner.invoke(app, ["incident", "INC-nope", "--store", str(root)])
    assert res.exit_code != 0


def test_incident_type_is_frozen() -> None:
    assert dataclasses.is_dataclass(Incident)
    fields = {f.name for f in dataclasses.fields(Incident)}
    assert {"id", "title", "path", "attribution", "opened_at"} <= fields


def test_one_upload_seen_by_two_detections_counts_once(inv: Inventory) -> None:
    def up(rule: str, day: float, nbytes: int) -> dict[str, Any]:
        return alert(
            rule,
            at(day, 1),
            at(day, 6),
            tactics=("TA0010",),
            techniques=("T1048.002",),
            src="10.10.0.92",
            dst="149.28.98.229",
            port=443,
            nbytes=nbytes,
        )

    rows = [
        up("exfil_volume", 1, 226 * MIB),
        up("exfil_rare_destination", 1, 217 * MIB),  # the same upload
        up("exfil_rare_destination", 3, 10 * MIB),  # another day: adds up
    ]
    inc = correlate(frame(rows), inv)[0]
    assert inc.bytes_out == 236 * MIB
    assert inc.destinations == ("149.28.98.229",)


def test_path_follows_listed_movements_in_their_direction(inv: Inventory) -> None:
    chain = alert(
        "lateral_admin_chain",
        at(1),
        at(9),
        tactics=("TA0008",),
        techniques=("T1021",),
        src="10.20.0.30",
        ips=("10.60.250.1", "10.10.0.92", "10.10.0.95"),
        evidence={
            "inbound_sources": ["10.60.250.1"],
            "inbound_samples": [{"source": "10.60.250.1", "port": 445, "first": "2025-03-04"}],
            "outbound_hosts": ["10.10.0.92", "10.10.0.95"],
            "outbound_first": "2025-03-11T01:29:58+00:00",
            "outbound_ports": [3389],
        },
    )
    inc = correlate(frame([chain]), inv)[0]
    assert [(e.src, e.dst, e.port) for e in inc.path] == [
        ("vpn-sha-dc01", "10.20.0.30", 445),
        ("10.20.0.30", "10.10.0.92", 3389),
        ("10.20.0.30", "10.10.0.95", 3389),
    ]
    assert inc.path[1].first_seen == dt.datetime(2025, 3, 11, 1, 29, 58, tzinfo=dt.UTC)
    assert inc.title.startswith("VPN gateway vpn-sha-dc01 (FGT-SHA-DC01) compromised")


def test_probing_joins_a_compromise_of_its_gateway_but_not_other_probes(inv: Inventory) -> None:
    def probe(src: str, day: float) -> dict[str, Any]:
        return alert(
            "appliance_portal_recon",
            at(day),
            at(day, 20),
            sev="medium",
            tactics=("TA0043",),
            techniques=("T1595.002",),
            src=src,
            observer="FGT-SHA-DC01",
        )

    exploit = breach()[0]  # day 2, 18:00, from 5.9.7.203
    rows = [probe("128.199.185.151", 1.5), probe("45.77.1.1", 6), probe("45.77.2.2", 6.2), exploit]
    incidents = correlate(frame(rows), inv)
    sizes = sorted(len(i.alert_ids) for i in incidents)
    assert sizes == [1, 1, 2]
    main = next(i for i in incidents if len(i.alert_ids) == 2)
    assert main.title.startswith("VPN gateway vpn-sha-dc01 (FGT-SHA-DC01) compromised")
    assert main.first_seen == at(1.5)


def test_known_exploited_gateway_explains_an_incident_but_opens_none(inv: Inventory) -> None:
    """A gateway on the KEV list is an exposure for weeks, not a break-in: alone it is no
    incident; with activity on that gateway it joins as context."""
    kev = alert(
        "appliance_known_exploited",
        at(0),
        at(29),
        key="vpn-sha-dc01|CVE-2024-21762",
        tactics=("TA0001",),
        techniques=("T1190",),
        observer="FGT-SHA-DC01",
        hosts=("FGT-SHA-DC01",),
    )
    assert correlate(frame([kev]), inv) == []
    exploit = breach()[0]
    (incident,) = correlate(frame([kev, exploit]), inv)
    assert sorted(incident.alert_ids) == sorted([kev["alert.id"], exploit["alert.id"]])
    assert incident.title.startswith("VPN gateway vpn-sha-dc01 (FGT-SHA-DC01) compromised")
    # The exposure does not make the intrusion older: span and dwell start at the activity.
    assert incident.first_seen == exploit["@timestamp"]


def test_appliance_alert_about_a_vpn_client_does_not_join_the_box(inv: Inventory) -> None:
    tunnel = alert(
        "appliance_tunnel_ip_outside_session",
        at(2, 20),
        tactics=("TA0008", "TA0005"),
        techniques=("T1563",),
        src="10.101.3.128",  # a VPN client of that gateway
        observer="FGT-SHA-DC01",
        user="j.zhu4",
    )
    incidents = correlate(frame([breach()[0], tunnel]), inv)
    assert len(incidents) == 2
    lone = next(i for i in incidents if tunnel["alert.id"] in i.alert_ids)
    assert lone.gateways == ("vpn-sha-dc01",)
    assert "compromised" not in lone.title
