"""Zeek ``conn.log``, TSV or JSON lines, to the ``flows`` dataset.

Zeek writes conn.log in two shapes and sensors in the field use both:

* TSV, the default writer: a header block (``#separator \\x09``, ``#set_separator``,
  ``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields``, ``#types``), one
  line per connection, ``#close`` at the end. ``#fields`` differs between Zeek versions and
  loaded scripts (``community_id``, ``ip_proto``, ``orig_l2_addr``...), so columns are found
  by name, never by position. ``cat`` of rotated logs gives several header blocks in one
  file; each governs the lines after it. The header state lives in ``ctx.state`` because the
  next chunk of the same file has no header of its own.
* JSON lines (``LogAscii::use_json=T``): one flat object per line with dotted keys; unset
  fields are left out; ``ts`` is epoch seconds, or ISO 8601 or epoch milliseconds depending
  on ``LogAscii::json_timestamps``.

Mapping decisions:

* ``source.bytes``/``destination.bytes`` are the payload counts ``orig_bytes``/``resp_bytes``
  (unset while a connection has no payload accounting, e.g. ``S0``). ``network.bytes`` is the
  IP-level total ``orig_ip_bytes + resp_ip_bytes``: Zeek always sets those, and IP-level
  octets are what NetFlow exporters count, so Zeek and nfdump flows compare. Without them
  (a trimmed ``#fields``) it falls back to the payload sum.
* ICMP "ports" stay as Zeek logs them (type in ``id.orig_p``, code in ``id.resp_p``).
* ``ts`` seconds are converted by rounding, not truncating, to microseconds: a float such as
  1547188415.857497 is stored as ...857496.99..., and truncation would lose a microsecond in
  about one line out of seventy.
* TSV lines are split with one ``str.split`` per distinct header, on Polars' streaming
  engine so the split runs on all cores; that split is most of the parser's time.
* JSON lines go through DuckDB's ``json_extract_string``: on our data it is the fastest JSON
  reader at hand and, unlike Polars' ``json_decode``, a value of an unexpected type becomes
  text instead of failing the whole chunk.

Connections still open: Zeek logs a connection when it ends, so a C2 channel held open for
days is invisible until then. Two widely used packages log open connections with the same
fields, each record carrying the duration and byte totals *so far*: Corelight's
``long-connections`` (``#path conn_long``, at 10 min, 1 h, 12 h...) and ActiveCM's
``open-connections`` (``#path open_conn``, hourly). Their records are read like conn.log
lines with ``event.action: flow-update``; detections keep only the latest record of a
connection that has not closed yet, so totals are never counted twice.

The helpers shared with the nfdump parser live in ``parse/fields.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

import duckdb
import polars as pl

from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import (
    PORT_MAX,
    bounded_int,
    build_flows,
    count,
    epoch_to_utc,
    keep_rows,
    rejects,
    seconds_to_ns,
    split_delimited,
    valid_ip,
)
from vpnsentry.parse.timeparse import parse_iso, plausible

# --- Zeek ------------------------------------------------------------------------------------

#: The conn.log fields we read. Anything else in ``#fields`` is skipped.
FIELDS: Final = (
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "community_id",
)
_STATE_KEY: Final = "zeek_conn"
#: ``#path`` values of records of connections still open (totals so far), and all we read.
INTERIM_PATHS: Final = ("conn_long", "open_conn")
PATHS: Final = ("conn", *INTERIM_PATHS)
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class _Header:
    """What the ``#`` lines seen so far say about the data lines that follow."""

    sep: str = "\t"
    empty: str = "(empty)"
    unset: str = "-"
    path: str | None = None
    fields: tuple[str, ...] | None = None

    def apply(self, line: str) -> _Header:
        """The state after directive ``line`` (``#open``, ``#types``, ``#close`` change nothing).

        ``#separator`` is the one directive written with a space, because the separator is not
        known before it; its value is escaped (``\\x09``). An empty separator (a cut or forged
        header) cannot split anything, so the previous one stays.
        """
        if line.startswith("#separator "):
            value = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), line[len("#separator ") :])
            return replace(self, sep=value) if value else self
        name, _, value = line.partition(self.sep)
        if name == "#empty_field":
            return replace(self, empty=value)
        if name == "#unset_field":
            return replace(self, unset=value)
        if name == "#path":
            return replace(self, path=value)
        if name == "#fields":
            return replace(self, fields=tuple(value.split(self.sep)))
        return self


