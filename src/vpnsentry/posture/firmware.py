"""Known-exploited firmware: which appliances run a version on CISA's KEV list.

Input is an appliance inventory (:func:`load_appliances`): CSV or YAML with ``name``,
``vendor``, ``product``, ``version``, ``site``, or the site inventory (``--sites`` YAML),
whose gateways carry ``vendor`` and ``firmware``. Each appliance is resolved to a product
family, its version parsed in that family's scheme, and compared with the affected ranges of
every catalog entry for the family (:mod:`vpnsentry.posture.kev`).

What is not known is said, never assumed safe: a product we cannot name, a version we cannot
read, a catalog entry without a machine-readable range are findings of their own.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from vpnsentry.errors import InputError, UsageError
from vpnsentry.posture.kev import (
    FAMILIES,
    PARSER_FAMILIES,
    Catalog,
    CveRanges,
    KevEntry,
    entries_for,
    resolve,
)
from vpnsentry.posture.versions import SCHEMES, parse

#: Inventory columns; ``product`` and ``site`` may be empty, and so may ``version`` (then
#: the appliance is reported as "version not understood", not dropped).
COLUMNS: Final = ("name", "vendor", "product", "version", "site")
_REQUIRED: Final = ("name", "vendor", "version")
_NOT_EMPTY: Final = ("name", "vendor")
#: Larger inventory files are refused rather than read into memory.
MAX_INVENTORY_BYTES: Final = 32 * 1024 * 1024


@dataclass(frozen=True)
class Appliance:
    """One inventory entry; ``line`` is where it is written (for messages and SARIF)."""

    name: str
    vendor: str
    product: str
    version: str
    site: str = ""
    line: int = 0
    family: str | None = None  # preset by the site inventory (parser name -> family)


# --------------------------------------------------------------------------- inventory


def load_appliances(path: Path) -> list[Appliance]:
    """Read an appliance inventory: CSV (by extension or content) or YAML.

    A file-level problem (unreadable, not CSV/YAML, missing columns, an entry without a
    name) is an :class:`InputError` naming file and line; a version or product we cannot
    understand is a finding of :func:`audit`, not an error.
    """
    try:
        if path.stat().st_size > MAX_INVENTORY_BYTES:
            raise InputError(f"{path}: larger than {MAX_INVENTORY_BYTES:,} bytes")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    suffix = path.suffix.lower()
    first = text.lstrip().split("\n", 1)[0]
    if suffix == ".csv" or (suffix not in (".yaml", ".yml") and "," in first and ":" not in first):
        apps = _from_csv(text, str(path))
    else:
        apps = _from_yaml(text, path)
    if not apps:
        raise InputError(f"{path}: no appliances in the inventory")
    return apps


def _entry(raw: Mapping[str, Any], where: str, line: int) -> Appliance:
    values: dict[str, str] = {}
    for col in COLUMNS:
        v = raw.get(col)
        if v is not None and not isinstance(v, str | int | float):
            raise InputError(f"{where}: {col}: expected text, got {type(v).__name__}")
        values[col] = "" if v is None else str(v).strip()
    for col in _NOT_EMPTY:
        if not values[col]:
            raise InputError(f"{where}: {col} is missing or empty")
    return Appliance(line=line, **values)


def _from_csv(text: str, source: str) -> list[Appliance]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{source}:1: CSV header lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})"
        )
    reader.fieldnames = header
    out = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise InputError(f"{source}:{line}: more fields than the header has")
            if not any((v or "").strip() for v in row.values()):
                continue
            out.append(_entry(row, f"{source}:{line}", line))
    except csv.Error as exc:
        raise InputError(f"{source}:{reader.line_num}: not CSV ({exc})") from exc
    return out


def _from_yaml(text: str, path: Path) -> list[Appliance]:
    source = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source}{line}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: invalid YAML: {exc}") from exc
    if root is None:
        raise InputError(f"{source}: the inventory is empty")
    keys = (
        {k.value for k, _ in root.value if isinstance(k, yaml.ScalarNode)}
        if isinstance(root, yaml.MappingNode)
        else set()
    )
    if {"sites", "gateways"} <= keys:
        return _from_sites(path)
    items: yaml.Node | None = root
    if isinstance(root, yaml.MappingNode):
        items = next((v for k, v in root.value if k.value == "appliances"), None)
        if items is None:
            raise InputError(
                f"{source}:{root.start_mark.line + 1}: expected a list of appliances, an "
                "'appliances:' list or a site inventory"
            )
    if not isinstance(items, yaml.SequenceNode):
        at = items.start_mark.line + 1 if items is not None else 1
        raise InputError(f"{source}:{at}: expected a list of appliances")
    out = []
    loader = yaml.SafeLoader("")
    try:
        for node in items.value:
            line = node.start_mark.line + 1
            if not isinstance(node, yaml.MappingNode):
                raise InputError(f"{source}:{line}: an appliance is a mapping of {COLUMNS}")
            try:
                raw = loader.construct_mapping(node, deep=True)
            except (yaml.YAMLError, TypeError) as exc:
                raise InputError(f"{source}:{line}: {exc}") from exc
            unknown = sorted(str(k) for k in raw if k not in COLUMNS)
            if unknown:
                raise InputError(
                    f"{source}:{line}: unknown key {unknown[0]!r} (allowed: {', '.join(COLUMNS)})"
                )
            out.append(_entry({str(k): v for k, v in raw.items()}, f"{source}:{line}", line))
    finally:
        loader.dispose()
    return out


def _from_sites(path: Path) -> list[Appliance]:
    """The site inventory's gateways: ``vendor`` is the parser name, ``firmware`` the version."""
    from vpnsentry.enrich.sites import load_inventory

    try:
        inv = load_inventory(path)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    return [
        Appliance(
            name=g.id,
            vendor=g.vendor,
            product=g.hostname,
            version=g.firmware,
            site=g.site,
            line=inv.line_of("gateways", i) or 0,
            family=PARSER_FAMILIES.get(g.vendor),
        )
        for i, g in enumerate(inv.gateways)
    ]


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class Finding:
    """One result for one appliance: a KEV match, or something that could not be checked.

    ``status``: ``vulnerable`` (version in an affected range), ``range_unknown`` (the entry
    has no machine-readable range for this product: check the advisory),
    ``version_not_understood``, ``product_not_understood``.
    """

    appliance: Appliance
    status: str
    severity: str
    message: str
    family: str | None = None
    entry: KevEntry | None = None
    overdue: bool = False
    matched: str = ""
    fixed: tuple[str, ...] = ()
    uncertain: bool = False
    condition: str = ""

    def to_json(self) -> dict[str, Any]:
        a, e = self.appliance, self.entry
        return {
            "appliance": a.name,
            "site": a.site,
            "vendor": a.vendor,
            "product": a.product,
            "version": a.version,
            "line": a.line,
            "family": self.family,
            "status": self.status,
            "severity": self.severity,
            "cve": e.cve if e else None,
            "vulnerability": e.name if e else None,
            "date_added": e.date_added.isoformat() if e else None,
            "due_date": e.due_date.isoformat() if e else None,
            "overdue": self.overdue,
            "known_ransomware_use": e.ransomware == "Known" if e else None,
            "affected_range": self.matched or None,
            "fixed_versions": list(self.fixed),
            "uncertain": self.uncertain,
            "condition": self.condition or None,
            "message": self.message,
        }


