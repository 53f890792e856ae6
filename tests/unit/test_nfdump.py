"""nfdump parser: every listing shape, state across chunks, and the mapping decisions.

Lines of nfdump 1.7.1 (Debian 12) are real output (see the golden folder's README). nfdump
1.7.5+ CSV and ``-o json-log`` could not be produced here; their lines below are built from
the format strings in nfdump's source (``src/output/output_csv.c``, ``output_csv_fast.c``,
``output_json.c``) and say so where they appear.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import GOLDEN, make_ctx
from tests.helpers import parse_rows, read_lines
from tests.unit.test_zeek_conn import parse_in_chunks
from vpnsentry.parse.base import get_parser

CASES = GOLDEN / "parse" / "nfdump"
OLD_HEADER = read_lines(CASES / "csv_softflowd_v9.log")[0]
OLD_TCP = read_lines(CASES / "csv_softflowd_v9.log")[1]


def rows(lines: list[str], tz: str = "UTC") -> list[dict[str, Any]]:
    return parse_rows("nfdump", lines, tz=tz)


@pytest.mark.parametrize("case", sorted(CASES.glob("*.log")), ids=lambda p: p.stem)
@pytest.mark.parametrize("size", [1, 2, 5, 23, 10_000])
def test_chunking_never_changes_the_result(case: Path, size: int) -> None:
    """CSV header, Summary block and open JSON records all survive any chunk boundary."""
    lines = read_lines(case)
    whole, dropped_whole = parse_in_chunks("nfdump", lines, len(lines))
    got, dropped = parse_in_chunks("nfdump", lines, size)
    assert got == whole
    assert dropped == dropped_whole


# Built from output_csv.c (1.7.5+): header from the csvHeader column of its format table,
# default format "%ts,%td,%pr,%sa,%sp,%da,%dp,%pkt,%byt,%fl", time "%Y-%m-%d %H:%M:%S.%03u"
# local, duration "%.3f", proto as a number, ICMP type.code in dstPort.
NEW_CSV = [
    "firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows",
    "2024-05-01 12:00:00.100,1.000,6,192.0.2.10,51515,198.51.100.20,443,4,260,1",
    "2024-05-01 12:00:05.000,0.000,1,192.0.2.10,0,198.51.100.53,8.0,1,84,1",
    "2024-05-01 12:00:06.000,0.000,17,2001:db8::10,41000,2001:db8:1::53,53,1,88,1",
]


def test_csv_of_nfdump_1_7_5_and_later() -> None:
    tcp, icmp, v6 = rows(NEW_CSV)[1:]
    assert tcp["@timestamp"] == "2024-05-01T12:00:00.100000Z"
    assert tcp["event.end"] == "2024-05-01T12:00:01.100000Z"
    assert tcp["network.transport"] == "tcp"
    assert (tcp["source.port"], tcp["destination.port"]) == (51515, 443)
    assert (tcp["source.packets"], tcp["source.bytes"]) == (4, 260)
    assert icmp["network.transport"] == "icmp"
    assert "destination.port" not in icmp  # "8.0" is ICMP echo request, not a port
    assert v6["source.ip"] == "2001:db8::10"
    _, dropped = parse_in_chunks("nfdump", NEW_CSV, 100)
    assert dropped == 0


def test_custom_csv_format_with_epoch_times_and_router() -> None:
    """``-o csv:%tsr,%ter,%sa,%da,%pr,%ipkt,%ibyt,%opkt,%obyt,%ra`` (a bidirectional NSEL
    record): epoch seconds with milliseconds, reverse counters, exporter address."""
    lines = [
        "firstSeen,lastSeen,srcAddr,dstAddr,proto,inPackets,inBytes,outPackets,outBytes,routerIP",
        "1714564800.100,1714564801.100,192.0.2.10,198.51.100.20,6,4,260,3,320,192.0.2.1",
    ]
    row = rows(lines)[1]
    assert row["@timestamp"] == "2024-05-01T12:00:00.100000Z"
    assert row["event.duration"] == 1_000_000_000
    assert (row["destination.packets"], row["destination.bytes"]) == (3, 320)
    assert (row["network.packets"], row["network.bytes"]) == (7, 580)
    assert row["observer.ip"] == "192.0.2.1"


def test_csv_fast_prints_epoch_milliseconds() -> None:
    """output_csv_fast.c: fixed header, msecFirst/msecLast as integers, proto a number."""
    lines = [
        "cnt,af,firstSeen,lastSeen,proto,srcAddr,srcPort,dstAddr,dstPort,srcAS,dstAS,input,"
        "output,flags,srcTos,packets,bytes",
        "1,2,1714564800100,1714564801100,6,192.0.2.10,51515,198.51.100.20,443,0,0,0,0,"
        "...AP.SF,0,4,260",
    ]
    row = rows(lines)[1]
    assert row["@timestamp"] == "2024-05-01T12:00:00.100000Z"
    assert row["event.end"] == "2024-05-01T12:00:01.100000Z"
    assert row["flow.state"] == "...AP.SF"


def test_a_unidirectional_record_says_nothing_about_the_reverse_direction() -> None:
    row = rows([OLD_HEADER, OLD_TCP])[1]  # opkt,obyt = 0,0 in nfdump 1.7.1's CSV
    assert "destination.bytes" not in row and "destination.packets" not in row
    assert row["network.bytes"] == row["source.bytes"] == 260


def test_local_wall_time_follows_tz() -> None:
    """nfdump prints the local time of the machine it ran on, with no zone in the text."""
    line = OLD_TCP.replace("2024-05-01 12:00:00", "2024-05-01 21:00:00", 1).replace(
        "2024-05-01 12:00:01", "2024-05-01 21:00:01", 1
    )
    row = rows([OLD_HEADER, line], tz="Asia/Tokyo")[1]
    assert row["@timestamp"] == "2024-05-01T12:00:00Z"
    assert row["event.end"] == "2024-05-01T12:00:01Z"


# json-log (output_json.c, flow_record_to_json_log): one record per line, no indentation,
# "key" : value pairs separated by ",". ndjson (output_ndjson.c): compact "key":value.
JSON_LOG = (
    '{"type" : "FLOW","sampled" : 0,"export_sysid" : 1,"first" : "2024-05-01T12:00:00.100",'
    '"last" : "2024-05-01T12:00:01.100","received" : "2026-11-30T05:07:42.110",'
    '"in_packets" : 4,"in_bytes" : 260,"proto" : 6,"tcp_flags" : "...AP.SF",'
    '"src_port" : 51515,"dst_port" : 443,"fwd_status" : 0,"src_tos" : 0,'
    '"src4_addr" : "192.0.2.10","dst4_addr" : "198.51.100.20","src_geo" : "",'
    '"dst_geo" : "","ip4_router" : "127.0.0.1"}'
)
NDJSON = (
    '{"type":"FLOW","export_sysid":1,"first":"2024-05-01T12:00:06.000",'
    '"last":"2024-05-01T12:00:06.000","received":"2026-11-30T05:07:42.110","in_packets":1,'
    '"in_bytes":88,"proto":17,"tcp_flags":"........","src_port":41000,"dst_port":53,'
    '"fwd_status":0,"src_tos":0,"src6_addr":"2001:db8::10","dst6_addr":"2001:db8:1::53",'
    '"src6_geo":"","dst6_geo":"","ip6_router":"::","sampled":0}'
)


def test_one_record_per_line_json() -> None:
    log, nd, cut, alien = rows([JSON_LOG, NDJSON, JSON_LOG[:120], '{"ts":1.5,"uid":"C1"}'])
    assert log["@timestamp"] == "2024-05-01T12:00:00.100000Z"
    assert (log["source.ip"], log["destination.port"], log["flow.state"]) == (
        "192.0.2.10",
        443,
        "...AP.SF",
    )
    assert nd["destination.ip"] == "2001:db8:1::53"
    assert "observer.ip" not in nd  # "::": no exporter address, not a dropped value
    assert "flow.state" not in nd  # TCP flags mean nothing for UDP
    assert cut == {"quarantine": "truncated"}
    assert alien == {"quarantine": "no_match"}


def test_statistics_listing_is_not_flows() -> None:
    lines = [
        "ts,te,td,pr,val,fl,flP,ipkt,ipktP,ibyt,ibytP,ipps,ibps,ibpp",
        "2024-05-01 12:00:00,2024-05-01 12:00:01,1.000,TCP,6,2,20.0,7,43.8,580,30.3,7,4640,82",
    ]
    assert rows(lines) == [{"ignored": True}, {"quarantine": "no_match"}]


@pytest.mark.parametrize(
    ("proto", "transport"),
    [
        ("6", "tcp"),
        ("TCP", "tcp"),
        ("50", "esp"),
        ("ESP", "esp"),
        ("58", "ipv6-icmp"),
        ("ICMP6", "ipv6-icmp"),
        ("47", "gre"),
        ("IPIP", "ipv4"),
        ("253", "253"),
    ],
)
def test_protocol_numbers_and_names_become_iana_keywords(proto: str, transport: str) -> None:
    line = NEW_CSV[1].replace(",6,", f",{proto},")
    assert rows([NEW_CSV[0], line])[1]["network.transport"] == transport


def test_json_record_open_at_a_chunk_boundary_is_carried() -> None:
    lines = read_lines(CASES / "json_softflowd_v9.log")
    assert lines[:2] == ["[", "{"] and lines[28] == "},"
    parser, ctx = get_parser("nfdump"), make_ctx()
    head = parser.parse(pl.Series(lines[:10]), ctx)  # "[", "{" and eight keys
    assert sum(map(len, head.tables.values())) == 0 and len(head.ignored_rows) == 10
    state = ctx.state["nfdump"]
    assert state.json_open
    assert ("first", "2024-05-01T12:00:00.100") in state.json_pairs
    rest = parser.parse(pl.Series(lines[10:29]), ctx)  # the other keys and "},"
    flows = rest.tables["flows"]
    assert flows["source.ip"].to_list() == ["192.0.2.10"]
    assert flows["@timestamp"].to_list() == [dt.datetime(2024, 5, 1, 12, 0, 0, 100000, dt.UTC)]
    assert flows["_row"].to_list() == [18]  # reported on its closing line
    assert not ctx.state["nfdump"].json_open


def test_sniff() -> None:
    parser = get_parser("nfdump")
    assert parser.sniff(read_lines(CASES / "csv_softflowd_v9.log")) == 1.0
    assert parser.sniff(NEW_CSV) == 1.0
    assert parser.sniff(read_lines(CASES / "json_softflowd_v9.log")[:64]) >= 0.9
    assert parser.sniff([JSON_LOG, NDJSON]) == 1.0
    zeek = read_lines(GOLDEN / "parse" / "zeek_conn" / "tsv_m57_community_id.log")
    assert parser.sniff(zeek) == 0.0
