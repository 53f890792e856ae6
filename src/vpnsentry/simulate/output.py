"""Routing events to log sources, and writing each source's daily files.

Every log source (gateway, Zeek sensor, NetFlow exporter) is a *stream*: formatted lines wait
in a buffer until their UTC day is complete, then the day's file is written with one sort and
one write. A line belongs to the day its ``_order`` time falls in (arrival at the collector,
or the end of the flow for Zeek and NetFlow), so a VPN session that starts before midnight and
ends after it is split across two files exactly as a real collector splits it.

Collectors are not perfect: a few lines per million are cut short or carry NUL bytes, as
happens with UDP syslog and interrupted writes. Those lines are never lines that evidence an
attack step; their positions are returned for ground truth.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.simulate.core import (
    DAY,
    MINUTE,
    STATE,
    Window,
    ip_u32,
    mix,
    reuse_freed_memory,
)
from vpnsentry.simulate.estate import Estate
from vpnsentry.simulate.events import Events
from vpnsentry.simulate.layout import FileBuffer, Lines, write_file
from vpnsentry.simulate.route import Observer, Router
from vpnsentry.simulate.writers import (
    Device,
    cisco_asa,
    fortinet_fortigate,
    nfdump,
    openvpn,
    panw_panos,
    zeek_conn,
)

#: Threads formatting log sources' lines at once (the compiled line kernel and Polars
#: release the GIL).
FORMAT_THREADS: Final = 2

#: Share of lines a collector garbles (truncates or corrupts).
GARBLE_RATE: Final = 2e-5

#: Events of one batch ready for formatting: enriched flows and the other tables by kind.
Batch = tuple[pl.DataFrame, dict[str, pl.DataFrame]]


@dataclass
class Stream:
    """One log source's files: where they go, their framing, and lines not yet written."""

    fmt: str  # the parser name that reads these files
    path: str  # relative path of a day's file, with {date}
    header: Callable[[dt.date], list[str]] | None = None
    footer: Callable[[dt.date, dict[str, npt.NDArray[np.int64]]], list[str]] | None = None
    pending: list[Lines] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class FileResult:
    """What was written for one day of one stream."""

    path: str
    fmt: str
    lines: int
    garbled: list[tuple[int, str]]  # (1-based line, kind)
    evidence: dict[int, list[int]]  # tag -> 1-based lines


