"""Run the analytics pack over a store and keep the alerts in it.

One DuckDB connection per run (the store's sandboxed reader plus the working tables of
:mod:`vpnsentry.detect.context`); each detection runs against it in turn, its rows become
alerts with the detection's metadata and a stable id, and the store replaces what earlier
runs said for the same detections and window (see ``Writer.replace_alerts``).

Detections always see the whole history: ``--since``/``--until`` select which alerts are
reported and replaced, not what baselines learn from, so a rerun over last week still knows
what was normal the month before.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from vpnsentry import ecs
from vpnsentry.detect.base import SEVERITIES, TACTICS, Detection, ParamValue, detections
from vpnsentry.detect.config import Config
from vpnsentry.detect.context import Context
from vpnsentry.enrich.sites import Inventory
from vpnsentry.errors import StoreError, UsageError
from vpnsentry.store.store import AlertCounts, Store, Writer, ecs_alerts

_PARAM_RE: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
#: Columns a detection's rows must have; the rest of ecs.ALERTS is optional.
REQUIRED: Final = ("@timestamp", "alert.key", "alert.summary")


@dataclass(frozen=True)
class RuleRun:
    """What one detection did in a run."""

    id: str
    alerts: int
    seconds: float
    error: str | None = None


@dataclass
class DetectResult:
    """Summary of a ``detect`` run, for the CLI and ``hunt``."""

    rules: list[RuleRun] = field(default_factory=list)
    counts: AlertCounts = field(default_factory=lambda: AlertCounts(0, 0, 0))
    suppressed: int = 0
    seconds: float = 0.0
    prepare_seconds: float = 0.0
    #: Of ``prepare_seconds``: each shared table's own build (see ``Context.seconds``).
    table_seconds: dict[str, float] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    #: The alerts this run raised for the first time and no suppression silences (what a
    #: live collector sends to its outputs).
    fresh: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ecs.ALERTS))


def select(only: Sequence[str], config: Config) -> list[Detection]:
    """The detections to run: ``only`` (ids or id prefixes) or every enabled one."""
    known = detections()
    if not only:
        return [d for i, d in sorted(known.items()) if i not in config.disabled]
    chosen: dict[str, Detection] = {}
    for pattern in only:
        hits = [d for i, d in known.items() if i == pattern or i.startswith(pattern)]
        if not hits:
            raise UsageError(f"no detection matches {pattern!r} (see `vpnsentry detections`)")
        chosen.update((d.id, d) for d in hits)
    return [chosen[i] for i in sorted(chosen)]


def run(
    store: Store,
    *,
    config: Config,
    inventory: Inventory | None,
    only: Sequence[str] = (),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    geo_files: Sequence[Path] = (),
    now: dt.datetime | None = None,
    strict: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    data_since: dt.datetime | None = None,
    remove_stale: bool = True,
    writer: Writer | None = None,
) -> DetectResult:
    """Run the chosen detections, store their alerts, return what happened.

    A detection that fails is reported in its ``RuleRun.error`` and skipped (``strict``
    re-raises instead, as the tests do).

    ``data_since`` lets the detections see only rows from that time on (live mode's trailing
    window). Such a partial view is not authoritative, so live runs pass
    ``remove_stale=False``: alerts are added and refreshed, never removed; the scheduled
    full run settles what no longer holds. ``writer``: the caller's open writer (a live
    collector holds the store's only one); by default the run takes it for the write.
    """
    chosen = select(only, config)
    t0 = time.perf_counter()
    result = DetectResult()
    created = now or dt.datetime.now(dt.UTC)
    frames: list[pl.DataFrame] = []
    con = store.reader(since=data_since)
    try:
        ctx = Context(con, inventory, config, geo_files)
        result.prepare_seconds = time.perf_counter() - t0
        for i, det in enumerate(chosen):
            if progress:
                progress(det.id, i, len(chosen))
            try:
                t1 = time.perf_counter()
                ctx.need(det.needs)  # shared tables: counted once, in prepare_seconds
                result.prepare_seconds += time.perf_counter() - t1
                t1 = time.perf_counter()
                rows = run_one(det, con, config.params_for(det))
                alerts = _window(to_alerts(det, rows, created), since, until)
            except (duckdb.Error, ValueError) as exc:
                # One broken detection (a bad override, an engine limit) must not cost
                # the analyst the other detections' alerts; its old alerts are kept.
                if strict:
                    raise
                result.rules.append(
                    RuleRun(det.id, 0, time.perf_counter() - t1, f"{type(exc).__name__}: {exc}")
                )
                continue
            frames.append(alerts)
            result.rules.append(RuleRun(det.id, alerts.height, time.perf_counter() - t1))
        if not only:  # threat-intelligence matches (vpnsentry.intel) join every full run
            from vpnsentry.intel.match import run_matching

            intel_runs, intel = run_matching(store, con, created, strict=strict)
            result.rules.extend(intel_runs)
            if intel is not None:
                frames.append(_window(intel, since, until))
        if progress:
            progress("", len(chosen), len(chosen))
        result.table_seconds = dict(ctx.seconds)
    except duckdb.Error as exc:
        raise StoreError(f"preparing the working tables failed: {exc}") from exc
    finally:
        con.close()
    all_alerts = pl.concat(frames, how="vertical") if frames else ecs_empty()
    ran = [r.id for r in result.rules if r.error is None] if remove_stale else []
    # The write lock is taken only for the alerts' replacement, not for the whole run, so
    # that ingestion (a live collector) is not held up while detections read.
    if writer is None:
        with store.writer() as own:
            result.counts = own.replace_alerts(all_alerts, ran, since, until)
    else:
        result.counts = writer.replace_alerts(all_alerts, ran, since, until)
    stored = store.alerts()
    mine = stored.filter(pl.col("rule.id").is_in([r.id for r in result.rules]))
    if since is not None:
        mine = mine.filter(pl.col("@timestamp") >= since)
    if until is not None:
        mine = mine.filter(pl.col("@timestamp") < until)
    result.suppressed = int(mine["alert.suppressed"].fill_null(False).sum())
    active = mine.filter(~pl.col("alert.suppressed").fill_null(False))
    result.fresh = active.filter(pl.col("alert.id").is_in(list(result.counts.new_ids)))
    result.by_severity = {
        s: int((active["alert.severity"] == s).sum())
        for s in SEVERITIES
        if s in set(active["alert.severity"])
    }
    result.seconds = time.perf_counter() - t0
    return result


def run_one(
    det: Detection, con: duckdb.DuckDBPyConnection, params: Mapping[str, ParamValue]
) -> pl.DataFrame:
    """The detection's raw rows: its SQL with the parameters it names, or its function."""
    if det.run is not None:
        return det.run(con, params)
    assert det.sql is not None
    used = {name: params[name] for name in set(_PARAM_RE.findall(det.sql)) if name in params}
    missing = set(_PARAM_RE.findall(det.sql)) - set(used)
    if missing:
        raise ValueError(f"{det.id}: SQL uses undeclared parameters {sorted(missing)}")
    frame = pl.from_arrow(con.sql(det.sql, params=used).to_arrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def alert_id(rule_id: str, key: str) -> str:
    """Stable id: the same detection about the same entity key is the same alert."""
    return hashlib.sha256(f"{rule_id}\x1f{key}".encode()).hexdigest()[:20]


def to_alerts(det: Detection, rows: pl.DataFrame, created: dt.datetime) -> pl.DataFrame:
    """Detection rows -> the alert schema, with metadata, ids and related entities."""
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ValueError(f"{det.id}: query result lacks {missing}")
    unknown = [c for c in rows.columns if c not in ecs.ALERTS and not c.startswith("_")]
    if unknown:
        raise ValueError(f"{det.id}: query returns columns not in the alert schema: {unknown}")
    if rows.is_empty():
        return ecs_empty()
    df = rows.select([c for c in rows.columns if not c.startswith("_")])
    for name in ("@timestamp", "event.end"):
        if name in df.columns:
            df = df.with_columns(pl.col(name).cast(ecs.ALERTS[name], strict=False))
    sev = pl.lit(det.severity)
    if "alert.severity" in df.columns:
        sev = pl.col("alert.severity").fill_null(det.severity)
    risk = pl.lit(None, pl.Float64)
    if "event.risk_score" in df.columns:
        risk = pl.col("event.risk_score")
    df = df.with_columns(
        pl.lit(det.id).alias("rule.id"),
        pl.lit(det.title).alias("rule.name"),
        sev.alias("alert.severity"),
        pl.lit(created).cast(ecs.UTC_TS).alias("event.created"),
        pl.lit(list(det.tactics), pl.List(pl.String)).alias("threat.tactic.id"),
        pl.lit([TACTICS[t] for t in det.tactics], pl.List(pl.String)).alias("threat.tactic.name"),
        pl.lit(list(det.techniques), pl.List(pl.String)).alias("threat.technique.id"),
        pl.col("alert.key").cast(pl.String),
        pl.lit(False).alias("alert.suppressed"),
    )
    df = df.with_columns(
        pl.coalesce(risk, pl.col("alert.severity").replace_strict(SEVERITIES, default=None)).alias(
            "event.risk_score"
        ),
        pl.col("alert.key")
        .map_elements(lambda k: alert_id(det.id, k), return_dtype=pl.String)
        .alias("alert.id"),
    )
    df = _related(df)
    if "alert.evidence" not in df.columns:
        df = df.with_columns(pl.lit("{}").alias("alert.evidence"))
    out = ecs_alerts(df)
    return out.unique("alert.id", keep="first", maintain_order=True)


def _related(df: pl.DataFrame) -> pl.DataFrame:
    """Fill ``related.*`` with the alert's own entities plus what the detection listed."""
    for target, sources in (
        ("related.ip", ("source.ip", "destination.ip")),
        ("related.user", ("user.name",)),
        ("related.hosts", ("host.name", "observer.name")),
    ):
        parts = [pl.col(c).cast(pl.String) for c in sources if c in df.columns]
        listed = [pl.col(target)] if target in df.columns else []
        if not parts and not listed:
            continue
        exprs = listed + [pl.concat_list([p]) for p in parts]
        combined = pl.concat_list(exprs).list.drop_nulls().list.unique(maintain_order=True)
        df = df.with_columns(combined.alias(target))
    return df


def ecs_empty() -> pl.DataFrame:
    """An empty alert frame with the schema."""
    return pl.DataFrame(schema=ecs.ALERTS)


def _window(df: pl.DataFrame, since: dt.datetime | None, until: dt.datetime | None) -> pl.DataFrame:
    if since is not None:
        df = df.filter(pl.col("@timestamp") >= since)
    if until is not None:
        df = df.filter(pl.col("@timestamp") < until)
    return df