@register
class ZeekConn(Parser):
    """Zeek conn.log, TSV (header-driven columns) and JSON lines."""

    name = "zeek_conn"
    stateful = True
    title = "Zeek conn.log (TSV with #fields header, or JSON lines)"
    vendor = "Zeek"
    product = "Zeek"
    datasets = ("flows",)
    sniff_literals = ("#path", "#fields", '"conn_state"')
    sample = (
        '{"ts":1547188415.857497,"uid":"CAcJw21BbVedgFnYH3","id.orig_h":"192.168.86.167",'
        '"id.orig_p":38339,"id.resp_h":"192.168.86.1","id.resp_p":53,"proto":"udp",'
        '"service":"dns","duration":0.076967,"orig_bytes":75,"resp_bytes":178,'
        '"conn_state":"SF","local_orig":true,"local_resp":true,"missed_bytes":0,'
        '"history":"Dd","orig_pkts":1,"orig_ip_bytes":103,"resp_pkts":1,"resp_ip_bytes":206,'
        '"tunnel_parents":[]}'
    )

    def sniff(self, head: list[str]) -> float:
        """Certain on a conn header block; for JSON, the share of conn.log-shaped objects.

        The default literal count would score a TSV file by its few header lines only.
        """
        lines = [ln for ln in head if ln.strip()]
        for ln in lines:
            if ln.startswith("#path"):
                return 1.0 if ln[len("#path") + 1 :] in PATHS else 0.0
            if ln.startswith("#fields") and "id.orig_h" in ln and "conn_state" in ln:
                return 1.0
        json_like = [
            ln
            for ln in lines
            if ln.startswith("{") and '"id.orig_h"' in ln and '"conn_state"' in ln
        ]
        return len(json_like) / len(lines) if lines else 0.0

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        frame = pl.DataFrame(
            {"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True), "_line": lines}
        )
        is_header = pl.col("_line").str.starts_with("#")
        frame = frame.with_columns(
            is_header.alias("_header"),
            pl.col("_line").str.starts_with("{").alias("_json"),
            is_header.cast(pl.UInt32).cum_sum().alias("_seg"),
        )
        headers = frame.filter("_header")
        segments = _segments(headers["_line"].to_list(), ctx)

        raws: list[pl.DataFrame] = []
        rejected: list[pl.DataFrame] = []
        tsv = frame.filter(~pl.col("_header") & ~pl.col("_json"))
        if len(tsv):
            raw_tsv, bad = _tsv(tsv, segments)
            raws += raw_tsv
            rejected += bad
        json = frame.filter("_json")
        if len(json):
            raw_json, bad = _json(json)
            raws.append(raw_json)
            rejected += bad

        result = ParseResult(ignored_rows=headers["_row"].to_list())
        if raws:
            table, no_ts, dropped = _to_flows(pl.concat(raws), ctx)
            result.tables["flows"] = table
            result.dropped_values = dropped
            rejected.append(no_ts)
        if rejected:
            result.rejected = pl.concat(rejected)
        return result


def _segments(header_lines: list[str], ctx: ParseContext) -> list[_Header]:
    """Header state for each segment of the chunk: before the first ``#`` line, after each.

    Segment ``i`` holds the data lines after the ``i``-th header line of the chunk; segment 0
    continues the previous chunk of the file. The state after the last line is kept for the
    next chunk. This loops over header lines only, a handful per file.
    """
    state = ctx.state.get(_STATE_KEY, _Header())
    segments = [state]
    for line in header_lines:
        state = state.apply(line)
        segments.append(state)
    ctx.state[_STATE_KEY] = state
    return segments


def _tsv(
    rows: pl.DataFrame, segments: list[_Header]
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    """Split TSV lines by the header in force for them; lines no header explains are rejected.

    Segments with the same header are split together, so a file of many concatenated logs
    costs one split per distinct ``#fields``, not one per header block.
    """
    by_header: dict[_Header, list[int]] = {}
    for seg, header in enumerate(segments):
        by_header.setdefault(header, []).append(seg)
    raws: list[pl.DataFrame] = []
    bad: list[pl.DataFrame] = []
    for header, segs in by_header.items():
        part = rows.filter(pl.col("_seg").is_in(segs))
        if not len(part):
            continue
        if header.fields is None:
            bad.append(rejects(part, Reason.NO_MATCH, "data line before any #fields header"))
        elif header.path not in (None, *PATHS):
            bad.append(rejects(part, Reason.NO_MATCH, f"#path is {header.path!r}, not conn"))
        else:
            nulls = (header.unset, header.empty, "")
            raw, wrong = split_delimited(part, header.sep, header.fields, FIELDS, nulls)
            raws.append(raw.with_columns(_open=pl.lit(header.path in INTERIM_PATHS)))
            bad.append(wrong)
    return raws, bad


def _json(rows: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The conn.log fields of JSON lines, extracted by DuckDB with one parse per line."""
    keys = (*FIELDS, "_path")
    paths = ", ".join(f"'$.\"{k}\"'" for k in keys)
    picks = ", ".join(f'v[{i + 1}] AS "{k}"' for i, k in enumerate(keys))
    con = duckdb.connect()
    try:
        con.register("zeek_json", rows.select("_row", "_line"))
        out = con.sql(
            f"SELECT _row, ok, CASE WHEN NOT ok THEN ends_with(rtrim(_line), '}}') END AS closed,"
            f" {picks} FROM ("
            "  SELECT _row, _line, ok,"
            f"   CASE WHEN ok THEN json_extract_string(_line, [{paths}]) END AS v"
            "  FROM (SELECT _row, _line, json_valid(_line) AS ok FROM zeek_json))"
        ).pl()
    finally:
        con.close()
    out = out.with_columns(pl.col("_row").cast(pl.UInt32))
    ok, closed = pl.col("ok"), pl.col("closed")
    is_conn = pl.col("conn_state").is_not_null() & (
        pl.col("_path").is_null() | pl.col("_path").is_in(PATHS)
    )
    bad = [
        rejects(out.filter(~ok & ~closed), Reason.TRUNCATED, "JSON object not closed"),
        rejects(out.filter(~ok & closed), Reason.NO_MATCH, "not valid JSON"),
        rejects(
            out.filter(ok & ~is_conn),
            Reason.NO_MATCH,
            "JSON object is not a conn.log record (no conn_state, or _path is not conn)",
        ),
    ]
    kept = keep_rows(out, ok & is_conn)
    return kept.select(
        "_row", *FIELDS, pl.col("_path").is_in(INTERIM_PATHS).fill_null(False).alias("_open")
    ), bad


def _to_flows(raw: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """ECS ``flows`` rows from the raw string fields; rows without a usable ts are rejected."""
    ts = epoch_to_utc(pl.col("ts"))
    if raw["ts"].str.contains("-", literal=True).any():  # ISO 8601 (json_timestamps)
        ts = pl.when(ts.is_null()).then(parse_iso(pl.col("ts"), ctx.tz)).otherwise(ts)
    checked: dict[str, tuple[str, pl.Expr]] = {
        "source.ip": ("id.orig_h", valid_ip(pl.col("id.orig_h"))),
        "destination.ip": ("id.resp_h", valid_ip(pl.col("id.resp_h"))),
        "source.port": ("id.orig_p", bounded_int(pl.col("id.orig_p"), PORT_MAX, pl.Int32())),
        "destination.port": ("id.resp_p", bounded_int(pl.col("id.resp_p"), PORT_MAX, pl.Int32())),
        "event.duration": ("duration", seconds_to_ns(pl.col("duration"))),
        "source.bytes": ("orig_bytes", count(pl.col("orig_bytes"))),
        "destination.bytes": ("resp_bytes", count(pl.col("resp_bytes"))),
        "source.packets": ("orig_pkts", count(pl.col("orig_pkts"))),
        "destination.packets": ("resp_pkts", count(pl.col("resp_pkts"))),
        "_orig_ip_bytes": ("orig_ip_bytes", count(pl.col("orig_ip_bytes"))),
        "_resp_ip_bytes": ("resp_ip_bytes", count(pl.col("resp_ip_bytes"))),
    }
    derived = {
        "@timestamp": plausible(ts, ctx.now),
        "network.bytes": pl.coalesce(
            pl.col("_orig_ip_bytes") + pl.col("_resp_ip_bytes"),
            pl.col("source.bytes") + pl.col("destination.bytes"),
        ),
        "network.packets": pl.col("source.packets") + pl.col("destination.packets"),
        "network.transport": pl.col("proto").str.to_lowercase(),
        "network.protocol": pl.col("service"),
        "network.community_id": pl.col("community_id"),
        "flow.state": pl.col("conn_state"),
        "flow.id": pl.col("uid"),
        "event.action": pl.when(pl.col("_open")).then(pl.lit("flow-update")),
    }
    end = pl.col("@timestamp") + pl.duration(microseconds=pl.col("event.duration") // 1000)
    return build_flows(
        raw,
        checked,
        [derived, {"event.end": end}],
        dataset="zeek.connection",
        ts_detail=pl.format("ts {}", pl.col("ts").fill_null("missing")),
    )
