"""Commands of the correlation stage: correlate, incidents, incident.

``correlate`` groups the stored alerts into incidents and keeps them in the store;
``incidents`` lists them and ``incident ID`` shows one in full. The report's ``hunt`` calls
:func:`vpnsentry.correlate.incidents.correlate` itself, not these commands. Output rules are
those of cli.py (see ui.py): every value that came from a log is printed as plain ``Text``
after ``safe.term``, never as markup.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from vpnsentry.errors import UsageError
from vpnsentry.safe import term
from vpnsentry.ui import DEFAULT_STORE, JsonOpt, StoreOpt, out, print_json, print_table

if TYPE_CHECKING:
    from vpnsentry.correlate.model import Incident

SitesOpt = Annotated[
    Path | None,
    typer.Option(
        "--sites",
        help="Site inventory YAML (docs/sites.md): maps gateway addresses to gateways and "
        "addresses to sites and roles. Default: the copy the store remembers from `detect`.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(correlate)
    app.command(name="incidents")(list_incidents)
    app.command(name="incident")(show_incident)


def _when(t: dt.datetime | None) -> str:
    return "" if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def _line(label: str, value: Any, limit: int = 400) -> None:
    out.print(Text(f"{label}: ", style="bold") + Text(term(value, limit)))


# -- correlate -----------------------------------------------------------------------------


def correlate(
    store: StoreOpt = DEFAULT_STORE,
    sites: SitesOpt = None,
    window_days: Annotated[
        float,
        typer.Option(
            "--window-days",
            help="Largest gap between two alerts' evidence for a shared user, address or "
            "host to join them (gateways 30 days, tunnel addresses 12 hours: docs/incidents.md).",
            min=0.0,
        ),
    ] = 7.0,
    as_json: JsonOpt = False,
) -> None:
    """Group the stored alerts into incidents and keep them in the store (reruns keep ids)."""
    from vpnsentry.correlate.incidents import Params
    from vpnsentry.correlate.incidents import correlate as run_correlate
    from vpnsentry.enrich.sites import remembered_inventory
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    inv = remembered_inventory(store, sites)
    previous = st.incidents()
    incidents = run_correlate(
        st.alerts(),
        inv,
        params=Params(window=dt.timedelta(days=window_days)),
        previous=previous,
    )
    with st.writer() as w:
        counts = w.replace_incidents(incidents)
    if as_json:
        print_json(
            {
                "store": str(store),
                "incidents": len(incidents),
                "new": counts.new,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "removed": counts.removed,
                "ids": [i.id for i in incidents],
            }
        )
        return
    _table(incidents)
    out.print(
        Text(
            f"{len(incidents)} incidents: {counts.new} new, {counts.updated} updated, "
            f"{counts.unchanged} unchanged, {counts.removed} removed.  "
            f"See one: vpnsentry incident ID --store {term(store)}"
        )
    )


# -- incidents -----------------------------------------------------------------------------


def _table(incidents: list[Incident]) -> None:
    from vpnsentry.correlate.incidents import fmt_duration

    if not incidents:
        out.print(Text("no incidents (alerts: vpnsentry alerts; regroup: vpnsentry correlate)"))
        return
    print_table(
        ["id", "severity", "confidence", "first seen", "dwell", "title", "alerts"],
        [
            (
                i.id,
                i.severity,
                f"{i.confidence:.2f}",
                _when(i.first_seen),
                fmt_duration(i.dwell_seconds),
                i.title,
                len(i.alert_ids),
            )
            for i in incidents
        ],
    )


def list_incidents(store: StoreOpt = DEFAULT_STORE, as_json: JsonOpt = False) -> None:
    """List the stored incidents, most severe first (--json prints NDJSON)."""
    from vpnsentry.correlate.attack import technique_name
    from vpnsentry.correlate.model import incident_to_dict
    from vpnsentry.store.store import Store

    incidents = _by_severity(Store.open(store, create=False).incidents())
    if as_json:
        for inc in incidents:
            names = {t: technique_name(t) for t in inc.techniques}
            print_json(incident_to_dict(inc, names))
        return
    _table(incidents)


def _by_severity(incidents: list[Incident]) -> list[Incident]:
    from vpnsentry.detect.base import SEVERITIES

    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(
        incidents, key=lambda i: (-order.get(i.severity, 0), -i.risk_score, i.first_seen, i.id)
    )


# -- incident ------------------------------------------------------------------------------


def _find(incidents: list[Incident], wanted: str) -> Incident:
    w = wanted.strip().upper()
    if not w.startswith("INC-"):
        w = "INC-" + w
    exact = [i for i in incidents if i.id.upper() == w]
    if exact:
        return exact[0]
    hits = [i for i in incidents if i.id.upper().startswith(w)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise UsageError(f"{term(wanted)!r} matches {len(hits)} incidents; give more of the id")
    raise UsageError(f"no incident {term(wanted)!r} (see `vpnsentry incidents`)")


def show_incident(
    incident_id: Annotated[str, typer.Argument(help="Incident id (or a unique prefix).")],
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Show one incident: what happened, in which order, where it went, what left."""
    import polars as pl

    from vpnsentry.correlate.attack import CAVEAT, technique_name
    from vpnsentry.correlate.incidents import fmt_bytes, fmt_duration
    from vpnsentry.correlate.model import incident_to_dict
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    inc = _find(st.incidents(), incident_id)
    alerts = st.alerts().filter(pl.col("alert.id").is_in(list(inc.alert_ids)))
    alerts = alerts.sort(["@timestamp", "alert.id"])
    if as_json:
        doc = incident_to_dict(inc, {t: technique_name(t) for t in inc.techniques})
        doc["incident.attribution_caveat"] = CAVEAT
        doc["incident.alerts"] = [
            {
                "alert.id": r["alert.id"],
                "@timestamp": r["@timestamp"],
                "alert.severity": r["alert.severity"],
                "rule.id": r["rule.id"],
                "alert.summary": r["alert.summary"],
            }
            for r in alerts.iter_rows(named=True)
        ]
        print_json(doc)
        return

    out.print(Text(f"{inc.id}  ", style="bold") + Text(term(inc.title, 1000), style="bold"))
    _line(
        "severity",
        f"{inc.severity} (risk {inc.risk_score:g}, confidence {inc.confidence:.2f}, "
        f"{inc.extra.get('stages', '?')} kill-chain stages in order)",
    )
    _line(
        "activity",
        f"{_when(inc.first_seen)} → {_when(inc.last_seen)} UTC; first raised "
        f"{_when(inc.detected_at)} UTC, dwell {fmt_duration(inc.dwell_seconds)}",
    )
    if inc.opened_at is not None:
        _line("incident opened", f"{_when(inc.opened_at)} UTC")
    if inc.summary:
        _line("summary", inc.summary, 4000)
    if inc.tactics:
        _line("tactics", " → ".join(f"{n} ({t})" for t, n in inc.tactics))
    if inc.techniques:
        out.print(Text("techniques:", style="bold"))
        for t in inc.techniques:
            out.print(Text(f"  {term(t)}  {technique_name(t) or '(name not in ATT&CK data)'}"))

    out.print(Text(f"timeline ({alerts.height} of {len(inc.alert_ids)} alerts):", style="bold"))
    if alerts.height:
        print_table(
            ["time", "severity", "rule", "summary"],
            [
                (_when(r["@timestamp"]), r["alert.severity"], r["rule.id"], r["alert.summary"])
                for r in alerts.iter_rows(named=True)
            ],
        )
    missing = len(inc.alert_ids) - alerts.height
    if missing:
        out.print(Text(f"  ({missing} alerts no longer in the store: rerun correlate)"))

    if inc.path:
        out.print(Text("attack path:", style="bold"))
        for e in inc.path:
            src = e.src_label or e.src
            dst = e.dst_label or e.dst
            port = f"port {e.port}, " if e.port is not None else ""
            out.print(Text(f"  {term(src)} → {term(dst)} ({port}{_when(e.first_seen)})"))

    for label, values in (
        ("users", inc.users),
        ("hosts", inc.hosts),
        ("sites", inc.sites),
        ("gateways", inc.gateways),
        ("external addresses", inc.external),
    ):
        if values:
            shown = ", ".join(term(v, 120) for v in values[:20])
            more = f" (+{len(values) - 20} more)" if len(values) > 20 else ""
            out.print(Text(f"{label}: ", style="bold") + Text(shown + more))
    if inc.bytes_out or inc.destinations:
        _line("data out", f"{fmt_bytes(inc.bytes_out)} to {', '.join(inc.destinations) or '?'}")

    if inc.attribution:
        out.print(Text("ATT&CK group overlap (a hint, not attribution):", style="bold"))
        for a in inc.attribution:
            shared = ", ".join(f"{t} {technique_name(t)}" for t in a.shared)
            out.print(
                Text(
                    f"  {a.group_id} {a.name}: {len(a.shared)} shared of "
                    f"{a.group_techniques} techniques (score {a.score:.2f}): {shared}"
                )
            )
        out.print(Text("  " + CAVEAT, style="italic"))
