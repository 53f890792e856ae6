"""Commands of threat intelligence: ``intel add``, ``intel list``, ``intel match``.

Indicators added here are matched by every full ``detect`` (and so by ``hunt``);
``intel match`` runs the matching alone, e.g. right after a new feed arrived. Output rules
are those of cli.py (see ui.py): feed text is attacker-reachable and goes through ``term``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.text import Text

from vpnsentry.cli_detect import SinceOpt, UntilOpt, parse_time
from vpnsentry.errors import ExitCode, InputError, UsageError
from vpnsentry.safe import term
from vpnsentry.ui import DEFAULT_STORE, JsonOpt, StoreOpt, err, out, print_json, print_table


def register(app: typer.Typer) -> None:
    """Add the ``intel`` command group to ``app``."""
    intel = typer.Typer(
        help="Threat-intelligence indicators (STIX 2.1, MISP, CSV): add, list, match.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    intel.command("add")(intel_add)
    intel.command("list")(intel_list)
    intel.command("match")(intel_match)
    app.add_typer(intel, name="intel")


def intel_add(
    files: Annotated[list[Path], typer.Argument(help="STIX 2.1 bundles, MISP JSON, CSV lists.")],
    fmt: Annotated[
        str, typer.Option("--format", help="auto (by content), stix, misp or csv.")
    ] = "auto",
    source: Annotated[
        str | None,
        typer.Option(
            help="Source name for indicators whose feed names none (default: the file name "
            "without extension). STIX created_by_ref, MISP Orgc and a CSV source column win."
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Load indicator feeds into the store (re-adding a feed updates it, never duplicates).

    Every entry is loaded or reported as skipped with the reason. Exit 1 when a file could
    not be read at all.
    """
    from vpnsentry.intel import catalog
    from vpnsentry.intel.feeds import FORMATS, read_file
    from vpnsentry.store.store import Store

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}")
    st = Store.open(store, create=True)
    reports: list[dict[str, Any]] = []
    for path in files:
        rep: dict[str, Any] = {"path": str(path), "format": None, "error": None}
        reports.append(rep)
        try:
            feed = read_file(path, fmt, source)
        except (InputError, ValueError) as exc:
            rep["error"] = str(exc)
            continue
        rows, dup = catalog.normalize_feed(feed)
        counts = catalog.add(st, rows, dup)
        rep |= {
            "format": feed.format,
            "indicators": rows.height,
            "revoked": int(rows["revoked"].sum()),
            **dataclasses.asdict(counts),
            "skipped": [dataclasses.asdict(s) for s in feed.skipped],
            "ignored": feed.ignored,
        }
    failed = [r for r in reports if r["error"]]
    code = ExitCode.PARTIAL if failed else ExitCode.OK
    if as_json:
        print_json({"store": str(store), "files": reports})
        raise typer.Exit(int(code))
    cols = ["indicators", "new", "updated", "unchanged", "older", "revoked"]
    print_table(
        ["file", "format", *cols, "skipped"],
        [
            (r["path"], r["format"], *(r[c] for c in cols), len(r["skipped"]))
            for r in reports
            if not r["error"]
        ],
    )
    for r in reports:
        for s in r.get("skipped", [])[:20]:
            out.print(
                Text(f"skipped {term(s['where'], 60)}: {term(s['value'], 80)}: {term(s['reason'])}")
            )
        if len(r.get("skipped", [])) > 20:
            out.print(
                Text(f"... {len(r['skipped']) - 20} more skipped in {term(r['path'])} (--json)")
            )
        if r.get("ignored"):
            kinds = ", ".join(f"{n} {term(k, 60)}" for k, n in sorted(r["ignored"].items()))
            out.print(Text(f"{term(r['path'])}: not indicators, ignored: {kinds}"))
    for r in failed:
        err.print(Text(f"error: {term(r['path'], 200)}: {term(r['error'])}"))
    total = sum(r.get("indicators", 0) for r in reports)
    out.print(
        Text(
            f"{total:,} indicators from {len(reports) - len(failed)} of {len(reports)} files; "
            f"they match in the next `vpnsentry detect` or now with `vpnsentry intel match`"
        )
    )
    raise typer.Exit(int(code))


