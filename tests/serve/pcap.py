"""A small pcap written with the stdlib, for real exporters (softflowd) to read."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Packet:
    t: float
    src: str
    dst: str
    proto: int  # 6 tcp, 17 udp
    sport: int
    dport: int
    payload: int = 0  # payload bytes
    flags: int = 0x10  # TCP flags


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip_length(p: Packet) -> int:
    """The IPv4 total length of the packet: what NetFlow counts as its bytes."""
    return 20 + (20 if p.proto == 6 else 8) + p.payload


def frame(p: Packet) -> bytes:
    """Ethernet + IPv4 + TCP/UDP headers and a zero payload."""
    body = b"\0" * p.payload
    if p.proto == 6:
        l4 = struct.pack(">HHIIBBHHH", p.sport, p.dport, 1, 1, 5 << 4, p.flags, 65535, 0, 0)
    else:
        l4 = struct.pack(">HHHH", p.sport, p.dport, 8 + p.payload, 0)
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, ip_length(p), 1, 0, 64, p.proto, 0,
                      socket.inet_aton(p.src), socket.inet_aton(p.dst))  # fmt: skip
    hdr = hdr[:10] + struct.pack(">H", _checksum(hdr)) + hdr[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    return eth + hdr + l4 + body


def write_pcap(path: Path, packets: list[Packet]) -> None:
    """libpcap format: global header (magic a1b2c3d4, v2.4, Ethernet), then records."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for p in packets:
        data = frame(p)
        sec = int(p.t)
        out.append(struct.pack("<IIII", sec, int((p.t - sec) * 1e6), len(data), len(data)))
        out.append(data)
    path.write_bytes(b"".join(out))
