"""Commands ``audit firmware``, ``audit update-kev`` and ``audit segmentation``.

They join the ``audit`` group of cli_audit.py, which imports this module at its end and calls
:func:`register` (so this module can reuse its ``--fail-on`` choices and exit code).

Exit codes: 0 nothing at or above ``--fail-on``; 1 findings at or above it (the CI gate);
2 usage error; 3 an input file is missing or malformed (the message names file and line);
4 the store cannot be read. Text from inventories and logs goes through ``safe.term``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from vpnsentry.cli_audit import EXIT_FINDINGS, FailOn
from vpnsentry.errors import UsageError
from vpnsentry.posture.config.model import SEVERITIES
from vpnsentry.safe import term
from vpnsentry.ui import DEFAULT_STORE, JsonOpt, StoreOpt, out, print_json, print_table

if TYPE_CHECKING:
    from vpnsentry.posture.firmware import Report

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where update-kev keeps a newer catalog (default $VPNSENTRY_DATA_DIR, else "
        "$XDG_DATA_HOME/vpnsentry, i.e. ~/.local/share/vpnsentry).",
    ),
]
FailOnOpt = Annotated[
    FailOn,
    typer.Option(help="Exit 1 when a finding is at or above this severity (never: exit 0)."),
]


def register(audit: typer.Typer) -> None:
    """Add this module's commands to the ``audit`` group."""
    audit.command("firmware")(firmware)
    audit.command("update-kev")(update_kev)
    audit.command("segmentation")(segmentation)


def _gate(severities: list[str], fail_on: FailOn) -> None:
    """Exit 1 when any severity is at or above ``fail_on``."""
    if fail_on is FailOn.never:
        return
    floor = SEVERITIES.index(fail_on.value)
    if any(SEVERITIES.index(s) >= floor for s in severities):
        raise typer.Exit(EXIT_FINDINGS)


# -- firmware ------------------------------------------------------------------------------


def firmware(
    inventory: Annotated[
        Path,
        typer.Argument(
            help="Appliance inventory: CSV or YAML with name, vendor, product, version, site; "
            "or the site inventory YAML (gateways' vendor and firmware)."
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date the KEV due dates are compared with (default today)."),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Also list catalog entries without a version range (range unknown)."
        ),
    ] = False,
    data_dir: DataDirOpt = None,
    fail_on: FailOnOpt = FailOn.high,
    as_json: JsonOpt = False,
) -> None:
    """Match appliance versions against CISA's known-exploited VPN/edge vulnerabilities."""
    from vpnsentry.posture import firmware as fw
    from vpnsentry.posture import kev

    try:
        day = dt.date.fromisoformat(as_of) if as_of else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise UsageError(f"--as-of: {as_of!r} is not a date (YYYY-MM-DD)") from None
    apps = fw.load_appliances(inventory)
    cat = kev.load_catalog(data_dir)
    rep = fw.audit(apps, cat, kev.load_ranges(), day)
    if as_json:
        print_json(
            {
                "catalog": {
                    "catalogVersion": cat.version,
                    "dateReleased": cat.released,
                    "origin": cat.origin,
                },
                "as_of": day.isoformat(),
                "appliances": [
                    {
                        "name": a.name,
                        "site": a.site,
                        "version": a.version,
                        "entries_compared": rep.checked.get(a.name, 0),
                    }
                    for a in apps
                ],
                "findings": [f.to_json() for f in rep.findings],
            }
        )
    else:
        _firmware_table(rep, show_all, len(apps))
    _gate([f.severity for f in rep.findings], fail_on)


def _firmware_table(rep: Report, show_all: bool, n_apps: int) -> None:
    rows = []
    shown = [f for f in rep.findings if show_all or f.status != "range_unknown"]
    shown.sort(key=lambda f: -SEVERITIES.index(f.severity))
    for f in shown:
        e = f.entry
        due = f"{e.due_date}{' OVERDUE' if f.overdue else ''}" if e else ""
        rows.append(
            (
                f.severity,
                f.appliance.name,
                f.appliance.site,
                f.appliance.version,
                e.cve if e else f.status.replace("_", " "),
                e.name if e else f.message,
                due,
                ("known" if e.ransomware == "Known" else "") if e else "",
                ", ".join(f.fixed) or ("" if f.status != "vulnerable" else "see advisory"),
            )
        )
    print_table(
        [
            "severity",
            "appliance",
            "site",
            "version",
            "cve",
            "vulnerability",
            "kev due",
            "ransomware",
            "upgrade to",
        ],
        rows,
    )
    counts = Counter(f.status for f in rep.findings)
    out.print(
        Text(
            f"{n_apps} appliances, KEV catalog {rep.catalog.version} "
            f"(released {rep.catalog.released[:10]}, {rep.catalog.origin}), as of {rep.as_of}: "
            f"{counts['vulnerable']} vulnerable, {counts['version_not_understood']} versions "
            f"and {counts['product_not_understood']} products not understood, "
            f"{counts['range_unknown']} entries with no version range"
            + ("" if show_all else " (--all lists them)")
        )
    )