def intel_list(
    values: Annotated[
        bool, typer.Option("--values", help="List the indicators, not counts per source.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    kind: Annotated[
        str | None, typer.Option("--type", help="Only this type (ipv4, domain, sha256 ...).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most indicators shown with --values.")] = 100,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Indicators in the store: counts per source and type (active, expired, revoked ...)."""
    from vpnsentry.intel import catalog
    from vpnsentry.store.store import Store

    df = catalog.indicators(Store.open(store, create=False))
    if source is not None:
        df = df.filter(pl.col("source") == source)
    if kind is not None:
        df = df.filter(pl.col("type") == kind)
    if values:
        shown = df.drop("lo4", "hi4", "lo6", "hi6")
        if as_json:
            for row in shown.iter_rows(named=True):
                print_json(row)
            return
        cols = ["source", "type", "norm", "confidence", "valid_from", "valid_until", "revoked"]
        print_table(
            [*cols, "description"], list(shown.select(*cols, "description").head(limit).iter_rows())
        )
        if df.height > limit:
            out.print(Text(f"... {df.height - limit:,} more (--limit or --json)"))
        return
    now = dt.datetime.now(dt.UTC)
    expired = pl.col("valid_until") <= now
    pending = pl.col("valid_from") > now
    summary = (
        df.group_by("source", "type")
        .agg(
            pl.len().alias("indicators"),
            (~pl.col("revoked") & ~expired.fill_null(False) & ~pending.fill_null(False))
            .sum()
            .alias("active"),
            (expired.fill_null(False) & ~pl.col("revoked")).sum().alias("expired"),
            (pending.fill_null(False) & ~pl.col("revoked")).sum().alias("not_yet_valid"),
            pl.col("revoked").sum().alias("revoked"),
            pl.col("norm").str.contains("/").sum().alias("ranges"),
            pl.col("feed").unique().sort().str.join(", ").alias("feeds"),
            pl.col("updated").max().alias("last_update"),
        )
        .sort("source", "type")
    )
    if as_json:
        for row in summary.iter_rows(named=True):
            print_json(row)
        return
    print_table(summary.columns, list(summary.iter_rows()))
    out.print(Text(f"{df.height:,} indicators (active: valid now and not revoked)"))


def intel_match(
    since: SinceOpt = None,
    until: UntilOpt = None,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Match the indicators against events and flows now, and store the alerts.

    The same matching every full `vpnsentry detect` runs; alerts replace earlier intel
    alerts in the window (rules intel_match_outbound, intel_match_vpn, intel_match_inbound).
    """
    from vpnsentry.detect.engine import ecs_empty
    from vpnsentry.intel.match import run_matching
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    t0, t1 = parse_time(since, "--since"), parse_time(until, "--until")
    con = st.reader()
    try:
        runs, alerts = run_matching(st, con, dt.datetime.now(dt.UTC))
    finally:
        con.close()
    frame = ecs_empty() if alerts is None else alerts
    if t0 is not None:
        frame = frame.filter(pl.col("@timestamp") >= t0)
    if t1 is not None:
        frame = frame.filter(pl.col("@timestamp") < t1)
    ran = [r.id for r in runs if r.error is None]
    with st.writer() as w:
        counts = w.replace_alerts(frame, ran, t0, t1)
    failed = [r for r in runs if r.error]
    if as_json:
        print_json(
            {
                "store": str(store),
                "rules": [dataclasses.asdict(r) for r in runs],
                **dataclasses.asdict(counts),
            }
        )
    elif not runs:
        out.print(Text("no active indicators in the store: add some with `vpnsentry intel add`"))
    else:
        print_table(
            ["rule", "alerts", "seconds"], [(r.id, r.alerts, f"{r.seconds:.2f}") for r in runs]
        )
        for r in failed:
            err.print(Text(f"error: {r.id} failed, its earlier alerts kept: {term(r.error)}"))
        out.print(
            Text(
                f"{counts.new} new, {counts.updated} updated, {counts.removed} removed alerts.  "
                f"See them: vpnsentry alerts --rule intel_match_outbound --rule intel_match_vpn "
                f"--rule intel_match_inbound --store {store}"
            )
        )
    if failed:
        raise typer.Exit(int(ExitCode.PARTIAL))
