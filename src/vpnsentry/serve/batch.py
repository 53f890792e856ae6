"""The micro-batch loop: spool segments into the store, exactly once.

Each batch reads, per segment, the bytes after the end the store's manifest records for it,
parses them and commits the rows together with the new byte range (``Writer.commit``: parts
renamed into place, then parts and ranges in one catalog transaction). That is the file
ingest's crash-safety argument applied to spool segments, so a SIGKILL at any instant
followed by a restart re-reads exactly the uncommitted bytes.

Why not call ``ingest()`` on the segment files: it identifies a file by a hash of its first
4 KiB, and two segments may well start with the same bytes (a gateway repeating a message);
it reads a growing file up to a size taken with ``stat``, which can fall inside a line the
receiving thread is writing; and it picks one format per file, while one syslog port
receives many vendors. So a segment is identified by its unique name (``spool:<name>``),
read up to the end of the records the spool knows complete, and each line is routed to the
parser whose sniff literals it carries; the same ``parse_chunk`` and ``Writer`` as ingest
do the rest. Lines no parser claims are quarantined as ``unknown_format``.

NetFlow state (templates, held data sets) is saved to ``netflow.state.json`` in the spool
after each commit, with the spool position it reflects. On start the datagrams between that
position and the committed end are decoded again without output, which rebuilds exactly the
state of the moment of the last commit; a segment is deleted only once both the store and
the saved state are past it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vpnsentry.collect import netflow
from vpnsentry.collect.files import decode_lines
from vpnsentry.collect.spool import SegmentView, Spool
from vpnsentry.parse.base import ParseContext, Parser, Reason, registry
from vpnsentry.parse.run import ChunkOutput, parse_chunk
from vpnsentry.parse.sniff import MIN_CONFIDENCE
from vpnsentry.serve.metrics import Metrics
from vpnsentry.store.store import Range, Writer

#: Most bytes read from the spool for one batch: bounds a batch's memory after an outage.
BATCH_BYTES = 32 * 1024 * 1024
STATE_FILE = "netflow.state.json"


@dataclass(frozen=True)
class BatchInfo:
    """What one committed batch added: the hook's view of it."""

    start: dt.datetime | None  # earliest @timestamp of the new events/flows rows
    end: dt.datetime | None  # latest
    rows: dict[str, int]  # rows per dataset (events, flows, quarantine)
    formats: dict[str, int]  # rows per event.module
    messages: int  # syslog lines and NetFlow datagrams the batch consumed


#: Called after each committed batch with the store root; the streaming-detection seam.
BatchHook = Callable[[Path, BatchInfo], None]


@dataclass
class _Out:
    tables: dict[str, list[pl.DataFrame]] = field(default_factory=dict)
    ranges: list[Range] = field(default_factory=list)
    marks: list[tuple[Spool, str, int, int]] = field(default_factory=list)
    messages: int = 0

    def add(self, tables: dict[str, pl.DataFrame]) -> None:
        for name, df in tables.items():
            if len(df):
                self.tables.setdefault(name, []).append(df)


def spool_id(name: str) -> str:
    """The manifest identity of a spool segment (never a hex hash, so never a file's)."""
    return f"spool:{name}"


