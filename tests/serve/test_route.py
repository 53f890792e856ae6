"""Routing a live batch to parsers: the group decision equals deciding line by line."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl

from vpnsentry.parse.base import registry
from vpnsentry.parse.sniff import MIN_CONFIDENCE
from vpnsentry.serve.batch import route

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "parse"


def _one_by_one(lines: list[str]) -> list[str | None]:
    """The reference: every parser whose literals a line has sniffs that line alone."""
    parsers = {n: c() for n, c in registry().items() if c.sniff_literals}
    out: list[str | None] = []
    for line in lines:
        cands = [n for n, p in parsers.items() if any(lit in line for lit in p.sniff_literals)]
        if len(cands) == 1:
            out.append(cands[0])
            continue
        scored = [(parsers[n].sniff([line]), parsers[n].priority, n) for n in cands]
        best = max(scored, default=(0.0, 0, None))
        out.append(best[2] if cands and best[0] >= MIN_CONFIDENCE else None)
    return out


def test_every_golden_line_goes_where_line_by_line_sniffing_sends_it() -> None:
    lines = [
        ln
        for f in sorted(GOLDEN.glob("*/*.log"))
        for ln in f.read_text(encoding="utf-8", errors="replace").splitlines()
        if ln.strip()
    ]
    random.Random(7).shuffle(lines)  # vendors interleaved, as on a shared port
    groups = route(pl.Series(lines), {n: c() for n, c in registry().items()})
    got: list[str | None] = [None] * len(lines)
    for name, rows in groups.items():
        for i in rows:
            got[int(i)] = name
    assert got == _one_by_one(lines)
    # FortiGate traffic lines carry SonicWall's " sn=" literal: the ambiguous group exists.
    assert any(" sn=" in ln and "logid=" in ln for ln in lines)


def test_a_clear_cut_group_is_decided_at_once() -> None:
    fgt = next(
        ln
        for ln in (GOLDEN / "fortinet_fortigate" / "corpus_fortios_mixed.log")
        .read_text()
        .splitlines()
        if " sn=" in ln and "logid=" in ln
    )
    groups = route(pl.Series([fgt] * 5000), {n: c() for n, c in registry().items()})
    assert list(groups) == ["fortinet_fortigate"]
    assert np.array_equal(groups["fortinet_fortigate"], np.arange(5000))
