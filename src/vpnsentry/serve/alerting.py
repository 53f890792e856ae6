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
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from vpnsentry.detect.base import detections
from vpnsentry.detect.config import load_config
from vpnsentry.detect.stream import LiveDetector
from vpnsentry.enrich.sites import remembered_inventory
from vpnsentry.report.sinks import CefSyslogSink, JsonLinesSink, Sink, WebhookSink
from vpnsentry.serve.batch import BatchHook, BatchInfo
from vpnsentry.serve.metrics import Metrics
from vpnsentry.store.store import Writer


@dataclass
class AlertSettings:
    """The ``[detect]`` and ``[alerts]`` settings of serve (flags or the config file)."""

    detect: bool = True
    sites: Path | None = None
    detect_config: Path | None = None
    lookback_hours: float = 24.0
    full_every_minutes: float = 15.0  # 0: never (only the live tier)
    stdout: bool = False
    webhook: str | None = None
    webhook_headers: dict[str, str] = field(default_factory=dict)
    cef: tuple[str, int] | None = None
    cef_protocol: str = "udp"
    dead_letter: Path | None = None  # default <store>/alerts-dead-letter.ndjson


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
    settings: AlertSettings,
    store_root: Path,
    metrics: Metrics,
    writer: Callable[[], Writer],
    log: Callable[[str], None],
) -> Alerting:
    """Everything streaming detection needs; ``writer`` returns the collector's writer."""
    dead = settings.dead_letter or store_root / "alerts-dead-letter.ndjson"
    sinks: list[Sink] = []
    if settings.stdout:
        sinks.append(JsonLinesSink(sys.stdout))
    if settings.webhook:
        sinks.append(
            WebhookSink("webhook", dead, url=settings.webhook, headers=settings.webhook_headers)
        )
    if settings.cef:
        host, port = settings.cef
        sinks.append(
            CefSyslogSink("cef", dead, host=host, port=port, protocol=settings.cef_protocol)
        )

    def publish(alerts: pl.DataFrame) -> None:
        metrics.inc("vpnsentry_alerts_total", alerts.height)
        for sink in sinks:
            sink.send(alerts)

    full = settings.full_every_minutes
    detector = LiveDetector(
        store_root,
        load_config(settings.detect_config, detections()),
        remembered_inventory(store_root, settings.sites),
        publish,
        lookback=dt.timedelta(hours=settings.lookback_hours),
        full_every=dt.timedelta(minutes=full) if full > 0 else None,
    )

    def hook(root: Path, info: BatchInfo) -> None:
        for run in detector.on_batch(info.start, writer=writer()):
            metrics.set("vpnsentry_detect_seconds", run.seconds, tier=run.tier)
            for problem in run.errors:
                log(f"{run.tier} detection failed, its earlier alerts kept: {problem}")

    return Alerting(hook, sinks, detector)
