"""Command line: parse options, call one stage function each, render the result.

Exit codes (see errors.ExitCode): 0 ok, 1 partial success (some input quarantined or
unreadable), 2 usage error, 3 input error, 4 store error, 70 internal error.
Everything printed that came from a log goes through ``safe.term`` and is printed as plain
Rich ``Text``, never markup.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from vpnsentry import __version__
from vpnsentry.errors import ExitCode, UsageError, VpnSentryError
from vpnsentry.safe import term
from vpnsentry.ui import (
    DEFAULT_STORE,
    JsonOpt,
    StoreOpt,
    err,
    out,
    print_json,
    print_table,
)

app = typer.Typer(
    name="vpnsentry",
    help=(
        "Find intrusions that come in through a corporate VPN, in the logs you already have.\n\n"
        "Exit codes: 0 ok, 1 partial success (lines quarantined or files unreadable), "
        "2 usage error, 3 input error, 4 store error, 70 internal error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"vpnsentry {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Find intrusions that come in through a corporate VPN."""


class _RowsPerSecond(ProgressColumn):
    """Parsed rows per second, next to Rich's bytes per second."""

    def render(self, task: Task) -> Text:
        rows = float(task.fields.get("rows", 0))
        secs = task.elapsed or 0.0
        rate = rows / secs if secs > 0 else 0.0
        return Text(f"{rate:,.0f} rows/s")


# -- ingest ------------------------------------------------------------------------------


