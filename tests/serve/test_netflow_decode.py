"""NetFlow v5, v9 (RFC 3954) and IPFIX (RFC 7011) datagrams built byte by byte, decoded."""

from __future__ import annotations

import socket
import struct

import polars as pl

from vpnsentry.collect.netflow import NO_TEMPLATE, PENDING_SECONDS, Datagram, Decoder

EXPORT = 1_780_000_000  # 2026-05-28T20:26:40Z
UPTIME = 3_600_000  # exporter up for an hour


def ip4(s: str) -> bytes:
    return socket.inet_aton(s)


def v9_packet(*flowsets: bytes, source: int = 7) -> bytes:
    return struct.pack(">HHIIII", 9, len(flowsets), UPTIME, EXPORT, 1, source) + b"".join(flowsets)


def flowset(set_id: int, body: bytes, pad_to: int = 4) -> bytes:
    body += b"\0" * (-(len(body) + 4) % pad_to)
    return struct.pack(">HH", set_id, len(body) + 4) + body


#: IPv4 5-tuple, counters and sysUptime times (RFC 3954 field types).
V9_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (1, 4), (2, 4), (22, 4), (21, 4),
             (10, 2), (14, 2)]  # fmt: skip


def v9_template(tid: int = 256, fields: list[tuple[int, int]] = V9_FIELDS) -> bytes:
    body = struct.pack(">HH", tid, len(fields)) + b"".join(struct.pack(">HH", *f) for f in fields)
    return flowset(0, body)


def v9_record(src: str, dst: str, sport: int, dport: int, nbytes: int) -> bytes:
    return (
        ip4(src) + ip4(dst) + struct.pack(">HHBBIIIIHH", sport, dport, 6, 0x1B, nbytes, 3,
                                          UPTIME - 5000, UPTIME - 1000, 3, 4)
    )  # fmt: skip


def feed(dec: Decoder, *payloads: bytes, exporter: str = "192.0.2.1", t: float = 100.0) -> None:
    for i, p in enumerate(payloads):
        dec.feed(Datagram(i * 1000, t + i, exporter, p))


def test_v5_header_and_records() -> None:
    rec = struct.pack(
        ">4s4s4sHHIIIIHHBBBBHHBBH", ip4("198.51.100.7"), ip4("203.0.113.9"), ip4("0.0.0.0"),
        1, 2, 10, 1500, UPTIME - 2000, UPTIME - 500, 51515, 443, 0, 0x12, 6, 0, 0, 0, 24, 24, 0,
    )  # fmt: skip
    header = struct.pack(">HHIIIIBBH", 5, 1, UPTIME, EXPORT, 250_000_000, 1, 0, 0, 0)
    dec = Decoder()
    feed(dec, header + rec)
    flows = dec.take().flows
    row = flows.row(0, named=True)
    assert row["source.ip"] == "198.51.100.7" and row["destination.port"] == 443
    assert row["network.transport"] == "tcp" and row["flow.state"] == "...A..S."
    assert row["source.bytes"] == 1500 and row["source.packets"] == 10
    assert row["@timestamp"].timestamp() == EXPORT + 0.25 - 2.0
    assert row["event.duration"] == 1_500_000_000
    assert row["observer.ip"] == "192.0.2.1" and row["event.code"] == "netflow_v5"
    assert row["observer.ingress.interface.name"] == "1"


def test_v9_data_before_template_is_held_then_decoded() -> None:
    data = flowset(256, v9_record("192.0.2.10", "198.51.100.20", 40000, 22, 900))
    dec = Decoder()
    feed(dec, v9_packet(data))
    assert dec.take().flows.is_empty() and len(dec.pending) == 1
    feed(dec, v9_packet(v9_template()))
    flows = dec.take().flows
    assert flows["destination.port"].to_list() == [22]
    assert flows["@timestamp"][0].timestamp() == EXPORT - 5
    assert flows["event.end"][0].timestamp() == EXPORT - 1
    assert not dec.pending


def test_v9_template_from_another_exporter_or_source_id_does_not_apply() -> None:
    dec = Decoder()
    feed(dec, v9_packet(v9_template()), exporter="192.0.2.1")
    data = flowset(256, v9_record("192.0.2.10", "198.51.100.20", 1, 2, 3))
    feed(dec, v9_packet(data), exporter="192.0.2.2")
    feed(dec, v9_packet(data, source=8), exporter="192.0.2.1")
    assert dec.take().flows.is_empty() and len(dec.pending) == 2


def test_v9_template_refresh_redefines_the_layout() -> None:
    dec = Decoder()
    feed(dec, v9_packet(v9_template(), flowset(256, v9_record("192.0.2.1", "192.0.2.2", 1, 2, 3))))
    short = [(8, 4), (12, 4), (1, 8)]  # same id, now 64-bit bytes and no ports
    rec = ip4("192.0.2.3") + ip4("192.0.2.4") + struct.pack(">Q", 2**40)
    feed(dec, v9_packet(v9_template(fields=short), flowset(256, rec + rec)))
    flows = dec.take().flows
    assert flows["source.bytes"].to_list() == [3, 2**40, 2**40]
    assert flows["source.ip"].to_list() == ["192.0.2.1", "192.0.2.3", "192.0.2.3"]