class Output:
    """Formats events per log source and writes the daily files.

    Three stages overlap, each on threads of its own, so that both cores work: the caller
    generates the next day's events while the last batch is formatted (``steps``: adding
    batches and finishing days, in the order asked; a log source's flow lines on
    ``FORMAT_THREADS`` threads) and finished files are written (``writer``: on the
    project's 2-core VM, writing 7.3 GB of lines into the page cache cost 11.6 of 45
    seconds, mostly kernel time). Each stage keeps the order it is given, so the output is
    the same. Call :meth:`close` for the results (it waits for the last file), or
    :meth:`abort`.
    """

    def __init__(
        self, out: Path, window: Window, est: Estate, router: Router, only: set[str] | None = None
    ) -> None:
        self.out = out
        self.win = window
        self.est = est
        self.router = router
        self.streams: dict[str, Stream] = {}
        self.devices: dict[str, Device] = {}
        self.next_id: dict[str, int] = {}
        self.results: list[FileResult] = []
        self.buffer = FileBuffer()
        self.names = pl.Series("names", est.names, dtype=pl.String)
        for obs in router.observers:
            if only is None or obs.id in only:
                self._add_stream(obs)
        self.observers = [o for o in router.observers if o.id in self.streams]
        self.formatters = ThreadPoolExecutor(FORMAT_THREADS, thread_name_prefix="simulate-fmt")
        # one batch waits while one is formatted; a day of files may wait to be written
        self.steps = _InOrder("simulate-steps", 1, "formatting simulated logs")
        self.writer = _InOrder("simulate-files", max(4, len(self.streams)), "writing a log file")

    # ---- setup ----------------------------------------------------------------------

    def _skew(self, key: str, max_s: float) -> int:
        h = int(mix(self.est.seed, 61, int.from_bytes(key.encode()[:8], "little"), len(key)))
        return int((h % 2_000_001) / 1_000_000 * max_s * 1_000_000 - max_s * 1_000_000)

    def _add_stream(self, obs: Observer) -> None:
        est = self.est
        site = est.sites[obs.site]
        if obs.kind == "gateway":
            g = est.gateways[obs.gw]
            dev = Device(
                id=g.id,
                hostname=g.hostname,
                ip=str(g.management or g.inside),
                tz=site.timezone,
                skew_us=self._skew(g.id, 4.0),
                header=g.log.header,
                serial=g.serial,
                outside=str(g.outside),
                management=str(g.management or g.inside),
                vendor=g.vendor,
            )
            ext = "log"
            self.streams[g.id] = Stream(g.vendor, f"logs/gateways/{g.id}/{{date}}.{ext}")
        else:
            infra = [n.cidr for n in site.subnets if n.role == "infrastructure"]
            ip = str(infra[0][-2]) if infra else "192.0.2.254"
            dev = Device(
                id=obs.id,
                hostname=obs.id,
                ip=ip,
                tz="UTC",
                skew_us=self._skew(obs.id, 0.3 if obs.kind == "zeek" else 2.0),
            )
            if obs.kind == "zeek":
                self.streams[obs.id] = Stream(
                    "zeek_conn",
                    f"logs/zeek/{obs.id}/conn.{{date}}.log",
                    header=zeek_conn.header,
                    footer=zeek_conn.footer,
                )
            else:
                self.streams[obs.id] = Stream(
                    "nfdump",
                    f"logs/netflow/{obs.id}/nfcapd.{{date}}.csv",
                    header=nfdump.header,
                    footer=nfdump.footer,
                )
        self.devices[obs.id] = dev
        self.next_id[obs.id] = 100_000 + int(mix(est.seed, 62, len(obs.id)) % 900_000)

    # ---- formatting -------------------------------------------------------------------

    def prepare(self, ev: Events) -> Batch:
        """Events as frames ready for any worker: flows enriched once, delays added."""
        # Sorted once here so that every log source's share comes out in time order.
        flows = ev.flow_table(self.names).sort("ts", maintain_order=True)
        if len(flows):
            flows = self.router.enrich(flows)
        tables = {}
        for kind in ("sessions", "fails", "admin", "portal", "gaps"):
            table = ev.table(kind)
            if len(table) and kind != "gaps":
                table = table.with_columns(_delay(table))
            tables[kind] = table
        return flows, tables

    def add(self, ev: Events) -> None:
        """Format a batch of events for every log source that records them (the events
        are prepared here, formatted on the ``steps`` thread)."""
        self.add_prepared(self.prepare(ev))

    def add_prepared(self, batch: Batch) -> None:
        """Format a prepared batch for this output's log sources, after what was asked
        before."""
        self.steps.submit(self._add_batch, batch)

    def _add_batch(self, batch: Batch) -> None:
        flows, tables = batch
        events: dict[int, list[tuple[str, pl.DataFrame]]] = {}
        for kind in ("sessions", "fails", "admin", "portal"):
            table = tables[kind]
            for g in table["gw"].unique().sort().to_list() if len(table) else []:
                if self.est.gateways[int(g)].id in self.streams:
                    events.setdefault(int(g), []).append((kind, table.filter(pl.col("gw") == g)))
        # each log source on its own thread: sources are independent, a gateway's event
        # lines follow its flow lines as before, and a source's batches reach it in order
        # (all are formatted before the next batch)
        jobs = [
            self.formatters.submit(
                self._source, obs, flows, events.pop(obs.gw, []) if obs.kind == "gateway" else []
            )
            for obs in self.observers
        ]
        # every gateway with a stream is one of the observers (Router gives each one)
        assert not events, f"events of gateways without a log source: {sorted(events)}"
        for job in jobs:
            job.result()
        for row in tables["gaps"].iter_rows(named=True):
            gid = self.est.gateways[row["gw"]].id
            if gid in self.streams:
                self.streams[gid].gaps.append((row["start"], row["end"]))

    def _source(
        self, obs: Observer, flows: pl.DataFrame, events: list[tuple[str, pl.DataFrame]]
    ) -> None:
        """A batch's lines for one log source: ``obs``'s flow lines, then (a gateway) its
        ``events`` by kind."""
        if len(flows):
            self._flows(obs, flows)
        for kind, table in events:
            self._gateway_events(kind, obs.gw, table)

    def _flows(self, obs: Observer, flows: pl.DataFrame) -> None:
        """The lines of log source ``obs`` for the ``flows`` it sees (on a formatter thread:
        it touches only ``obs``'s own stream and counters)."""
        part = flows.filter(self.router.sees(obs))
        if not len(part):
            return
        dev = self.devices[obs.id]
        lines: Lines | list[Lines] | pl.DataFrame
        if obs.kind == "zeek":
            lines = zeek_conn.conn_lines(dev, self._in_window(part))
        elif obs.kind == "netflow":
            lines = nfdump.flow_lines(dev, self.router.netflow_view(obs, self._in_window(part)))
        else:
            first = self.next_id[obs.id]
            self.next_id[obs.id] += len(part)
            # Numbered before the window's edges are cut, so a connection keeps its id.
            view = self._in_window(self.router.gateway_view(obs, part, first))
            g = self.est.gateways[obs.gw]
            if g.vendor == "fortinet_fortigate":
                lines = fortinet_fortigate.traffic_lines(dev, view)
            elif g.vendor == "cisco_asa":
                lines = cisco_asa.conn_lines(dev, view)
            elif g.vendor == "panw_panos":
                lines = panw_panos.traffic_lines(dev, view)
            else:
                return
        self.streams[obs.id].pending.extend(_as_lines(lines))

    def _in_window(self, flows: pl.DataFrame) -> pl.DataFrame:
        """The flows whose lines can fall inside the window.

        Why: benign life is generated for whole local days, from the eve of the window to
        the day after it, and a day's file only takes the lines of its UTC day, so up to
        two of the generated days' lines were rendered only to be dropped (15% of the lines
        of a week). Every flow line's time lies between the flow's start minus the
        device's clock skew (seconds) and its end plus skew and collector delay (under a
        minute, NetFlow's export delay included); a minute each side is kept.
        """
        ts, end = pl.col("ts"), pl.col("ts") + pl.col("dur")
        keep = (ts < self.win.t1 + MINUTE) & (end >= self.win.t0 - MINUTE)
        return flows.filter(keep)

    def _gateway_events(self, kind: str, gw: int, table: pl.DataFrame) -> None:
        g = self.est.gateways[gw]
        dev = self.devices[g.id]
        aaa = self._aaa()
        pid = 1000 + int(mix(self.est.seed, 63, gw) % 30000)
        lines: Lines | list[Lines] | pl.DataFrame
        if g.vendor == "fortinet_fortigate":
            fn = {
                "sessions": fortinet_fortigate.session_lines,
                "fails": fortinet_fortigate.fail_lines,
                "admin": fortinet_fortigate.admin_lines,
                "portal": fortinet_fortigate.portal_lines,
            }[kind]
            lines = fn(dev, table)
        elif g.vendor == "cisco_asa":
            if kind == "sessions":
                lines = cisco_asa.session_lines(dev, table, aaa)
            elif kind == "fails":
                lines = cisco_asa.fail_lines(dev, table, aaa)
            elif kind == "admin":
                lines = cisco_asa.admin_lines(dev, table)
            else:
                lines = cisco_asa.conn_lines(dev, self._asa_portal(g.id, table))
        elif g.vendor == "panw_panos":
            lines = self._panos(kind, g.id, dev, table)
        else:
            if kind == "admin":
                return
            fn2 = {
                "sessions": openvpn.session_lines,
                "fails": openvpn.fail_lines,
                "portal": openvpn.portal_lines,
            }[kind]
            lines = fn2(dev, table, pid)
        self.streams[g.id].pending.extend(_as_lines(lines))

    def _panos(self, kind: str, gid: str, dev: Device, table: pl.DataFrame) -> pl.DataFrame:
        """A PAN-OS firewall's lines; GlobalProtect and traffic records name the region of
        the client's address, portal connections get session ids like forwarded ones."""
        if kind == "admin":
            return panw_panos.admin_lines(dev, table)
        table = table.with_columns(self.router.region(table["src"]).alias("region"))
        if kind == "sessions":
            return panw_panos.session_lines(dev, table)
        if kind == "fails":
            return panw_panos.fail_lines(dev, table)
        probes = self._portal_as_flows(gid, table.select(pl.exclude("region")))
        outside = pl.Series([int(self.est.inv.gateway(gid).outside)], dtype=pl.UInt32)
        return panw_panos.portal_lines(
            dev,
            probes.with_columns(table["region"].alias("src_loc")),
            self.router.region(outside)[0],
        )

    def _aaa(self) -> str:
        dcs = self.est.hosts("domain_controller", self.est.hq)
        if not len(dcs):
            dcs = self.est.hosts("domain_controller")
        x = int(dcs[0]) if len(dcs) else ip_u32("10.0.0.10")
        return f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}"

    def _portal_as_flows(self, gid: str, table: pl.DataFrame) -> pl.DataFrame:
        """TLS probes to a portal as flows to the gateway's outside address on 443, reset by
        the client after the handshake, numbered like the gateway's forwarded ones
        (``_id``). Vendors add their own columns."""
        first = self.next_id[gid]
        self.next_id[gid] += len(table)
        g = self.est.inv.gateway(gid)
        return table.select(
            "ts",
            pl.lit(2_000_000, dtype=pl.Int64).alias("dur"),
            "src",
            "sport",
            pl.lit(int(g.outside), dtype=pl.UInt32).alias("dst"),
            pl.lit(443, dtype=pl.Int32).alias("dport"),
            pl.lit(6, dtype=pl.UInt8).alias("proto"),
            pl.lit(517, dtype=pl.Int64).alias("ob"),
            pl.lit(1830, dtype=pl.Int64).alias("rb"),
            pl.lit(5, dtype=pl.Int64).alias("op"),
            pl.lit(6, dtype=pl.Int64).alias("rp"),
            pl.lit("RSTO", dtype=STATE).alias("state"),
            pl.lit(None, dtype=pl.String).alias("user"),
            "tag",
            "_delay",
            pl.lit(None, dtype=pl.UInt32).alias("nat"),
            pl.int_range(first, first + pl.len(), dtype=pl.Int64).alias("_id"),
        )

    def _asa_portal(self, gid: str, table: pl.DataFrame) -> pl.DataFrame:
        """TLS probes to an ASA, as the connections to its ``identity`` interface."""
        return self._portal_as_flows(gid, table).with_columns(
            pl.lit(True).alias("inbound"),
            pl.lit("outside").alias("src_if"),
            pl.lit("identity").alias("dst_if"),
            pl.col("_id").alias("connid"),
        )

    # ---- writing ------------------------------------------------------------------------

    def finalize(self, day: dt.date) -> None:
        """Write every stream's file for UTC ``day`` (all its lines have been generated),
        after the batches added before."""
        self.steps.submit(self._finalize, day)

    def _finalize(self, day: dt.date) -> None:
        """:meth:`finalize`, on the ``steps`` thread: each stream's rows of the day chosen
        on the formatter threads, the files handed to the writer in stream order."""
        t0 = int((day - dt.date(1970, 1, 1)).days) * DAY
        t1 = t0 + DAY
        lo = max(t0, self.win.t0)
        sids = sorted(self.streams)
        chosen = self.formatters.map(lambda sid: self._day_rows(self.streams[sid], lo, t1), sids)
        for sid, picks in zip(sids, chosen, strict=True):
            if picks:
                self.writer.submit(self._write, self.streams[sid], sid, day, picks)

    @staticmethod
    def _day_rows(st: Stream, lo: int, t1: int) -> list[tuple[Lines, npt.NDArray[np.int64]]]:
        """The rows of ``st``'s pending batches whose time is in ``[lo, t1)``, outside log
        gaps, by index; a batch is dropped once none of its rows is later than ``t1``."""
        picks: list[tuple[Lines, npt.NDArray[np.int64]]] = []
        for part in st.pending:
            keep = (part.order >= lo) & (part.order < t1)
            for a, b in st.gaps:
                keep &= (part.order < a) | (part.order >= b)
            idx = np.flatnonzero(keep)
            if len(idx):
                picks.append((part, idx))
        st.pending = [p for p in st.pending if len(p) and int(p.order.max()) >= t1]
        return picks

    def close(self) -> list[FileResult]:
        """Wait for the files still being written; what was written (or the writer's
        error)."""
        self.steps.close()
        self.formatters.shutdown()
        self.writer.close()
        return self.results

    def abort(self) -> None:
        """Stop: batches not formatted and files not written yet are dropped."""
        self.steps.abort()
        self.formatters.shutdown(cancel_futures=True)
        self.writer.abort()

    def _write(
        self,
        st: Stream,
        sid: str,
        day: dt.date,
        picks: list[tuple[Lines, npt.NDArray[np.int64]]],
    ) -> None:
        """One day's file of ``st`` (on the writer thread: it alone uses ``buffer`` and
        ``results``)."""
        order = np.concatenate([p.order[i] for p, i in picks])
        perm = np.argsort(order, kind="stable")
        header = st.header(day) if st.header else []
        footer = []
        if st.footer:
            keys = set.intersection(*(set(p.extra) for p, _ in picks))
            extra = {k: np.concatenate([p.extra[k][i] for p, i in picks]) for k in keys}
            footer = st.footer(day, extra)
        tags = np.concatenate([p.tag[i] for p, i in picks])[perm]
        n = len(perm)
        rng = np.random.default_rng([self.est.seed, 71, int(mix(len(sid), day.toordinal()))])
        candidates = np.flatnonzero(tags < 0)
        k = min(int(rng.binomial(n, GARBLE_RATE)), len(candidates))
        garbled: list[tuple[int, str]] = []
        replace: dict[int, str] = {}
        if k:
            part_of = np.concatenate([np.full(len(i), j) for j, (_, i) in enumerate(picks)])
            row_of = np.concatenate([i for _, i in picks])
            chosen = np.sort(rng.choice(candidates, size=k, replace=False))
            for j, pos in enumerate(chosen.tolist()):
                src = int(perm[pos])
                text = picks[int(part_of[src])][0].text(int(row_of[src]))
                if j % 2 == 0:
                    cut = max(1, int(len(text) * rng.uniform(0.1, 0.5)))
                    replace[pos] = text[:cut]
                    garbled.append((pos + 1 + len(header), "truncated"))
                else:
                    at = int(rng.integers(1, max(2, len(text) - 1)))
                    replace[pos] = text[:at] + "\x00\x00\x00\x00" + text[at:]
                    garbled.append((pos + 1 + len(header), "nul_bytes"))
        evidence: dict[int, list[int]] = {}
        hit = np.flatnonzero(tags >= 0)
        if len(hit):
            for tag in np.unique(tags[hit]):
                at_lines = hit[tags[hit] == tag]
                evidence[int(tag)] = (at_lines + 1 + len(header)).tolist()
        rel = st.path.format(date=day.isoformat())
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        head = ("\n".join(header) + "\n").encode("utf-8") if header else b""
        tail = ("\n".join(footer) + "\n").encode("utf-8") if footer else b""
        write_file(path, self.buffer.assemble(picks, perm, replace, head, tail))
        self.results.append(
            FileResult(rel, st.fmt, len(header) + n + len(footer), garbled, evidence)
        )


