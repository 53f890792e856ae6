"""nfdump's own output, from flows we made, through our parser.

The route is the one a NetFlow deployment takes, with every tool real:

    pcap written here ──softflowd -r──▶ NetFlow v9 over UDP to 127.0.0.1
        ──nfcapd──▶ nfcapd files ──nfdump -o csv / -o json──▶ our ``nfdump`` parser

The packets only go into a pcap file; the one thing sent over the network is softflowd's
NetFlow export, to an nfcapd on 127.0.0.1. Expected packets and bytes per flow are computed
from the packets we wrote, not copied from nfdump. Needs the Debian packages ``nfdump`` and
``softflowd``; skipped without them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from vpnsentry.parse.base import ParseContext, get_parser
from vpnsentry.parse.run import parse_chunk

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("softflowd", "nfcapd", "nfdump")),
        reason="needs softflowd, nfcapd and nfdump (apt-get install softflowd nfdump)",
    ),
]

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
CLIENT, VPN_GW, CLIENT2, DNS, PEER, PEER_GW = (
    "192.0.2.10",
    "198.51.100.20",
    "192.0.2.11",
    "198.51.100.53",
    "192.0.2.12",
    "198.51.100.30",
)


# --- packets ---------------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        0,
        64,
        proto,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def _ipv6(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, 64)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + payload
    )


def _tcp(sport: int, dport: int, flags: int, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 5 << 4, flags, 65535, 0, 0) + data


def _udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def _icmp_echo(kind: int, data: bytes) -> bytes:
    message = struct.pack("!BBHHH", kind, 0, 0, 1, 1) + data
    return message[:2] + struct.pack("!H", _checksum(message)) + message[4:]


SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK = 0x02, 0x12, 0x10, 0x18, 0x11

#: (seconds after T0, IP packet, flow key). The key is (src, dst, sport, dport, transport);
#: ICMP has no ports in our output (nfdump packs type/code into dp).
PACKETS: list[tuple[float, bytes, tuple[str, str, int | None, int | None, str]]] = [
    # a TLS VPN session: handshake, data both ways, close
    (0.1, _ipv4(CLIENT, VPN_GW, 6, _tcp(51515, 443, SYN)), (CLIENT, VPN_GW, 51515, 443, "tcp")),
    (0.2, _ipv4(VPN_GW, CLIENT, 6, _tcp(443, 51515, SYN_ACK)), (VPN_GW, CLIENT, 443, 51515, "tcp")),
    (0.3, _ipv4(CLIENT, VPN_GW, 6, _tcp(51515, 443, ACK)), (CLIENT, VPN_GW, 51515, 443, "tcp")),
    (
        0.4,
        _ipv4(CLIENT, VPN_GW, 6, _tcp(51515, 443, PSH_ACK, b"x" * 100)),
        (CLIENT, VPN_GW, 51515, 443, "tcp"),
    ),
    (
        0.5,
        _ipv4(VPN_GW, CLIENT, 6, _tcp(443, 51515, PSH_ACK, b"y" * 200)),
        (VPN_GW, CLIENT, 443, 51515, "tcp"),
    ),
    (1.0, _ipv4(CLIENT, VPN_GW, 6, _tcp(51515, 443, FIN_ACK)), (CLIENT, VPN_GW, 51515, 443, "tcp")),
    (1.1, _ipv4(VPN_GW, CLIENT, 6, _tcp(443, 51515, FIN_ACK)), (VPN_GW, CLIENT, 443, 51515, "tcp")),
    # DNS query and answer
    (2.0, _ipv4(CLIENT2, DNS, 17, _udp(40000, 53, b"q" * 30)), (CLIENT2, DNS, 40000, 53, "udp")),
    (2.05, _ipv4(DNS, CLIENT2, 17, _udp(53, 40000, b"r" * 60)), (DNS, CLIENT2, 53, 40000, "udp")),
    # IKE exchange, then IPsec NAT traversal one way only
    (3.0, _ipv4(PEER, PEER_GW, 17, _udp(500, 500, b"i" * 300)), (PEER, PEER_GW, 500, 500, "udp")),
    (3.2, _ipv4(PEER_GW, PEER, 17, _udp(500, 500, b"j" * 280)), (PEER_GW, PEER, 500, 500, "udp")),
    (
        4.0,
        _ipv4(PEER, PEER_GW, 17, _udp(4500, 4500, b"e" * 120)),
        (PEER, PEER_GW, 4500, 4500, "udp"),
    ),
    (
        4.5,
        _ipv4(PEER, PEER_GW, 17, _udp(4500, 4500, b"e" * 120)),
        (PEER, PEER_GW, 4500, 4500, "udp"),
    ),
    # ping and reply
    (5.0, _ipv4(CLIENT, DNS, 1, _icmp_echo(8, b"p" * 56)), (CLIENT, DNS, None, None, "icmp")),
    (5.01, _ipv4(DNS, CLIENT, 1, _icmp_echo(0, b"p" * 56)), (DNS, CLIENT, None, None, "icmp")),
    # IPv6 DNS query without answer
    (
        6.0,
        _ipv6("2001:db8::10", "2001:db8:1::53", 17, _udp(41000, 53, b"q" * 40)),
        ("2001:db8::10", "2001:db8:1::53", 41000, 53, "udp"),
    ),
]


def write_pcap(path: Path) -> None:
    """Classic pcap (microsecond, Ethernet) of ``PACKETS``."""
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for offset, packet, _ in PACKETS:
            version = packet[0] >> 4
            ethertype = 0x0800 if version == 4 else 0x86DD
            frame = bytes.fromhex("020000000001020000000002") + struct.pack("!H", ethertype)
            frame += packet
            when = T0 + dt.timedelta(seconds=offset)
            seconds = int(when.timestamp())
            out.write(struct.pack("<IIII", seconds, when.microsecond, len(frame), len(frame)))
            out.write(frame)


def _conversation(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """softflowd's flow: both directions of a TCP/UDP conversation; ICMP type by type."""
    src, dst, sport, dport, transport = key
    if transport == "icmp":
        return key
    return (transport, frozenset([(src, sport), (dst, dport)]))


