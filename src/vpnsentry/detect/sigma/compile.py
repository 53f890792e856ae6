"""Sigma files -> runnable rules, or a reason why not: what ``sigma check`` reports.

Files and folders are read as SigmaHQ lays them out (recursive ``*.yml``/``*.yaml``,
multi-document YAML, ``action: global`` collections, correlation rules referring to rules in
other files). Every rule document ends as one :class:`Entry`: ``converted``, or ``skipped``
with the reason (YAML error, not a rule, pySigma's own parse error, unknown log source,
unmapped field, unsupported modifier, SQL that does not bind). Nothing is silently dropped.

A converted detection rule becomes a :class:`Compiled` predicate over one dataset; a
correlation rule (event_count, value_count, temporal) becomes a :class:`Correlation` over the
compiled rules it references.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import duckdb
import polars as pl
import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from vpnsentry import ecs
from vpnsentry.detect.base import TACTICS
from vpnsentry.detect.sigma.backend import DuckDBBackend
from vpnsentry.detect.sigma.logsources import Profile, describe, profile_for
from vpnsentry.detect.sigma.plan import Input, relation, sql_ident
from vpnsentry.enrich.geo import IP4_MACRO
from vpnsentry.errors import InputError

#: The rule pack shipped with vpnsentry (``sigma run --builtin``).
BUILTIN: Final = Path(__file__).parent / "rules"

#: Sigma level -> our severity. ``informational`` has no alerting counterpart: low.
LEVELS: Final = {
    "informational": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
_TACTIC_BY_TAG: Final = {name.lower().replace(" ", "-"): tid for tid, name in TACTICS.items()}
_TECHNIQUE: Final = re.compile(r"^t\d{4}(\.\d{3})?$")
_OPS: Final = {
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.EQ: "=",
    SigmaCorrelationConditionOperator.NEQ: "<>",
}
_SUPPORTED: Final = (
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
)
_ERRORS: Final = (SigmaError, yaml.YAMLError, AttributeError, TypeError, ValueError, KeyError)


@dataclass(frozen=True)
class Meta:
    """What an alert says about the rule that raised it."""

    rule_id: str  # ``sigma:<id>``: keeps Sigma ids apart from built-in detection ids
    title: str
    severity: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Compiled:
    """A detection rule as a predicate over one dataset."""

    meta: Meta
    path: str
    name: str | None  # Sigma ``name``, what correlations may refer to
    sigma_id: str | None
    profile: Profile
    predicate: str  # SQL boolean over ``columns`` and ``inputs``; prefilter not included
    output: bool  # False for rules only a correlation uses (Sigma ``generate: false``)
    columns: tuple[str, ...] = ()  # dataset columns the predicate reads
    inputs: tuple[Input, ...] = ()  # working columns it reads (see plan.py)

    @property
    def dataset(self) -> str:
        return self.profile.dataset

    def rows(self, keep: Sequence[str], window: str = "true") -> str:
        """SQL: the ``keep`` columns of the dataset rows in ``window`` this rule matches."""
        where = f"({window}) AND ({self.profile.prefilter or 'true'})"
        source = relation(self.dataset, where, [*keep, *self.columns], self.inputs)
        cols = ", ".join(sql_ident(c) for c in dict.fromkeys(keep))
        return f"SELECT {cols} FROM ({source}) WHERE {self.predicate}"


@dataclass(frozen=True)
class Correlation:
    """A correlation rule over compiled rules, evaluated in sliding time windows."""

    meta: Meta
    path: str
    kind: str  # event_count, value_count, temporal
    bases: tuple[Compiled, ...]
    group_by: tuple[str, ...]  # ECS columns
    seconds: int
    op: str
    count: float
    value_field: str | None  # value_count: the ECS column whose distinct values are counted


@dataclass(frozen=True)
class Entry:
    """One line of the coverage table."""

    path: str
    id: str | None
    title: str
    status: str  # converted / skipped
    reason: str
    kind: str = "rule"  # rule / correlation / file


@dataclass
class RuleSet:
    """Everything read from the given paths."""

    entries: list[Entry] = field(default_factory=list)
    rules: list[Compiled] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)


def rule_files(paths: Sequence[Path]) -> list[Path]:
    """Rule files under ``paths`` (files as given, folders recursively), sorted per folder."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(
                sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml") and f.is_file())
            )
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"no such rule file or folder: {p}")
    return out


