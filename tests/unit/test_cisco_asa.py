"""Cisco ASA / FTD parser: what the golden files cannot show line by line.

Cross-chunk memory (a teardown gets its build's direction), dropped-value counting, time
zones, the quarantine details, and the entity conventions detections rely on.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vpnsentry.parse.vendors.cisco_asa as asa
from tests.conftest import CORPUS, make_ctx
from tests.helpers import parse_rows, read_lines
from vpnsentry.parse.base import Reason, get_parser
from vpnsentry.parse.sniff import sniff

HOST = "<166>Oct 07 2026 08:30:00 asa-fw-01 : "
BUILT_OUT = (
    HOST + "%ASA-6-302013: Built outbound TCP connection 77 for outside:198.51.100.80/5000 "
    "(198.51.100.80/5000) to inside:192.0.2.15/5001 (203.0.113.5/5001)"
)
TEARDOWN = (
    HOST + "%ASA-6-302014: Teardown TCP connection 77 for outside:198.51.100.80/5000 "
    "to inside:192.0.2.15/5001 duration 0:00:10 bytes 100 TCP FINs"
)


def _parse(lines: list[str], ctx_tz: str = "UTC") -> tuple[dict[str, pl.DataFrame], int]:
    res = get_parser("cisco_asa").parse(pl.Series(lines, dtype=pl.String), make_ctx(tz=ctx_tz))
    return res.tables, res.dropped_values


def test_teardown_takes_the_direction_of_its_build_in_an_earlier_chunk() -> None:
    parser = get_parser("cisco_asa")
    ctx = make_ctx()
    parser.parse(pl.Series([BUILT_OUT]), ctx)
    flows = parser.parse(pl.Series([TEARDOWN]), ctx).tables["flows"].row(0, named=True)
    # Ports alone would make the outside host (lower port) the server; the build says the
    # inside host initiated.
    assert (flows["source.ip"], flows["destination.ip"]) == ("192.0.2.15", "198.51.100.80")
    assert flows["network.direction"] == "outbound"
    # The connection is closed: it is forgotten.
    assert parser.parse(pl.Series([TEARDOWN]), ctx).tables["flows"]["network.direction"][0] is None


def test_teardown_without_its_build_guesses_the_server_by_port() -> None:
    flows = _parse([TEARDOWN.replace("5000", "443")])[0]["flows"].row(0, named=True)
    assert (flows["source.ip"], flows["destination.port"]) == ("192.0.2.15", 443)
    assert flows["network.direction"] is None


def test_values_that_fail_conversion_are_dropped_and_counted() -> None:
    lines = [
        HOST + "%ASA-6-722051: Group <G> User <u> IP <203.0.113.2999> IPv4 Address "
        "<192.0.2.300> IPv6 address <::> assigned to session",
        HOST + "%ASA-4-106023: Deny udp src outside:198.51.100.7/70000 dst inside:192.0.2.40/53 by "
        'access-group "acl" [0x0, 0x0]',
    ]
    tables, dropped = _parse(lines)
    assert dropped == 3
    event = tables["events"].row(0, named=True)
    assert event["source.ip"] is None and event["vpn.tunnel_ip"] is None
    assert event["user.name"] == "u"  # the row is kept
    flow = tables["flows"].row(0, named=True)
    assert flow["source.port"] is None and flow["destination.port"] == 53


def test_zone_less_times_use_ctx_tz_and_named_zones_win() -> None:
    lines = [
        "<166>Jul 01 2026 12:00:00 asa : %ASA-6-113039: Group <G> User <u> IP <192.0.2.1> "
        "AnyConnect parent session started.",
        "Jul 01 12:00:00 relay : Jul 01 2026 12:00:00 UTC: %ASA-6-113039: Group <G> User <u> "
        "IP <192.0.2.1> AnyConnect parent session started.",
    ]
    events = _parse(lines, ctx_tz="Europe/Berlin")[0]["events"]
    assert [t.isoformat() for t in events["@timestamp"]] == [
        "2026-07-01T10:00:00+00:00",
        "2026-07-01T12:00:00+00:00",
    ]
    assert events["event.timezone"].to_list() == ["Europe/Berlin", None]


def test_quarantine_reasons_and_details() -> None:
    lines = [
        "%ASA-6-113039: Group <G> User <u> IP <192.0.2.1> AnyConnect parent session started.",
        "<166>Feb 30 2026 12:00:00 asa : %ASA-6-113039: Group <G> User <u> IP <192.0.2.1> x",
        "<166>Oct 08 2026 12:00:09 asa : %ASA-6-7220",
        "not a firewall line at all",
    ]
    res = get_parser("cisco_asa").parse(pl.Series(lines), make_ctx())
    assert not res.tables
    got = res.rejected.sort("_row").select("reason", "detail").rows()
    assert got == [
        (Reason.BAD_TIMESTAMP.value, "no timestamp in syslog header"),
        (Reason.BAD_TIMESTAMP.value, "impossible timestamp in syslog header"),
        (Reason.TRUNCATED.value, "no %ASA-/%FTD- message tag"),
        (Reason.NO_MATCH.value, "no %ASA-/%FTD- message tag"),
    ]


def test_ftd_prefix_sets_the_product_and_nested_tags_are_one_tag() -> None:
    line = (
        "<166>May 01 2026 09:24:32Z  %FTD-6-113005: %ASA-6-113005: AAA user authentication "
        "Rejected : reason = Invalid password : server = 192.0.2.20 : user = bob : user IP = "
        "198.51.100.4"
    )
    row = parse_rows("cisco_asa", [line])[0]
    assert row["observer.product"] == "Firepower Threat Defense"
    assert row["message"].startswith("AAA user authentication Rejected")
    assert (row["user.name"], row["source.ip"], row["destination.ip"]) == (
        "bob",
        "198.51.100.4",
        "192.0.2.20",
    )


@pytest.mark.parametrize(
    ("line", "user"),
    [
        ("%ASA-6-113039: Group <G> User <first.o'last@example.com> IP <192.0.2.1> AnyConnect "
         "parent session started.", "first.o'last@example.com"),
        ("%ASA-6-113005: AAA user authentication Rejected : reason = AAA failure : server = "
         "192.0.2.20 : user = ***** : user IP = 192.0.2.1", None),
        ('%ASA-6-605004: Login denied from 192.0.2.1/4000 to outside:192.0.2.2/ssh for user ""',
         None),
        ("%ASA-6-302013: Built inbound TCP connection 5 for outside:192.0.2.1/4000 "
         "(192.0.2.1/4000)(LOCAL\\alice) to inside:192.0.2.9/445 (192.0.2.9/445)", "alice"),
        ("%ASA-5-111010: User 'netadmin', running 'CLI' from IP 192.0.2.1, executed 'write "
         "memory'", "netadmin"),
        ("%ASA-6-751025: Local:192.0.2.2:4500 Remote:192.0.2.1:500 Username:carol IKEv2 "
         "Group:G IPv4 Address=10.0.0.9 IPv6 address=:: assigned to session", "carol"),
    ],
)  # fmt: skip
def test_user_names_in_their_several_spellings(line: str, user: str | None) -> None:
    row = parse_rows("cisco_asa", [HOST + line])[0]
    assert row.get("user.name") == user
    assert row.get("source.ip") == "192.0.2.1"


def test_the_client_is_the_source_in_every_session_message() -> None:
    """Detections join user, public IP and tunnel IP across ids: one orientation for all."""
    lines = [
        "%ASA-6-113039: Group <G> User <u> IP <198.51.100.9> AnyConnect parent session started.",
        "%ASA-6-722051: Group <G> User <u> IP <198.51.100.9> IPv4 Address <10.9.0.5> IPv6 "
        "address <::> assigned to session",
        "%ASA-6-751025: Local:203.0.113.1:4500 Remote:198.51.100.9:4500 Username:u IKEv2 "
        "Group:G IPv4 Address=10.9.0.5 IPv6 address=:: assigned to session",
        "%ASA-4-113019: Group = T, Username = u, IP = 198.51.100.9, Session disconnected. "
        "Session Type: IKEv2, Duration: 0h:01m:40s, Bytes xmt: 900, Bytes rcv: 100, "
        "Reason: User Requested",
        "%ASA-6-734001: DAP: User u, Addr 198.51.100.9, Connection IPsec: The following DAP "
        "records were selected for this connection: DfltAccessPolicy",
    ]
    events = _parse([HOST + ln for ln in lines])[0]["events"]
    assert set(events["source.ip"]) == {"198.51.100.9"}
    assert set(events["user.name"]) == {"u"}
    assert events["vpn.tunnel_ip"].drop_nulls().to_list() == ["10.9.0.5", "10.9.0.5"]
    summary = events.filter(pl.col("event.code") == "113019").row(0, named=True)
    # The ASA counts "xmt" as sent to the client: the client (source) sent "rcv".
    assert (summary["source.bytes"], summary["destination.bytes"]) == (100, 900)
    assert summary["event.duration"] == 100_000_000_000
    assert events["vpn.tunnel_type"].to_list() == [
        "anyconnect",
        "ssl",
        "ikev2",
        "ikev2",
        "ipsec",
    ]


def test_every_row_is_accounted_for_once() -> None:
    lines = read_lines(CORPUS / "cisco_asa/log/test-additional-messages.log") * 3
    res = get_parser("cisco_asa").parse(pl.Series(lines), make_ctx())
    rows = pl.concat([df["_row"] for df in res.tables.values()] + [res.rejected["_row"]])
    assert rows.sort().to_list() == list(range(len(lines)))


@pytest.mark.parametrize("folder", ["cisco_asa/log", "cisco_ftd/log"])
def test_corpus_files_sniff_as_cisco_asa(folder: str) -> None:
    for path in sorted((CORPUS / folder).glob("*.log")):
        got = sniff(path.read_bytes()[:65536])
        assert got.parser is not None and got.parser.name == "cisco_asa", path.name


def test_token_fast_path_reads_what_the_regex_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection builds and teardowns are read by string splits when their tokens sit where
    expected, by the regex otherwise; both readings must agree, field for field."""
    built = "%ASA-6-302013: Built {d} TCP connection {i} for {a} ({na}){ua} to {b} ({nb}){u}"
    down = "%ASA-6-302014: Teardown UDP connection {i} for {a}{ua} to {b} duration 1:02:03 bytes 9"
    sides = [
        ("outside:198.51.100.8/443", "inside:192.0.2.7/50000", "", "", " TCP FINs"),
        ("outside:2001:db8::8/443", "inside:2001:db8::7/50000", "", "", ""),
        ("NP Identity Ifc:192.0.2.1/22", "inside:192.0.2.7/50000", "", "", " SYN Timeout"),
        ("outside:198.51.100.8/5000", "inside:192.0.2.7/443", "(LOCAL\\ann)", "", ""),
        ("outside:198.51.100.8/5000", "inside:192.0.2.7/443", "", " (bob)", " FINs from a (bob)"),
        ("outside:host.example/80", "dmz:192.0.2.9/99999", "", "", " TCP Reset-I from outside"),
    ]
    lines = []
    for i, (a, b, ua, u, tail) in enumerate(sides):
        na, nb = a.split(":", 1)[1], "203.0.113.5/" + b.rsplit("/", 1)[1]
        for d in ("inbound", "outbound"):
            lines.append(HOST + built.format(d=d, i=i, a=a, na=na, b=b, nb=nb, ua=ua, u=u))
        lines.append(HOST + down.format(i=i, a=a, b=b, ua=ua) + tail)
    lines += read_lines(CORPUS / "cisco_asa/log/test-additional-messages.log")
    fast = _parse(lines)
    monkeypatch.setattr("vpnsentry.parse.vendors.cisco_asa._FAST", {})
    slow = _parse(lines)
    assert fast[1] == slow[1]
    assert fast[0]["flows"].sort("_row").equals(slow[0]["flows"].sort("_row"))


_HOSTS = ["asa-osaka", "fw.example", "EDT", "UTC", "EDT-fw", "UTCX", "host[12]", "a:b", ""]
_HEADS = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["", "<166>", "<1>", " ", "1 "]),
        st.sampled_from(["May ", "Sep  ", "Mai "]),
        st.sampled_from(["5 ", "28 ", "28 2026 "]),
        st.sampled_from(["20:26:42", "1:02:03", "20:26:42.123", "20:26:42 UTC"]),
        st.sampled_from([" ", "  ", ": "]),
        st.sampled_from(_HOSTS),
        st.sampled_from([" : ", ": ", " :", " : x ", ""]),
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_HEADS | st.text(max_size=30), min_size=1, max_size=30))
def test_the_short_header_path_reads_what_the_full_regex_reads(heads: list[str]) -> None:
    frame = pl.DataFrame({"head": heads}).unique()
    full = frame.with_columns(pl.col("head").str.extract_groups(asa._HEAD_RE).alias("_h"))
    want = full.unnest("_h").sort("head")
    assert asa._read_heads(frame).sort("head").to_dicts() == want.to_dicts()
