"""``ground_truth.json``: what happened, where it is written, and what only looks bad.

Per attack step: scenario, ATT&CK technique ids, time window, entities, and the files and
line numbers (1-based) that evidence it. Per benign trap: its name, description, count and
instances. Per file: format, line count and the deliberately garbled lines, so a test can tell
a parser's quarantine from the collector's damage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from vpnsentry.simulate.benign import Trap
from vpnsentry.simulate.core import DAY, Window, iso
from vpnsentry.simulate.events import Events
from vpnsentry.simulate.output import FileResult
from vpnsentry.simulate.scenarios import Step

FORMAT_VERSION = 1


def step_windows(steps: list[Step], events: Events, names: pl.Series) -> None:
    """Set each step's time window from the events tagged with it (gaps keep theirs)."""
    spans: dict[int, tuple[int, int]] = {}
    for kind, a, b in (
        ("flows", "ts", "dur"),
        ("sessions", "start", "end"),
        ("fails", "ts", ""),
        ("admin", "ts", ""),
        ("portal", "ts", ""),
    ):
        t = events.flow_table(names) if kind == "flows" else events.table(kind)
        if not len(t):
            continue
        end = pl.col(a) + pl.col(b) if kind == "flows" else pl.col(b) if b else pl.col(a)
        agg = (
            t.filter(pl.col("tag") >= 0)
            .group_by("tag")
            .agg(pl.col(a).min().alias("lo"), end.max().alias("hi"))
        )
        for tag, lo, hi in agg.iter_rows():
            old = spans.get(tag)
            spans[tag] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    for s in steps:
        if s.tag in spans and s.start is None:
            s.start, s.end = spans[s.tag]


def write(
    path: Path,
    *,
    window: Window,
    seed: int,
    users: int,
    estate: str,
    scenarios: list[str],
    steps: list[Step],
    traps: list[Trap],
    results: list[FileResult],
) -> dict[str, Any]:
    """Assemble and write ground truth; returns the document."""
    evidence: dict[int, list[dict[str, Any]]] = {}
    files: dict[str, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: r.path):
        files[r.path] = {
            "format": r.fmt,
            "lines": r.lines,
            "garbled": len(r.garbled),
            "garbled_lines": [{"line": ln, "kind": k} for ln, k in r.garbled],
        }
        for tag, lines in r.evidence.items():
            evidence.setdefault(tag, []).append({"file": r.path, "lines": lines})
    doc = {
        "format_version": FORMAT_VERSION,
        "generator": "vpnsentry simulate",
        "seed": seed,
        "users": users,
        "estate": estate,
        "window": {
            "start": iso(window.t0),
            "end": iso(window.t0 + window.days * DAY),
            "days": window.days,
        },
        "scenarios": scenarios,
        "timestamps": "UTC; lines are 1-based and count header lines",
        "steps": [
            {
                "id": s.tag,
                "scenario": s.scenario,
                "name": s.name,
                "techniques": list(s.techniques),
                "description": s.description,
                "window": {
                    "start": iso(s.start) if s.start is not None else None,
                    "end": iso(s.end) if s.end is not None else None,
                },
                "entities": s.entities,
                "evidence": evidence.get(s.tag, []),
                "evidence_kind": "absence" if s.absence else ("none" if s.note else "lines"),
                **({"note": s.note} if s.note else {}),
            }
            for s in steps
        ],
        "traps": [
            {
                "name": t.name,
                "description": t.description,
                "count": t.count,
                "instances": t.instances,
            }
            for t in traps
        ],
        "files": files,
        "garbled_total": sum(len(r.garbled) for r in results),
    }
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return doc