def load(paths: Sequence[Path]) -> RuleSet:
    """Read, convert and check every rule under ``paths``."""
    result = RuleSet()
    pending: list[tuple[str, SigmaCorrelationRule]] = []
    checker = _Checker()
    for f in rule_files(paths):
        for path, item in _read(f, result):
            if isinstance(item, SigmaCorrelationRule):
                pending.append((path, item))
            else:
                _compile_rule(path, item, result, checker)
    by_ref: dict[str, Compiled] = {}
    for c in result.rules:
        for ref in (c.sigma_id, c.name):
            if ref:
                by_ref[ref] = c
    used: set[int] = set()
    for path, corr in pending:
        _compile_correlation(path, corr, by_ref, result, used)
    # Sigma: rules a correlation uses raise no alerts of their own unless it says generate.
    result.rules = [c if id(c) not in used else _quiet(c) for c in result.rules]
    return result


def _quiet(c: Compiled) -> Compiled:
    return dataclasses.replace(c, output=False)


def _read(f: Path, result: RuleSet) -> Iterable[tuple[str, SigmaRule | SigmaCorrelationRule]]:
    """Rule objects of one file; file-level problems become one skipped entry."""
    path = str(f)
    try:
        text = f.read_text(encoding="utf-8")
        docs = list(yaml.safe_load_all(text))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        result.entries.append(Entry(path, None, "", "skipped", _why("unreadable", exc), "file"))
        return
    if not any(
        isinstance(d, dict) and ("detection" in d or "correlation" in d or "action" in d)
        for d in docs
    ):
        reason = "not a Sigma rule (no detection or correlation section)"
        result.entries.append(Entry(path, None, "", "skipped", reason, "file"))
        return
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True, resolve_references=False)
    except _ERRORS as exc:
        result.entries.append(Entry(path, None, "", "skipped", _why("invalid", exc), "file"))
        return
    for rule in collection.rules:
        if rule.errors:
            rid = str(rule.id) if rule.id else None
            title = rule.title or ""
            result.entries.append(
                Entry(path, rid, title, "skipped", _why("invalid", rule.errors[0]))
            )
            continue
        yield path, rule


