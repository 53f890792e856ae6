"""Run compiled Sigma rules over the store: one shared pass per log source, then correlations.

Shared pass: rules are grouped by dataset and log source (the profile's prefilter). Per
group the store is scanned once, into an in-memory working table holding that source's rows
in the window, only the columns the group's rules read, the alert's entity columns, and
every working column (``lower(message)``, FortiGate raw-line extractions, ``ip4(...)``)
computed once per row (:func:`vpnsentry.detect.sigma.plan.relation`). Each rule's predicate
is then one vectorized filter over that table, and only matching rows come back::

    CREATE TEMP TABLE _sigma_work AS SELECT <entities>, <columns>, <working columns> ...
    SELECT 0 AS _rule, <entities> FROM _sigma_work WHERE <p0>
    UNION ALL SELECT 1 AS _rule, <entities> FROM _sigma_work WHERE <p1> ...

docs/sigma.md ("Performance") says why this shape and what it measured; ``bench/sigma.py``
compares it with one query per rule over the store (``match_rules(shared=False)``, also the
reference the tests hold the shared pass to).

Matched rows become alerts grouped per rule, source address, user, device and UTC day (one
alert per burst of identical findings, not one per log line), through the same
``engine.to_alerts`` as built-in detections, so ids are stable (reruns update in place) and
the alerts correlate into incidents like any other.

Correlation rules run as windowed SQL: the referenced rules' matches are unioned and counted
per group in a sliding window ``RANGE BETWEEN <timespan> PRECEDING AND CURRENT ROW``
(``count(*)``, ``count(DISTINCT field)`` or ``count(DISTINCT rule)`` for temporal).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import duckdb
import polars as pl

from vpnsentry import ecs
from vpnsentry.detect.base import Detection
from vpnsentry.detect.engine import ecs_empty, to_alerts
from vpnsentry.detect.sigma.compile import Compiled, Correlation, Meta
from vpnsentry.detect.sigma.plan import relation, sql_ident
from vpnsentry.enrich.geo import IP4_MACRO
from vpnsentry.errors import StoreError
from vpnsentry.store.store import AlertCounts, Store

#: Entity columns copied from a matched row into the alert (alert name <- dataset column).
ENTITIES: Final = {
    "user.name": "user.name",
    "source.ip": "source.ip",
    "destination.ip": "destination.ip",
    "destination.port": "destination.port",
    "host.name": "host.hostname",
    "observer.name": "observer.name",
}
#: Columns shown as evidence samples, first present wins.
_SAMPLE: Final = ("message", "event.action")
_SAMPLES: Final = 3
#: The working table of the log-source group being evaluated (temporary, this connection only).
WORK: Final = "_sigma_work"


@dataclass(frozen=True)
class RuleResult:
    """What one rule did in a run."""

    rule_id: str
    title: str
    kind: str  # rule / correlation
    matches: int  # matched events (correlations: events in windows meeting the condition)
    alerts: int


@dataclass
class RunResult:
    """Summary of a ``sigma run``."""

    rules: list[RuleResult] = field(default_factory=list)
    counts: AlertCounts = field(default_factory=lambda: AlertCounts(0, 0, 0))
    seconds: float = 0.0
    scans: int = 0


def window_sql(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[str, dict[str, object]]:
    """The time window as SQL with named parameters."""
    parts: list[str] = ["true"]
    params: dict[str, object] = {}
    if since is not None:
        parts.append('"@timestamp" >= $since')
        params["since"] = since
    if until is not None:
        parts.append('"@timestamp" < $until')
        params["until"] = until
    return " AND ".join(parts), params


def keep_columns(dataset: str) -> list[str]:
    """What a matched row brings back for its alert: time, entities and an evidence sample."""
    schema = ecs.SCHEMAS[dataset]
    cols = ["@timestamp", *(c for c in (*ENTITIES.values(), *_SAMPLE) if c in schema)]
    return list(dict.fromkeys(cols))


def groups(rules: Sequence[Compiled]) -> dict[tuple[str, str], list[int]]:
    """Rule indexes per (dataset, log-source prefilter): the rules one store scan serves."""
    out: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rules):
        out.setdefault((r.dataset, r.profile.prefilter), []).append(i)
    return out


def match_rules(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[Compiled],
    since: dt.datetime | None,
    until: dt.datetime | None,
    *,
    shared: bool = True,
) -> dict[int, pl.DataFrame]:
    """Matched rows (:func:`keep_columns`) per rule index into ``rules``.

    ``shared``: one scan per log-source group (module docstring). Otherwise one query per
    rule straight over the store: the baseline the benchmark and the tests compare with.
    """
    window, params = window_sql(since, until)
    out: dict[int, pl.DataFrame] = {}
    for idx in groups(rules).values():
        if shared:
            out.update(_shared_pass(con, [rules[i] for i in idx], idx, window, params))
        else:
            keep = keep_columns(rules[idx[0]].dataset)
            for i in idx:
                out[i] = _frame(con, rules[i].rows(keep, window), params)
    return out


def _shared_pass(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[Compiled],
    idx: Sequence[int],
    window: str,
    params: dict[str, object],
) -> dict[int, pl.DataFrame]:
    """One log-source group: materialize its working table once, then filter it per rule."""
    first = rules[0]
    keep = keep_columns(first.dataset)
    where = f"({window}) AND ({first.profile.prefilter or 'true'})"
    columns = [*keep, *(c for r in rules for c in r.columns)]
    source = relation(first.dataset, where, columns, [i for r in rules for i in r.inputs])
    con.execute(f"CREATE OR REPLACE TEMP TABLE {WORK} AS {source}", params)
    try:
        select = ", ".join(sql_ident(c) for c in keep)
        union = " UNION ALL ".join(
            f"SELECT {n} AS _rule, {select} FROM {WORK} WHERE {r.predicate}"
            for n, r in enumerate(rules)
        )
        frame = _frame(con, union, {})
    finally:
        con.execute(f"DROP TABLE IF EXISTS {WORK}")
    parts = frame.partition_by("_rule", as_dict=True, include_key=False)
    empty = frame.drop("_rule").clear()
    return {i: parts.get((n,), empty) for n, i in enumerate(idx)}


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df


def alerts_for_rule(rule: Compiled, rows: pl.DataFrame, created: dt.datetime) -> pl.DataFrame:
    """Matched rows of one rule -> alerts, one per source, user, device and UTC day."""
    if rows.is_empty():
        return ecs_empty()
    for alert_col, col in ENTITIES.items():
        rows = rows.with_columns(
            (pl.col(col) if col in rows.columns else pl.lit(None, pl.String)).alias("_" + alert_col)
        )
    sample = next((c for c in _SAMPLE if c in rows.columns), None)
    keys = ["_source.ip", "_user.name", "_observer.name"]
    grouped = (
        rows.sort(rows.columns, nulls_last=True)  # total order: samples as stable as ids
        .with_columns(pl.col("@timestamp").dt.date().alias("_day"))
        .group_by([*keys, "_day"], maintain_order=True)
        .agg(
            pl.col("@timestamp").min().alias("@timestamp"),
            pl.col("@timestamp").max().alias("event.end"),
            pl.len().alias("_count"),
            pl.col("_destination.ip").drop_nulls().first().alias("destination.ip"),
            pl.col("_destination.port").drop_nulls().first().alias("destination.port"),
            pl.col("_host.name").drop_nulls().first().alias("host.name"),
            (pl.col(sample).drop_nulls().head(_SAMPLES) if sample else pl.lit([], pl.String)).alias(
                "_samples"
            ),
        )
    )
    grouped = grouped.rename({k: k[1:] for k in keys})
    return _to_alerts(rule.meta, rule.dataset, grouped, created, {"sigma.path": rule.path})


def _to_alerts(
    meta: Meta, dataset: str, grouped: pl.DataFrame, created: dt.datetime, extra: dict[str, str]
) -> pl.DataFrame:
    """Grouped findings (entities, ``_count``, ``_samples``) -> the alert schema."""
    key_parts = [
        pl.col(c).cast(pl.String).fill_null("")
        for c in ("source.ip", "user.name", "observer.name", "_group")
        if c in grouped.columns
    ]
    summary = (
        pl.lit(f"Sigma rule '{meta.title}' matched ")
        + pl.col("_count").cast(pl.String)
        + pl.lit(" event(s)")
        + pl.when(pl.col("source.ip").is_not_null())
        .then(pl.lit(" from ") + pl.col("source.ip"))
        .otherwise(pl.lit(""))
        + pl.when(pl.col("user.name").is_not_null())
        .then(pl.lit(" for user ") + pl.col("user.name"))
        .otherwise(pl.lit(""))
        + pl.when(pl.col("observer.name").is_not_null())
        .then(pl.lit(" on ") + pl.col("observer.name"))
        .otherwise(pl.lit(""))
    )
    evidence = pl.struct(
        pl.col("_count").alias("events"),
        pl.col("_samples").alias("samples"),
        *(pl.lit(v).alias(k) for k, v in extra.items()),
        *([pl.col("_evidence").struct.unnest()] if "_evidence" in grouped.columns else []),
    ).struct.json_encode()
    rows = grouped.with_columns(
        pl.concat_str(
            [*key_parts, pl.col("@timestamp").dt.date().cast(pl.String)], separator="|"
        ).alias("alert.key"),
        summary.alias("alert.summary"),
        evidence.alias("alert.evidence"),
    )
    keep = ["@timestamp", "event.end", "alert.key", "alert.summary", "alert.evidence"]
    keep += [c for c in ENTITIES if c in rows.columns]
    det = Detection(
        id=meta.rule_id,
        title=meta.title,
        description=meta.description,
        tactics=meta.tactics,
        techniques=meta.techniques,
        severity=meta.severity,
        datasets=(dataset,),
        sql="-- Sigma rule, see vpnsentry.detect.sigma",
        status="experimental",
    )
    return to_alerts(det, rows.select(keep), created)


def correlation_sql(corr: Correlation, window: str) -> str:
    """Windowed GROUP BY for one correlation rule (see module docstring)."""
    groups = [f"_g{i}" for i in range(len(corr.group_by))]
    parts = []
    for n, base in enumerate(corr.bases):
        schema = ecs.SCHEMAS[base.dataset]
        value = corr.value_field
        keep = ["@timestamp", *corr.group_by, *([value] if value else [])]
        keep += [c for c in ENTITIES.values() if c in schema]
        cols = [f"{n} AS _r", '"@timestamp" AS ts']
        cols += [
            f"CAST({sql_ident(c)} AS VARCHAR) AS {g}"
            for c, g in zip(corr.group_by, groups, strict=True)
        ]
        cols.append(
            f"CAST({sql_ident(value)} AS VARCHAR) AS _v" if value else "NULL::VARCHAR AS _v"
        )
        for alert_col, col in ENTITIES.items():
            expr = f"CAST({sql_ident(col)} AS VARCHAR)" if col in schema else "NULL::VARCHAR"
            cols.append(f"{expr} AS {sql_ident('_' + alert_col)}")
        parts.append(f"SELECT {', '.join(cols)} FROM ({base.rows(keep, window)})")
    measure = {
        "event_count": "count(*)",
        "value_count": "count(DISTINCT _v)",
        "temporal": "count(DISTINCT _r)",
    }[corr.kind]
    threshold = len(corr.bases) if corr.kind == "temporal" else corr.count
    op = ">=" if corr.kind == "temporal" else corr.op
    partition = f"PARTITION BY {', '.join(groups)} " if groups else ""
    first = ", ".join(f"arg_min({sql_ident('_' + a)}, ts) AS {sql_ident(a)}" for a in ENTITIES)
    group_key = " || '|' || ".join(f"coalesce({g}, '')" for g in groups) or "''"
    return f"""
        WITH ev AS ({" UNION ALL ".join(parts)}),
        w AS (
            SELECT *, {measure} OVER (
                {partition}ORDER BY ts
                RANGE BETWEEN INTERVAL {int(corr.seconds)} SECOND PRECEDING AND CURRENT ROW
            ) AS _n
            FROM ev
        )
        SELECT min(ts) AS "@timestamp", max(ts) AS "event.end", count(*) AS _count,
               max(_n) AS _peak, {group_key} AS _group, {first}
        FROM w WHERE _n {op} {float(threshold)}
        GROUP BY {", ".join([*groups, "CAST(ts AS DATE)"])}
    """


def alerts_for_correlation(
    corr: Correlation,
    con: duckdb.DuckDBPyConnection,
    window: str,
    params: dict[str, object],
    created: dt.datetime,
) -> tuple[int, pl.DataFrame]:
    """(events in qualifying windows, alerts) of one correlation rule."""
    grouped = _frame(con, correlation_sql(corr, window), params)
    if grouped.is_empty():
        return 0, ecs_empty()
    grouped = grouped.with_columns(
        pl.lit([], pl.List(pl.String)).alias("_samples"),
        pl.struct(
            pl.col("_peak").alias("peak_in_window"),
            pl.lit(corr.kind).alias("correlation"),
            pl.lit(corr.seconds).alias("timespan_seconds"),
            pl.col("_group").alias("group"),
        ).alias("_evidence"),
        pl.col("destination.port").cast(pl.Int32, strict=False),
    )
    alerts = _to_alerts(
        corr.meta, corr.bases[0].dataset, grouped, created, {"sigma.path": corr.path}
    )
    return int(grouped["_count"].sum()), alerts


def connect(store: Store) -> duckdb.DuckDBPyConnection:
    """The store's sandboxed reader with the ``ip4()`` macro the ``cidr`` modifier uses."""
    con = store.reader()
    con.execute(IP4_MACRO)
    return con