class BatchLoop:
    """Reads the spools, parses, commits, calls hooks, frees committed segments."""

    def __init__(
        self,
        writer: Writer,
        syslog: Spool,
        flows: Spool,
        metrics: Metrics,
        hooks: list[BatchHook],
        *,
        tz: str = "UTC",
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.writer = writer
        self.syslog = syslog
        self.flows = flows
        self.metrics = metrics
        self.hooks = hooks
        self.tz = tz
        self.log = log
        self._parsers: dict[str, Parser] = {n: c() for n, c in registry().items()}
        self._states: dict[str, dict[str, Any]] = {}
        self._lines: dict[str, int] = {}
        self.decoder = netflow.Decoder()
        self._state_at: tuple[str, int] | None = None
        for spool in (syslog, flows):
            spool.base = sum(v.end - self._committed(v.name) for v in spool.segments())
        self._restore_netflow()

    # -- one batch ------------------------------------------------------------------------

    def run_once(self) -> BatchInfo | None:
        """Commit everything new (up to BATCH_BYTES per spool); None when nothing was new."""
        out = _Out()
        self._read_syslog(out)
        self._read_netflow(out)
        if not out.ranges:
            self._release()  # segments closed since the last commit (rotation, shutdown)
            return None
        tables = {k: pl.concat(v, how="vertical_relaxed") for k, v in out.tables.items()}
        for r in out.ranges:
            self.writer.claim(r)
        self.writer.commit(tables, out.ranges)
        for spool, name, end, nbytes in out.marks:
            spool.mark_committed(name, end, nbytes)
        if any(m[0] is self.flows for m in out.marks):
            self._save_netflow(out)
        info = _info(tables, out.messages)
        self.metrics.inc("vpnsentry_batches_total")
        for dataset, n in info.rows.items():
            self.metrics.inc("vpnsentry_parsed_total", n, dataset=dataset)
        for hook in self.hooks:
            try:
                hook(self.writer.store.root, info)
            except Exception as exc:  # a hook's bug must not stop collection
                self.metrics.inc("vpnsentry_hook_errors_total")
                self.log(f"batch hook {getattr(hook, '__name__', hook)!s} failed: {exc!r}")
        self._release()
        return info

    def _committed(self, name: str) -> int:
        done = self.writer.done(spool_id(name), 0)
        return done.end if done else 0

    def _pending(self, spool: Spool) -> list[tuple[SegmentView, int, int]]:
        """(segment, start, end) of uncommitted bytes, in order, at most BATCH_BYTES."""
        todo: list[tuple[SegmentView, int, int]] = []
        budget = BATCH_BYTES
        for view in spool.segments():
            start = self._committed(view.name)
            if view.end > start and budget > 0:
                end = min(view.end, start + budget)
                todo.append((view, start, end))
                budget -= end - start
        return todo

    # -- syslog ---------------------------------------------------------------------------

    def _read_syslog(self, out: _Out) -> None:
        before = _rows(out, "quarantine")
        for view, start, end in self._pending(self.syslog):
            data = _read(view.path, start, end)
            data = data[: data.rfind(b"\n") + 1]  # a cut batch ends at a line end
            if not data:
                continue
            lines, starts, _ = decode_lines(data)
            offsets = starts + start
            first = self._lines.get(view.name)
            if first is None:
                done = self.writer.done(spool_id(view.name), 0)
                first = done.lines if done else 0
            self._parse(lines, offsets, str(view.path), first + 1, out)
            n = len(lines)
            self._lines[view.name] = first + n
            out.ranges.append(
                Range(spool_id(view.name), 0, str(view.path), "syslog", start, start + len(data), n)
            )
            out.marks.append((self.syslog, view.name, start + len(data), len(data)))
            out.messages += n
        self.metrics.inc(
            "vpnsentry_quarantined_total", _rows(out, "quarantine") - before, kind="syslog"
        )

    def _parse(
        self, lines: pl.Series, offsets: np.ndarray, path: str, first: int, out: _Out
    ) -> None:
        """Route each line to its parser and parse each group as one chunk."""
        for name, idx in route(lines, self._parsers).items():
            parser = self._parsers[name] if name else None
            key = name or "unknown"
            ctx = ParseContext(path=path, tz=self.tz, state=self._states.setdefault(key, {}))
            sel = pl.Series(idx, dtype=pl.UInt32)
            res: ChunkOutput = parse_chunk(
                parser,
                lines.gather(sel),
                pl.Series("offset", offsets[idx], dtype=pl.Int64),
                ctx,
                first_line=first,
            )
            q = res.tables.get("quarantine")
            if q is not None and len(q):  # line numbers of the whole segment, not the group
                line_no = np.searchsorted(offsets, q["log.offset"].to_numpy()) + first
                q = q.with_columns(pl.Series("log.file.line", line_no, dtype=pl.Int64))
                if parser is None:
                    q = q.with_columns(
                        pl.when(pl.col("error.type") == Reason.UNKNOWN_FORMAT.value)
                        .then(pl.lit("no parser recognised this message"))
                        .otherwise(pl.col("error.message"))
                        .alias("error.message")
                    )
                res.tables["quarantine"] = q
            out.add(res.tables)

    # -- NetFlow --------------------------------------------------------------------------

    def _read_netflow(self, out: _Out) -> None:
        before = _rows(out, "quarantine")
        for view, start, end in self._pending(self.flows):
            data = _read(view.path, start, end)
            recs = netflow.records(data, start)
            if not recs:
                continue
            used = recs[-1].offset + netflow.record_size(recs[-1]) - start
            self.decoder.path = str(view.path)
            for d in recs:
                self.decoder.feed(d)
            out.ranges.append(
                Range(
                    spool_id(view.name),
                    0,
                    str(view.path),
                    "netflow",
                    start,
                    start + used,
                    len(recs),
                )
            )
            out.marks.append((self.flows, view.name, start + used, used))
            out.messages += len(recs)
            self._state_at = (view.name, start + used)
        expired = self.decoder.expired
        decoded = self.decoder.take()
        out.add({"flows": decoded.flows, "quarantine": decoded.quarantine})
        if expired:
            self.metrics.inc("vpnsentry_netflow_no_template_total", expired)
            self.decoder.expired = 0
        self.metrics.inc(
            "vpnsentry_quarantined_total", _rows(out, "quarantine") - before, kind="netflow"
        )

    def _save_netflow(self, out: _Out) -> None:
        if self._state_at is None:
            return
        name, offset = self._state_at
        path = self.flows.root / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"segment": name, "offset": offset, "decoder": self.decoder.state()})
        )
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.rename(path)

    def _restore_netflow(self) -> None:
        """Templates as of the last commit: saved state, then replay up to the commit."""
        path = self.flows.root / STATE_FILE
        at: tuple[str, int] = ("", 0)
        if path.exists():
            saved = json.loads(path.read_text())
            self.decoder = netflow.Decoder.from_state(saved["decoder"])
            at = (saved["segment"], saved["offset"])
        for view in self.flows.segments():
            if view.name < at[0]:
                continue
            start = at[1] if view.name == at[0] else 0
            end = self._committed(view.name)
            if end > start:
                self.decoder.path = str(view.path)
                for d in netflow.records(_read(view.path, start, end), start):
                    self.decoder.feed(d)
                at = (view.name, end)
        self.decoder.take()  # already in the store
        self.decoder.expired = 0
        self._state_at = at if at[0] else None

    # -- cleanup --------------------------------------------------------------------------

    def _release(self) -> None:
        """Delete closed segments the store (and, for NetFlow, the saved state) is past."""
        for view in self.syslog.segments():
            if not view.active and self._committed(view.name) >= view.end:
                self.syslog.release(view.name)
                self._lines.pop(view.name, None)
        for view in self.flows.segments():
            if view.active or self._committed(view.name) < view.end:
                continue
            if self._state_at is not None and view.name < self._state_at[0]:
                self.flows.release(view.name)