def _why(prefix: str, exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{prefix}: {text}"[:300]


def _meta(rule: SigmaRule | SigmaCorrelationRule, path: str) -> Meta:
    ident = str(rule.id) if rule.id else None
    if ident is None:  # no id: stable on file and title, so reruns still update in place
        ident = hashlib.sha256(f"{path}\x1f{rule.title}".encode()).hexdigest()[:16]
    tags = [f"{t.namespace}.{t.name}".lower() for t in rule.tags]
    tactics = tuple(
        dict.fromkeys(_TACTIC_BY_TAG[t[7:]] for t in tags if t[7:] in _TACTIC_BY_TAG)
    ) + tuple(t[7:].upper() for t in tags if t.startswith("attack.ta") and t[7:].upper() in TACTICS)
    techniques = tuple(
        t[7:].upper() for t in tags if _TECHNIQUE.match(t[7:]) and t.startswith("attack.")
    )
    level = rule.level.name.lower() if rule.level else "medium"
    return Meta(
        rule_id=f"sigma:{ident}",
        title=rule.title or ident,
        severity=LEVELS.get(level, "medium"),
        tactics=tuple(dict.fromkeys(tactics)),
        techniques=tuple(dict.fromkeys(techniques)),
        description=rule.description or "",
    )


class _Checker:
    """Binds each predicate against empty tables of our schemas (catches what DuckDB refuses,
    e.g. a regular expression RE2 cannot compile, before a run scans anything)."""

    def __init__(self) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute(IP4_MACRO)
        for name in ("events", "flows"):
            self.con.register(name, pl.DataFrame(schema=ecs.SCHEMAS[name]).to_arrow())

    def error(self, rule: Compiled) -> str | None:
        try:
            self.con.execute(f"EXPLAIN {rule.rows(['@timestamp'])}")
        except duckdb.Error as exc:
            return _why("does not compile to DuckDB", exc)
        return None


def _compile_rule(path: str, rule: SigmaRule, result: RuleSet, checker: _Checker) -> None:
    meta = _meta(rule, path)
    rid = str(rule.id) if rule.id else None
    title = rule.title or ""

    def skip(reason: str) -> None:
        result.entries.append(Entry(path, rid, title, "skipped", reason))

    profile = profile_for(rule.logsource)
    if profile is None:
        skip(f"unknown log source {describe(rule.logsource)}")
        return
    backend = DuckDBBackend(profile)
    try:
        queries = backend.convert_rule(rule)
    except _ERRORS as exc:
        skip(_why(type(exc).__name__.removeprefix("Sigma"), exc))
        return
    except NotImplementedError as exc:
        skip(_why("unsupported", exc))
        return
    if not queries:
        skip("the condition converts to nothing")
        return
    predicate = " OR ".join(f"({q})" for q in queries) if len(queries) > 1 else str(queries[0])
    compiled = Compiled(
        meta,
        path,
        rule.name,
        rid,
        profile,
        predicate,
        output=True,
        columns=tuple(sorted(backend.columns)),
        inputs=tuple(backend.inputs[k] for k in sorted(backend.inputs)),
    )
    problem = checker.error(compiled)
    if problem:
        skip(problem)
        return
    result.rules.append(compiled)
    result.entries.append(Entry(path, rid, title, "converted", f"log source {profile.name}"))


def _compile_correlation(
    path: str,
    corr: SigmaCorrelationRule,
    by_ref: dict[str, Compiled],
    result: RuleSet,
    used: set[int],
) -> None:
    rid = str(corr.id) if corr.id else None
    title = corr.title or ""

    def skip(reason: str) -> None:
        result.entries.append(Entry(path, rid, title, "skipped", reason, "correlation"))

    if corr.type not in _SUPPORTED:
        skip(f"correlation type {corr.type} is not supported")
        return
    cond = corr.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        skip("extended correlation conditions are not supported")
        return
    if len(corr.aliases):
        skip("correlation field aliases are not supported")
        return
    bases: list[Compiled] = []
    for ref in corr.rules or []:
        base = by_ref.get(ref.reference)
        if base is None:
            skip(f"referenced rule {ref.reference!r} is not among the converted rules")
            return
        bases.append(base)
    if not bases:
        skip("correlation references no rules")
        return
    group_by: list[str] = []
    for name in corr.group_by or []:
        cols = {b.profile.mapping().get(name) for b in bases}
        col = cols.pop() if len(cols) == 1 else None
        if col is None or col in bases[0].profile.derived:
            skip(f"group-by field {name!r} is not a column of every referenced rule's source")
            return
        group_by.append(col)
    value_field = None
    if corr.type is SigmaCorrelationType.VALUE_COUNT:
        fieldref = cond.fieldref
        counted = fieldref[0] if isinstance(fieldref, list) and len(fieldref) == 1 else fieldref
        cols = {b.profile.mapping().get(str(counted)) for b in bases}
        value_field = cols.pop() if len(cols) == 1 else None
        if value_field is None:
            skip(f"value_count field {counted!r} is not mapped for every referenced rule")
            return
    for b in bases:
        if not corr.generate:
            used.add(id(b))
    result.correlations.append(
        Correlation(
            meta=_meta(corr, path),
            path=path,
            kind=str(corr.type),
            bases=tuple(bases),
            group_by=tuple(group_by),
            seconds=int(corr.timespan.seconds),
            op=_OPS[cond.op],
            count=cond.count,
            value_field=value_field,
        )
    )
    result.entries.append(
        Entry(path, rid, title, "converted", f"{corr.type} correlation", "correlation")
    )