class _InOrder:
    """Runs submitted calls one after the other, in order, on a thread of its own.

    At most ``depth`` calls wait (``submit`` blocks beyond that, so memory stays bounded).
    An error stops the thread's work and is raised by the next ``submit`` or ``close``,
    saying ``what`` failed.
    """

    def __init__(self, name: str, depth: int, what: str) -> None:
        self._what = what
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._stop:
                fn, args = job
                try:
                    fn(*args)
                except BaseException as exc:  # raised again on the caller's thread
                    self._error = exc

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._raise()
        self._jobs.put((fn, args))

    def close(self) -> None:
        """Wait until every submitted call has run."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Drop the waiting calls and end the thread."""
        self._stop = True
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"{self._what} failed: {self._error}") from self._error


class ParallelOutput:
    """:class:`Output` split over worker processes, each owning some log sources.

    The main process keeps generating events (and enriching flows once) while the workers
    format and write; every log source lives in exactly one worker and sees its batches in
    order, so the files are the same whatever the number of workers.
    """

    def __init__(
        self, out: Path, window: Window, est: Estate, router: Router, workers: int
    ) -> None:
        self.prep = Output(out, window, est, router, only=set())  # writes no file
        self.prep.abort()
        ctx = mp.get_context("spawn")
        weights = {o.id: _weight(est, o) for o in router.observers}
        groups: list[list[str]] = [[] for _ in range(workers)]
        load = [0.0] * workers
        for oid in sorted(weights, key=lambda k: (-weights[k], k)):
            k = load.index(min(load))
            groups[k].append(oid)
            load[k] += weights[oid]
        self.results_q: Any = ctx.Queue()
        self.inqs: list[Any] = []
        self.procs: list[Any] = []
        self.shares = [_Share(router, set(ids)) for ids in groups]
        for k, ids in enumerate(groups):
            q = ctx.Queue(maxsize=4)
            proc = ctx.Process(
                target=_serve,
                args=(q, self.results_q, out, window, est, router, set(ids)),
                name=f"simulate-writer-{k}",
            )
            proc.start()
            self.inqs.append(q)
            self.procs.append(proc)

    def add(self, ev: Events) -> None:
        batch = self.prep.prepare(ev)
        for q, share in zip(self.inqs, self.shares, strict=True):
            self._put(q, ("add", share.of(batch)))

    def finalize(self, day: dt.date) -> None:
        for q in self.inqs:
            self._put(q, ("finalize", day))

    def close(self) -> list[FileResult]:
        """Wait for the workers; their file results, or the first worker's error."""
        for q in self.inqs:
            self._put(q, ("close", None))
        results: list[FileResult] = []
        pending = len(self.procs)
        while pending:
            try:
                kind, payload = self.results_q.get(timeout=5)
            except queue.Empty:
                self._check()
                continue
            if kind == "error":
                self.abort()
                raise RuntimeError(f"simulate writer failed:\n{payload}")
            results.extend(payload)
            pending -= 1
        for proc in self.procs:
            proc.join()
        return results

    def abort(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for q in self.inqs:
            # batches still buffered for a dead worker: without this, the process would
            # wait at exit for its queue's feeder thread to send them, forever
            q.cancel_join_thread()

    def _put(self, q: Any, msg: tuple[str, Any]) -> None:
        while True:
            try:
                q.put(msg, timeout=5)
                return
            except queue.Full:
                self._check()

    def _check(self) -> None:
        for proc in self.procs:
            if not proc.is_alive() and proc.exitcode not in (0, None):
                self.abort()
                raise RuntimeError(f"{proc.name} died with exit code {proc.exitcode}")


class _Share:
    """The rows of a prepared batch that one worker's log sources record.

    Why: a batch is pickled for each worker it is sent to and unpickled there, which cost
    more than the formatting it saved when every worker got all of it. Filtering keeps the
    rows' order, so a worker's own per-source filters pick the same rows as before.
    """

    def __init__(self, router: Router, ids: set[str]) -> None:
        observers = [o for o in router.observers if o.id in ids]
        self.gateways = [o.gw for o in observers if o.kind == "gateway"]
        masks = [router.sees(o) for o in observers]
        self.flows = pl.any_horizontal(masks) if masks else pl.lit(False)

    def of(self, batch: Batch) -> Batch:
        flows, tables = batch
        mine = {
            kind: table.filter(pl.col("gw").is_in(self.gateways)) if len(table) else table
            for kind, table in tables.items()
        }
        return (flows.filter(self.flows) if len(flows) else flows), mine


def _serve(
    inq: Any, outq: Any, out: Path, window: Window, est: Estate, router: Router, ids: set[str]
) -> None:
    """A writer process: format and write the batches for its log sources."""
    output: Output | None = None
    try:
        reuse_freed_memory()
        output = Output(out, window, est, router, only=ids)
        while True:
            kind, payload = inq.get()
            if kind == "add":
                output.add_prepared(payload)
            elif kind == "finalize":
                output.finalize(payload)
            else:
                outq.put(("done", output.close()))
                return
    except Exception:  # the parent re-raises it with this traceback
        if output is not None:
            output.abort()
        outq.put(("error", traceback.format_exc()))


def _weight(est: Estate, obs: Observer) -> float:
    """Rough share of all lines a log source writes, to balance the workers."""
    share = est.sites[obs.site].staff_share + 0.02
    if obs.kind == "gateway":
        g = est.gateways[obs.gw]
        return share * {"all": 1.5, "vpn": 0.3, "none": 0.05}[g.traffic_log]
    return share * (2.0 if obs.kind == "netflow" else 1.0) * len(obs.sees)


def _as_lines(lines: Lines | list[Lines] | pl.DataFrame) -> list[Lines]:
    """A writer's output as :class:`Lines` (the event writers still return frames)."""
    if isinstance(lines, list):
        return lines
    return [lines if isinstance(lines, Lines) else Lines.from_frame(lines)]


def _delay(table: pl.DataFrame) -> pl.Series:
    """Collector delay (microseconds) for gateway events: deterministic per event."""
    ts_col = "ts" if "ts" in table.columns else "start"
    h = mix(table[ts_col].to_numpy(), table["src"].to_numpy() if "src" in table.columns else 0)
    return pl.Series("_delay", (h % np.uint64(800_000)).astype(np.int64), dtype=pl.Int64)
