"""Hand-built incidents and alerts for the report tests (no simulation, no store).

One critical intrusion (gateway exploited, lateral movement, C2, exfiltration) whose user
name, host name, summaries and evidence carry hostile text, and one low-severity login.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl

from vpnsentry import ecs
from vpnsentry.correlate.model import Attribution, Incident, PathEdge
from vpnsentry.report.html import Overview, ReportInput

T0 = dt.datetime(2025, 3, 3, 16, 9, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 4, 2, 9, 0, tzinfo=dt.UTC)

#: Would set a global and open a dialog if the browser ever ran it.
SCRIPT = "<script>window.__pwned=1;alert('xss')</script>"
ANSI_HOST = "\x1b[31mEVIL-HOST\x1b[0m"
BREAKOUT = '</style></svg>"\'><img src=x onerror="window.__pwned=2">'
BIDI = "abc\u202edcba"
LONG = "A" * 9000


def at(days: float, hours: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, hours=hours)


def alert(aid: str, rule: str, start: dt.datetime, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ecs.ALERTS)
    row.update(
        {
            "alert.id": aid,
            "@timestamp": start,
            "event.end": kw.pop("end", start + dt.timedelta(minutes=20)),
            "event.created": NOW,
            "rule.id": rule,
            "rule.name": rule.replace("_", " "),
            "alert.severity": kw.pop("severity", "high"),
            "event.risk_score": 73.0,
            "threat.tactic.id": kw.pop("tactics", ["TA0001"]),
            "threat.tactic.name": [],
            "threat.technique.id": kw.pop("techniques", ["T1190"]),
            "alert.key": aid,
            "alert.summary": kw.pop("summary", f"{rule} fired"),
            "alert.evidence": json.dumps(kw.pop("evidence", {"n": 1})),
            "related.ip": [],
            "related.user": [],
            "related.hosts": [],
            "alert.suppressed": False,
        }
    )
    row.update(kw)
    return row


def alerts_frame() -> pl.DataFrame:
    rows = [
        alert(
            "a1",
            "appliance_portal_exploit",
            at(0),
            severity="critical",
            summary=f"Gateway FGT-SHA-DC01 answered {SCRIPT} from 5.9.7.203",
            evidence={"responses": list(range(100)), "note": BREAKOUT, "long": LONG},
            **{
                "source.ip": "5.9.7.203",
                "source.geo.country_iso_code": "DE",
                "observer.name": "FGT-SHA-DC01",
            },
        ),
        alert(
            "a2",
            "auth_hosting_asn",
            at(0, 2),
            summary=f"VPN login as {SCRIPT} from 128.199.88.175",
            evidence={"user": SCRIPT, "host": ANSI_HOST, "bidi": BIDI},
            tactics=["TA0001", "TA0003"],
            techniques=["T1133", "T1078"],
            **{
                "user.name": SCRIPT,
                "source.ip": "128.199.88.175",
                "source.geo.country_iso_code": "SG",
                "host.name": ANSI_HOST,
                "destination.ip": "10.60.250.1",
            },
        ),
        alert(
            "a3",
            "lateral_admin_chain",
            at(2),
            end=at(5),
            summary=f"10.20.0.30 reached 3 hosts over SMB {BREAKOUT}",
            tactics=["TA0008"],
            techniques=["T1021.002"],
            **{"source.ip": "10.20.0.30", "destination.ip": "10.10.32.10", "host.name": LONG},
        ),
        alert(
            "a4",
            "c2_beaconing",
            at(2, 1),
            end=at(20),
            tactics=["TA0011"],
            techniques=["T1071.001"],
            **{"source.ip": "10.20.0.30", "destination.ip": "128.199.55.106"},
        ),
        alert(
            "a5",
            "exfil_volume_anomaly",
            at(21, 9),
            end=at(21, 14),
            severity="critical",
            tactics=["TA0010"],
            techniques=["T1048"],
            evidence={"bytes_up": 225745588, "domain": "exfil.example.net"},
            **{
                "source.ip": "10.10.0.92",
                "destination.ip": "149.28.98.229",
                "network.bytes": 225745588,
            },
        ),
        alert(
            "a6",
            "exfil_rare_destination_upload",
            at(21, 9),
            end=at(21, 14),
            tactics=["TA0010"],
            techniques=["T1567"],
            evidence={"days": ["2025-03-25"], "domain": "evil'] OR [x:value = '1"},
            **{
                "source.ip": "10.10.0.92",
                "destination.ip": "149.28.98.229",
                "network.bytes": 217112061,
            },
        ),
        alert(
            "b1",
            "auth_new_country_asn",
            at(9),
            severity="low",
            summary="VPN login as k.suzuki from 86.135.110.8 at vpn-tyo-hq01",
            **{
                "user.name": "k.suzuki",
                "source.ip": "86.135.110.8",
                "source.geo.country_iso_code": "GB",
            },
        ),
        alert(
            "s1",
            "auth_unusual_hour",
            at(3),
            severity="medium",
            summary="suppressed one",
            **{"alert.suppressed": True, "alert.suppression": "[x] known"},
        ),
    ]
    return pl.DataFrame(rows, schema=ecs.ALERTS)


CRITICAL_TITLE = (
    f"VPN gateway vpn-sha-dc01 compromised → VPN login as {SCRIPT} → 215 MiB sent to 149.28.98.229"
)
LOW_TITLE = "VPN login as k.suzuki from 86.135.110.8 at vpn-tyo-hq01"


def incidents() -> list[Incident]:
    crit = Incident(
        id="INC-c3a25aec5d87",
        title=CRITICAL_TITLE,
        severity="critical",
        confidence=0.97,
        risk_score=100.0,
        first_seen=at(0),
        last_seen=at(21, 14),
        detected_at=NOW,
        dwell_seconds=(NOW - at(0)).total_seconds(),
        tactics=(
            ("TA0001", "Initial Access"),
            ("TA0008", "Lateral Movement"),
            ("TA0011", "Command and Control"),
            ("TA0010", "Exfiltration"),
        ),
        techniques=(
            "T1190",
            "T1133",
            "T1078",
            "T1021.002",
            "T1071.001",
            "T1048",
            "T1567",
            BREAKOUT,
        ),
        alert_ids=("a1", "a2", "a3", "a4", "a5", "a6"),
        rules=(
            "appliance_portal_exploit",
            "auth_hosting_asn",
            "lateral_admin_chain",
            "c2_beaconing",
            "exfil_volume_anomaly",
            "exfil_rare_destination_upload",
        ),
        users=(SCRIPT,),
        hosts=("10.20.0.30", "10.10.32.10", "10.10.0.92", ANSI_HOST),
        external=("5.9.7.203", "128.199.55.106", "149.28.98.229", "2001:db8::66", BREAKOUT),
        gateways=("vpn-sha-dc01",),
        sites=("sha-dc", "sha-br", "tyo-hq"),
        bytes_out=225745588,
        destinations=("149.28.98.229",),
        path=(
            PathEdge(
                "5.9.7.203",
                "vpn-sha-dc01",
                at(0),
                443,
                "appliance_portal_exploit",
                "5.9.7.203 (external, Hetzner)",
                "vpn-sha-dc01 (gateway FGT-SHA-DC01, sha-dc)",
            ),
            PathEdge(
                "vpn-sha-dc01",
                "10.20.0.30",
                at(2),
                445,
                "lateral_admin_chain",
                "vpn-sha-dc01 (gateway FGT-SHA-DC01, sha-dc)",
                f"10.20.0.30 ({SCRIPT}, sha-br)",
            ),
            PathEdge(
                "10.20.0.30",
                "128.199.55.106",
                at(2, 1),
                443,
                "c2_beaconing",
                "10.20.0.30 (workstations, sha-br)",
                "128.199.55.106 (external)",
            ),
            PathEdge(
                "10.20.0.30",
                "10.10.0.92",
                at(12),
                3389,
                "lateral_admin_chain",
                "10.20.0.30 (workstations, sha-br)",
                f"{ANSI_HOST} 10.10.0.92 (workstations, tyo-hq)",
            ),
            PathEdge(
                "10.10.0.92",
                "10.10.32.10",
                at(13),
                445,
                "lateral_admin_chain",
                "10.10.0.92 (workstations, tyo-hq)",
                "dc-tyo01 10.10.32.10 (domain_controller, tyo-hq)",
            ),
            PathEdge(
                "10.10.0.92",
                "149.28.98.229",
                at(21, 9),
                443,
                "exfil_volume_anomaly",
                "10.10.0.92 (workstations, tyo-hq)",
                "149.28.98.229 (external)",
            ),
        ),
        attribution=(
            Attribution("G0098", "BlackTech", ("T1021", "T1190"), 14, 0.12),
            Attribution(BREAKOUT, SCRIPT, ("T1190",), 3, 0.05),
        ),
        summary=f"6 alerts; first evidence: {SCRIPT} {ANSI_HOST} {BIDI}",
    )
    low = Incident(
        id="INC-27cb38380cc4",
        title=LOW_TITLE,
        severity="low",
        confidence=0.13,
        risk_score=21.0,
        first_seen=at(9),
        last_seen=at(9),
        detected_at=NOW,
        dwell_seconds=(NOW - at(9)).total_seconds(),
        tactics=(("TA0001", "Initial Access"),),
        techniques=("T1078",),
        alert_ids=("b1",),
        rules=("auth_new_country_asn",),
        users=("k.suzuki",),
        hosts=(),
        external=("86.135.110.8",),
        gateways=("vpn-tyo-hq01",),
        sites=("tyo-hq",),
        bytes_out=0,
        destinations=(),
    )
    return [low, crit]


def report_input() -> ReportInput:
    return ReportInput(
        incidents=incidents(),
        alerts=alerts_frame(),
        overview=Overview(
            start=at(-1),
            end=at(28),
            events=21693,
            flows=2896306,
            quarantined=56,
            observers=3,
            users=234,
            store_bytes=100 * 1024 * 1024,
            store=f"/tmp/{SCRIPT}",
        ),
        generated_at=NOW,
    )
