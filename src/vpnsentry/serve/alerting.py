"""Streaming detection and alert outputs for ``vpnsentry serve``.

Wires :class:`vpnsentry.detect.stream.LiveDetector` to the collector's batch hook and the
alert sinks of :mod:`vpnsentry.report.sinks`: after every committed micro-batch the live
tier reruns over its trailing window, the full tier when its schedule says so, and every
alert raised for the first time goes to each configured output once.

The collector holds the store's only writer for its whole life (the write lock is per
store), so detection writes its alerts through that writer; a ``vpnsentry detect`` run
from another shell meanwhile is refused with "store is being written", by design.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from vpnsentry.detect.base import detections
from vpnsentry.detect.config import load_config
from vpnsentry.detect.stream import LiveDetector
from vpnsentry.enrich.sites import remembered_inventory
from vpnsentry.report.sinks import CefSyslogSink, JsonLinesSink, Sink, WebhookSink
from vpnsentry.serve.batch import BatchHook, BatchInfo
from vpnsentry.serve.config import ServeConfig
from vpnsentry.serve.metrics import Metrics
from vpnsentry.store.store import Writer


@dataclass
class Alerting:
    """The batch hook and the sinks; :meth:`close` flushes the sinks at shutdown."""

    hook: BatchHook
    sinks: list[Sink]
    detector: LiveDetector

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def build(
    cfg: ServeConfig,
    metrics: Metrics,
    writer: Callable[[], Writer],
    log: Callable[[str], None],
) -> Alerting:
    """Everything streaming detection needs; ``writer`` returns the collector's writer."""
    dead = cfg.dead_letter or cfg.store / "alerts-dead-letter.ndjson"
    sinks: list[Sink] = []
    if cfg.alerts_stdout:
        sinks.append(JsonLinesSink(sys.stdout))
    if cfg.webhook:
        headers = dict(
            (name.strip(), value.strip())
            for name, _, value in (h.partition(":") for h in cfg.webhook_header)
        )
        sinks.append(WebhookSink("webhook", dead, url=cfg.webhook, headers=headers))
    if cfg.cef:
        sinks.append(
            CefSyslogSink(
                "cef", dead, host=cfg.cef.host, port=cfg.cef.port, protocol=cfg.cef_protocol
            )
        )

    def counts() -> None:  # the sinks count in their own threads; read at each scrape
        for sink in sinks:
            metrics.set("vpnsentry_alerts_delivered_total", sink.delivered, output=sink.name)
            metrics.set("vpnsentry_alerts_dead_lettered_total", sink.failed, output=sink.name)

    metrics.probe(counts)

    def publish(alerts: pl.DataFrame) -> None:
        metrics.inc("vpnsentry_alerts_total", alerts.height)
        for sink in sinks:
            sink.send(alerts)

    full = cfg.full_every_minutes
    detector = LiveDetector(
        cfg.store,
        load_config(cfg.detect_config, detections()),
        remembered_inventory(cfg.store, cfg.sites),
        publish,
        lookback=dt.timedelta(hours=cfg.lookback_hours),
        full_every=dt.timedelta(minutes=full) if full > 0 else None,
    )

    def hook(root: Path, info: BatchInfo) -> None:
        for run in detector.on_batch(info.start, writer=writer()):
            metrics.set("vpnsentry_detect_seconds", run.seconds, tier=run.tier)
            for problem in run.errors:
                log(f"{run.tier} detection failed, its earlier alerts kept: {problem}")

    return Alerting(hook, sinks, detector)
