"""OpenVPN server log parser: what the golden files cannot show line by line.

Dropped-value counts, time zones, quarantine details, sniffing, and message shapes that the
loopback capture could not produce (IPv6 clients, revoked certificates via a CRL directory,
spoofed tunnel sources). Those shapes are written from OpenVPN's own format strings
(``mroute.c``, ``socket.c``, ``ssl_verify.c``, ``multi.c``), quoted in each case.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import GOLDEN, make_ctx
from tests.helpers import parse_rows, read_lines, run_lines
from vpnsentry.parse.base import Reason, get_parser
from vpnsentry.parse.sniff import sniff

UTC = dt.UTC
TS = "2026-11-30 04:53:52 "
FILES = sorted((GOLDEN / "parse" / "openvpn").glob("*.log"))


def _parse(lines: list[str], tz: str = "UTC") -> tuple[list[dict[str, Any]], int]:
    res = get_parser("openvpn").parse(pl.Series(lines, dtype=pl.String), make_ctx(tz=tz))
    events = res.tables["events"].sort("_row").to_dicts() if "events" in res.tables else []
    return events, res.dropped_values


def _one(line: str) -> dict[str, Any]:
    events, _ = _parse([line])
    assert len(events) == 1, line
    return events[0]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_line_is_accounted_for_and_clean_files_drop_nothing(path: Path) -> None:
    lines = read_lines(path)
    out = run_lines("openvpn", lines)
    assert out.parsed + out.quarantined + out.ignored == len(lines)
    # bad-lines.log: 999.0.113.11 (address), port 99999, tunnel address 10.8.0.2.7.
    assert out.dropped_values == (3 if path.name == "bad-lines.log" else 0)


def test_zone_less_times_use_ctx_tz_and_absolute_ones_do_not() -> None:
    lines = [
        "2026-07-01 12:00:00 Initialization Sequence Completed",
        "Wed Jul  1 12:00:00 2026 Initialization Sequence Completed",
        "Jul  1 12:00:00 gw openvpn[1]: Initialization Sequence Completed",
        "1782907200.000001 1 Initialization Sequence Completed",
        "<29>1 2026-07-01T12:00:00+00:00 gw openvpn 1 - -  Initialization Sequence Completed",
        "Jul  1 12:00:00 gw openvpn[1]: 2026-07-01 12:00:00 us=5 Initialization Sequence Completed",
    ]
    events, _ = _parse(lines, tz="Europe/Berlin")
    assert [e["@timestamp"] for e in events] == [
        dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC),
        dt.datetime(2026, 7, 1, 12, 0, 0, 1, tzinfo=UTC),
        dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        # OpenVPN's own stamp (with the year) wins over the relay's; us= is microseconds.
        dt.datetime(2026, 7, 1, 10, 0, 0, 5, tzinfo=UTC),
    ]
    assert [e["event.timezone"] for e in events] == [
        "Europe/Berlin",
        "Europe/Berlin",
        "Europe/Berlin",
        None,
        None,
        "Europe/Berlin",
    ]


def test_ipv6_clients_are_printed_without_port_except_in_socket_addresses() -> None:
    # mroute.c prints an IPv6 client bare ("v6addr:port" would be ambiguous); socket.c's
    # print_sockaddr_ex puts ":port" after the address behind [AF_INET6].
    first = _one(TS + "2001:db8::7 VERIFY OK: depth=0, CN=alice")
    assert (first["source.ip"], first["source.port"], first["user.name"]) == (
        "2001:db8::7",
        None,
        "alice",
    )
    primary = _one(
        TS + "alice/2001:db8::7 MULTI: primary virtual IP for alice/2001:db8::7: 10.8.0.6"
    )
    assert (primary["source.ip"], primary["user.name"], primary["vpn.tunnel_ip"]) == (
        "2001:db8::7",
        "alice",
        "10.8.0.6",
    )
    init = _one(
        TS + "2001:db8::7 [alice] Peer Connection Initiated with [AF_INET6]2001:db8::7:51234"
    )
    assert (init["source.ip"], init["source.port"]) == ("2001:db8::7", 51234)


def test_common_names_may_contain_spaces_and_usernames_quotes() -> None:
    line = (
        TS + "John Smith/203.0.113.7:50000 MULTI: primary virtual IP for "
        "John Smith/203.0.113.7:50000: 10.8.0.9"
    )
    event = _one(line)
    assert (event["user.name"], event["source.ip"], event["vpn.tunnel_ip"]) == (
        "John Smith",
        "203.0.113.7",
        "10.8.0.9",
    )
    # ssl_verify.c: "... authentication %s for username '%s' %s" (the last: "[CN SET]").
    auth = _one(
        TS + "203.0.113.7:50000 TLS: Username/Password authentication succeeded for "
        "username 'o'brien' [CN SET]"
    )
    assert (auth["user.name"], auth["event.outcome"]) == ("o'brien", "success")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            # ssl_verify.c, --crl-verify dir mode: "VERIFY CRL: depth=%d, %s, serial=%s is revoked"
            "203.0.113.7:5000 VERIFY CRL: depth=0, CN=frank, serial=4660 is revoked",
            {
                "event.action": "certificate-verify",
                "event.outcome": "failure",
                "event.reason": "certificate revoked",
                "user.name": "frank",
            },
        ),
        (
            # "VERIFY SCRIPT ERROR: depth=%d, %s" (--tls-verify said no)
            "203.0.113.7:5000 VERIFY SCRIPT ERROR: depth=0, C=DE, O=Example, CN=bob",
            {
                "event.action": "certificate-verify",
                "event.outcome": "failure",
                "event.reason": "script verification failed",
                "user.name": "bob",
            },
        ),
        (
            # "VERIFY X509NAME ERROR: %s, must be %s" (client side --verify-x509-name)
            "VERIFY X509NAME ERROR: CN=evil, must be vpn.example.com",
            {
                "event.action": "certificate-verify",
                "event.outcome": "failure",
                "event.reason": "x509name verification failed",
            },
        ),
        (
            "203.0.113.7:5000 VERIFY WARNING: depth=0, unable to get certificate CRL: CN=bob",
            {"event.action": None, "event.outcome": None},
        ),
        (
            "TLS Error: cannot locate HMAC in incoming packet from [AF_INET]198.51.100.9:40001",
            {
                "event.action": "packet-rejected",
                "event.type": "denied",
                "event.reason": "cannot locate HMAC in incoming packet",
                "source.ip": "198.51.100.9",
                "source.port": 40001,
            },
        ),
        (
            "203.0.113.7:5000 TLS Error: TLS key negotiation failed to occur within 60 seconds "
            "(check your network connectivity)",
            {"event.action": "tls-negotiation-timeout", "event.outcome": "failure"},
        ),
        (
            "203.0.113.7:5000 TLS Error: Auth Username/Password was not provided by peer",
            {
                "event.action": "user-auth",
                "event.outcome": "failure",
                "event.reason": "username/password not provided",
            },
        ),
        (
            "203.0.113.7:5000 TLS Auth Error: --client-config-dir authentication failed for "
            "common name 'carol' file='ccd/carol'",
            {
                "event.action": "user-auth",
                "event.outcome": "failure",
                "user.name": "carol",
                "event.reason": "--client-config-dir authentication failed",
            },
        ),
        (
            "alice/203.0.113.7:5000 TLS: Username/auth-token authentication succeeded for "
            "username 'alice'",
            {"event.action": "token-auth", "event.outcome": "success", "user.name": "alice"},
        ),
        (
            # multi.c: "MULTI: bad source address from client [%s], packet dropped"
            "alice/203.0.113.7:5000 MULTI: bad source address from client [10.8.0.77], packet "
            "dropped",
            {
                "event.action": "bad-source-address",
                "event.type": "denied",
                "user.name": "alice",
                "source.ip": "203.0.113.7",
                "vpn.tunnel_ip": None,
            },
        ),
        (
            "alice/203.0.113.7:5000 MULTI: connection rejected: client-connect script failed, "
            "CLI:/etc/openvpn/connect.sh",
            {
                "event.action": "client-rejected",
                "event.outcome": "failure",
                "event.reason": "client-connect script failed",
            },
        ),
        (
            "alice/203.0.113.7:5000 [alice] Inactivity timeout (--inactive), exiting",
            {"event.action": "inactivity-timeout", "event.reason": "inactive"},
        ),
        (
            "alice/203.0.113.7:5000 SIGTERM[soft,inactive] received, client-instance exiting",
            {"event.action": "session-end", "event.type": "end", "event.reason": "inactive"},
        ),
        (
            "alice/203.0.113.7:5000 Session timeout, exiting",
            {"event.action": "session-timeout", "event.reason": "session-timeout"},
        ),
        (
            # an --iroute subnet and a TAP-mode MAC are learned routes, not the client's address
            "alice/203.0.113.7:5000 MULTI: Learn: 192.168.10.0/24 -> alice/203.0.113.7:5000",
            {"event.action": "route-learned", "vpn.tunnel_ip": None, "user.name": "alice"},
        ),
        (
            "alice/203.0.113.7:5000 MULTI: Learn: 5a:2c:3d:4e:5f:60 -> alice/203.0.113.7:5000",
            {"event.action": "route-learned", "vpn.tunnel_ip": None},
        ),
        (
            # the duplicate-cn warning is written without a client prefix
            "MULTI: new connection by client 'alice' will cause previous active sessions by "
            "this client to be dropped.  Remember to use the --duplicate-cn option if you want "
            "multiple clients using the same certificate or username to concurrently connect.",
            {"event.action": "session-replaced", "user.name": "alice"},
        ),
        (
            "SIGHUP[hard,] received, process restarting",
            {
                "event.action": "process-restart",
                "event.category": "process",
                "event.reason": "SIGHUP",
            },
        ),
    ],
)
def test_message_shapes_from_the_source(message: str, expected: dict[str, Any]) -> None:
    event = _one(TS + message)
    assert {k: event[k] for k in expected} == expected


def test_values_that_fail_conversion_are_dropped_and_counted() -> None:
    events, dropped = _parse(
        [
            TS + "999.0.113.11:45217 VERIFY OK: depth=0, CN=alice",
            TS + "203.0.113.15:42421 [carol] Peer Connection Initiated with "
            "[AF_INET]203.0.113.15:99999",
            TS + "alice/203.0.113.11:58643 MULTI_sva: pool returned IPv4=10.8.0.300, "
            "IPv6=(Not enabled)",
        ]
    )
    assert dropped == 3
    assert [e["user.name"] for e in events] == ["alice", "carol", "alice"]  # rows kept
    assert events[0]["source.ip"] is None and events[0]["source.port"] == 45217
    assert events[1]["source.port"] is None and events[1]["source.ip"] == "203.0.113.15"
    assert events[2]["vpn.tunnel_ip"] is None


def test_quarantine_reasons_and_details() -> None:
    lines = [
        "203.0.113.12:43425 TLS Auth Error: Auth Username/Password verification failed for peer",
        "It was a bright cold day in April.",
        "Nov 30 04:53:52 gw sshd[811]: Failed password for root from 203.0.113.9 port 52231",
        "2026-02-30 04:53:52 Initialization Sequence Completed",
    ]
    res = get_parser("openvpn").parse(pl.Series(lines), make_ctx())
    rejected = res.rejected.sort("_row").to_dicts()
    assert [(r["reason"], r["detail"]) for r in rejected] == [
        (Reason.BAD_TIMESTAMP.value, "no readable OpenVPN or syslog timestamp"),
        (Reason.NO_MATCH.value, "not an OpenVPN log line"),
        (Reason.NO_MATCH.value, "syslog program sshd is not OpenVPN"),
        (Reason.BAD_TIMESTAMP.value, "no readable OpenVPN or syslog timestamp"),
    ]


def test_syslog_of_other_programs_is_kept_apart_in_a_shared_file() -> None:
    rows = parse_rows(
        "openvpn",
        [
            "Nov 30 04:53:52 gw sshd[811]: Accepted publickey for admin from 203.0.113.9",
            "Nov 30 04:53:52 gw ovpn-office[77]: 203.0.113.11:45217 VERIFY OK: depth=0, CN=alice",
            # a renamed program (--syslog vpn) still counts when the message is OpenVPN's
            "Nov 30 04:53:53 gw vpn[77]: alice/203.0.113.11:45217 MULTI: Learn: 10.8.0.2 -> "
            "alice/203.0.113.11:45217",
        ],
    )
    assert rows[0] == {"quarantine": "no_match"}
    assert rows[1]["user.name"] == "alice" and rows[1]["observer.name"] == "gw"
    assert rows[2]["vpn.tunnel_ip"] == "10.8.0.2"


def test_machine_readable_flags_give_the_syslog_level() -> None:
    events, _ = _parse(
        [
            "1796015801.668669 3000021 203.0.113.13:53666 TLS Error: TLS handshake failed",
            "1796015799.212620 40 NOTE: the current --script-security setting may allow this",
            "1796015799.212332 1 OpenVPN 2.6.14 x86_64-pc-linux-gnu",
        ]
    )
    assert [e["log.level"] for e in events] == ["error", "warning", "notice"]


def test_sniff_claims_openvpn_logs_only() -> None:
    log = (GOLDEN / "parse" / "openvpn" / "log-file-2.6.log").read_bytes()
    status = (GOLDEN / "parse" / "openvpn_status" / "status-v2.log").read_bytes()
    owner = sniff(log).parser
    assert owner is not None and owner.name == "openvpn"
    parser = get_parser("openvpn")
    assert parser.sniff(status.decode().splitlines()) == 0.0
    # A plain "YYYY-MM-DD HH:MM:SS message" log of another program is not OpenVPN's.
    other = ["2026-11-30 04:53:52 worker started", "2026-11-30 04:53:53 job 7 done"] * 5
    assert parser.sniff(other) == 0.0