def expected_flows() -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per flow key: packets, IP bytes (what NetFlow counts) and start time.

    softflowd tracks a conversation as one flow and exports it as one record per direction,
    both stamped with the conversation's first packet.
    """
    start: dict[tuple[Any, ...], dt.datetime] = {}
    for offset, _, key in PACKETS:
        start.setdefault(_conversation(key), T0 + dt.timedelta(seconds=offset))
    flows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for _, packet, key in PACKETS:
        flow = flows.setdefault(key, {"packets": 0, "bytes": 0, "first": start[_conversation(key)]})
        flow["packets"] += 1
        flow["bytes"] += len(packet)
    return flows


# --- the real tools --------------------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(path: Path, text: str, timeout: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _flows_stored(log: Path) -> int:
    """Flows nfcapd reports for the files it has rotated so far (one line per file)."""
    total = 0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Ident:") and "Flows: " in line:
            total += int(line.split("Flows: ")[1].split(",")[0])
    return total


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """nfcapd files holding the flows softflowd exported from our pcap."""
    work = tmp_path_factory.mktemp("nfdump_real")
    pcap = work / "vpn.pcap"
    write_pcap(pcap)
    want = len(expected_flows())
    flows = work / "flows"
    flows.mkdir()
    log = work / "nfcapd.log"
    nfcapd: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_udp_port()
            with log.open("wb") as out:
                # -t 2: rotate every 2 s, so finished files (and their flow counts) appear
                # while nfcapd runs, and we stop it only once all flows are on disk.
                nfcapd = subprocess.Popen(
                    ["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-w", str(flows), "-t", "2"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if _wait_for(log, "Startup nfcapd", 10, nfcapd):
                break
            nfcapd.kill()
            nfcapd.wait()
        else:
            pytest.fail(f"nfcapd did not start:\n{log.read_text()}")
        # -a: flow times from the pcap, not the clock. -c none: no control socket; with one,
        # softflowd 1.1.0 blocks in accept() when reading a file (uninitialised poll entry).
        pidfile = str(work / "softflowd.pid")
        exporter = subprocess.run(
            [
                "softflowd",
                "-r",
                str(pcap),
                "-n",
                f"127.0.0.1:{port}",
                "-v",
                "9",
                "-6",
                "-a",
                "-d",
                "-c",
                "none",
                "-p",
                pidfile,
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert exporter.returncode == 0, exporter.stderr.decode(errors="replace")
        deadline = time.monotonic() + 30
        while _flows_stored(log) < want and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _flows_stored(log) == want, log.read_text()
        yield flows
    finally:
        if nfcapd is not None and nfcapd.poll() is None:
            nfcapd.send_signal(signal.SIGTERM)  # closes and renames its current file
            try:
                nfcapd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                nfcapd.kill()
                nfcapd.wait()


def nfdump(flows: Path, fmt: str, tz: str = "UTC") -> list[str]:
    """``nfdump -R <dir> -o <fmt>`` as the lines it prints, in time zone ``tz``."""
    out = subprocess.run(
        ["nfdump", "-R", str(flows), "-o", fmt],
        capture_output=True,
        timeout=60,
        check=True,
        env={**os.environ, "TZ": tz},
    )
    return out.stdout.decode().splitlines()


def parse(lines: list[str], tz: str = "UTC") -> pl.DataFrame:
    """Our parser over nfdump's output, as ingest runs it, strict about the contract."""
    ctx = ParseContext(path="nfdump.out", tz=tz, now=dt.datetime.now(dt.UTC))
    out = parse_chunk(
        get_parser("nfdump"),
        pl.Series(lines, dtype=pl.String),
        pl.Series(range(len(lines)), dtype=pl.Int64),
        ctx,
        first_line=1,
        strict=True,
    )
    assert out.quarantined == 0
    assert out.dropped_values == 0
    return out.tables["flows"]


