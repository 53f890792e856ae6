"""Golden-file tests: every ``golden/parse/<format>/<case>.log`` against its ``.ecs.jsonl``.

Each expected line says what became of the input line with the same number: the non-null
ECS fields of its row (``{"dataset": "events", ...}``), ``{"quarantine": "<reason>"}`` or
``{"ignored": true}``. Run ``pytest --update-golden`` to rewrite them, then review the diff:
the diff *is* the review of a parser change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import GOLDEN
from tests.helpers import parse_file_rows
from vpnsentry.parse.base import registry

CASES = sorted((GOLDEN / "parse").glob("*/*.log"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.stem}" for c in CASES])
def test_golden(case: Path, update_golden: bool) -> None:
    fmt = case.parent.name
    got = parse_file_rows(fmt, case)
    expected_path = case.with_suffix(".ecs.jsonl")
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in got)
    if update_golden or not expected_path.exists():
        expected_path.write_text(text, encoding="utf-8")
        if not update_golden:
            pytest.fail(f"wrote new golden file {expected_path.name}; review and rerun")
    expected = [json.loads(x) for x in expected_path.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True), start=1):
        assert g == e, f"{case.name} line {i}"


def test_every_parser_has_golden_cases() -> None:
    folders = {p.name for p in (GOLDEN / "parse").iterdir() if p.is_dir()}
    missing = set(registry()) - folders
    assert not missing, f"parsers without golden cases: {sorted(missing)}"
