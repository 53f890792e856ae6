"""Helpers of the Sigma tests: rules from YAML text, predicates run over small DuckDB tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from vpnsentry import ecs
from vpnsentry.detect.sigma.compile import RuleSet, load
from vpnsentry.enrich.geo import IP4_MACRO

T0 = dt.datetime(2026, 10, 1, 8, 0, tzinfo=dt.UTC)


def rules_from(tmp: Path, text: str, name: str = "rule.yml") -> RuleSet:
    """Load one rule file written from ``text``."""
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return load([path])


def table(dataset: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows of ``dataset`` with every schema column (missing ones null), timestamps filled."""
    full = [{"@timestamp": T0 + dt.timedelta(seconds=i), **r} for i, r in enumerate(rows)]
    return ecs.conform(pl.DataFrame(full, infer_schema_length=None), dataset)


def matching(rs: RuleSet, rows: list[dict[str, Any]], dataset: str = "events") -> list[int]:
    """Indexes of ``rows`` the single converted rule of ``rs`` matches (DuckDB runs it)."""
    assert len(rs.rules) == 1, [e.reason for e in rs.entries]
    rule = rs.rules[0]
    con = duckdb.connect()
    con.execute(IP4_MACRO)
    df = table(dataset, rows).with_row_index("_i")
    con.register(dataset, df.to_arrow())
    got = con.execute(f"SELECT _i FROM ({rule.rows(['_i'])}) ORDER BY _i").fetchall()
    return [int(r[0]) for r in got]


@pytest.fixture
def rule_dir(tmp_path: Path) -> Path:
    return tmp_path
