"""The whole job in one call: ingest, detect, correlate, report.

:func:`hunt` is what ``vpnsentry hunt`` runs (cli_hunt.py only parses options and prints).
Each stage is the library function the single-stage commands use, so ``hunt`` over the same
files and store gives the same store as ``ingest`` + ``detect`` + ``correlate``:

1. ingest the paths (idempotent: files already in the store add nothing);
2. run the detections over the whole store (``detect.engine.run``) with the site inventory
   (``--sites``, or the copy an earlier run left in the store);
3. group the active alerts into incidents (``correlate.incidents.correlate``, earlier
   incidents keep their ids) and keep them in the store;
4. write the report folder: report.html, alerts.ndjson, incidents.ndjson, stix-bundle.json.

The inventory and the tuning file are read before ingesting, so a typo fails in a second
and not after a long ingest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from vpnsentry.errors import ExitCode

if TYPE_CHECKING:
    import polars as pl

    from vpnsentry.collect.files import SourceFile
    from vpnsentry.correlate.model import Incident
    from vpnsentry.detect.engine import DetectResult
    from vpnsentry.enrich.sites import Inventory
    from vpnsentry.ingest import RunStats
    from vpnsentry.report.export import ReportFiles
    from vpnsentry.report.html import Overview
    from vpnsentry.store.store import IncidentCounts, Store

STAGES: Final = ("ingest", "detect", "correlate", "report")
DEFAULT_OUT: Final = Path("vpnsentry-report")

#: ``progress(stage, done, total, detail)``: ``total`` None while unknown. Ingest counts
#: bytes, detect counts detections; correlate and report go 0 -> 1.
StageProgress = Callable[[str, int, int | None, str], None]


@dataclass
class HuntResult:
    """What a hunt did, for the summary and ``--json``."""

    ingest: RunStats
    detect: DetectResult
    incidents: list[Incident]  # most severe first
    incident_counts: IncidentCounts
    active_alerts: int
    overview: Overview
    files: ReportFiles
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed_detections(self) -> list[str]:
        return [r.id for r in self.detect.rules if r.error]

    @property
    def exit_code(self) -> ExitCode:
        """PARTIAL (1) when ingest quarantined lines or missed input, or a detection failed;
        the report is complete for everything else."""
        if self.ingest.exit_code != ExitCode.OK or self.failed_detections:
            return ExitCode.PARTIAL
        return ExitCode.OK

    def by_severity(self) -> dict[str, int]:
        """Incidents per severity, most severe first (severities with none left out)."""
        from vpnsentry.report.html import SEVERITY_ORDER

        out: dict[str, int] = {}
        for s in reversed(SEVERITY_ORDER):
            n = sum(1 for i in self.incidents if i.severity == s)
            if n:
                out[s] = n
        return out


def overview(store: Store, stats: RunStats | None = None) -> Overview:
    """What the store holds (time span, rows, devices, users) for the report's summary."""
    import os

    from vpnsentry.report.html import Overview

    con = store.reader()
    try:
        row = con.execute(
            "SELECT min(ts), max(ts), count(DISTINCT obs) FROM ("
            'SELECT "@timestamp" AS ts, "observer.name" AS obs FROM events UNION ALL '
            'SELECT "@timestamp", "observer.name" FROM flows)'
        ).fetchall()[0]
        counts = con.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM flows), "
            '(SELECT count(*) FROM quarantine), (SELECT count(DISTINCT "user.name") FROM events)'
        ).fetchall()[0]
    finally:
        con.close()
    assert row is not None and counts is not None
    size = 0
    for files in store.parts().values():
        for f in files:
            with contextlib.suppress(OSError):
                size += os.path.getsize(f)
    t = stats.totals() if stats is not None else {}
    return Overview(
        start=_utc(row[0]),
        end=_utc(row[1]),
        events=int(counts[0]),
        flows=int(counts[1]),
        quarantined=int(counts[2]),
        observers=int(row[2] or 0),
        users=int(counts[3]),
        store_bytes=size,
        store=str(store.root),
        files_read=len(stats.files) if stats is not None else 0,
        lines_read=int(t.get("lines", 0)),
        lines_quarantined=int(t.get("quarantined", 0)),
    )


