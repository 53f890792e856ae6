"""Commands of the Sigma stage: ``sigma check`` (coverage, no store) and ``sigma run``.

Kept apart from cli.py like the other stages; ``register`` adds the ``sigma`` group. Rule
titles, ids, paths and reasons come from rule files someone else wrote: they are printed as
plain ``Text`` after ``safe.term``, never as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from vpnsentry.cli_detect import SinceOpt, UntilOpt, parse_time
from vpnsentry.safe import term
from vpnsentry.ui import DEFAULT_STORE, JsonOpt, StoreOpt, err, out, print_json, print_table

if TYPE_CHECKING:
    from vpnsentry.detect.sigma.compile import RuleSet

RulesArg = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Sigma rule files or folders (searched recursively for *.yml/*.yaml; the SigmaHQ "
        "layout works as-is). None given: the built-in rule pack.",
        show_default=False,
    ),
]
BuiltinOpt = Annotated[
    bool,
    typer.Option("--builtin", help="Add vpnsentry's own rule pack to the given rules."),
]


def register(app: typer.Typer) -> None:
    """Add the ``sigma`` command group to ``app``."""
    sigma = typer.Typer(
        help="Run Sigma rules (files or folders, SigmaHQ layout) over the store.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    sigma.command("check")(check)
    sigma.command("run")(run)
    app.add_typer(sigma, name="sigma")


def _load(rules: list[Path] | None, builtin: bool) -> RuleSet:
    from vpnsentry.detect.sigma.compile import BUILTIN, load

    paths = list(rules or [])
    if builtin or not paths:
        paths.append(BUILTIN)
    return load(paths)


def check(rules: RulesArg = None, builtin: BuiltinOpt = False, as_json: JsonOpt = False) -> None:
    """Say for every rule whether it converts to our store, and why not if it does not.

    Nothing is run and no store is needed. Exit 0 even when rules are skipped: the table is
    the answer.
    """
    rs = _load(rules, builtin)
    if as_json:
        for e in rs.entries:
            print_json(
                {
                    "path": e.path,
                    "id": e.id,
                    "title": e.title,
                    "kind": e.kind,
                    "status": e.status,
                    "reason": e.reason,
                }
            )
        return
    print_table(
        ["path", "id", "title", "status", "reason"],
        [(e.path, e.id or "", e.title, e.status, e.reason) for e in rs.entries],
    )
    _summary(rs)


def _summary(rs: RuleSet) -> None:
    converted = sum(e.status == "converted" for e in rs.entries)
    skipped = len(rs.entries) - converted
    err.print(Text(f"{converted} converted, {skipped} skipped (see the reason column)"))


def run(
    rules: RulesArg = None,
    builtin: BuiltinOpt = False,
    store: StoreOpt = DEFAULT_STORE,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run Sigma rules over the store and keep their matches as alerts (reruns update them).

    Alerts land in the same table as the built-in detections' (rule id ``sigma:<rule id>``)
    and correlate into incidents. Rules that cannot run are listed as skipped with the reason
    (as ``sigma check`` does); the run goes on with the others.
    """
    from vpnsentry.detect.sigma import runner
    from vpnsentry.store.store import Store

    st = Store.open(store, create=False)
    rs = _load(rules, builtin)
    result = runner.run(
        st,
        rs.rules,
        rs.correlations,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    skipped = [e for e in rs.entries if e.status == "skipped"]
    if as_json:
        print_json(
            {
                "store": str(store),
                "seconds": round(result.seconds, 3),
                "scans": result.scans,
                "rules": [vars(r) for r in result.rules],
                "skipped": [
                    {"path": e.path, "id": e.id, "title": e.title, "reason": e.reason}
                    for e in skipped
                ],
                "new": result.counts.new,
                "updated": result.counts.updated,
                "removed": result.counts.removed,
            }
        )
        return
    hits = [r for r in result.rules if r.matches or r.alerts]
    print_table(
        ["rule", "title", "kind", "matches", "alerts"],
        [(r.rule_id, r.title, r.kind, r.matches, r.alerts) for r in hits]
        or [("(no matches)", "", "", 0, 0)],
    )
    for e in skipped:
        err.print(Text(f"skipped: {term(e.path)} {term(e.id or '')}: {term(e.reason)}"))
    out.print(
        Text(
            f"{len(result.rules)} Sigma rules run ({result.scans} shared scans) in "
            f"{result.seconds:.1f}s, {len(skipped)} skipped: {result.counts.new} new, "
            f"{result.counts.updated} updated, {result.counts.removed} removed alerts.  "
            f"See them: vpnsentry alerts --store {store}"
        )
    )
