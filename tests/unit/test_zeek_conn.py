"""Zeek conn.log parser: header state across chunks, conversions, drops, and the IP check."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GOLDEN, make_ctx
from tests.helpers import parse_rows, read_lines
from vpnsentry.parse.base import ParseContext, get_parser
from vpnsentry.parse.fields import valid_ip
from vpnsentry.parse.run import parse_chunk

CASES = GOLDEN / "parse" / "zeek_conn"
HEADER = [
    r"#separator \x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tconn",
    "#open\t2020-06-05-14-48-32",
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration"
    "\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory"
    "\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents",
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring"
    "\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]",
]
# From the Zeek manual (log formats, tm1t.pcap), tabs restored.
LINE = (
    "1591367999.430166\tCLqEx41jYPOdfHF586\t192.168.4.76\t46378\t31.3.245.133\t80\ttcp\thttp"
    "\t0.254115\t77\t295\tSF\t-\t-\t0\tShADadFf\t6\t397\t4\t511\t-"
)


def parse_file_lines(lines: list[str]) -> list[dict[str, Any]]:
    """Rows as the golden test sees them (non-null fields, ``dataset`` added)."""
    return parse_rows("zeek_conn", lines)


def _fates(out_tables: dict[str, pl.DataFrame], first_line: int, n: int) -> list[Any]:
    fate: dict[int, Any] = {}
    for name, df in out_tables.items():
        for row in df.to_dicts():
            line = row["log.offset"]
            if name == "quarantine":
                fate[line] = ("quarantine", row["error.type"])
            else:
                fate[line] = tuple(
                    sorted((k, v) for k, v in row.items() if k not in ("event.ingested",))
                )
    return [fate.get(first_line + i, "ignored") for i in range(n)]


def parse_in_chunks(
    fmt: str, lines: list[str], size: int, ctx: ParseContext | None = None
) -> tuple[list[Any], int]:
    """Each line's fate when the file arrives in chunks of ``size`` lines, one context."""
    ctx = ctx or make_ctx()
    fates: list[Any] = []
    dropped = 0
    for start in range(0, len(lines), size):
        part = lines[start : start + size]
        out = parse_chunk(
            get_parser(fmt),
            pl.Series(part, dtype=pl.String),
            pl.Series(range(start, start + len(part)), dtype=pl.Int64),
            ctx,
            first_line=start + 1,
            strict=True,
        )
        fates += _fates(out.tables, start, len(part))
        dropped += out.dropped_values
    return fates, dropped


@pytest.mark.parametrize("case", sorted(CASES.glob("*.log")), ids=lambda p: p.stem)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 10_000])
def test_chunking_never_changes_the_result(case: Path, size: int) -> None:
    """Header state carried in ctx.state: any chunking gives the one-chunk answer."""
    lines = read_lines(case)
    whole, dropped_whole = parse_in_chunks("zeek_conn", lines, len(lines))
    got, dropped = parse_in_chunks("zeek_conn", lines, size)
    assert got == whole
    assert dropped == dropped_whole


def test_columns_are_found_by_name_in_each_header_block() -> None:
    """A second block with other #fields (order, fewer columns) governs only its lines."""
    reordered = [
        *HEADER[:6],
        "#fields\tuid\tts\tid.resp_h\tid.resp_p\tid.orig_h\tid.orig_p\tproto\tconn_state",
        "#types\tstring\ttime\taddr\tport\taddr\tport\tenum\tstring",
        "CLqEx41jYPOdfHF586\t1591367999.430166\t31.3.245.133\t80\t192.168.4.76\t46378\ttcp\tSF",
    ]
    rows = parse_file_lines([*HEADER, LINE, *reordered])
    first, second = rows[8], rows[-1]
    for row in (first, second):
        assert row["source.ip"] == "192.168.4.76"
        assert row["destination.port"] == 80
        assert row["flow.state"] == "SF"
    assert first["network.bytes"] == 397 + 511
    assert "network.bytes" not in second  # no byte columns in that header


def test_a_custom_separator_is_honoured() -> None:
    """``#separator`` is the only directive written with a space; the rest use its value."""
    header = [r"#separator \x7c"] + [
        h.replace("\t", "|") for h in HEADER[1:]
    ]  # LogAscii::separator = "|"
    rows = parse_file_lines([*header, LINE.replace("\t", "|")])
    assert rows[-1]["source.port"] == 46378
    assert rows[-1]["network.protocol"] == "http"