@dataclass
class Report:
    """Everything ``audit firmware`` prints: the findings and what was checked."""

    catalog: Catalog
    as_of: dt.date
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # appliance -> entries compared


def family_of(app: Appliance) -> tuple[str | None, str]:
    """The appliance's family, or None and why not."""
    if app.family:
        return app.family, ""
    fams = resolve(app.vendor, app.product)
    if len(fams) == 1:
        return next(iter(fams)), ""
    if not fams:
        return None, f"vendor/product {app.vendor!r} {app.product!r} not recognised"
    return None, f"{app.vendor!r} {app.product!r} is ambiguous ({', '.join(sorted(fams))})"


def _severity(entry: KevEntry, overdue: bool) -> str:
    """Every KEV entry is exploited in the wild: high; critical with ransomware or past due."""
    return "critical" if entry.ransomware == "Known" or overdue else "high"


def audit(
    appliances: Sequence[Appliance],
    catalog: Catalog,
    ranges: Mapping[str, CveRanges],
    as_of: dt.date,
) -> Report:
    """Compare every appliance with the catalog; findings in inventory order, CVEs by age.

    An estate runs few distinct versions: each (family, version) is compared once and its
    findings reused for every appliance that runs it.
    """
    rep = Report(catalog, as_of)
    done: dict[tuple[str, str], tuple[list[Finding], int]] = {}
    for app in appliances:
        fam, why = family_of(app)
        if fam is None:
            rep.findings.append(Finding(app, "product_not_understood", "medium", why))
            continue
        key = (fam, app.version)
        if key not in done:
            found = _check(app, fam, entries_for(catalog, fam), ranges, as_of, rep)
            done[key] = (found, rep.checked.get(app.name, 0))
        found, checked = done[key]
        rep.findings += [dataclasses.replace(f, appliance=app) for f in found]
        rep.checked[app.name] = checked
    return rep


def _check(
    app: Appliance,
    fam: str,
    entries: Iterable[KevEntry],
    ranges: Mapping[str, CveRanges],
    as_of: dt.date,
    rep: Report,
) -> list[Finding]:
    entries = list(entries)
    scheme = FAMILIES[fam].scheme
    version = parse(scheme, app.version) if scheme else None
    if scheme and (version is None or not version.complete):
        example = SCHEMES[scheme].example
        what = "missing" if not app.version else f"{app.version!r} not understood"
        return [
            Finding(
                app,
                "version_not_understood",
                "medium",
                f"version {what} for {FAMILIES[fam].title} (expected like {example}); "
                f"{len(entries)} known-exploited entries could not be checked",
                family=fam,
            )
        ]
    out = []
    checked = 0
    for e in entries:
        known = ranges.get(e.cve)
        mine = [r for r in known.ranges if r.family == fam] if known else []
        overdue = e.due_date < as_of
        if version is None or not mine:
            out.append(
                Finding(
                    app,
                    "range_unknown",
                    "info",
                    "range unknown: check vendor advisory",
                    family=fam,
                    entry=e,
                    overdue=overdue,
                    condition=known.condition if known else "",
                )
            )
            continue
        checked += 1
        hits = [r for r in mine if r.matches(version)]
        if not hits:
            continue
        assert known is not None
        out.append(
            Finding(
                app,
                "vulnerable",
                _severity(e, overdue),
                f"{app.version} is in the affected range of {e.cve}"
                + (
                    f"; upgrade to {' or '.join(hits[0].fixed)}"
                    if hits[0].fixed
                    else "; the shipped data names no fixed version: see the vendor advisory"
                ),
                family=fam,
                entry=e,
                overdue=overdue,
                matched="; ".join(r.describe() for r in hits),
                fixed=tuple(dict.fromkeys(f for r in hits for f in r.fixed)),
                uncertain=known.uncertain,
                condition=known.condition,
            )
        )
    rep.checked[app.name] = checked
    return out
