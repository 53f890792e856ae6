"""FortiGate parser: time policy, header layouts, VPN entities, key text inside quoted
values, and the vectorized path agreeing with the quote-aware tokenizer."""

from __future__ import annotations

import random
import re
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vpnsentry.parse.vendors.fortinet_fortigate as fg
from tests.conftest import GOLDEN, make_ctx
from tests.helpers import parse_rows, read_lines
from vpnsentry.parse.base import get_parser
from vpnsentry.parse.run import parse_chunk

CASES = GOLDEN / "parse" / "fortinet_fortigate"

# FortiOS 7.6 "Admin login failed" (corpus test-fortinet-7-6.log), documentation addresses.
HEAD_76 = (
    'date=2026-04-02 time=17:31:09 devname="FGVM01" devid="FGVM01" '
    'eventtime=1775176270239669800 tz="-0700" logid="0100032002" type="event" '
    'subtype="system" level="alert" vd="root"'
)
BODY = (
    'logdesc="Admin login failed" sn="0" user="{user}" ui="https(198.51.100.2)" '
    'method="https" srcip=198.51.100.2 dstip=192.0.2.1 action="login" status="failed" '
    'reason="passwd_invalid" msg="Administrator {user} login failed from https(198.51.100.2)"'
)
ADMIN_FAIL = f"{HEAD_76} {BODY.format(user='admin')}"

# FortiOS 7.x forward traffic of an SSL VPN client (layout of corpus test-fortinet.log).
TRAFFIC = (
    '<189>date=2023-05-02 time=08:31:47 devname="firewall" devid="FG10011121905111" '
    'eventtime=1683012706143815633 tz="+0200" logid="0000000013" type="traffic" '
    'subtype="forward" level="notice" vd="root" srcip=10.212.134.200 srcport=61031 '
    'srcintf="ssl.root" srcintfrole="undefined" dstip=10.10.10.18 dstport=445 '
    'dstintf="VLAN10" dstintfrole="lan" srccountry="Reserved" dstcountry="Reserved" '
    'sessionid=214919072 proto=6 action="close" policyid=7 policytype="policy" '
    'policyname="vpn_to_lan" user="someuser" group="somegroup" service="SMB" '
    'trandisp="snat" transip=192.0.2.7 transport=61031 duration=35 sentbyte=48211 '
    'rcvdbyte=1120334 sentpkt=412 rcvdpkt=905 appcat="unscanned"'
)


def one(line: str, tz: str = "UTC") -> dict[str, Any]:
    """The golden-test view of one parsed line."""
    return parse_rows("fortinet_fortigate", [line], tz=tz)[0]


def test_time_is_date_and_time_in_the_zone_the_line_names() -> None:
    row = one(ADMIN_FAIL)
    assert row["@timestamp"] == "2026-04-03T00:31:09Z"  # not eventtime's ...:10.239669
    assert row["event.timezone"] == "-0700"


@pytest.mark.parametrize("scale", [1, 10**3, 10**6, 10**9])
def test_without_tz_eventtime_wins_in_every_unit(scale: int) -> None:
    line = (
        f'date=2019-05-13 time=11:20:54 logid="0100032001" type="event" subtype="system" '
        f'level="information" vd="vdom1" eventtime={1557771654 * scale} user="admin" '
        f'action="login" status="success" msg="Administrator admin logged in successfully"'
    )
    row = one(line, tz="Europe/Berlin")
    assert row["@timestamp"] == "2019-05-13T18:20:54Z"  # the device was on -0700
    assert "event.timezone" not in row


def test_without_tz_or_eventtime_the_wall_time_is_in_ctx_tz() -> None:
    line = (
        "date=2016-06-16 time=16:22:34 devname=Mobipay_Firewall devid=FGTXXXX9999999999 "
        "logid=0100032001 type=event subtype=system level=information vd=root "
        'user="a" ui=https(192.0.2.253) action=login status=success'
    )
    row = one(line, tz="Europe/Berlin")
    assert row["@timestamp"] == "2016-06-16T14:22:34Z"
    assert row["event.timezone"] == "Europe/Berlin"
    assert row["source.ip"] == "192.0.2.253"


@pytest.mark.parametrize(
    ("text", "offset"),
    [("-0700", "-0700"), ("+02:00", "+0200"), ("UTC-5:00", "-0500"), ("GMT+1", "+0100")],
)
def test_zone_texts(text: str, offset: str) -> None:
    assert fg._offset(text) == offset