def test_v9_options_template_sampling_interval_scales_counts() -> None:
    # Options template 257: scope system (1) length 4, option SAMPLING_INTERVAL (34) length 4.
    options = flowset(1, struct.pack(">HHHHHHH", 257, 4, 4, 1, 4, 34, 4))
    sampling = flowset(257, struct.pack(">II", 0, 100))
    dec = Decoder()
    feed(dec, v9_packet(options, sampling, v9_template()))
    feed(dec, v9_packet(flowset(256, v9_record("192.0.2.1", "192.0.2.2", 1, 2, 50))))
    flows = dec.take().flows
    assert flows["source.bytes"].to_list() == [5000]
    assert flows["source.packets"].to_list() == [300]


def test_held_data_expires_into_quarantine_with_a_reason() -> None:
    dec = Decoder()
    feed(dec, v9_packet(flowset(300, b"\x01" * 20)), t=100.0)
    feed(dec, v9_packet(v9_template()), t=100.0 + PENDING_SECONDS + 1)
    out = dec.take()
    assert out.flows.is_empty()
    assert out.quarantine["error.type"].to_list() == [NO_TEMPLATE]
    assert dec.expired == 1 and not dec.pending


def ipfix(*sets: bytes, domain: int = 1) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), EXPORT, 1, domain) + body


def test_ipfix_variable_length_enterprise_fields_and_absolute_times() -> None:
    # sourceIPv6Address, destinationIPv6Address, ports, protocol, octetDeltaCount (reduced to
    # 4 bytes), an enterprise field (PEN 29305, reverse octets) of 8 bytes, a variable-length
    # string (applicationName 96), flowStartMilliseconds, flowEndMilliseconds.
    fields = struct.pack(
        ">HHHHHHHHHHHHHHIHHHHHH", 27, 16, 28, 16, 7, 2, 11, 2, 4, 1, 1, 4, 0x8000 | 1, 8, 29305,
        96, 65535, 152, 8, 153, 8,
    )  # fmt: skip
    template = flowset(2, struct.pack(">HH", 300, 10) + fields, pad_to=1)
    start_ms = EXPORT * 1000 - 7000

    def rec(name: bytes) -> bytes:
        size = bytes([len(name)]) if len(name) < 255 else b"\xff" + struct.pack(">H", len(name))
        return (
            socket.inet_pton(socket.AF_INET6, "2001:db8::1")
            + socket.inet_pton(socket.AF_INET6, "2001:db8::2")
            + struct.pack(">HHBIQ", 5353, 443, 17, 777, 123456)
            + size
            + name
            + struct.pack(">QQ", start_ms, start_ms + 2500)
        )  # fmt: skip

    data = flowset(300, rec(b"dns") + rec(b"x" * 300), pad_to=1)
    dec = Decoder()
    feed(dec, ipfix(data, template))  # data first in the same message: still decoded
    flows = dec.take().flows
    assert flows["source.ip"].to_list() == ["2001:db8::1"] * 2
    assert flows["source.port"].to_list() == [5353] * 2
    assert flows["network.transport"].to_list() == ["udp"] * 2
    assert flows["source.bytes"].to_list() == [777] * 2
    assert flows["@timestamp"][0].timestamp() == EXPORT - 7
    assert flows["event.duration"].to_list() == [2_500_000_000] * 2


def test_ipfix_withdrawal_and_sysuptime_relative_times() -> None:
    fields = struct.pack(">HHHHHHHH", 8, 4, 12, 4, 22, 4, 21, 4)
    template = flowset(2, struct.pack(">HH", 400, 4) + fields, pad_to=1)
    # Options template 401: scope observationDomainId (149), option systemInitTimeMs (160).
    opt = flowset(3, struct.pack(">HHHHHHH", 401, 2, 1, 149, 4, 160, 8), pad_to=1)
    init = (EXPORT - 86400) * 1000
    opt_data = flowset(401, struct.pack(">IQ", 1, init), pad_to=1)
    rec = ip4("192.0.2.5") + ip4("192.0.2.6") + struct.pack(">II", 1000, 3000)
    dec = Decoder()
    feed(dec, ipfix(template, opt, opt_data, flowset(400, rec, pad_to=1)))
    flows = dec.take().flows
    assert flows["@timestamp"][0].timestamp() == EXPORT - 86400 + 1
    assert flows["event.end"][0].timestamp() == EXPORT - 86400 + 3
    withdraw = flowset(2, struct.pack(">HH", 400, 0), pad_to=1)
    feed(dec, ipfix(withdraw), ipfix(flowset(400, rec, pad_to=1)))
    assert dec.take().flows.is_empty() and len(dec.pending) == 1


def test_state_round_trip_keeps_templates_and_held_sets() -> None:
    dec = Decoder()
    feed(dec, v9_packet(v9_template()), v9_packet(flowset(300, b"\x01" * 8)))
    again = Decoder.from_state(dec.state())
    feed(again, v9_packet(flowset(256, v9_record("192.0.2.1", "192.0.2.2", 1, 2, 3))))
    assert again.take().flows.height == 1
    assert [p.key for p in again.pending] == [("192.0.2.1", 7, 300)]


def test_garbage_and_truncation_are_quarantined_not_raised() -> None:
    dec = Decoder()
    feed(dec, b"", b"\x00\x05\x00\x09", b"\x00\x09\x00\x01" + b"\x00" * 16 + b"\x01\x00\xff\xff",
         b"hello world")  # fmt: skip
    q = dec.take().quarantine
    assert q.height == 4 and set(q["error.type"]) == {"netflow_malformed"}
    assert q.schema["event.original"] == pl.String