def test_bad_values_are_dropped_and_counted_the_row_kept() -> None:
    bad = (
        LINE.replace("192.168.4.76", "192.168.4.760")
        .replace("\t80\t", "\t80000\t")
        .replace("\t77\t", "\t-77\t")
        .replace("0.254115", "forever")
    )
    fates, dropped = parse_in_chunks("zeek_conn", [*HEADER, bad], 100)
    row = dict(fates[-1])
    assert dropped == 4
    assert row["source.port"] == 46378
    for gone in ("source.ip", "destination.port", "source.bytes", "event.duration"):
        assert row[gone] is None


def test_network_bytes_falls_back_to_payload_without_ip_bytes() -> None:
    header = [
        *HEADER[:6],
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\torig_bytes"
        "\tresp_bytes\tconn_state",
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tcount\tstring",
    ]
    line = "1591367999.430166\tC1\t192.0.2.1\t1\t198.51.100.1\t443\ttcp\t77\t295\tSF"
    assert parse_file_lines([*header, line])[-1]["network.bytes"] == 77 + 295


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1_000_000_000, max_value=1_800_000_000),
    st.integers(min_value=0, max_value=999_999),
)
def test_epoch_seconds_keep_every_microsecond(seconds: int, micros: int) -> None:
    """Truncating float seconds * 1e6 loses a microsecond on ~1.4% of values; rounding not."""
    line = LINE.replace("1591367999.430166", f"{seconds}.{micros:06d}")
    got = parse_file_lines([*HEADER, line])[-1]["@timestamp"]
    want = dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(microseconds=micros)
    assert got == want.isoformat().replace("+00:00", "Z")


def test_json_value_of_an_unexpected_type_is_dropped_not_fatal() -> None:
    record = json.loads(
        '{"ts":1591367999.305988,"uid":"CMdzit1AMNsmfAIiQc","id.orig_h":"192.168.4.76",'
        '"id.orig_p":36844,"id.resp_h":"192.168.4.1","id.resp_p":53,"proto":"udp",'
        '"service":"dns","duration":0.06685185432434082,"orig_bytes":62,"resp_bytes":141,'
        '"conn_state":"SF","missed_bytes":0,"history":"Dd","orig_pkts":2,'
        '"orig_ip_bytes":118,"resp_pkts":2,"resp_ip_bytes":197}'
    )
    record["id.orig_p"] = [36844]
    record["orig_bytes"] = {"n": 62}
    fates, dropped = parse_in_chunks("zeek_conn", [json.dumps(record)], 10)
    row = dict(fates[0])
    assert dropped == 2
    assert row["source.port"] is None
    assert row["source.bytes"] is None
    assert row["destination.bytes"] == 141


def test_sniff() -> None:
    parser = get_parser("zeek_conn")
    assert parser.sniff([*HEADER, LINE]) == 1.0
    assert parser.sniff([h.replace("#path\tconn", "#path\tdns") for h in HEADER]) == 0.0
    assert parser.sniff(read_lines(CASES / "json_corpus.log")) == 1.0
    nfdump_csv = read_lines(GOLDEN / "parse" / "nfdump" / "csv_softflowd_v9.log")
    assert parser.sniff(nfdump_csv) == 0.0


_V4 = st.ip_addresses(v=4).map(str)
_V6 = st.ip_addresses(v=6).flatmap(lambda a: st.sampled_from([str(a), a.exploded]))
_NEAR_MISS = st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45)


def _python_says_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_V4, _V6, _NEAR_MISS), min_size=1, max_size=40))
def test_valid_ip_agrees_with_the_ipaddress_module(texts: list[str]) -> None:
    got = pl.Series(texts, dtype=pl.String).to_frame("a").select(valid_ip(pl.col("a")))
    assert got.to_series().is_not_null().to_list() == [_python_says_ip(t) for t in texts]


def test_empty_separator_directive_does_not_break_the_header() -> None:
    """Found by the property test: a cut ``#separator `` line must not crash the parser."""
    rows = parse_rows("zeek_conn", ["#separator ", "#"])
    assert rows == [{"ignored": True}, {"ignored": True}]