def test_zone_nonsense_is_no_zone() -> None:
    assert fg._offset("Mars/Olympus") is None
    assert fg._offset("+25:00") is None


_BODY = BODY.format(user="admin")
_LAYOUTS = [
    f"{HEAD_76} {_BODY}",
    f"<185>{HEAD_76} {_BODY}",
    # 6.0/6.2: eventtime and tz after vd
    'date=2026-04-02 time=17:31:09 devname="FGVM01" devid="FGVM01" logid="0100032002" '
    'type="event" subtype="system" level="alert" vd="root" eventtime=1775176270 tz="-0700" '
    + _BODY,
    # FortiAnalyzer / some 7.x profiles: devname first
    'devname="FGVM01" devid="FGVM01" vd="root" date=2026-04-02 time=17:31:09 '
    'eventtime=1775176270239669800 tz="-0700" logid="0100032002" type="event" '
    'subtype="system" level="alert" ' + _BODY,
    # FortiAnalyzer forwarding: logver/timestamp and a second tz
    'logver=700 timestamp=1775176270 tz="UTC-7:00" devname="FGVM01" devid="FGVM01" '
    'vd="root" date=2026-04-02 time=17:31:09 logid="0100032002" type="event" '
    'subtype="system" level="alert" eventtime=1775176270239669800 tz="-0700" ' + _BODY,
    # relays in front
    f"Apr  3 00:31:09 fw-relay01 {HEAD_76} {_BODY}",
    f"<189>Apr  3 00:31:09 fw-relay01 {HEAD_76} {_BODY}",
    f"2026-04-03T00:31:09.976660+00:00 192.0.2.1 {HEAD_76} {_BODY}",
]


@pytest.mark.parametrize("line", _LAYOUTS)
def test_the_same_event_in_every_header_layout(line: str) -> None:
    row = one(line)
    assert row["@timestamp"] == "2026-04-03T00:31:09Z"
    assert row["event.timezone"] == "-0700"
    assert row["observer.name"] == "FGVM01"
    assert row["observer.serial_number"] == "FGVM01"
    assert row["event.code"] == "0100032002"
    assert row["event.category"] == "authentication"
    assert row["event.outcome"] == "failure"
    assert row["source.ip"] == "198.51.100.2"
    assert row["user.name"] == "admin"
    assert row["log.level"] == "alert"


def test_rfc5424_without_devname_takes_the_syslog_host() -> None:
    line = (
        "<165>1 2022-11-14T06:54:03Z use2-dmz-fw02 - - - - eventtime=1668408842876531561 "
        'tz="-0800" logid="0101039426" type="event" subtype="vpn" level="alert" vd="root" '
        'action="ssl-login-fail" tunneltype="ssl-web" tunnelid=0 remip=203.0.113.254 '
        'user="u1" group="g1" reason="sslvpn_login_unknown_user" msg="SSL user failed"'
    )
    row = one(line)
    assert row["observer.name"] == "use2-dmz-fw02"
    assert row["@timestamp"] == "2022-11-14T06:54:02.876531Z"  # no date/time: eventtime


def test_vpn_client_is_the_source_and_its_bytes_are_what_the_gateway_received() -> None:
    line = (
        'date=2023-05-21 time=09:33:18 eventtime=1684632798404718137 tz="+0800" '
        'logid="0101039948" type="event" subtype="vpn" level="information" vd="root" '
        'logdesc="SSL VPN tunnel down" action="tunnel-down" tunneltype="ssl-tunnel" '
        "tunnelid=307687111 remip=203.0.113.101 tunnelip=172.16.100.1 "
        'user="salesuser" group="SalesGroup" dst_host="N/A" reason="User requested '
        'termination of service" duration=1853 sentbyte=35156 rcvdbyte=111799 '
        'msg="SSL tunnel shutdown"'
    )
    row = one(line)
    assert row["source.ip"] == "203.0.113.101"
    assert row["source.bytes"] == 111799
    assert row["destination.bytes"] == 35156
    assert row["event.duration"] == 1853 * 10**9
    assert row["vpn.tunnel_ip"] == "172.16.100.1"
    assert row["vpn.session_id"] == "307687111"
    assert row["vpn.tunnel_type"] == "ssl"
    assert (row["event.category"], row["event.type"]) == ("session", "end")
    assert "dst_host" not in str(row)  # N/A is an absent value


