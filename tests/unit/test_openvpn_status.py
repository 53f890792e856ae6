"""OpenVPN status file parser: snapshot state across chunks, layouts, and conversions.

A status file is a snapshot rewritten in place; its rows only make sense with the ``TIME``
(or ``Updated``) and ``HEADER`` rows before them, which may sit in an earlier chunk.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import GOLDEN, make_ctx
from tests.helpers import read_lines, run_lines
from vpnsentry.parse.base import ParseContext, Reason, get_parser

UTC = dt.UTC
FILES = sorted((GOLDEN / "parse" / "openvpn_status").glob("*.log"))
V2_HEADER = (
    "HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Virtual IPv6 Address,"
    "Bytes Received,Bytes Sent,Connected Since,Connected Since (time_t),Username,Client ID,"
    "Peer ID,Data Channel Cipher"
)
ALICE = (
    "CLIENT_LIST,alice,203.0.113.11:43846,10.9.0.2,,2421,2371,2026-11-30 05:16:41,1796015801,"
    "alice,0,0,AES-256-GCM"
)


def _events(lines: list[str], ctx: ParseContext | None = None) -> tuple[list[dict[str, Any]], Any]:
    res = get_parser("openvpn_status").parse(pl.Series(lines, dtype=pl.String), ctx or make_ctx())
    events = res.tables["events"].sort("_row").to_dicts() if "events" in res.tables else []
    return events, res


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_line_is_accounted_for_and_clean_files_drop_nothing(path: Path) -> None:
    lines = read_lines(path)
    out = run_lines("openvpn_status", lines)
    assert out.parsed + out.quarantined + out.ignored == len(lines)
    # bad-status.log: bytes "24x57", address 300.0.113.13, tunnel 10.9.0.999, date 11-31.
    assert out.dropped_values == (4 if path.name == "bad-status.log" else 0)


def test_snapshot_time_and_header_carry_over_to_the_next_chunk() -> None:
    ctx = make_ctx()
    parser = get_parser("openvpn_status")
    # An OpenVPN 2.3 server: eight columns, no client id; the header is in the first chunk.
    first = parser.parse(
        pl.Series(
            [
                "TITLE,OpenVPN 2.3.10 x86_64-pc-linux-gnu",
                "TIME,Mon Nov 30 05:16:47 2026,1796015807",
                "HEADER,CLIENT_LIST,Common Name,Real Address,Virtual Address,Bytes Received,"
                "Bytes Sent,Connected Since,Connected Since (time_t),Username",
            ]
        ),
        ctx,
    )
    assert first.ignored_rows == [0, 1, 2] and not first.tables
    second = parser.parse(
        pl.Series(
            [
                "CLIENT_LIST,dave-laptop,203.0.113.14:59311,10.9.0.4,2457,2476,"
                "Mon Nov 30 05:16:41 2026,1796015801,dave"
            ]
        ),
        ctx,
    )
    event = second.tables["events"].row(0, named=True)
    assert event["@timestamp"] == dt.datetime(2026, 11, 30, 5, 16, 47, tzinfo=UTC)
    assert event["event.start"] == dt.datetime(2026, 11, 30, 5, 16, 41, tzinfo=UTC)
    assert (event["user.name"], event["vpn.tunnel_ip"], event["source.bytes"]) == (
        "dave",
        "10.9.0.4",
        2457,
    )
    assert event["vpn.session_id"] is None  # 2.3 had no client id


def test_rows_without_their_header_are_read_by_field_count() -> None:
    events, _ = _events(
        [
            "TIME,2026-11-30 05:16:47,1796015807",
            # 2.4: client and peer id, no cipher column
            "CLIENT_LIST,carol,203.0.113.15:34815,10.9.0.3,fd00::1001,2460,2444,"
            "2026-11-30 05:16:41,1796015801,carol,4,3",
            ALICE,
        ]
    )
    assert [(e["user.name"], e["vpn.session_id"], e["vpn.tunnel_ip"]) for e in events] == [
        ("carol", "4", "10.9.0.3"),
        ("alice", "0", "10.9.0.2"),
    ]


def test_bytes_received_by_the_server_are_the_clients_source_bytes() -> None:
    events, _ = _events(["TIME,2026-11-30 05:16:47,1796015807", V2_HEADER, ALICE])
    event = events[0]
    # OpenVPN's "Bytes Received" is link_read_bytes: what the server read from the client.
    assert (event["source.bytes"], event["destination.bytes"], event["network.bytes"]) == (
        2421,
        2371,
        4792,
    )
    assert (event["source.ip"], event["source.port"]) == ("203.0.113.11", 43846)


def test_version_1_takes_the_tunnel_address_from_the_routing_table() -> None:
    events, res = _events(
        [
            "OpenVPN CLIENT LIST",
            "Updated,2026-11-30 05:16:47",
            "Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since",
            "bar,203.0.113.10:64169,1817262,28981224,2026-11-30 04:08:39",
            "tap,198.51.100.100:55712,0,0,2026-11-30 04:14:19",
            "ROUTING TABLE",
            "Virtual Address,Common Name,Real Address,Last Ref",
            "10.200.0.0/16,bar,203.0.113.10:64169,2026-11-30 05:16:09",
            "192.168.255.126C,bar,203.0.113.10:64169,2026-11-30 05:11:55",
            "fd00::7C,bar,203.0.113.10:64169,2026-11-30 05:11:55",
            "fd00::126,bar,203.0.113.10:64169,2026-11-30 05:11:55",
            "192.168.255.126,bar,203.0.113.10:64169,2026-11-30 05:11:55",
            "22:1d:63:bf:62:38,tap,198.51.100.100:55712,2026-11-30 05:14:19",
            "GLOBAL STATS",
            "Max bcast/mcast queue length,0",
            "END",
        ]
    )
    # IPv4 host address preferred; --iroute subnets, cached ("C") routes and MACs skipped.
    assert [(e["user.name"], e["vpn.tunnel_ip"]) for e in events] == [
        ("bar", "192.168.255.126"),
        ("tap", None),
    ]
    assert res.dropped_values == 0


def test_zone_less_snapshot_times_use_ctx_tz_and_time_t_does_not() -> None:
    ctx = make_ctx(tz="Europe/Berlin")
    v1, _ = _events(
        [
            "OpenVPN CLIENT LIST",
            "Updated,2026-07-01 12:00:00",
            "alice,203.0.113.11:60076,2169,2332,2026-07-01 11:00:00",
        ],
        ctx,
    )
    assert v1[0]["@timestamp"] == dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert v1[0]["event.start"] == dt.datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert v1[0]["event.timezone"] == "Europe/Berlin"
    v2, _ = _events(["TIME,2026-11-30 06:16:47,1796015807", V2_HEADER, ALICE], ctx)
    assert v2[0]["@timestamp"] == dt.datetime(2026, 11, 30, 5, 16, 47, tzinfo=UTC)
    assert v2[0]["event.start"] == dt.datetime(2026, 11, 30, 5, 16, 41, tzinfo=UTC)
    assert v2[0]["event.timezone"] is None


def test_quarantine_reasons() -> None:
    _, res = _events(
        [
            ALICE,  # no snapshot time yet
            "TIME,2026-11-30 05:16:47,1796015807",
            "CLIENT_LIST,alice,203.0.113.11:43846,10.9.0.2",
            "not a status line",
            "TIME,2026-11-30 99:99:99,x",
        ]
    )
    assert res.rejected.sort("_row").select("_row", "reason").rows() == [
        (0, Reason.BAD_TIMESTAMP.value),
        (2, Reason.TRUNCATED.value),
        (3, Reason.NO_MATCH.value),
        (4, Reason.BAD_TIMESTAMP.value),
    ]
    assert res.ignored_rows == [1]


def test_sniff_tells_status_files_from_logs() -> None:
    parser = get_parser("openvpn_status")
    status = read_lines(GOLDEN / "parse" / "openvpn_status" / "status-v1.log")
    log = read_lines(GOLDEN / "parse" / "openvpn" / "log-file-2.6.log")
    assert parser.sniff(status) == 1.0
    # the log holds a SIGUSR2 dump of the same rows, each behind a timestamp
    assert parser.sniff(log) == 0.0
