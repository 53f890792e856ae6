"""Fixtures for detection tests.

Two levels, as a detection needs both:

* ``estate``: one simulated estate with every attack scenario (21 days, 150 users), ingested
  and run through every detection once per test session. Tests ask "did my detection fire on
  step N" and "did it stay silent on the benign trap T" (the simulator's ground truth names
  both), with the same matching ``vpnsentry evaluate`` uses.
* ``run_detection``: one detection over a few hand-written ECS rows, for exact positive and
  negative cases (thresholds, allow-lists, baselines) that need no simulator.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from vpnsentry import ecs
from vpnsentry.detect import engine
from vpnsentry.detect.base import ParamValue, detections
from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context
from vpnsentry.detect.evaluate import Evaluation, evaluate
from vpnsentry.enrich.sites import Inventory, load_inventory
from vpnsentry.ingest import ingest
from vpnsentry.simulate import list_scenarios, simulate
from vpnsentry.store.store import Store

#: The estate every detection test shares.
DAYS, USERS, SEED = 21, 150, 2019


@dataclass(frozen=True)
class Estate:
    """A simulated, ingested and detected estate."""

    root: Path
    store: Store
    truth: dict[str, Any]
    inventory: Inventory
    alerts: pl.DataFrame
    evaluation: Evaluation

    def step(self, step_id: int) -> dict[str, Any]:
        """The ground-truth step with this id."""
        return next(s for s in self.truth["steps"] if s["id"] == step_id)

    def rules_for_step(self, step_id: int) -> list[str]:
        """Detections whose alerts matched this step."""
        return next(s.rules for s in self.evaluation.steps if s.id == step_id)

    def trap(self, name: str) -> dict[str, Any]:
        return next(t for t in self.truth["traps"] if t["name"] == name)

    def of(self, rule_id: str) -> pl.DataFrame:
        """Alerts of one detection."""
        return self.alerts.filter(pl.col("rule.id") == rule_id)


@pytest.fixture(scope="session")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    root = tmp_path_factory.mktemp("estate")
    simulate(
        root / "sim",
        days=DAYS,
        users=USERS,
        scenarios=[name for name, _ in list_scenarios()],
        seed=SEED,
        sites=None,
    )
    ingest([str(root / "sim" / "logs")], root / "store")
    store = Store.open(root / "store", create=False)
    inv = load_inventory(root / "sim" / "sites.yaml")
    engine.run(store, config=Config(), inventory=inv)  # not strict: see test_engine
    alerts = store.alerts()
    truth = json.loads((root / "sim" / "ground_truth.json").read_text())
    return Estate(
        root, store, truth, inv, alerts, evaluate(alerts, root / "sim" / "ground_truth.json", inv)
    )


# -- hand-written rows ----------------------------------------------------------------------

T0 = dt.datetime(2025, 3, 3, 0, 0, tzinfo=dt.UTC)


def ts(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> dt.datetime:
    """A time relative to T0 (Monday 2025-03-03 00:00 UTC)."""
    return T0 + dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def frame(rows: Sequence[Mapping[str, Any]], dataset: str) -> pl.DataFrame:
    """ECS rows -> a frame with the dataset's full schema (missing columns null)."""
    schema = ecs.SCHEMAS[dataset]
    df = pl.DataFrame(
        [dict(r) for r in rows], schema={k: schema[k] for k in {k for r in rows for k in r}}
    )
    return ecs.conform(df, dataset) if rows else pl.DataFrame(schema=schema)


def memory_views(
    events: Sequence[Mapping[str, Any]] = (), flows: Sequence[Mapping[str, Any]] = ()
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose ``events`` and ``flows`` views hold these rows."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for name, rows in (("events", events), ("flows", flows)):
        con.register(f"_{name}", frame(rows, name).to_arrow())
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM _{name}")
    return con


@pytest.fixture
def run_detection() -> Iterator[Any]:
    """``run_detection(id, events=[...], flows=[...], inventory=..., params=...)`` -> alerts."""
    cons: list[duckdb.DuckDBPyConnection] = []

    def _run(
        det_id: str,
        *,
        events: Sequence[Mapping[str, Any]] = (),
        flows: Sequence[Mapping[str, Any]] = (),
        inventory: Inventory | None = None,
        params: Mapping[str, ParamValue] | None = None,
        config: Config | None = None,
    ) -> pl.DataFrame:
        det = detections()[det_id]
        con = memory_views(events, flows)
        cons.append(con)
        cfg = config or Config()
        ctx = Context(con, inventory, cfg)
        ctx.need(det.needs)
        merged = {**cfg.params_for(det), **(params or {})}
        rows_out = engine.run_one(det, con, merged)
        return engine.to_alerts(det, rows_out, ts(days=100))

    yield _run
    for c in cons:
        c.close()


@pytest.fixture(scope="session")
def bundled_inventory() -> Inventory:
    """The simulator's bundled estate (Tokyo HQ, Shanghai DC, branches)."""
    from vpnsentry.enrich.sites import parse_inventory
    from vpnsentry.simulate import default_estate_text

    return parse_inventory(default_estate_text(), source="default_estate.yaml")
