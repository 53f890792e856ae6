"""Shared test fixtures and the ``--update-golden`` option."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from vpnsentry.parse.base import ParseContext

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
GOLDEN = Path(__file__).resolve().parent / "golden"

#: The fixed "now" of every parser test, so year inference and plausibility are stable.
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite golden .ecs.jsonl files from the current parsers (review the diff!)",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def make_ctx(path: str = "test.log", tz: str = "UTC") -> ParseContext:
    """A parse context with the fixed test clock."""
    return ParseContext(path=path, tz=tz, year=NOW.year, now=NOW)
