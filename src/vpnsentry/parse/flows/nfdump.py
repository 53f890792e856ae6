"""nfdump flow listings (``nfdump -r <file> -o csv|json|json-log``) to the ``flows`` dataset.

nfdump reads the binary files nfcapd writes from NetFlow v5/v9/IPFIX/sFlow and prints them.
What it prints depends on the version, so this parser reads the shape, not a version number:

* ``-o csv`` up to 1.7.4: header ``ts,te,td,sa,da,sp,dp,pr,flg,...,ra,eng,exid,tr`` (48
  columns), times ``2024-05-01 12:00:00`` without milliseconds, ``pr`` as a name (``TCP``),
  ICMP type and code packed into ``dp`` (type*256+code), then a ``Summary`` block of three
  lines (``Summary``, ``flows,bytes,packets,avg_bps,avg_pps,avg_bpp``, the numbers).
* ``-o csv`` from 1.7.5: the columns follow a format string, the header names them
  (``firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows`` by
  default; ``-o csv:%ts,%sa,...`` chooses others). Times carry milliseconds, ``proto`` is a
  number, ICMP shows ``type.code`` in ``dstPort``. ``csv-fast`` prints epoch milliseconds.
  The header is therefore the only reliable key, and it persists in ``ctx.state`` for the
  next chunks of the file. Lines before any header (``-q`` drops it) are rejected.
* ``-o json``: a JSON array with one key per line (``"first" : "2024-05-01T12:00:00.100",``),
  records between ``{`` and ``}``; 1.6 wrote ``t_first``/``t_last`` and separated records by
  a lone ``,``. A record spans lines, but the parser contract is per line, so each record is
  assembled from its lines with vectorized key/value extraction and reported on its closing
  line; its other lines are ``ignored``. A record cut by a chunk boundary is carried in
  ``ctx.state``. A record never closed is rejected on the next record's opening line; one
  still open at the end of the file (nfdump killed mid-record) is lost, as nothing follows it.
* ``-o json-log`` and the newer ``ndjson``: one object per line, same keys.

nfdump prints ``first``/``ts`` in the local time zone of the machine that ran it and never
says which: pass ``--tz`` when that was not UTC. In JSON the digits after the dot are
milliseconds even when not zero-padded (1.6 printed ``.12`` for 12 ms).

Mapping decisions: ``in`` counters are the flow's direction (source); ``out`` counters, only
non-zero for bidirectional records (NSEL, IPFIX biflows), go to ``destination``; a zero
there means "not measured" for a unidirectional NetFlow record, so it is left null. TCP flags
(``...AP.SF``) are the closest NetFlow has to a connection state and go to ``flow.state``.
The exporter's address goes to ``observer.ip``; engine type/id and nfdump's exporter sysid
are nfcapd-internal numbering with no ECS field and are not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

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
from vpnsentry.parse.timeparse import local_to_utc, plausible

#: CSV header names (1.6-1.7.4 short names and 1.7.5+ names) to our raw column names.
CSV_NAMES: Final = {
    "ts": "first",
    "firstSeen": "first",
    "te": "last",
    "lastSeen": "last",
    "td": "duration",
    "duration": "duration",
    "sa": "src",
    "srcAddr": "src",
    "da": "dst",
    "dstAddr": "dst",
    "sp": "sp",
    "srcPort": "sp",
    "dp": "dp",
    "dstPort": "dp",
    "pr": "proto",
    "proto": "proto",
    "flg": "flags",
    "flags": "flags",
    "ipkt": "in_pkts",
    "packets": "in_pkts",
    "inPackets": "in_pkts",
    "ibyt": "in_bytes",
    "bytes": "in_bytes",
    "inBytes": "in_bytes",
    "opkt": "out_pkts",
    "outPackets": "out_pkts",
    "obyt": "out_bytes",
    "outBytes": "out_bytes",
    "ra": "router",
    "routerIP": "router",
}
#: JSON keys (1.6 ``t_first``, 1.7 ``first``; IPv4 and IPv6 variants) to raw column names.
JSON_KEYS: Final = {
    "first": "first",
    "t_first": "first",
    "last": "last",
    "t_last": "last",
    "in_packets": "in_pkts",
    "in_bytes": "in_bytes",
    "out_packets": "out_pkts",
    "out_bytes": "out_bytes",
    "proto": "proto",
    "tcp_flags": "flags",
    "src_port": "sp",
    "dst_port": "dp",
    "src4_addr": "src",
    "src6_addr": "src",
    "dst4_addr": "dst",
    "dst6_addr": "dst",
    "ip4_router": "router",
    "ip6_router": "router",
}
RAW: Final = (
    "first",
    "last",
    "duration",
    "src",
    "dst",
    "sp",
    "dp",
    "proto",
    "flags",
    "in_pkts",
    "in_bytes",
    "out_pkts",
    "out_bytes",
    "router",
)
#: IANA protocol numbers to the keywords ECS ``network.transport`` uses.
IANA: Final = {
    1: "icmp",
    2: "igmp",
    4: "ipv4",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    115: "l2tp",
    132: "sctp",
}
#: nfdump's protocol names (lower-cased) where they differ from the IANA keyword.
NAME_ALIASES: Final = {"icmp6": "ipv6-icmp", "ipip": "ipv4"}

SUMMARY_HEADER: Final = "flows,bytes,packets,avg_bps,avg_pps,avg_bpp"
_TOKENS = r"^[A-Za-z][A-Za-z0-9_-]*(?:,[A-Za-z][A-Za-z0-9_-]*)+$"
_OPEN = r"^[\[,]?\s*\{$"
_CLOSE = r"^\}\s*[,\]]?$"
_ONE_LINE = r"^[\[,]?\s*\{.*\}\s*[,\]]?$"
_CUT = r"^[\[,]?\s*\{\s*\""  # a one-line object that starts but does not end
_PAIR = r'"([^"]+)"\s*:\s*(?:"([^"]*)"|([^,}\s]+))'
#: What nfdump prints for an address a record does not carry (not a bind address).
_NO_ADDRESS: Final = ["0.0.0.0", "::"]  # noqa: S104
_STATE_KEY: Final = "nfdump"


@dataclass
class _State:
    """What a chunk leaves for the next chunk of the same file."""

    header: tuple[str, ...] | None = None  # raw names of the CSV columns in force
    after_summary_header: bool = False  # the next line holds the summary numbers
    json_open: bool = False  # a multi-line JSON record is open
    json_pairs: tuple[tuple[str, str], ...] = ()  # its key/value pairs so far


@register
class Nfdump(Parser):
    """nfdump ``-o csv`` (any version's header), ``-o json`` and ``-o json-log`` listings."""

    name = "nfdump"
    stateful = True
    title = "nfdump flow listing (-o csv, -o json, -o json-log)"
    vendor = "nfdump"
    product = "nfdump"
    datasets = ("flows",)
    sniff_literals = ("ts,te,td,sa,da", "srcAddr", '"src4_addr"', '"src6_addr"')
    sample = (
        "2024-05-01 12:00:00,2024-05-01 12:00:01,1.000,192.0.2.10,198.51.100.20,51515,443,"
        "TCP,...AP.SF,0,0,4,260,0,0,0,0,0,0,0,0,0,0,0.0.0.0,0.0.0.0,0,0,00:00:00:00:00:00,"
        "00:00:00:00:00:00,00:00:00:00:00:00,00:00:00:00:00:00,0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,"
        "0-0-0,0-0-0,0-0-0,0-0-0,0-0-0,    0.000,    0.000,    0.000,127.0.0.1,0/0,1,"
        "2026-11-30 04:58:15.327"
    )

    def sniff(self, head: list[str]) -> float:
        """Certain on a flow CSV header; for JSON, the share of lines shaped like nfdump's.

        nfdump's JSON spreads a record over ~25 lines of which one names the source address,
        so a literal count would undersell it: once an nfdump address key is seen, every line
        shaped like its JSON (brackets, braces, ``"key" : value``) counts.
        """
        lines = [ln.strip() for ln in head if ln.strip()]
        if any(re.match(_TOKENS, ln) and _flow_header(ln.split(",")) for ln in lines):
            return 1.0
        if not any('"src4_addr"' in ln or '"src6_addr"' in ln for ln in lines):
            return 0.0
        shaped = [ln for ln in lines if ln in ("[", "]", ",") or ln.startswith(('"', "{", "}"))]
        return len(shaped) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        state = ctx.state.get(_STATE_KEY, _State())
        frame = _classify(lines, state)

        raws: list[pl.DataFrame] = []
        rejected = [
            rejects(
                frame.filter(pl.col("_kind") == "cut"), Reason.TRUNCATED, "JSON object not closed"
            )
        ]
        ignored = [frame.filter(pl.col("_kind").is_in(["csvhdr", "noise"]))["_row"]]

        segments = [state.header]
        for text in frame.filter(pl.col("_kind") == "csvhdr")["_line"].to_list():
            segments.append(_flow_header(text.strip().split(",")))
        state.header = segments[-1]
        csv = frame.filter(pl.col("_kind") == "csv")
        if len(csv):
            raw_csv, bad = _csv(csv, segments)
            raws += raw_csv
            rejected += bad

        one_line = frame.filter(pl.col("_kind") == "object")
        if len(one_line):
            pairs = _pairs(one_line, "_row")
            raw, no_keys = _records(pairs, one_line.select("_row", pl.col("_row").alias("_rec")))
            raws.append(raw)
            rejected.append(no_keys)
        multi = frame.filter(pl.col("_kind") == "json")
        if len(multi):
            raw, wrong, skipped = _multiline(multi, state)
            raws.append(raw)
            rejected += wrong
            ignored.append(skipped)

        state.after_summary_header = lines.tail(1).str.strip_chars().eq(SUMMARY_HEADER).any()
        ctx.state[_STATE_KEY] = state
        result = ParseResult(ignored_rows=pl.concat(ignored).to_list())
        if raws:
            table, no_ts, dropped = _to_flows(pl.concat(raws), ctx)
            result.tables["flows"] = table
            result.dropped_values = dropped
            rejected.append(no_ts)
        result.rejected = pl.concat(rejected)
        return result


def _classify(lines: pl.Series, state: _State) -> pl.DataFrame:
    """``_row``, ``_line``, ``_kind`` and ``_seg`` (the CSV header segment) of each line.

    Kinds: ``csvhdr``; ``noise`` (``[``, ``]``, a lone ``,``, the Summary block, "No
    matching flows"); ``json`` (a line of a multi-line record: ``{``, ``}``, ``"key" :
    value``); ``object`` (a whole record on one line); ``cut`` (a one-line record cut short);
    ``csv`` (everything else). The first character picks which tests a line needs, so CSV
    rows, the bulk of a CSV listing, pay for no JSON regex and JSON lines for no CSV one.
    """
    frame = pl.DataFrame(
        {"_row": pl.int_range(0, len(lines), dtype=pl.UInt32, eager=True), "_line": lines}
    ).with_columns(pl.col("_line").str.strip_chars().alias("_s"))
    s = pl.col("_s")
    frame = frame.with_columns(
        s.str.contains(r'^[\[\]{},"]').alias("_jsonish"),
        s.str.contains(r"^[A-Za-z]").alias("_word"),
        (s == SUMMARY_HEADER).shift(1, fill_value=state.after_summary_header).alias("_sumval"),
    )
    noise = ["Summary", "No matching flows", SUMMARY_HEADER]
    word_kind = (
        pl.when(s.is_in(noise))
        .then(pl.lit("noise"))
        .when(s.str.contains(_TOKENS))
        .then(pl.lit("csvhdr"))
        .otherwise(pl.lit("csv"))
    )
    json_shaped = s.str.contains(_OPEN) | s.str.contains(_CLOSE) | s.str.starts_with('"')
    json_kind = (
        pl.when(s.is_in(["[", "]", ","]))
        .then(pl.lit("noise"))
        .when(json_shaped)
        .then(pl.lit("json"))
        .when(s.str.contains(_ONE_LINE))
        .then(pl.lit("object"))
        .when(s.str.contains(_CUT))
        .then(pl.lit("cut"))
        .otherwise(pl.lit("csv"))
    )
    kind = pl.repeat("csv", len(frame), dtype=pl.String, eager=True)
    for mask, expr in (("_word", word_kind), ("_jsonish", json_kind)):
        part = frame.filter(mask).select("_row", expr.alias("_kind"))
        kind = kind.scatter(part["_row"], part["_kind"])
    kind = kind.scatter(frame.filter("_sumval")["_row"], "noise")
    return frame.select(
        "_row",
        "_line",
        kind.alias("_kind"),
        (kind == "csvhdr").cast(pl.UInt32).cum_sum().alias("_seg"),
    )


def _flow_header(tokens: list[str]) -> tuple[str, ...] | None:
    """Raw names for a CSV header's columns, or None when it does not list flows.

    Statistics listings (``-s``) print a header too, without addresses: their rows are
    aggregates, not flows. Unknown columns get a name no raw column uses.
    """
    names = tuple(CSV_NAMES.get(t, f"?{t}") for t in tokens)
    return names if {"first", "src", "dst"} <= set(names) else None


def _csv(
    rows: pl.DataFrame, segments: list[tuple[str, ...] | None]
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    """Split CSV rows by the header in force for them (one split per distinct header)."""
    by_header: dict[tuple[str, ...] | None, list[int]] = {}
    for seg, header in enumerate(segments):
        by_header.setdefault(header, []).append(seg)
    raws: list[pl.DataFrame] = []
    bad: list[pl.DataFrame] = []
    for header, segs in by_header.items():
        part = rows.filter(pl.col("_seg").is_in(segs))
        if not len(part):
            continue
        if header is None:
            detail = "not under an nfdump flow listing CSV header (nfdump -q omits it)"
            bad.append(rejects(part, Reason.NO_MATCH, detail))
        else:
            raw, wrong = split_delimited(part, ",", header, RAW, ("",))
            raws.append(raw)
            bad.append(wrong)
    return raws, bad


def _pairs(rows: pl.DataFrame, rec: str) -> pl.DataFrame:
    """Long table (``_rec``, ``key``, ``value``) of the ``"key" : value`` pairs in ``_line``.

    ``_rec`` is the ``rec`` column of the line's row; quoted values lose their quotes. One
    regex pass finds the pairs, a second splits each one.
    """
    found = pl.col("_line").str.extract_all(_PAIR).alias("_p")
    long = rows.select(pl.col(rec).cast(pl.UInt32).alias("_rec"), found).explode("_p")
    groups = pl.col("_p").str.extract_groups(_PAIR)
    return long.drop_nulls("_p").select(
        "_rec",
        groups.struct.field("1").alias("key"),
        pl.coalesce(groups.struct.field("2"), groups.struct.field("3")).alias("value"),
    )


def _records(pairs: pl.DataFrame, ids: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(raw rows, rejected) for the records ``ids`` (``_row`` to report on, ``_rec``).

    Only the keys we map are kept; a record with none of them is not an nfdump flow.
    """
    known = pairs.filter(pl.col("key").is_in(list(JSON_KEYS))).with_columns(
        pl.col("key").replace_strict(JSON_KEYS, return_dtype=pl.String)
    )
    wide = ids.select(pl.col("_row").cast(pl.UInt32), pl.col("_rec").cast(pl.UInt32))
    if len(known):
        pivot = known.pivot(on="key", index="_rec", values="value", aggregate_function="first")
        wide = wide.join(pivot, on="_rec", how="left")
    wide = wide.with_columns(pl.lit(None, pl.String).alias(c) for c in RAW if c not in wide)
    empty = pl.all_horizontal(pl.col(c).is_null() for c in RAW)
    bad = rejects(wide.filter(empty), Reason.NO_MATCH, "JSON object without nfdump flow keys")
    return keep_rows(wide, ~empty).select("_row", *RAW), bad


def _multiline(
    rows: pl.DataFrame, state: _State
) -> tuple[pl.DataFrame, list[pl.DataFrame], pl.Series]:
    """Records of ``-o json`` from their lines: (raw rows, rejected, ignored rows).

    Records are numbered by a running count of opening lines; number 0 is the record the
    previous chunk left open. Whether a line is inside a record follows from the last
    ``{``/``}`` before it (carried across chunks). A record is reported on its closing line.
    """
    line = pl.col("_line").str.strip_chars()
    rows = rows.with_columns(
        line.str.contains(_OPEN).alias("_open"), line.str.contains(_CLOSE).alias("_close")
    )
    struct = pl.when(pl.col("_open")).then(True).when(pl.col("_close")).then(False)
    inside_after = struct.forward_fill().fill_null(state.json_open)
    rows = rows.with_columns(
        pl.col("_open").cast(pl.UInt32).cum_sum().alias("_rec"),
        inside_after.shift(1, fill_value=state.json_open).alias("_inside"),
        inside_after.alias("_inside_after"),
    )
    inside, is_pair = pl.col("_inside"), ~pl.col("_open") & ~pl.col("_close")
    pair_rows = rows.filter(is_pair & inside)
    bad = [
        rejects(rows.filter(is_pair & ~inside), Reason.NO_MATCH, "JSON key outside a record"),
        rejects(
            pair_rows.filter(~pl.col("_line").str.contains(_PAIR)),
            Reason.NO_MATCH,
            'not a "key" : value line',
        ),
        rejects(
            rows.filter(pl.col("_close") & ~inside),
            Reason.NO_MATCH,
            "closing brace without an open record",
        ),
        rejects(
            rows.filter(pl.col("_open") & inside),
            Reason.TRUNCATED,
            "the JSON record before this line was never closed",
        ),
    ]
    carried = pl.DataFrame(
        {
            "_rec": [0] * len(state.json_pairs),
            "key": [k for k, _ in state.json_pairs],
            "value": [v for _, v in state.json_pairs],
        },
        schema={"_rec": pl.UInt32, "key": pl.String, "value": pl.String},
    )
    pairs = pl.concat([carried, _pairs(pair_rows, "_rec")])
    closers = rows.filter(pl.col("_close") & inside).select("_row", "_rec")
    done, empty = _records(pairs, closers)
    bad.append(empty)

    state.json_open = bool(rows["_inside_after"][-1])
    if state.json_open:
        open_pairs = pairs.filter(pl.col("_rec") == rows["_rec"][-1])
        state.json_pairs = tuple(zip(open_pairs["key"], open_pairs["value"], strict=True))
    else:
        state.json_pairs = ()

    reported = pl.concat([done.select("_row"), *(b.select("_row") for b in bad)])
    skipped = rows.join(reported, on="_row", how="anti")["_row"]
    return done, bad, skipped


def _transport(text: pl.Expr) -> pl.Expr:
    """``network.transport`` from a protocol number (JSON, CSV 1.7.5+) or name (CSV <1.7.5)."""
    number = text.cast(pl.Int64, strict=False)
    by_number = number.replace_strict(IANA, default=number.cast(pl.String), return_dtype=pl.String)
    by_name = text.str.to_lowercase().replace(NAME_ALIASES)
    return pl.when(number.is_not_null()).then(by_number).otherwise(by_name)


def _time(text: pl.Expr, tz: str) -> pl.Expr:
    """nfdump's time columns to UTC: local wall time in ``tz``, or epoch (``%tsr``, csv-fast).

    The digits after the dot are integer milliseconds (1.6 JSON did not zero-pad them).
    """
    parts = text.str.extract_groups(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,3}))?$")
    naive = pl.concat_str(parts.struct.field("1"), pl.lit(" "), parts.struct.field("2"))
    wall = naive.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False)
    ms = parts.struct.field("3").cast(pl.Int64, strict=False).fill_null(0)
    local = local_to_utc(wall + pl.duration(milliseconds=ms), tz)
    return pl.coalesce(local, epoch_to_utc(text))


def _to_flows(raw: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """ECS ``flows`` rows from the raw string columns of any listing shape."""
    transport = _transport(pl.col("proto"))
    is_icmp = transport.is_in(["icmp", "ipv6-icmp"])
    prepared = raw.with_columns(
        transport.alias("_transport"),
        # ICMP type and code travel in dp (packed, or "type.code"): not a port, not a failure.
        pl.when(is_icmp).then(None).otherwise(pl.col("dp")).alias("_dp"),
        pl.when(is_icmp).then(None).otherwise(pl.col("sp")).alias("_sp"),
        pl.when(pl.col("router").is_in(_NO_ADDRESS))
        .then(None)
        .otherwise(pl.col("router"))
        .alias("_router"),
    )
    checked: dict[str, tuple[str, pl.Expr]] = {
        "source.ip": ("src", valid_ip(pl.col("src"))),
        "destination.ip": ("dst", valid_ip(pl.col("dst"))),
        "source.port": ("_sp", bounded_int(pl.col("_sp"), PORT_MAX, pl.Int32())),
        "destination.port": ("_dp", bounded_int(pl.col("_dp"), PORT_MAX, pl.Int32())),
        "source.packets": ("in_pkts", count(pl.col("in_pkts"))),
        "source.bytes": ("in_bytes", count(pl.col("in_bytes"))),
        "_out_pkts": ("out_pkts", count(pl.col("out_pkts"))),
        "_out_bytes": ("out_bytes", count(pl.col("out_bytes"))),
        "_duration": ("duration", seconds_to_ns(pl.col("duration"))),
        "observer.ip": ("_router", valid_ip(pl.col("_router"))),
    }
    times = {
        "_first": plausible(_time(pl.col("first"), ctx.tz), ctx.now),
        "_last": _time(pl.col("last"), ctx.tz),
    }
    span = (pl.col("_last") - pl.col("_first")).dt.total_nanoseconds()
    out_pkts = pl.when(pl.col("_out_pkts") > 0).then(pl.col("_out_pkts"))
    out_bytes = pl.when(pl.col("_out_bytes") > 0).then(pl.col("_out_bytes"))
    main = {
        "@timestamp": pl.col("_first"),
        "event.duration": pl.coalesce(pl.col("_duration"), pl.when(span >= 0).then(span)),
        "destination.packets": out_pkts,
        "destination.bytes": out_bytes,
        "network.packets": pl.col("source.packets") + out_pkts.fill_null(0),
        "network.bytes": pl.col("source.bytes") + out_bytes.fill_null(0),
        "network.transport": pl.col("_transport"),
        "flow.state": pl.when(pl.col("_transport") == "tcp").then(pl.col("flags")),
    }
    end = pl.coalesce(
        pl.col("_last"),
        pl.col("@timestamp") + pl.duration(nanoseconds=pl.col("event.duration")),
    )
    return build_flows(
        prepared,
        checked,
        [times, main, {"event.end": end}],
        dataset="nfdump.flow",
        ts_detail=pl.format("first seen {}", pl.col("first").fill_null("missing")),
    )