def run(
    store: Store,
    rules: Sequence[Compiled],
    correlations: Sequence[Correlation],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> RunResult:
    """Evaluate ``rules`` and ``correlations``, store their alerts, say what happened."""
    t0 = time.perf_counter()
    created = now or dt.datetime.now(dt.UTC)
    result = RunResult()
    frames: list[pl.DataFrame] = []
    with store.writer() as writer:
        con = connect(store)
        try:
            matches = match_rules(con, rules, since, until)
            result.scans = len(groups(rules))
            for i, rule in enumerate(rules):
                rows = matches.get(i, pl.DataFrame())
                alerts = alerts_for_rule(rule, rows, created) if rule.output else ecs_empty()
                frames.append(alerts)
                result.rules.append(
                    RuleResult(
                        rule.meta.rule_id, rule.meta.title, "rule", rows.height, alerts.height
                    )
                )
            window, params = window_sql(since, until)
            for corr in correlations:
                n, alerts = alerts_for_correlation(corr, con, window, params, created)
                frames.append(alerts)
                result.rules.append(
                    RuleResult(corr.meta.rule_id, corr.meta.title, "correlation", n, alerts.height)
                )
        except duckdb.Error as exc:
            raise StoreError(f"running Sigma rules failed: {exc}") from exc
        finally:
            con.close()
        frames = [f for f in frames if not f.is_empty()]
        all_alerts = pl.concat(frames, how="vertical") if frames else ecs_empty()
        ran = list(dict.fromkeys(r.rule_id for r in result.rules))
        result.counts = writer.replace_alerts(all_alerts, ran, since, until)
    result.seconds = time.perf_counter() - t0
    return result
