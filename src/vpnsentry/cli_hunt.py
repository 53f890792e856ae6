"""``vpnsentry hunt``: ingest, detect, correlate and report in one command.

The work is :func:`vpnsentry.hunt.hunt`; this module parses options, shows one progress
display for the four stages (Rich on stderr, transient, off when stderr is not a terminal
or with ``--json``) and prints the summary. Output rules are those of cli.py (see ui.py):
every value that came from a log is printed as plain ``Text`` after ``safe.term``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from vpnsentry.cli_detect import ConfigOpt, SitesOpt
from vpnsentry.errors import ExitCode
from vpnsentry.hunt import DEFAULT_OUT
from vpnsentry.safe import term
from vpnsentry.ui import DEFAULT_STORE, JsonOpt, StoreOpt, err, out, print_json

if TYPE_CHECKING:
    from vpnsentry.hunt import HuntResult

#: Incidents listed by title in the summary.
TOP: int = 5


def register(app: typer.Typer) -> None:
    """Add ``hunt`` to ``app``."""
    app.command(name="hunt")(hunt_command)


def _mib(n: float) -> str:
    return f"{n / 1048576:,.1f}"


def hunt_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="Log files, globs or folders (recursive); .gz is read too."),
    ],
    store: StoreOpt = DEFAULT_STORE,
    sites: SitesOpt = None,
    config: ConfigOpt = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for report.html, alerts.ndjson, incidents.ndjson, stix-bundle.json.",
        ),
    ] = DEFAULT_OUT,
    tz: Annotated[
        str,
        typer.Option(help="Time zone for timestamps that carry none (IANA name)."),
    ] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Ingest logs, run the detections, group alerts into incidents and write the report."""
    from vpnsentry.hunt import STAGES, hunt

    show = err.is_terminal and not as_json
    progress = Progress(
        TextColumn("{task.description:<9}", markup=False),
        BarColumn(),
        TextColumn("{task.fields[detail]}", markup=False),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show,
    )
    tasks: dict[str, TaskID] = {}

    def tick(stage: str, done: int, total: int | None, detail: str) -> None:
        if stage not in tasks:
            for s in STAGES[: STAGES.index(stage)] if stage in STAGES else ():
                if s in tasks:  # an earlier stage is over: show it full
                    t = progress.tasks[tasks[s]]
                    progress.update(tasks[s], completed=t.total or 1, total=t.total or 1)
            tasks[stage] = progress.add_task(stage, total=total, detail="")
        if stage == "ingest":
            detail = f"{_mib(done)}/{_mib(total)} MiB" if total else f"{_mib(done)} MiB"
        elif stage == "detect" and total:
            detail = f"{done}/{total} {detail}"
        progress.update(tasks[stage], completed=done, total=total, detail=term(detail, 60))

    with progress:
        result = hunt(
            paths,
            store,
            sites=sites,
            config=config,
            out_dir=out_dir,
            tz=tz,
            progress=tick,
        )
    if as_json:
        print_json(_as_json(result, store))
    else:
        _summary(result, store, tz)
    raise typer.Exit(int(result.exit_code))


def _as_json(r: HuntResult, store: Path) -> dict[str, Any]:
    return {
        "store": str(store),
        "report": {
            "html": str(r.files.html),
            "alerts": str(r.files.alerts),
            "incidents": str(r.files.incidents),
            "stix": str(r.files.stix),
        },
        "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
        "ingest": {
            "files": len(r.ingest.files),
            "missing": r.ingest.missing,
            "totals": r.ingest.totals(),
            "rows_written": r.ingest.rows_written,
        },
        "detect": {
            "detections": len(r.detect.rules),
            "failed": r.failed_detections,
            "new": r.detect.counts.new,
            "updated": r.detect.counts.updated,
            "removed": r.detect.counts.removed,
            "suppressed": r.detect.suppressed,
            "active_alerts": r.active_alerts,
            "active_by_severity": r.detect.by_severity,
        },
        "incidents": {
            "total": len(r.incidents),
            "by_severity": r.by_severity(),
            "new": r.incident_counts.new,
            "updated": r.incident_counts.updated,
            "unchanged": r.incident_counts.unchanged,
            "removed": r.incident_counts.removed,
            "top": [
                {
                    "id": i.id,
                    "severity": i.severity,
                    "risk_score": i.risk_score,
                    "title": i.title,
                }
                for i in r.incidents[:TOP]
            ],
        },
        "exit_code": int(r.exit_code),
    }


def _summary(r: HuntResult, store: Path, tz: str) -> None:
    t = r.ingest.totals()
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in r.seconds.items())
    out.print(
        Text(
            f"ingest: {len(r.ingest.files)} files, {t['parsed']:,} lines parsed, "
            f"{t['quarantined']:,} quarantined, {t['duplicates']:,} already in store "
            f"(store {term(store, 200)})"
        )
    )
    out.print(
        Text(
            f"detect: {len(r.detect.rules)} detections, {r.active_alerts:,} active alerts "
            f"({r.detect.counts.new} new, {r.detect.suppressed} suppressed)"
        )
    )
    sev = ", ".join(f"{n} {s}" for s, n in r.by_severity().items()) or "none"
    out.print(Text(f"incidents: {len(r.incidents)} ({sev})", style="bold"))
    for n, inc in enumerate(r.incidents[:TOP], start=1):
        out.print(
            Text(f"  {n}. {inc.severity:<8} {term(inc.id, 40)}  ") + Text(term(inc.title, 300))
        )
    if len(r.incidents) > TOP:
        out.print(Text(f"  ... and {len(r.incidents) - TOP} more (vpnsentry incidents)"))
    out.print(Text(f"report: {term(r.files.html, 500)}", style="bold"))
    out.print(
        Text(
            f"        alerts.ndjson, incidents.ndjson, stix-bundle.json in the same folder  "
            f"[{secs}]"
        )
    )
    if tz == "UTC" and t["parsed"]:
        err.print(Text("timestamps without a zone were read as UTC (--tz to change)"))
    for f in r.ingest.files:
        for p in f.problems:
            err.print(Text(f"warning: {term(f.path, 120)}: {term(p)}"))
    for m in r.ingest.missing:
        err.print(Text(f"warning: nothing matched {term(m, 200)}"))
    for rule in r.detect.rules:
        if rule.error:
            err.print(
                Text(
                    f"error: detection {rule.id} failed, its earlier alerts kept: "
                    f"{term(rule.error)}"
                )
            )
    if t["quarantined"]:
        err.print(
            Text(
                f"note: {t['quarantined']:,} lines could not be parsed and were quarantined "
                f"(exit {int(ExitCode.PARTIAL)}); see them with: "
                'vpnsentry query "SELECT * FROM quarantine"'
            )
        )
