"""The simulator's cut of flows outside the window loses no line that would be written.

Benign life is generated for whole local days from the eve of the window to the day after
it; ``Output._in_window`` drops the flows whose lines cannot fall inside the window before
they are formatted. The same run with the cut switched off (every flow formatted, the lines
outside the window dropped when the files are written, as before the cut) must give the
same bytes, on the multi-vendor estate (every flow writer) with every scenario.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
import pytest

from vpnsentry.simulate import list_scenarios, simulate
from vpnsentry.simulate.output import Output

ALL = [name for name, _ in list_scenarios()]


def _digest(out: Path) -> str:
    tree = hashlib.sha256()
    for p in sorted(p for p in out.rglob("*") if p.is_file()):
        tree.update(str(p.relative_to(out)).encode() + b"\0" + p.read_bytes())
    return tree.hexdigest()


def _run(out: Path) -> str:
    simulate(out, days=2, users=40, scenarios=ALL, seed=11, sites=Path("multi-vendor"))
    return _digest(out)


def test_window_cut_changes_no_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cut = 0
    in_window = Output._in_window

    def counting(self: Output, flows: pl.DataFrame) -> pl.DataFrame:
        nonlocal cut
        kept = in_window(self, flows)
        cut += len(flows) - len(kept)
        return kept

    monkeypatch.setattr(Output, "_in_window", counting)
    with_cut = _run(tmp_path / "cut")
    assert cut > 1000  # the eve and the day after are mostly outside a 2-day window

    monkeypatch.setattr(Output, "_in_window", lambda self, flows: flows)
    assert _run(tmp_path / "all") == with_cut
