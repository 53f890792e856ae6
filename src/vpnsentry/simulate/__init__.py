"""Simulate: a month of a company's VPN, Zeek and NetFlow logs, with breaches in it.

:func:`simulate` writes real vendor formats (FortiGate, Cisco ASA, OpenVPN, Zeek conn.log,
nfdump CSV) under ``out/logs/``, one file per log source per UTC day (``vpnsentry ingest
out/logs``), plus ``out/ground_truth.json`` and a copy of the site inventory used
(``out/sites.yaml``, the file to pass as ``--sites`` when detecting). The run is
deterministic: the same arguments give byte-identical files.

Why generate whole columns per day: the simulator is also the benchmark source (100 million
lines for 10,000 users over 30 days), so no Python code runs per line.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np

from vpnsentry.enrich.sites import Inventory, load_inventory, parse_inventory
from vpnsentry.errors import UsageError
from vpnsentry.simulate import groundtruth
from vpnsentry.simulate.benign import Benign
from vpnsentry.simulate.core import Window, reuse_freed_memory
from vpnsentry.simulate.estate import Estate
from vpnsentry.simulate.events import Events
from vpnsentry.simulate.output import Output, ParallelOutput
from vpnsentry.simulate.route import Router
from vpnsentry.simulate.scenarios import Context, Step, library

#: Used when neither ``start`` nor the inventory's ``simulation.start`` is given.
DEFAULT_START = dt.date(2025, 3, 3)
MAX_DAYS = 366


@dataclass(frozen=True)
class SimulationSummary:
    """What a run wrote and how fast."""

    out: Path
    files: dict[str, int]  # relative path -> lines
    lines_by_format: dict[str, int]
    garbled: int
    seconds: float
    steps: int
    scenarios: tuple[str, ...] = field(default_factory=tuple)

    @property
    def lines(self) -> int:
        return sum(self.files.values())

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    @property
    def ground_truth(self) -> Path:
        return self.out / "ground_truth.json"


def list_scenarios() -> list[tuple[str, str]]:
    """(name, one-paragraph description) of every scenario, for ``--list-scenarios``."""
    return [(name, cls.summary) for name, cls in library().items()]


#: Bundled estates, by the name ``--sites`` accepts for them.
BUNDLED_ESTATES: Final = {
    "default": "default_estate.yaml",
    "multi-vendor": "multi_vendor_estate.yaml",
}


def default_estate_text(name: str = "default") -> str:
    """A bundled estate's YAML (see :data:`BUNDLED_ESTATES`)."""
    return (
        resources.files("vpnsentry.simulate")
        .joinpath(f"data/{BUNDLED_ESTATES[name]}")
        .read_text(encoding="utf-8")
    )


def simulate(
    out: Path,
    *,
    days: int,
    users: int,
    scenarios: Sequence[str],
    seed: int,
    sites: Path | None,
    start: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> SimulationSummary:
    """Write ``days`` days of logs for ``users`` people under ``out``; see the module doc.

    ``progress(done, total)`` is called after each simulated day. ``workers`` > 1 formats and
    writes the files in that many spawned processes (capped at the CPU count; the output is
    byte-identical for any number). It is opt-in because spawning re-imports the caller's
    main module, which an unguarded script does not survive. Raises :class:`UsageError`
    for bad arguments, an unknown scenario, an invalid inventory or a non-empty ``out``.
    """
    began = time.perf_counter()
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"--days must be between 1 and {MAX_DAYS}, got {days}")
    if users < 1:
        raise UsageError(f"--users must be at least 1, got {users}")
    known = library()
    for name in scenarios:
        if name not in known:
            raise UsageError(f"unknown scenario {name!r}; known: {', '.join(known)}")
        if days < known[name].min_days:
            raise UsageError(
                f"scenario {name} needs --days {known[name].min_days} or more, got {days}"
            )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; choose a new one")
    inv, text, label = _inventory(sites)
    reuse_freed_memory()
    bundled = label.startswith("bundled")
    est = Estate(inv, users, seed)
    window = Window(start or est.cfg.start or DEFAULT_START, days)
    router = Router(est)
    out.mkdir(parents=True, exist_ok=True)
    workers = 1 if workers is None else max(1, min(workers, os.cpu_count() or 1))
    output: Output | ParallelOutput = (
        ParallelOutput(out, window, est, router, workers)
        if workers > 1
        else Output(out, window, est, router)
    )
    try:
        benign, steps = _generate(output, est, window, scenarios, progress)
        results = output.close()
    except BaseException:
        output.abort()
        raise

    if bundled:  # name the generated IT admins, as an operator would list theirs
        admins = ", ".join(est.names[int(u)] for u in np.flatnonzero(est.admin))
        text = text.replace("  admin_users: []", f"  admin_users: [{admins}]", 1)
    (out / "sites.yaml").write_text(text, encoding="utf-8")
    groundtruth.write(
        out / "ground_truth.json",
        window=window,
        seed=seed,
        users=users,
        estate=label,
        scenarios=list(dict.fromkeys(scenarios)),
        steps=steps,
        traps=list(benign.traps.values()),
        results=results,
    )
    by_fmt: dict[str, int] = {}
    for r in results:
        by_fmt[r.fmt] = by_fmt.get(r.fmt, 0) + r.lines
    return SimulationSummary(
        out=out,
        files=dict(sorted((r.path, r.lines) for r in results)),
        lines_by_format=dict(sorted(by_fmt.items())),
        garbled=sum(len(r.garbled) for r in results),
        seconds=time.perf_counter() - began,
        steps=len(steps),
        scenarios=tuple(dict.fromkeys(scenarios)),
    )


def _generate(
    output: Output | ParallelOutput,
    est: Estate,
    window: Window,
    scenarios: Sequence[str],
    progress: Callable[[int, int], None] | None,
) -> tuple[Benign, list[Step]]:
    """Scenario events first (they span the window), then benign life day by day.

    Local dates run from the eve of the window to the day after it, because a site east of
    UTC starts its day before UTC midnight; a UTC day is written once the local dates that
    reach into it are generated.
    """
    benign = Benign(est, window)
    known = library()
    steps: list[Step] = []
    attack = Events()
    for k, name in enumerate(dict.fromkeys(scenarios)):
        ctx = Context(est, window, name, first_tag=100 * (k + 1), names=benign.names)
        known[name]().build(ctx)
        steps.extend(ctx.steps)
        attack.extend(ctx.events)
    groundtruth.step_windows(steps, attack, benign.names)
    output.add(attack)
    for i in range(-1, window.days + 1):
        output.add(benign.day(window.date(0) + dt.timedelta(days=i), i))
        if i >= 1:
            output.finalize(window.date(i - 1))
        if progress is not None and i >= 0:
            progress(min(i + 1, window.days + 1), window.days + 1)
    return benign, steps


def _inventory(sites: Path | None) -> tuple[Inventory, str, str]:
    """The inventory, its text (copied to the output) and a label for ground truth.

    ``sites`` may name a bundled estate (``multi-vendor``) when no such file exists.
    """
    if sites is None or (str(sites) in BUNDLED_ESTATES and not sites.exists()):
        name = "default" if sites is None else str(sites)
        text = default_estate_text(name)
        inv = parse_inventory(text, source=f"<bundled {BUNDLED_ESTATES[name]}>")
        return inv, text, "bundled" if name == "default" else f"bundled:{name}"
    inv = load_inventory(sites)
    return inv, sites.read_text(encoding="utf-8"), str(sites)


__all__ = ["BUNDLED_ESTATES", "SimulationSummary", "list_scenarios", "simulate"]