def test_traffic_row() -> None:
    row = one(TRAFFIC)
    assert row["dataset"] == "flows"
    expected = {
        "source.ip": "10.212.134.200",
        "source.port": 61031,
        "source.nat.ip": "192.0.2.7",
        "destination.ip": "10.10.10.18",
        "destination.port": 445,
        "source.bytes": 48211,
        "destination.bytes": 1120334,
        "network.bytes": 48211 + 1120334,
        "network.packets": 412 + 905,
        "network.transport": "tcp",
        "network.protocol": "smb",
        "flow.id": "214919072",
        "flow.state": "close",
        "event.action": "close",
        "event.outcome": "success",
        "rule.name": "vpn_to_lan",
        "user.name": "someuser",
        "observer.ingress.interface.name": "ssl.root",
        "observer.egress.interface.name": "VLAN10",
        "event.duration": 35 * 10**9,
        "event.end": "2023-05-02T06:31:47Z",
    }
    assert {k: row.get(k) for k in expected} == expected


_HEADER_TOKENS = 11  # <PRI>date ... vd


@settings(max_examples=25, deadline=None)
@given(st.randoms(use_true_random=False))
def test_traffic_fields_are_found_in_any_order(rnd: random.Random) -> None:
    text = re.findall(r'[A-Za-z_][\w.-]*=(?:"[^"]*"|[^ "]*)', TRAFFIC)
    head, body = text[:_HEADER_TOKENS], text[_HEADER_TOKENS:]
    rnd.shuffle(body)
    shuffled = "<189>" + " ".join(head + body)
    assert one(shuffled) == one(TRAFFIC)


@pytest.mark.parametrize(
    "user",
    [
        "x srcip=10.0.0.1 status=success",
        'y\\" srcip=10.0.0.2 status=\\"success',
        "z action=login status=success reason=none",
    ],
)
def test_key_text_inside_a_quoted_value_is_not_a_field(user: str) -> None:
    row = one(f"{HEAD_76} {BODY.format(user=user)}")
    assert row["source.ip"] == "198.51.100.2"
    assert row["event.outcome"] == "failure"
    assert row["event.reason"] == "passwd_invalid"
    assert row["user.name"] == user


def test_key_text_in_a_host_name_does_not_move_the_session_fields() -> None:
    trap = TRAFFIC.replace(
        "srcport=61031", 'srcname="PC sessionid=1 proto=17 action=accept" srcport=61031'
    )
    assert one(trap) == one(TRAFFIC)


def test_key_text_in_a_url_is_not_a_field() -> None:
    line = (
        '<190>date=2024-10-15 time=10:29:59 devname="MYDEV" devid="MYDEVID" '
        'eventtime=1728980999046121575 tz="+0200" logid="1059028704" type="utm" '
        'subtype="app-ctrl" eventtype="signature" level="information" vd="MYVDOM" '
        "srcip=198.51.100.6 dstip=192.0.2.3 srcport=61745 dstport=443 proto=6 "
        'action="pass" url="/login?user=admin&action=blocked&srcip=10.0.0.9" msg="x"'
    )
    row = one(line)
    assert (row["event.action"], row["source.ip"]) == ("pass", "198.51.100.6")
    assert "user.name" not in row


def test_fates_and_dropped_values() -> None:
    lines = read_lines(CASES / "broken_and_hostile.log")
    out = parse_chunk(
        get_parser("fortinet_fortigate"),
        pl.Series(lines, dtype=pl.String),
        pl.Series(range(len(lines)), dtype=pl.Int64),
        make_ctx(),
        first_line=1,
        strict=True,
    )
    fates = dict(
        zip(
            out.tables["quarantine"]["log.offset"].to_list(),
            out.tables["quarantine"]["error.type"].to_list(),
            strict=True,
        )
    )
    assert fates == {
        0: "truncated",  # header cut before logid/type
        2: "bad_timestamp",  # month 13
        3: "bad_timestamp",  # eventtime 12345 and no date
        4: "bad_timestamp",  # 2099
        5: "no_match",  # Cisco ASA
        13: "no_match",  # prose
    }
    assert out.parsed + out.quarantined == len(lines)
    # srcip 999.10.10.6, srcport 70000, transip not-an-ip, sentbyte -5
    assert out.dropped_values == 4


def test_sniff() -> None:
    parser = get_parser("fortinet_fortigate")
    assert parser.sniff(read_lines(CASES / "corpus_fortios_7_6.log")) == 1.0
    assert parser.sniff(["%ASA-6-113039: Group <G> User <u> IP <198.51.100.7> started."]) == 0