# -- update-kev ----------------------------------------------------------------------------


def update_kev(
    catalog_file: Annotated[
        Path,
        typer.Argument(
            help="A CISA KEV catalog JSON (known_exploited_vulnerabilities.json), read offline."
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Store it even if it is not newer than the current.")
    ] = False,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a newer KEV catalog, keep its VPN/edge subset and report what changed."""
    from vpnsentry.posture import kev

    ranges = kev.load_ranges()
    current = kev.load_catalog(data_dir)
    new = kev.read_catalog_file(catalog_file, current, ranges)
    newer = new.released > current.released
    stored = kev.store_catalog(new, data_dir) if newer or force else None
    changes = kev.diff(current, new, ranges)
    if as_json:
        print_json(
            {
                "previous": {"catalogVersion": current.version, "dateReleased": current.released},
                "loaded": {
                    "catalogVersion": new.version,
                    "dateReleased": new.released,
                    "vpn_entries": len(new.entries),
                },
                "stored": str(stored) if stored else None,
                "changes": [c.to_json() for c in changes],
            }
        )
        return
    print_table(
        ["change", "cve", "product", "detail"],
        [(c.kind, c.cve, c.product, c.detail) for c in changes],
    )
    verdict = (
        f"stored in {stored}"
        if stored
        else f"not stored: not newer than {current.version} ({current.released[:10]}); --force"
    )
    out.print(
        Text(
            f"catalog {term(new.version, 40)} ({term(new.released[:10], 40)}): "
            f"{len(new.entries)} VPN/edge entries, {len(changes)} changes; {verdict}"
        )
    )


# -- segmentation --------------------------------------------------------------------------


def segmentation(
    sites: Annotated[
        Path | None,
        typer.Option(
            "--sites",
            help="Site inventory YAML with groups and policy (docs/sites.md); default: the "
            "copy remembered in the store.",
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    since: Annotated[
        str | None, typer.Option(help="Only flows at or after this (ISO date/time, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only flows before this (ISO date/time, UTC).")
    ] = None,
    port: Annotated[
        list[int] | None,
        typer.Option(
            "--port",
            help="Admin port to check (TCP, repeatable). Default: 22 23 135 139 445 512-514 "
            "3389 5900 5985 5986.",
        ),
    ] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list reached paths the policy allows.")
    ] = False,
    fail_on: FailOnOpt = FailOn.high,
    as_json: JsonOpt = False,
) -> None:
    """Which VPN pools and branch subnets reached crown jewels on admin ports, vs the policy."""
    from vpnsentry.cli_detect import parse_time
    from vpnsentry.enrich.sites import remembered_inventory
    from vpnsentry.posture import segmentation as seg
    from vpnsentry.store.store import Store

    t0, t1 = parse_time(since, "--since"), parse_time(until, "--until")
    st = Store.open(store, create=False)
    inv = remembered_inventory(store, sites)
    if inv is None:
        raise UsageError("--sites: a site inventory with a policy is needed (docs/sites.md)")
    con = st.reader(since=t0)
    try:
        reached = seg.check(con, inv, ports=port or seg.ADMIN_PORTS, since=t0, until=t1)
    finally:
        con.close()
    if as_json:
        print_json(
            {
                "store": str(store),
                "sites": inv.source,
                "since": t0.isoformat() if t0 else None,
                "until": t1.isoformat() if t1 else None,
                "ports": sorted(set(port or seg.ADMIN_PORTS)),
                "policy_rules": len(inv.policy),
                "paths": [r.to_json() for r in reached],
            }
        )
    else:
        shown = [r for r in reached if show_all or r.violation]
        print_table(
            [
                "severity",
                "from",
                "source net",
                "to",
                "dest net",
                "port",
                "allowed by",
                "conns",
                "sources",
                "dests",
                "bytes",
                "first seen",
                "last seen",
                "crown jewels",
            ],
            [
                (
                    r.severity,
                    f"{r.source_site} ({f'VPN pool {r.gateway}' if r.gateway else r.source_kind})",
                    r.source_net,
                    r.dest_site or "",
                    r.dest_net or "",
                    r.port,
                    r.allowed_by or "VIOLATION",
                    r.connections,
                    r.sources,
                    r.destinations,
                    r.bytes,
                    r.first_seen,
                    r.last_seen,
                    ", ".join(r.hosts),
                )
                for r in shown
            ],
        )
        bad = sum(r.violation for r in reached)
        out.print(
            Text(
                f"{bad} paths violate the policy ({len(inv.policy)} rules), "
                f"{len(reached) - bad} allowed paths reached crown jewels on admin ports"
                + ("" if show_all else " (--all lists them)")
            )
        )
    _gate([r.severity for r in reached], fail_on)
