"""Live detection: the detection pack rerun as logs arrive, in two tiers.

A collector (``vpnsentry serve``) appends micro-batches to the store every second or so.
Rerunning all detections over the whole store each time would cost the store, not the
batch. So:

* **Live tier**, on every batch: the detections marked ``live`` (their evidence is a burst
  of minutes or hours: brute force, spray, fan-out, logging switched off...) run over a
  trailing window, ``lookback`` before the oldest new row up to now, read from the day
  partitions that can hold it. A window is a partial view, so these runs only add and
  refresh alerts; they never remove one.
* **Full tier**, on a schedule (``full_every``): every enabled detection over the whole
  store, authoritative as ``vpnsentry detect`` is: it raises what needs weeks of baseline
  and settles alerts that no longer hold.

Both tiers produce the same alert ids as batch mode (the id is the rule and the entity key,
not the run), so an attack seen live and again by a later ``detect`` is one alert. Only
alerts raised for the first time, and not suppressed, are handed to ``publish`` (the
outputs: stdout, webhook, CEF); this module does not know them, the service wires them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from vpnsentry.detect import engine
from vpnsentry.detect.base import detections
from vpnsentry.detect.config import Config
from vpnsentry.enrich.sites import Inventory
from vpnsentry.store.store import Store, Writer

Publish = Callable[[pl.DataFrame], None]


@dataclass
class TierRun:
    """One rerun of a tier: what it found and how long it took."""

    tier: str  # "live" or "full"
    detections: int
    new: int
    seconds: float
    errors: list[str] = field(default_factory=list)


def live_ids(config: Config) -> list[str]:
    """The enabled detections that are sound over a trailing window."""
    return sorted(i for i, d in detections().items() if d.live and i not in config.disabled)


@dataclass
class LiveDetector:
    """Reruns detections as batches land and publishes the alerts that are new."""

    store_root: Path
    config: Config
    inventory: Inventory | None
    publish: Publish
    lookback: dt.timedelta = dt.timedelta(hours=24)
    full_every: dt.timedelta | None = dt.timedelta(minutes=15)
    geo_files: Sequence[Path] = ()
    #: The first full run comes ``full_every`` after start: at start the live tier has the
    #: machine, and the history was (or can be) judged by a batch ``detect``.
    _last_full: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC), init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def on_batch(
        self, oldest: dt.datetime | None, *, writer: Writer | None = None
    ) -> list[TierRun]:
        """After a committed batch whose oldest row is ``oldest``: the live tier, and the
        full tier too when it is due. ``writer``: the collector's open store writer."""
        runs = []
        chosen = live_ids(self.config)
        if oldest is not None and chosen:
            runs.append(self._run("live", chosen, oldest - self.lookback, writer))
        now = dt.datetime.now(dt.UTC)
        if self.full_every is not None and now - self._last_full >= self.full_every:
            runs.append(self.run_full(writer=writer))
        return runs

    def run_full(self, *, writer: Writer | None = None) -> TierRun:
        """Every enabled detection over the whole store (the scheduled, authoritative run)."""
        self._last_full = dt.datetime.now(dt.UTC)
        return self._run("full", [], None, writer)

    def _run(
        self, tier: str, only: list[str], since: dt.datetime | None, writer: Writer | None
    ) -> TierRun:
        with self._lock:  # one run at a time: they share the store's single writer
            store = Store.open(self.store_root, create=False)
            result = engine.run(
                store,
                config=self.config,
                inventory=self.inventory,
                only=only,
                geo_files=self.geo_files,
                data_since=since,
                remove_stale=since is None,
                writer=writer,
            )
            if result.fresh.height:
                self.publish(result.fresh.sort("@timestamp"))
        return TierRun(
            tier,
            len(result.rules),
            result.counts.new,
            result.seconds,
            [f"{r.id}: {r.error}" for r in result.rules if r.error],
        )