@app.command()
def ingest(
    paths: Annotated[
        list[str], typer.Argument(help="Files, globs or folders (recursive); .gz is read too.")
    ],
    store: StoreOpt = DEFAULT_STORE,
    fmt: Annotated[
        str,
        typer.Option("--format", help="auto (detect per file) or a name from `formats`."),
    ] = "auto",
    tz: Annotated[
        str,
        typer.Option(help="Time zone for timestamps that carry none (IANA name)."),
    ] = "UTC",
    strict: Annotated[
        bool, typer.Option(help="Stop at the first parser error instead of quarantining.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Parse log files into the store (idempotent: re-ingesting adds only new lines)."""
    from vpnsentry.collect.files import SourceFile
    from vpnsentry.ingest import COUNTERS
    from vpnsentry.ingest import ingest as run_ingest

    show = err.is_terminal and not as_json
    progress = Progress(
        TextColumn("ingest"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        _RowsPerSecond(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not show,
    )
    task = progress.add_task("ingest", total=None, rows=0)

    def on_start(files: list[SourceFile]) -> None:
        total = None if any(f.compressed for f in files) else sum(f.size for f in files)
        progress.update(task, total=total)

    def tick(nbytes: int, rows: int) -> None:
        fields = progress.tasks[0].fields
        progress.update(task, advance=nbytes, rows=int(fields.get("rows", 0)) + rows)

    with progress:
        stats = run_ingest(
            paths, store, fmt=fmt, tz=tz, strict=strict, progress=tick, on_start=on_start
        )
    if as_json:
        print_json(
            {
                "store": str(store),
                "seconds": round(stats.seconds, 3),
                "rows_written": stats.rows_written,
                "missing": stats.missing,
                "totals": stats.totals(),
                "files": [vars(f) for f in stats.files],
            }
        )
        raise typer.Exit(int(stats.exit_code))
    by_format: dict[str, list[int]] = {}
    for f in stats.files:
        row = by_format.setdefault(f.format, [0] * (len(COUNTERS) + 1))
        row[0] += 1
        for i, k in enumerate(COUNTERS, start=1):
            row[i] += int(getattr(f, k))
    print_table(
        ["format", "files", *COUNTERS],
        [(name, *vals) for name, vals in sorted(by_format.items())],
    )
    noisy = [f for f in stats.files if f.quarantined or f.problems or f.format == "unknown"]
    if noisy:
        out.print(Text(f"files with quarantined lines or problems ({len(noisy)}):"))
        print_table(
            ["file", "format", "lines", "quarantined"],
            [(f.path, f.format, f.lines, f.quarantined) for f in noisy[:20]],
        )
        if len(noisy) > 20:
            out.print(Text(f"... and {len(noisy) - 20} more (--json lists every file)"))
    t = stats.totals()
    out.print(
        Text(
            f"{len(stats.files)} files: {t['lines'] + t['duplicates']:,} lines = "
            f"{t['parsed']:,} parsed + {t['quarantined']:,} quarantined + "
            f"{t['ignored']:,} ignored (headers/blank) + {t['duplicates']:,} already in store"
            f"  [{stats.seconds:.1f}s, store {store}]"
        )
    )
    if tz == "UTC":
        out.print(Text("timestamps without a zone were read as UTC (--tz to change)"))
    for f in stats.files:
        for p in f.problems:
            err.print(Text(f"warning: {term(f.path, 120)}: {term(p)}"))
    unknown = [f.path for f in stats.files if f.format == "unknown"]
    if unknown:
        shown = ", ".join(term(p, 120) for p in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        err.print(
            Text(
                f"warning: {len(unknown)} files in no known format, their lines quarantined "
                f"(force one with --format NAME): {shown}{more}"
            )
        )
    for m in stats.missing:
        err.print(Text(f"warning: nothing matched {term(m, 200)}"))
    if t["quarantined"]:
        err.print(Text('see them with: vpnsentry query "SELECT * FROM quarantine"'))
    raise typer.Exit(int(stats.exit_code))


# -- simulate ----------------------------------------------------------------------------


@app.command()
def simulate(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder to write the logs and ground truth to.")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days to simulate.")] = 30,
    users: Annotated[int, typer.Option(min=1, max=200_000, help="Remote users.")] = 300,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="Attack scenario to inject (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 1,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Writer processes (output is byte-identical for any number)."
        ),
    ] = 1,
    sites: Annotated[
        Path | None,
        typer.Option(
            "--sites",
            help="Estate/site inventory YAML, or the name of a bundled estate: default, "
            "multi-vendor (docs/sites.md). Default: the bundled default estate.",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="First day, YYYY-MM-DD (default: the estate file's simulation.start, so the "
            "same seed always gives the same bytes)."
        ),
    ] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list-scenarios", help="Describe the scenarios and exit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a realistic VPN estate's logs with attacks injected, and ground_truth.json."""
    from vpnsentry import simulate as sim

    if list_scenarios:
        rows = sim.list_scenarios()
        if as_json:
            print_json([{"name": n, "description": d} for n, d in rows])
            return
        for name, desc in rows:
            out.print(Text(name, style="bold"))
            out.print(Text("  " + desc))
        return
    if out_dir is None:
        raise UsageError("--out DIR is required (or --list-scenarios)")
    known = {n for n, _ in sim.list_scenarios()}
    for s in scenario or []:
        if s not in known:
            raise UsageError(f"unknown scenario {s!r}; known: {', '.join(sorted(known))}")
    try:
        first = dt.date.fromisoformat(start) if start else None
    except ValueError as exc:
        raise UsageError(f"--start must be YYYY-MM-DD, not {start!r}") from exc
    progress = Progress(
        TextColumn("simulate"),
        BarColumn(),
        TextColumn("day {task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not (err.is_terminal and not as_json),
    )
    task = progress.add_task("simulate", total=days)

    def tick(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        summary = sim.simulate(
            out_dir,
            days=days,
            users=users,
            scenarios=scenario or [],
            seed=seed,
            sites=sites,
            start=first,
            progress=tick,
            workers=workers,
        )
    if as_json:
        print_json({**dataclasses.asdict(summary), "lines": summary.lines})
        return
    out.print(
        Text(
            f"wrote {summary.lines:,} lines in {len(summary.files)} files to "
            f"{term(out_dir / 'logs')} in {summary.seconds:.1f}s "
            f"({summary.garbled:,} deliberately garbled); {summary.steps} attack steps; "
            f"ground truth: {term(summary.ground_truth)}"
        )
    )


# -- formats -----------------------------------------------------------------------------


@app.command()
def formats(as_json: JsonOpt = False) -> None:
    """List the supported log formats with a sample line each."""
    from vpnsentry.parse.base import registry

    rows = [
        {
            "name": name,
            "title": cls.title,
            "datasets": list(cls.datasets),
            "sample": cls.sample,
        }
        for name, cls in registry().items()
    ]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        out.print(Text(f"{r['name']}  —  {r['title']}  → {', '.join(r['datasets'])}", style="bold"))
        out.print(Text("  " + term(r["sample"], 300)))


# -- stats -------------------------------------------------------------------------------


_STATS_SQL = {
    "dataset": (
        "SELECT 'events' AS dataset, count(*) AS rows FROM events UNION ALL "
        "SELECT 'flows', count(*) FROM flows UNION ALL "
        "SELECT 'quarantine', count(*) FROM quarantine"
    ),
    "format": (
        'SELECT dataset, "event.module" AS format, count(*) AS rows FROM ('
        "SELECT 'events' AS dataset, \"event.module\" FROM events UNION ALL "
        "SELECT 'flows', \"event.module\" FROM flows UNION ALL "
        "SELECT 'quarantine', \"event.module\" FROM quarantine) GROUP BY ALL ORDER BY ALL"
    ),
    "observer": (
        'SELECT "observer.name" AS observer, "event.module" AS format, count(*) AS rows FROM ('
        'SELECT "observer.name", "event.module" FROM events UNION ALL '
        'SELECT "observer.name", "event.module" FROM flows) GROUP BY ALL ORDER BY rows DESC'
    ),
    "day": (
        'SELECT CAST("@timestamp" AS DATE) AS day, dataset, count(*) AS rows FROM ('
        "SELECT 'events' AS dataset, \"@timestamp\" FROM events UNION ALL "
        "SELECT 'flows', \"@timestamp\" FROM flows) GROUP BY ALL ORDER BY ALL"
    ),
    "quarantine": (
        'SELECT "event.module" AS format, "error.type" AS reason, count(*) AS rows '
        "FROM quarantine GROUP BY ALL ORDER BY rows DESC"
    ),
}


@app.command()
def stats(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """Counts per dataset, format, observer and day, and quarantine reasons."""
    from vpnsentry.store.store import Store

    con = Store.open(store, create=False).reader()
    result: dict[str, list[dict[str, Any]]] = {}
    for name, sql in _STATS_SQL.items():
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        result[name] = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    if as_json:
        print_json(result)
        return
    for name, rows in result.items():
        out.print(Text(f"by {name}", style="bold"))
        if rows:
            print_table(list(rows[0].keys()), [tuple(r.values()) for r in rows])
        else:
            out.print(Text("  (none)"))


# -- query -------------------------------------------------------------------------------


@app.command()
def query(
    sql: Annotated[
        str,
        typer.Argument(
            help="One read-only SQL statement. Views: events, flows, quarantine, alerts. Quote "
            'dotted ECS names: SELECT "source.ip", count(*) FROM events GROUP BY 1.'
        ),
    ],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    limit: Annotated[int, typer.Option(help="Most rows shown in the table output.")] = 100,
) -> None:
    """Run a read-only SQL query over the store (DuckDB dialect)."""
    from vpnsentry.store.store import Store

    con = Store.open(store, create=False).reader()
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {exc}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise UsageError("query takes exactly one SELECT statement (the store is read-only)")
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {term(exc, 500)}") from exc
    if as_json:
        for r in rows:
            print_json(dict(zip(cols, r, strict=True)))
    elif as_csv:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        w.writerows(rows)
        sys.stdout.write(buf.getvalue())
    else:
        print_table(cols, rows[:limit])
        if len(rows) > limit:
            out.print(Text(f"... {len(rows) - limit:,} more rows (--limit, --csv or --json)"))


# The other stages' commands live in their own modules (which import ui, never this one).
from vpnsentry import (  # noqa: E402
    cli_audit,
    cli_detect,
    cli_hunt,
    cli_incidents,
    cli_intel,
    cli_serve,
    cli_sigma,
)

for _module in (cli_detect, cli_incidents, cli_intel, cli_hunt, cli_audit, cli_sigma, cli_serve):
    _module.register(app)

# -- entry point -------------------------------------------------------------------------


def main() -> None:
    """Console script: run the app, turning our errors into one line and an exit code.

    Typer/Click handle their own usage errors (exit 2) and ``typer.Exit``; what reaches us
    is either one of our errors (a message, its exit code) or a bug (one line, exit 70;
    ``VPNSENTRY_DEBUG=1`` shows the traceback).
    """
    try:
        app()
    except VpnSentryError as exc:
        err.print(Text(f"error: {term(exc, 2000)}"))
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        err.print(Text("interrupted"))
        sys.exit(130)
    except Exception as exc:  # the one place a surprise becomes a message, not a traceback
        if os.environ.get("VPNSENTRY_DEBUG") == "1":
            traceback.print_exc()
        err.print(
            Text(
                f"internal error: {type(exc).__name__}: {term(exc, 500)} "
                "(set VPNSENTRY_DEBUG=1 for the traceback; please report it)"
            )
        )
        sys.exit(int(ExitCode.INTERNAL))
