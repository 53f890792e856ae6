"""Run compiled Sigma rules over the store: one shared pass per dataset, then correlations.

Shared pass: every rule over a dataset is evaluated in one scan. The query selects a few
entity columns plus one boolean per rule, and keeps only rows where some rule matched::

    SELECT "@timestamp", "source.ip", ..., (pre_a AND p1) AS r0, (pre_a AND p2) AS r1, ...
    FROM events WHERE <window> AND ((pre_a AND (p1 OR p2)) OR (pre_b AND p3) ...)

Rules that share a log-source prefilter test it once in the WHERE; DuckDB short-circuits the
rest on the rows it excludes, and recomputes the per-rule flags only for rows that matched.
``bench/sigma.py`` measures this against one query per rule.

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
import polars.selectors as cs

from vpnsentry import ecs
from vpnsentry.detect.base import Detection
from vpnsentry.detect.engine import ecs_empty, to_alerts
from vpnsentry.detect.sigma.backend import sql_ident
from vpnsentry.detect.sigma.compile import Compiled, Correlation, Meta
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


def shared_pass_sql(dataset: str, rules: Sequence[Compiled], window: str) -> str:
    """One scan evaluating every rule of ``rules`` (all over ``dataset``)."""
    schema = ecs.SCHEMAS[dataset]
    cols = ["@timestamp"] + [c for c in (*ENTITIES.values(), *_SAMPLE) if c in schema]
    flags = [f"COALESCE({r.where}, false) AS r{i}" for i, r in enumerate(rules)]
    groups: dict[str, list[str]] = {}
    for r in rules:
        groups.setdefault(r.profile.prefilter, []).append(f"({r.predicate})")
    anyof = " OR ".join(
        (f"(({pre}) AND ({' OR '.join(preds)}))" if pre else f"({' OR '.join(preds)})")
        for pre, preds in groups.items()
    )
    select = ", ".join([*(sql_ident(c) for c in dict.fromkeys(cols)), *flags])
    return f"SELECT {select} FROM {dataset} WHERE ({window}) AND ({anyof})"


def match_rules(
    con: duckdb.DuckDBPyConnection,
    rules: Sequence[Compiled],
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> dict[int, pl.DataFrame]:
    """Matched rows per rule index (into ``rules``), one scan per dataset."""
    window, params = window_sql(since, until)
    out: dict[int, pl.DataFrame] = {}
    by_dataset: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        by_dataset.setdefault(r.dataset, []).append(i)
    for dataset, idx in by_dataset.items():
        sql = shared_pass_sql(dataset, [rules[i] for i in idx], window)
        frame = _frame(con, sql, params)
        for local, i in enumerate(idx):
            out[i] = frame.filter(pl.col(f"r{local}")).drop(cs.matches(r"^r\d+$"))
    return out


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
        rows.sort("@timestamp")
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
        cols = [f"{n} AS _r", '"@timestamp" AS ts']
        cols += [
            f"CAST({sql_ident(c)} AS VARCHAR) AS {g}"
            for c, g in zip(corr.group_by, groups, strict=True)
        ]
        value = corr.value_field
        cols.append(
            f"CAST({sql_ident(value)} AS VARCHAR) AS _v" if value else "NULL::VARCHAR AS _v"
        )
        for alert_col, col in ENTITIES.items():
            expr = f"CAST({sql_ident(col)} AS VARCHAR)" if col in schema else "NULL::VARCHAR"
            cols.append(f"{expr} AS {sql_ident('_' + alert_col)}")
        parts.append(
            f"SELECT {', '.join(cols)} FROM {base.dataset} WHERE ({window}) AND {base.where}"
        )
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
            result.scans = len({r.dataset for r in rules})
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