def route(lines: pl.Series, parsers: dict[str, Parser]) -> dict[str | None, np.ndarray]:
    """Row indexes of ``lines`` per parser name (None: no parser claims the line).

    Vectorized: one ``contains_any`` per parser over the whole batch. Lines that carry the
    literals of several parsers (a FortiGate traffic line has SonicWall's `` sn=``) are
    settled by those parsers' own ``sniff``, as file sniffing does: first once over all
    lines with the same candidates (one sniff call each; when one parser claims every line
    and the others none, that decides them all), and line by line only where that is not
    clear-cut. One call per line costs ~0.2 ms per candidate, which had made routing the
    slowest step of a batch (200,000 FortiGate lines: 22 s).
    """
    names = [n for n, p in parsers.items() if p.sniff_literals]
    hits = pl.DataFrame({n: _claims(lines, parsers[n].sniff_literals) for n in names}).to_numpy()
    counts = hits.sum(axis=1) if names else np.zeros(len(lines), np.int64)
    choice = np.full(len(lines), -1, np.int64)
    single = counts == 1
    choice[single] = hits[single].argmax(axis=1)
    multi = np.flatnonzero(counts > 1)
    if len(multi):
        sets, which = np.unique(hits[multi], axis=0, return_inverse=True)
        for k, cand_mask in enumerate(sets):
            rows = multi[which.reshape(-1) == k]
            cands = [int(j) for j in np.flatnonzero(cand_mask)]
            text = lines.gather(rows).to_list()
            shares = {j: parsers[names[j]].sniff(text) for j in cands}
            sure = [j for j in cands if shares[j] == 1.0]
            if len(sure) == 1 and all(shares[j] == 0.0 for j in cands if j != sure[0]):
                choice[rows] = sure[0]
                continue
            for i, line in zip(rows, text, strict=True):
                scored = [
                    (parsers[names[j]].sniff([line]), parsers[names[j]].priority, names[j], j)
                    for j in cands
                ]
                best = max(scored)
                choice[i] = best[3] if best[0] >= MIN_CONFIDENCE else -1
    groups: dict[str | None, np.ndarray] = {}
    for j in np.unique(choice):
        groups[names[j] if j >= 0 else None] = np.flatnonzero(choice == j)
    return groups


def _claims(lines: pl.Series, literals: Sequence[str]) -> pl.Series:
    """Whether each line contains any of ``literals``: one memchr-backed literal search per
    literal, 2-7x faster here than ``contains_any``'s automaton on syslog-length lines."""
    found = lines.str.contains(literals[0], literal=True)
    for lit in literals[1:]:
        found = found | lines.str.contains(lit, literal=True)
    return found.fill_null(False)


def _read(path: Path, start: int, end: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


def _rows(out: _Out, dataset: str) -> int:
    return sum(len(df) for df in out.tables.get(dataset, []))


def _info(tables: dict[str, pl.DataFrame], messages: int) -> BatchInfo:
    rows = {k: len(v) for k, v in tables.items() if len(v)}
    data = [tables[k] for k in ("events", "flows") if k in tables and len(tables[k])]
    start = min((t["@timestamp"].min() for t in data), default=None)  # type: ignore[type-var]
    end = max((t["@timestamp"].max() for t in data), default=None)  # type: ignore[type-var]
    formats: dict[str, int] = {}
    for t in tables.values():
        for mod, n in t.group_by("event.module").len().iter_rows():
            formats[str(mod)] = formats.get(str(mod), 0) + int(n)
    return BatchInfo(start, end, rows, formats, messages)  # type: ignore[arg-type]
