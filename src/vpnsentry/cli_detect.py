"""Commands of the detection stage: detect, detections, alerts, suppress, evaluate.

Kept apart from cli.py so each command module stays readable; ``register`` adds them to
the one Typer app. Output rules are those of cli.py (see ui.py).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from vpnsentry.enrich.sites import remembered_inventory
from vpnsentry.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from vpnsentry.detect.base import Detection
from vpnsentry.safe import term
from vpnsentry.ui import DEFAULT_STORE, JsonOpt, StoreOpt, err, out, print_json, print_table

SitesOpt = Annotated[
    Path | None,
    typer.Option(
        "--sites",
        help="Site inventory YAML (the schema `simulate` writes; docs/sites.md). Remembered in "
        "the store: later runs without --sites reuse it.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file with detection parameters and allow-lists (docs/detections.md).",
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Only alerts whose first evidence is at or after this (ISO date/time, UTC)."),
]
UntilOpt = Annotated[
    str | None, typer.Option(help="Only alerts whose first evidence is before this (ISO, UTC).")
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(detect)
    app.command(name="detections")(list_detections)
    app.command()(alerts)
    app.command()(evaluate)
    suppress = typer.Typer(
        help="Silence an alert pattern with a reason (kept, queryable, opens no incident).",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    suppress.command("add")(suppress_add)
    suppress.command("list")(suppress_list)
    suppress.command("remove")(suppress_remove)
    app.add_typer(suppress, name="suppress")


def parse_time(value: str | None, name: str) -> dt.datetime | None:
    """An ISO date or date-time; naive values are UTC."""
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {value!r} is not an ISO date or date-time") from exc
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


# -- detect --------------------------------------------------------------------------------


def detect(
    store: StoreOpt = DEFAULT_STORE,
    sites: SitesOpt = None,
    config: ConfigOpt = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="Run only these detections (id or id prefix; repeatable)."),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    geoip: Annotated[
        list[Path] | None,
        typer.Option(
            "--geoip",
            help="MaxMind/DB-IP .mmdb file (Country, City or ASN; repeatable). Default: the "
            "embedded offline database.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the detections over the store and keep their alerts in it (reruns update them)."""
    from vpnsentry.detect import engine
    from vpnsentry.detect.base import detections
    from vpnsentry.detect.config import load_config
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    cfg = load_config(config, detections())
    inv = remembered_inventory(store, sites)
    show = err.is_terminal and not as_json
    progress = Progress(
        TextColumn("detect {task.fields[rule]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show,
    )
    task = progress.add_task("detect", total=None, rule="")

    def tick(rule: str, done: int, total: int) -> None:
        progress.update(task, completed=done, total=total, rule=rule)

    with progress:
        result = engine.run(
            st,
            config=cfg,
            inventory=inv,
            only=only or (),
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            geo_files=geoip or (),
            progress=tick,
        )
    if as_json:
        print_json(
            {
                "store": str(store),
                "seconds": round(result.seconds, 3),
                "prepare_seconds": round(result.prepare_seconds, 3),
                "table_seconds": {k: round(v, 3) for k, v in result.table_seconds.items()},
                "rules": [vars(r) for r in result.rules],
                "new": result.counts.new,
                "updated": result.counts.updated,
                "removed": result.counts.removed,
                "suppressed": result.suppressed,
                "active_by_severity": result.by_severity,
            }
        )
        if any(r.error for r in result.rules):
            raise typer.Exit(int(ExitCode.PARTIAL))
        return
    print_table(
        ["detection", "alerts", "seconds"],
        [(r.id, r.alerts, f"{r.seconds:.2f}") for r in result.rules if r.alerts]
        or [("(no alerts)", 0, "")],
    )
    failed = [r for r in result.rules if r.error]
    for r in failed:
        err.print(Text(f"error: detection {r.id} failed, its earlier alerts kept: {term(r.error)}"))
    sev = ", ".join(f"{n} {s}" for s, n in result.by_severity.items()) or "none"
    if inv is None:
        err.print(
            Text(
                "warning: no site inventory (--sites): detections that need sites, gateways "
                "or allow-lists treat every private address alike"
            )
        )
    out.print(
        Text(
            f"{len(result.rules)} detections in {result.seconds:.1f}s "
            f"({result.prepare_seconds:.1f}s of it building shared tables): "
            f"{result.counts.new} new, {result.counts.updated} updated, "
            f"{result.counts.removed} removed alerts; active by severity: {sev}; "
            f"{result.suppressed} suppressed.  See them: vpnsentry alerts --store {store}"
        )
    )
    if failed:
        raise typer.Exit(int(ExitCode.PARTIAL))


def list_detections(
    detection_id: Annotated[
        str | None, typer.Argument(help="Show one detection in full (parameters, SQL).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the built-in detections with their ATT&CK tactics and techniques."""
    from vpnsentry.detect.base import detections

    known = detections()
    if detection_id is not None:
        if detection_id not in known:
            raise UsageError(f"no detection {detection_id!r} (see `vpnsentry detections`)")
        info = _detection_info(known[detection_id], full=True)
        if as_json:
            print_json(info)
            return
        for k, v in info.items():
            if v in (None, "", [], {}):
                continue
            text = json.dumps(v) if isinstance(v, list | dict) else str(v)
            out.print(Text(f"{k}: ", style="bold") + Text(text))
        return
    if as_json:
        for d in known.values():
            print_json(_detection_info(d, full=False))
        return
    rows = [
        (d.id, d.severity, ",".join(d.tactics), ",".join(d.techniques), d.title)
        for d in known.values()
    ]
    print_table(["id", "severity", "tactics", "techniques", "title"], rows)


def _detection_info(d: Detection, *, full: bool) -> dict[str, Any]:
    """A detection's metadata as JSON-able values; ``full`` adds the texts and the SQL."""
    info: dict[str, Any] = {
        "id": d.id,
        "title": d.title,
        "severity": d.severity,
        "status": d.status,
        "tactics": list(d.tactics),
        "techniques": list(d.techniques),
        "datasets": list(d.datasets),
        "needs": list(d.needs),
        "live": d.live,
        "params": dict(d.params),
    }
    if full:
        info |= {"description": d.description, "false_positives": d.false_positives, "sql": d.sql}
    return info


# -- alerts --------------------------------------------------------------------------------


def alerts(
    store: StoreOpt = DEFAULT_STORE,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", help="Only these detections (repeatable).")
    ] = None,
    severity: Annotated[
        str | None, typer.Option(help="Minimum severity: low, medium, high, critical.")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    suppressed: Annotated[
        bool, typer.Option("--suppressed", help="Show suppressed alerts too (with the reason).")
    ] = False,
    limit: Annotated[int, typer.Option(help="Most alerts shown in the table.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show stored alerts, newest evidence last (--json prints ECS NDJSON)."""
    from vpnsentry.detect.base import SEVERITIES
    from vpnsentry.store.store import Store

    df = Store.open(store, create=False).alerts()
    if rule:
        df = df.filter(pl.col("rule.id").is_in(rule))
    if severity is not None:
        if severity not in SEVERITIES:
            raise UsageError(f"--severity must be one of {', '.join(SEVERITIES)}")
        floor = SEVERITIES[severity]
        df = df.filter(pl.col("alert.severity").replace_strict(SEVERITIES, default=0.0) >= floor)
    t0, t1 = parse_time(since, "--since"), parse_time(until, "--until")
    if t0 is not None:
        df = df.filter(pl.col("@timestamp") >= t0)
    if t1 is not None:
        df = df.filter(pl.col("@timestamp") < t1)
    if not suppressed:
        df = df.filter(~pl.col("alert.suppressed").fill_null(False))
    if as_json:
        for row in df.iter_rows(named=True):
            row["alert.evidence"] = json.loads(row["alert.evidence"] or "{}")
            print_json(row)
        return
    cols = ["@timestamp", "alert.severity", "rule.id", "alert.summary", "alert.id"]
    if suppressed:
        cols.append("alert.suppression")
    print_table(cols, [tuple(r) for r in df.select(cols).head(limit).iter_rows()])
    if df.height > limit:
        out.print(Text(f"... {df.height - limit:,} more alerts (--limit or --json)"))
    out.print(Text(f"{df.height:,} alerts"))


# -- suppress ------------------------------------------------------------------------------


def suppress_add(
    rule_id: Annotated[
        str,
        typer.Argument(
            help="Rule id: a detection, an intel_match_* rule, sigma:<id>, any rule with stored "
            "alerts, or * for every rule."
        ),
    ],
    entity: Annotated[
        str,
        typer.Option(
            help="FIELD=VALUE the alert must carry: user.name, source.ip, destination.ip, "
            "ip (any related address), host.name, observer.name, alert.key or alert.id.",
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (kept with the suppressed alerts).")],
    expires: Annotated[
        str | None,
        typer.Option(help="Alerts whose evidence starts at/after this fire again (ISO date)."),
    ] = None,
    author: Annotated[str | None, typer.Option(help="Who decided (for the audit trail).")] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Suppress matching alerts, now and in every later detect run."""
    from vpnsentry.store.store import SUPPRESS_FIELDS, Store

    if rule_id != "*" and not _known_rule(rule_id, store):
        raise UsageError(
            f"no rule {rule_id!r} (see `vpnsentry detections`; Sigma rules are sigma:<id>)"
        )
    field, sep, value = entity.partition("=")
    if not sep or field not in SUPPRESS_FIELDS or not value:
        raise UsageError(
            f"--entity must be FIELD=VALUE with FIELD one of {', '.join(SUPPRESS_FIELDS)}"
        )
    if not reason.strip():
        raise UsageError("--reason must say why")
    st = Store.open(store, create=False)
    with st.writer() as w:
        sid, n = w.add_suppression(
            rule_id, field, value, reason, parse_time(expires, "--expires"), author
        )
    out.print(Text(f"suppression {sid} added; it matches {n} stored alerts"))


def _known_rule(rule_id: str, store: Path) -> bool:
    """Built-in detections, threat-intel rules, Sigma rules (``sigma:<id>``, before they first
    fire too) and any rule with alerts in the store: everything that raises alerts."""
    from vpnsentry.detect.base import detections
    from vpnsentry.intel.match import RULES
    from vpnsentry.store.store import Store

    if rule_id in detections() or rule_id in {d.id for d in RULES}:
        return True
    if rule_id.startswith("sigma:") and len(rule_id) > len("sigma:"):
        return True
    return rule_id in Store.open(store, create=False).alerts()["rule.id"].to_list()


def suppress_list(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """List suppressions."""
    from vpnsentry.store.store import Store

    rows = Store.open(store, create=False).suppressions()
    if as_json:
        for r in rows:
            print_json(r)
        return
    cols = ["id", "rule_id", "field", "value", "reason", "created", "expires", "author"]
    print_table(cols, [tuple(r[c] for c in cols) for r in rows])


def suppress_remove(
    suppression_id: Annotated[str, typer.Argument(help="Id from `suppress list`.")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Remove a suppression; the alerts it covered are active again."""
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    with st.writer() as w:
        if not w.remove_suppression(suppression_id):
            raise UsageError(f"no suppression {term(suppression_id)!r}")
    out.print(Text(f"suppression {term(suppression_id)} removed"))


# -- evaluate ------------------------------------------------------------------------------


def evaluate(
    truth: Annotated[Path, typer.Option(help="ground_truth.json written by `simulate`.")],
    store: StoreOpt = DEFAULT_STORE,
    sites: SitesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score the stored alerts against a simulator run's ground truth."""
    from vpnsentry.detect.evaluate import evaluate as run_eval
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    inv = remembered_inventory(store, sites)
    report = run_eval(st.alerts(), truth, inv)
    if as_json:
        print_json(report.as_dict())
        return
    print_table(
        ["step", "scenario", "name", "detected", "time to detect", "by"],
        [
            (
                s.id,
                s.scenario,
                s.name,
                s.status,
                s.time_to_detect or "",
                ", ".join(s.rules[:4])
                + (" ..." if len(s.rules) > 4 else "")
                + (f" (related: {', '.join(s.touched_by[:3])})" if s.touched_by else ""),
            )
            for s in report.steps
        ],
    )
    out.print(Text("false positives by detection (alerts that touch no attack step):"))
    print_table(
        ["detection", "alerts", "per day per 1000 users"],
        [(k, v, f"{report.fp_rate(v):.2f}") for k, v in report.fp_by_rule.items()]
        or [("(none)", 0, "0")],
    )
    if report.traps_fired:
        out.print(Text("benign traps that raised alerts:"))
        print_table(["trap", "alerts", "detections"], report.trap_rows())
    if report.posture_by_rule:
        out.print(Text("posture findings (standing exposures, not counted as false positives):"))
        print_table(["detection", "alerts"], list(report.posture_by_rule.items()))
    out.print(Text(report.summary()))
