"""PAN-OS record layouts: what the writer's lines are held against."""

from __future__ import annotations

import csv

from tests.conftest import GOLDEN
from tests.helpers import read_lines


def fields(line: str) -> list[str]:
    """The CSV fields of a PAN-OS record after whatever syslog header precedes it."""
    body = line if line.startswith("1,") else line[line.index(" 1,") + 1 :]
    return next(csv.reader([body]))


def golden_layouts() -> dict[str, set[int]]:
    """Field counts per log type of the complete lines of the PAN-OS golden files."""
    golden: dict[str, set[int]] = {}
    for path in (GOLDEN / "parse" / "panw_panos").glob("*.log"):
        for line in read_lines(path):
            if " 1,2026/11/02 " in line:  # the complete lines (the rest are broken on purpose)
                f = fields(line)
                golden.setdefault(f[3], set()).add(len(f))
    return golden
