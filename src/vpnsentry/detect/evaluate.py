"""Score stored alerts against a simulator run's ground truth (``vpnsentry evaluate``).

An alert *touches* a step when its evidence overlaps the step's window (with a slack, since
detections summarise over hours) and it names one of the step's attacker-side entities: an
attacker address, the compromised user, tunnel address, host, gateway or destination. It
*detects* the step when it also names one of the step's ATT&CK techniques (compared at the
parent technique: T1021.002 matches T1021), so a spray alert that happens to share the
attacker's address with the scan that followed does not count as detecting the scan. The
victims' legitimate entities (their home address, the servers they normally use) are not
used, so an alert about an ordinary backup to the same file server is not counted as a hit.
Every alert that touches no step is a false positive; those touching a named benign trap of
the simulator (a traveller, a backup, a scanner...) are listed per trap, which is what tuning
needs. Alerts of posture detections (a gateway on the known-exploited list: a standing
exposure, true whatever happens in the logs) are counted apart, not as false positives.
Steps the logs cannot show (``evidence_kind: none``) are "not observable" and are not
counted either way.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from vpnsentry.detect.base import detections
from vpnsentry.enrich.sites import Inventory
from vpnsentry.errors import InputError

#: Step entity keys that name the attacker's side (see the module docstring).
ATTACKER_KEYS: Final = frozenset(
    {
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
)
#: How far outside a step's window an alert may start and still be about it.
SLACK: Final = dt.timedelta(hours=2)


@dataclass
class StepScore:
    """One attack step and how the alerts did on it."""

    id: int
    scenario: str
    name: str
    techniques: list[str]
    status: str  # detected, missed, not observable
    rules: list[str] = field(default_factory=list)
    touched_by: list[str] = field(default_factory=list)  # same entity and time, other technique
    alerts: int = 0
    ttd_seconds: float | None = None

    @property
    def time_to_detect(self) -> str | None:
        """First matching evidence after the step began, as ``1d 2h 3m``."""
        if self.ttd_seconds is None:
            return None
        m = int(self.ttd_seconds // 60)
        d, m = divmod(m, 1440)
        h, m = divmod(m, 60)
        return " ".join(p for p in (f"{d}d" * bool(d), f"{h}h" * bool(h), f"{m}m") if p)


@dataclass
class Evaluation:
    """The whole score."""

    steps: list[StepScore]
    days: float
    users: int
    fp_by_rule: dict[str, int]
    traps_fired: dict[str, tuple[int, list[str]]]
    alerts: int
    suppressed: int
    #: Posture alerts that touch no step, per rule (not false positives: see the module doc).
    posture_by_rule: dict[str, int] = field(default_factory=dict)

    @property
    def fp_total(self) -> int:
        return sum(self.fp_by_rule.values())

    def fp_rate(self, n: int | None = None) -> float:
        """False-positive alerts per day per 1,000 users."""
        n = self.fp_total if n is None else n
        return n / max(self.days, 1e-9) / max(self.users / 1000, 1e-9)

    def trap_rows(self) -> list[tuple[str, int, str]]:
        return [(k, n, ", ".join(r)) for k, (n, r) in sorted(self.traps_fired.items())]

    def summary(self) -> str:
        obs = [s for s in self.steps if s.status != "not observable"]
        hit = sum(s.status == "detected" for s in obs)
        return (
            f"detected {hit} of {len(obs)} observable attack steps; {self.fp_total} "
            f"false-positive alerts = {self.fp_rate():.2f} per day per 1,000 users "
            f"({self.days:g} days, {self.users} users; {self.alerts} active alerts, "
            f"{self.suppressed} suppressed not counted"
            + (
                f"; {sum(self.posture_by_rule.values())} posture findings apart"
                if self.posture_by_rule
                else ""
            )
            + ")"
        )

    def as_dict(self) -> dict[str, Any]:
        obs = [s for s in self.steps if s.status != "not observable"]
        return {
            "steps": [
                {
                    "id": s.id,
                    "scenario": s.scenario,
                    "name": s.name,
                    "techniques": s.techniques,
                    "status": s.status,
                    "rules": s.rules,
                    "touched_by": s.touched_by,
                    "alerts": s.alerts,
                    "time_to_detect_seconds": s.ttd_seconds,
                }
                for s in self.steps
            ],
            "observable_steps": len(obs),
            "detected_steps": sum(s.status == "detected" for s in obs),
            "false_positives": self.fp_total,
            "false_positives_per_day_per_1000_users": round(self.fp_rate(), 3),
            "false_positives_by_rule": self.fp_by_rule,
            "posture_findings_by_rule": self.posture_by_rule,
            "traps_fired": {k: {"alerts": n, "rules": r} for k, (n, r) in self.traps_fired.items()},
            "days": self.days,
            "users": self.users,
            "alerts": self.alerts,
            "suppressed": self.suppressed,
        }


def evaluate(alerts: pl.DataFrame, truth_path: Path, inventory: Inventory | None) -> Evaluation:
    """Score ``alerts`` (the store's alert table) against ``truth_path``."""
    try:
        truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read ground truth {truth_path}: {exc}") from exc
    gw_names = {g.id: g.hostname.lower() for g in inventory.gateways} if inventory else {}
    suppressed = int(alerts["alert.suppressed"].fill_null(False).sum())
    active = alerts.filter(~pl.col("alert.suppressed").fill_null(False))
    rows = list(active.iter_rows(named=True))
    ents = [_alert_entities(r) for r in rows]
    used: set[int] = set()
    steps: list[StepScore] = []
    for step in truth.get("steps", []):
        score = StepScore(
            id=int(step["id"]),
            scenario=str(step["scenario"]),
            name=str(step["name"]),
            techniques=list(step.get("techniques", [])),
            status="missed",
        )
        steps.append(score)
        if step.get("evidence_kind") == "none":
            score.status = "not observable"
            continue
        wanted = _step_entities(step.get("entities", {}), gw_names)
        start, end = _window(step)
        if start is None or end is None:
            score.status = "not observable"
            continue
        rules: Counter[str] = Counter()
        touched: Counter[str] = Counter()
        first: dt.datetime | None = None
        techniques = {_parent(t) for t in score.techniques}
        for i, r in enumerate(rows):
            a0 = r["@timestamp"]
            a1 = r["event.end"] or a0
            if a1 < start - SLACK or a0 > end + SLACK or not (ents[i] & wanted):
                continue
            used.add(i)
            if not techniques & {_parent(t) for t in r["threat.technique.id"] or ()}:
                touched[r["rule.id"]] += 1
                continue
            rules[r["rule.id"]] += 1
            first = a0 if first is None or a0 < first else first
        score.touched_by = [k for k, _ in touched.most_common()]
        if rules:
            score.status = "detected"
            score.rules = [k for k, _ in rules.most_common()]
            score.alerts = sum(rules.values())
            assert first is not None
            score.ttd_seconds = max(0.0, (first - start).total_seconds())
    posture_rules = {i for i, d in detections().items() if d.posture}
    unused = [i for i in range(len(rows)) if i not in used]
    posture = Counter(rows[i]["rule.id"] for i in unused if rows[i]["rule.id"] in posture_rules)
    unused = [i for i in unused if rows[i]["rule.id"] not in posture_rules]
    fp = Counter(rows[i]["rule.id"] for i in unused)
    traps = _traps(truth.get("traps", []), [(rows[i], ents[i]) for i in unused])
    window = truth.get("window", {})
    return Evaluation(
        steps=steps,
        days=float(window.get("days", 1)),
        users=int(truth.get("users", 1000)),
        fp_by_rule=dict(fp.most_common()),
        traps_fired=traps,
        alerts=len(rows),
        suppressed=suppressed,
        posture_by_rule=dict(posture.most_common()),
    )


def _parent(technique: str) -> str:
    return technique.split(".", 1)[0]


def _norm_user(u: str) -> str:
    return u.rsplit("\\", 1)[-1].split("@", 1)[0].lower()


def _alert_entities(r: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for ip in r.get("related.ip") or ():
        out.add(str(ip))
    for u in r.get("related.user") or ():
        out.add("user:" + _norm_user(str(u)))
    for h in [*(r.get("related.hosts") or ()), r.get("observer.name")]:
        if h:
            out.add("host:" + str(h).lower())
    return out


def _values(v: Any) -> Iterable[str]:
    if isinstance(v, list | tuple):
        for x in v:
            yield from _values(x)
    elif v is not None:
        yield str(v)


def _step_entities(entities: dict[str, Any], gw_names: dict[str, str]) -> set[str]:
    out: set[str] = set()
    for key, value in entities.items():
        if key not in ATTACKER_KEYS:
            continue
        for v in _values(value):
            if key == "gateway":
                out.add("host:" + gw_names.get(v, v).lower())
            elif key in ("user", "new_account"):
                out.add("user:" + _norm_user(v))
            elif _is_ip(v):
                out.add(v)
    return out


def _is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _window(step: dict[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    w = step.get("window") or {}
    if not w.get("start") or not w.get("end"):
        return None, None
    return _ts(w["start"]), _ts(w["end"])


def _ts(s: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _traps(
    traps: list[dict[str, Any]], fps: list[tuple[dict[str, Any], set[str]]]
) -> dict[str, tuple[int, list[str]]]:
    """Which benign traps the false positives touch (by any shared user or address)."""
    hits: dict[str, Counter[str]] = defaultdict(Counter)
    for trap in traps:
        values: set[str] = set()
        for inst in trap.get("instances", []):
            for key, v in inst.items():
                for s in _values(v):
                    values.add("user:" + _norm_user(s) if key in ("user", "users") else s)
        for row, ent in fps:
            if ent & values:
                hits[trap["name"]][row["rule.id"]] += 1
    return {name: (sum(c.values()), [k for k, _ in c.most_common()]) for name, c in hits.items()}
