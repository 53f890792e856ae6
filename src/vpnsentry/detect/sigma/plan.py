"""The SQL a group of rules runs over: only the columns they read, derived values computed once.

A predicate from :mod:`vpnsentry.detect.sigma.backend` reads dataset columns and *working
columns*: values that many rules would otherwise recompute on every row (``lower(message)``,
FortiGate's ``cfgpath`` extracted from the raw line, ``ip4(source.ip)``). :func:`relation`
is the one place that turns rules' needs into SQL: the dataset's rows of one log source in
the time window, the columns asked for, and each working column computed once, in stages
(a lower-cased extraction needs the extraction first)::

    SELECT "@timestamp", ..., "lower(message)", "fortigate.cfgpath" FROM (
        SELECT *, lower("fortigate.cfgpath") AS "lower(fortigate.cfgpath)" FROM (
            SELECT *, lower("message") AS "lower(message)", <extract> AS "fortigate.cfgpath"
            FROM events WHERE <window> AND <log-source prefilter>))

DuckDB prunes the ``*`` down to the columns used, so the scan reads only those. The runner
materializes this once per log source and evaluates every rule's predicate over it; one rule
alone, a correlation and the load-time check use the same function, so a predicate means the
same wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Input:
    """A working column: ``expr`` over dataset columns (stage 1) or earlier working columns."""

    name: str
    expr: str
    stage: int


def sql_ident(name: str) -> str:
    """A quoted DuckDB identifier holding exactly ``name``."""
    return '"' + name.replace('"', '""') + '"'


def relation(table: str, where: str, columns: Iterable[str], inputs: Iterable[Input]) -> str:
    """``SELECT columns, working columns FROM table WHERE where`` (see the module docstring).

    ``table`` and ``where`` are our own SQL (a dataset name, the window and a profile's
    prefilter); ``columns`` are quoted here. The result has exactly ``columns`` and the
    inputs' names, so a predicate that reads anything else fails to bind.
    """
    work = {i.name: i for i in inputs}
    sql = f"SELECT * FROM {table} WHERE {where}"
    for stage in sorted({i.stage for i in work.values()}):
        exprs = [f"{i.expr} AS {sql_ident(i.name)}" for i in work.values() if i.stage == stage]
        sql = f"SELECT *, {', '.join(exprs)} FROM ({sql})"
    names = [*dict.fromkeys(c for c in columns if c not in work), *work]
    return f"SELECT {', '.join(sql_ident(n) for n in names)} FROM ({sql})"