def _utc(t: object) -> dt.datetime | None:
    if not isinstance(t, dt.datetime):
        return None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def write(
    out_dir: Path,
    incidents: Sequence[Incident],
    alerts: pl.DataFrame,
    ov: Overview,
    *,
    inventory: Inventory | None = None,
    now: dt.datetime | None = None,
    max_detailed: int = 25,
) -> ReportFiles:
    """Render and write the report folder (the hunt's last stage, usable on its own)."""
    from vpnsentry.report.export import write_report
    from vpnsentry.report.html import ReportInput, ranked, render

    at = now or dt.datetime.now(dt.UTC)
    ordered = ranked(incidents)
    page = render(
        ReportInput(
            incidents=ordered, alerts=alerts, overview=ov, inventory=inventory, generated_at=at
        ),
        max_detailed=max_detailed,
    )
    return write_report(out_dir, page, ordered, alerts, now=at)


def hunt(
    paths: list[str],
    store_root: Path,
    *,
    sites: Path | None = None,
    config: Path | None = None,
    out_dir: Path = DEFAULT_OUT,
    tz: str = "UTC",
    progress: StageProgress | None = None,
    now: dt.datetime | None = None,
) -> HuntResult:
    """Ingest ``paths`` into the store, detect, correlate and write the report to ``out_dir``."""
    from vpnsentry.correlate.incidents import correlate
    from vpnsentry.detect import engine
    from vpnsentry.detect.base import detections
    from vpnsentry.detect.config import load_config
    from vpnsentry.enrich.sites import load_inventory, remembered_inventory
    from vpnsentry.ingest import ingest
    from vpnsentry.report.html import ranked
    from vpnsentry.store.store import Store

    def tell(stage: str, done: int, total: int | None, detail: str = "") -> None:
        if progress is not None:
            progress(stage, done, total, detail)

    cfg = load_config(config, detections())
    if sites is not None:
        load_inventory(sites)  # fail before the ingest, not after it
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    done_bytes = 0
    total_bytes: int | None = None
    tell("ingest", 0, None)

    def on_start(files: list[SourceFile]) -> None:
        nonlocal total_bytes
        total_bytes = None if any(f.compressed for f in files) else sum(f.size for f in files)
        tell("ingest", 0, total_bytes, f"{len(files)} files")

    def on_bytes(nbytes: int, _rows: int) -> None:
        nonlocal done_bytes
        done_bytes += nbytes
        tell("ingest", done_bytes, total_bytes)

    stats = ingest(paths, store_root, tz=tz, progress=on_bytes, on_start=on_start)
    tell("ingest", done_bytes, done_bytes)
    seconds["ingest"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    store = Store.open(store_root, create=False)
    inv = remembered_inventory(store_root, sites)
    tell("detect", 0, None, "preparing")

    def on_rule(rule: str, done: int, total: int) -> None:
        tell("detect", done, total, rule)

    result = engine.run(store, config=cfg, inventory=inv, progress=on_rule)
    seconds["detect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tell("correlate", 0, 1)
    alerts = store.alerts()
    found = correlate(alerts, inv, previous=store.incidents())
    with store.writer() as w:
        counts = w.replace_incidents(found)
    incidents = ranked(store.incidents())  # as stored: with the time each was first opened
    tell("correlate", 1, 1)
    seconds["correlate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    tell("report", 0, 1)
    ov = overview(store, stats)
    files = write(out_dir, incidents, alerts, ov, inventory=inv, now=now)
    tell("report", 1, 1)
    seconds["report"] = time.perf_counter() - t0

    suppressed = alerts.get_column("alert.suppressed").fill_null(False)
    return HuntResult(
        ingest=stats,
        detect=result,
        incidents=incidents,
        incident_counts=counts,
        active_alerts=int(alerts.height - suppressed.sum()),
        overview=ov,
        files=files,
        seconds=seconds,
    )
