"""Property tests: no parser crashes or loses a line, whatever the input.

Inputs are random text, and real golden lines mutated the way hostile senders and broken
collectors mutate them (cut, spliced, bytes flipped, fields repeated, control characters).
The contract checked: the parser does not raise (strict mode re-raises), and every line is
accounted for exactly once as parsed, quarantined or ignored.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GOLDEN
from tests.helpers import read_lines, run_lines
from vpnsentry.parse.base import get_parser, registry

PARSERS = sorted(registry())


def _samples(fmt: str) -> list[str]:
    lines: list[str] = []
    for f in sorted((GOLDEN / "parse" / fmt).glob("*.log")):
        lines += [ln for ln in read_lines(f) if ln.strip()]
    return lines or [get_parser(fmt).sample]


@st.composite
def mutated(draw: st.DrawFn, samples: list[str]) -> str:
    line = draw(st.sampled_from(samples))
    op = draw(st.sampled_from(["cut", "splice", "insert", "repeat", "replace", "raw"]))
    if not line:
        return line
    i = draw(st.integers(0, len(line)))
    if op == "cut":
        return line[:i]
    if op == "splice":
        other = draw(st.sampled_from(samples))
        return line[:i] + other[draw(st.integers(0, len(other))) :]
    if op == "insert":
        junk = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
        return line[:i] + junk + line[i:]
    if op == "repeat":
        return line[:i] + line[i:] * draw(st.integers(2, 4))
    if op == "replace":
        ch = draw(st.sampled_from(['"', "=", " ", ":", "\\", "[", "]", ",", "\x1b", "{", "}"]))
        return line[:i] + ch + line[i + 1 :]
    return line


def _check(fmt: str, lines: list[str]) -> None:
    lines = [ln.replace("\n", " ").replace("\r", " ") for ln in lines]
    out = run_lines(fmt, lines)
    assert out.parsed + out.quarantined + out.ignored == len(lines)
    seen = pl.concat([df["log.offset"] for df in out.tables.values()]) if out.tables else None
    if seen is not None:
        assert seen.n_unique() == len(seen)


@pytest.mark.parametrize("fmt", PARSERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_lines(fmt: str, data: st.DataObject) -> None:
    samples = _samples(fmt)
    lines = data.draw(st.lists(mutated(samples), min_size=1, max_size=30))
    _check(fmt, lines)


@pytest.mark.parametrize("fmt", PARSERS)
@settings(max_examples=40, deadline=None)
@given(lines=st.lists(st.text(max_size=200), min_size=1, max_size=20))
def test_random_text(fmt: str, lines: list[str]) -> None:
    _check(fmt, lines)
