"""The detection seam: one module per detection under ``detect/analytics/``.

A detection is data plus a query. The data (id, title, ATT&CK ids, severity, parameters with
defaults, the shared tables it needs) is what ``vpnsentry detections`` lists, what the config
file overrides and what reports link to; the query is SQL over the working tables that
:mod:`vpnsentry.detect.context` builds (or, where SQL cannot say it, a Python function over
the same connection returning a frame). Keeping the query in SQL keeps it vectorized and
lets the same text run on Spark later (sqlglot transpiles DuckDB SQL).

A query returns one row per alert with these columns (only the first three are required;
the rest are ECS names copied into the alert when present)::

    "@timestamp"   first evidence            "alert.key"      entity key, stable across reruns
    "alert.summary" one sentence             "event.end"      last evidence
    "alert.evidence" JSON text (counts, samples, baseline values)
    "user.name" "source.ip" "destination.ip" "destination.port" "host.name" "observer.name"
    "source.geo.country_iso_code" "source.as.number" "source.as.organization.name"
    "network.bytes" "related.ip" "related.user" "related.hosts" (lists) "event.risk_score"

Parameters reach SQL as DuckDB named parameters (``$min_users``), never by string
formatting, so a value from a config file cannot change a query's meaning.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import duckdb
    import polars as pl

#: Severity names and the ECS-style risk score each maps to (Elastic's defaults).
SEVERITIES: Final[dict[str, float]] = {"low": 21.0, "medium": 47.0, "high": 73.0, "critical": 99.0}

#: ATT&CK enterprise tactics: id -> name, in kill-chain order (correlation sorts by it).
TACTICS: Final[dict[str, str]] = {
    "TA0043": "Reconnaissance",
    "TA0042": "Resource Development",
    "TA0001": "Initial Access",
    "TA0002": "Execution",
    "TA0003": "Persistence",
    "TA0004": "Privilege Escalation",
    "TA0005": "Defense Evasion",
    "TA0006": "Credential Access",
    "TA0007": "Discovery",
    "TA0008": "Lateral Movement",
    "TA0009": "Collection",
    "TA0011": "Command and Control",
    "TA0010": "Exfiltration",
    "TA0040": "Impact",
}

#: Shared working tables a detection may ask for (built lazily, once per run).
NEEDS: Final = ("sessions", "logins", "pairs", "transfers", "geo")

#: Maturity, as in Sigma: experimental -> test -> stable.
STATUSES: Final = ("experimental", "test", "stable")

ParamValue = int | float | str | bool | list[str]
RunFn = Callable[["duckdb.DuckDBPyConnection", Mapping[str, ParamValue]], "pl.DataFrame"]


@dataclass(frozen=True)
class Detection:
    """One analytic. Instances live in ``detect/analytics/<id>.py`` as ``DETECTION``."""

    id: str
    title: str
    description: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    severity: str
    datasets: tuple[str, ...]
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    sql: str | None = None
    run: RunFn | None = None
    status: str = "test"
    #: Why a benign look-alike does not fire (allow-lists, baselines): shown by
    #: ``vpnsentry detections --id`` so an analyst knows what the detection already excludes.
    false_positives: str = ""
    #: Sound over a trailing window of the data (its evidence is a burst of minutes or
    #: hours, not weeks of baseline): ``vpnsentry serve`` reruns it on every micro-batch;
    #: the other detections run on the service's full-store schedule.
    live: bool = False
    #: A standing exposure (a gateway on the known-exploited list), not activity: its alerts
    #: join an incident about the same entities as context but open none on their own, and
    #: ``evaluate`` lists them apart from false positives.
    posture: bool = False

    def __post_init__(self) -> None:
        if (self.sql is None) == (self.run is None):
            raise ValueError(f"{self.id}: give exactly one of sql or run")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.id}: severity {self.severity!r} not in {list(SEVERITIES)}")
        if self.status not in STATUSES:
            raise ValueError(f"{self.id}: status {self.status!r} not in {list(STATUSES)}")
        unknown = [t for t in self.tactics if t not in TACTICS]
        if unknown:
            raise ValueError(f"{self.id}: unknown ATT&CK tactics {unknown}")
        bad = [n for n in self.needs if n not in NEEDS]
        if bad:
            raise ValueError(f"{self.id}: unknown needs {bad}; known: {list(NEEDS)}")


_REGISTRY: dict[str, Detection] = {}


def detections() -> dict[str, Detection]:
    """Every built-in detection by id, importing ``detect/analytics/*`` on first use."""
    if not _REGISTRY:
        from vpnsentry.detect import analytics

        for mod in sorted(pkgutil.iter_modules(analytics.__path__), key=lambda m: m.name):
            module = importlib.import_module(f"{analytics.__name__}.{mod.name}")
            det = getattr(module, "DETECTION", None)
            if not isinstance(det, Detection):
                raise TypeError(f"{module.__name__} defines no DETECTION")
            if det.id != mod.name:
                raise ValueError(f"{module.__name__}: DETECTION.id must be {mod.name!r}")
            _REGISTRY[det.id] = det
    return dict(_REGISTRY)