def _by_key(df: pl.DataFrame) -> dict[tuple[Any, ...], dict[str, Any]]:
    keys = ["source.ip", "destination.ip", "source.port", "destination.port", "network.transport"]
    return {tuple(row[k] for k in keys): row for row in df.to_dicts()}


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_every_flow_arrives_with_its_counts(capture_dir: Path, fmt: str) -> None:
    got = _by_key(parse(nfdump(capture_dir, fmt)))
    want = expected_flows()
    assert set(got) == set(want)
    for key, flow in want.items():
        row = got[key]
        assert (row["source.packets"], row["source.bytes"]) == (flow["packets"], flow["bytes"])
        assert row["network.bytes"] == flow["bytes"]
        assert row["observer.ip"] == "127.0.0.1"  # the exporter, softflowd on loopback
        assert row["event.dataset"] == "nfdump.flow"
    assert got[(CLIENT, VPN_GW, 51515, 443, "tcp")]["flow.state"] == "...AP.SF"


def test_json_keeps_milliseconds_and_csv_keeps_seconds(capture_dir: Path) -> None:
    """nfdump 1.7.1's CSV prints whole seconds, its JSON milliseconds: both must be right."""
    want = expected_flows()
    for fmt in ("csv", "json"):
        got = _by_key(parse(nfdump(capture_dir, fmt)))
        for key, flow in want.items():
            first = flow["first"]
            expected = first if fmt == "json" else first.replace(microsecond=0)
            assert got[key]["@timestamp"] == expected, (fmt, key)


def test_local_time_of_nfdump_is_undone_by_tz(capture_dir: Path) -> None:
    """nfdump prints local time without saying so; ``--tz`` must give the same instants."""
    utc = parse(nfdump(capture_dir, "csv")).sort("@timestamp", "source.ip")
    tokyo_lines = nfdump(capture_dir, "csv", tz="Asia/Tokyo")
    assert tokyo_lines[1].startswith("2024-05-01 21:00:")  # 12:00 UTC printed as JST
    tokyo = parse(tokyo_lines, tz="Asia/Tokyo").sort("@timestamp", "source.ip")
    assert tokyo["@timestamp"].to_list() == utc["@timestamp"].to_list()
    assert tokyo["event.end"].to_list() == utc["event.end"].to_list()


def test_csv_summary_and_json_structure_are_not_flows(capture_dir: Path) -> None:
    csv = nfdump(capture_dir, "csv")
    assert csv[-3] == "Summary"  # nfdump 1.7.1 ends its CSV with a summary block
    json = nfdump(capture_dir, "json")
    assert json[0] == "[" and json[1] == "{"  # one record spread over many lines
    assert len(parse(csv)) == len(parse(json)) == len(expected_flows())
