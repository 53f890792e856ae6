"""Collect: NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) datagrams to flow rows.

Datagrams are spooled raw (:func:`record`) before anything is decoded; the micro-batch loop
feeds them, in spool order, to one :class:`Decoder`, whose state is what v9 and IPFIX need
to read data at all:

* Templates per exporter, keyed by (exporter address, source id / observation domain,
  template id), as RFC 3954 section 5.1 and RFC 7011 section 8 key them. A template sent
  again replaces the old one (refresh, or a redefinition after an exporter restart); an
  IPFIX withdrawal (field count 0) removes one template or, with the set id as template id,
  all of that kind.
* Data sets whose template has not arrived yet (UDP reorders, and exporters send templates
  only every few minutes) are held per template for up to :data:`PENDING_SECONDS` of spool
  time and :data:`PENDING_BYTES`, then decoded when the template comes. What expires is
  quarantined (``error.type`` ``netflow_no_template``), never silently dropped.
* Options data (RFC 3954 section 6.1, RFC 7011 section 3.4.2.2): the sampling interval
  (``samplingInterval``/``samplingPacketInterval``/``samplerRandomInterval``), by which
  packet and byte counts are multiplied as nfcapd does, and ``systemInitTimeMilliseconds``,
  the origin of IPFIX ``flowStart/EndSysUpTime``.
* IPFIX variable-length fields (length 65535: one length byte, or 255 and two) and
  enterprise-specific fields (skipped by their length).

Fixed-layout data sets, the normal case, are decoded with numpy over the whole set (one
``frombuffer`` and column slices), not field by field. Everything the decoder needs from
earlier datagrams is in :meth:`Decoder.state`, which the batch loop saves with the spool
position it reflects, so a restart resumes with the same templates.

Timestamps: v5 and v9 give flow start and end as sysUptime milliseconds, converted with the
header's uptime and clock; IPFIX gives absolute seconds, milliseconds or NTP-format micro
and nanoseconds, or uptime-relative values. A flow with none of them gets the export time.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import polars as pl

from vpnsentry import ecs

#: Spool record header: payload length, receive time (epoch s), exporter port, address
#: (16 bytes, IPv4 as IPv4-mapped IPv6).
_REC: Final = struct.Struct("<IdH16s")
#: Largest UDP payload: a bigger length in a spool record means the file is damaged.
_MAX_DATAGRAM: Final = 65535

PENDING_SECONDS: Final = 60.0
PENDING_BYTES: Final = 8 * 1024 * 1024
NO_TEMPLATE: Final = "netflow_no_template"
MALFORMED: Final = "netflow_malformed"

_V5_HEADER: Final = struct.Struct(">HHIIIIBBH")
_V5_RECORD: Final = np.dtype(
    [
        ("src", ">u4"),
        ("dst", ">u4"),
        ("nexthop", ">u4"),
        ("input", ">u2"),
        ("output", ">u2"),
        ("pkts", ">u4"),
        ("bytes", ">u4"),
        ("first", ">u4"),
        ("last", ">u4"),
        ("sport", ">u2"),
        ("dport", ">u2"),
        ("pad1", "u1"),
        ("flags", "u1"),
        ("proto", "u1"),
        ("tos", "u1"),
        ("src_as", ">u2"),
        ("dst_as", ">u2"),
        ("src_mask", "u1"),
        ("dst_mask", "u1"),
        ("pad2", ">u2"),
    ]
)
_V9_HEADER: Final = struct.Struct(">HHIIII")
_IPFIX_HEADER: Final = struct.Struct(">HHIII")
_SET: Final = struct.Struct(">HH")

#: Information elements we read (RFC 3954 field types = IPFIX IANA ids below 128).
IE: Final = {
    "bytes": (1, 85),  # IN_BYTES / octetDeltaCount, octetTotalCount
    "pkts": (2, 86),  # IN_PKTS / packetDeltaCount, packetTotalCount
    "proto": (4,),
    "flags": (6,),
    "sport": (7,),
    "src4": (8,),
    "input": (10,),
    "dport": (11,),
    "dst4": (12,),
    "output": (14,),
    "last_up": (21,),  # LAST_SWITCHED / flowEndSysUpTime (ms)
    "first_up": (22,),  # FIRST_SWITCHED / flowStartSysUpTime (ms)
    "src6": (27,),
    "dst6": (28,),
    "start_s": (150,),
    "end_s": (151,),
    "start_ms": (152,),
    "end_ms": (153,),
    "start_us": (154,),  # NTP format
    "end_us": (155,),
    "start_ns": (156,),  # NTP format
    "end_ns": (157,),
    "start_delta_us": (158,),  # flowStartDeltaMicroseconds, before export time
    "end_delta_us": (159,),
}
_SAMPLING_IES: Final = (34, 305, 50)
_SYSINIT_IE: Final = 160
_NTP_EPOCH: Final = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_TRANSPORT: Final = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 51: "ah"}
_TRANSPORT.update({58: "ipv6-icmp", 132: "sctp"})
_VARLEN: Final = 65535


def record(payload: bytes, host: str, port: int, now: float) -> bytes:
    """One spool record for a datagram from ``host``:``port`` received at ``now``."""
    addr = ipaddress.ip_address(host)
    if isinstance(addr, ipaddress.IPv4Address):
        packed = b"\0" * 10 + b"\xff\xff" + addr.packed
    else:
        packed = addr.packed
    return _REC.pack(len(payload), now, port, packed) + payload


def complete_records(data: bytes) -> int:
    """Length of the prefix of ``data`` made of whole spool records (for recovery)."""
    pos = 0
    while pos + _REC.size <= len(data):
        size = _REC.unpack_from(data, pos)[0]
        if size > _MAX_DATAGRAM or pos + _REC.size + size > len(data):
            break
        pos += _REC.size + size
    return pos


@dataclass(frozen=True)
class Datagram:
    """A spooled datagram: where it is in its segment, when and from whom it came."""

    offset: int
    received: float
    exporter: str
    payload: bytes


def record_size(d: Datagram) -> int:
    """Bytes the spool record of ``d`` takes."""
    return _REC.size + len(d.payload)


def records(data: bytes, base: int) -> list[Datagram]:
    """The spool records in ``data`` (which starts at segment offset ``base``)."""
    out: list[Datagram] = []
    pos = 0
    while pos + _REC.size <= len(data):
        size, received, _port, packed = _REC.unpack_from(data, pos)
        start = pos + _REC.size
        if start + size > len(data):
            break
        addr = ipaddress.IPv6Address(packed)
        host = str(addr.ipv4_mapped or addr)
        out.append(Datagram(base + pos, received, host, data[start : start + size]))
        pos = start + size
    return out


@dataclass
class Template:
    """A (options) template: fields as (element id, length, enterprise number)."""

    fields: list[tuple[int, int, int]]
    scope: int = 0  # number of scope fields (options templates)
    options: bool = False

    @property
    def fixed(self) -> bool:
        return all(length != _VARLEN for _, length, _ in self.fields)

    @property
    def size(self) -> int:
        """Record length for fixed layouts; the minimum record length otherwise."""
        return sum(1 if length == _VARLEN else length for _, length, _ in self.fields)


@dataclass
class _Header:
    """What a data set needs from its packet header to place flows in time."""

    version: int
    export_ms: int  # exporter clock at export, epoch ms
    uptime_ms: int | None  # v5/v9 sysUptime at export


@dataclass
class _Pending:
    key: tuple[str, int, int]
    datagram: Datagram
    header: _Header
    body: bytes


@dataclass
class Decoded:
    """What one batch of datagrams became."""

    flows: pl.DataFrame
    quarantine: pl.DataFrame
    datagrams: int = 0


@dataclass
class Decoder:
    """NetFlow/IPFIX decoder with per-exporter template state (see the module docstring)."""

    path: str = ""  # spool segment being read, for log.file.path
    templates: dict[tuple[str, int, int], Template] = field(default_factory=dict)
    sampling: dict[tuple[str, int], int] = field(default_factory=dict)
    sysinit_ms: dict[tuple[str, int], int] = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    expired: int = 0  # data sets quarantined because their template never came
    malformed: int = 0
    _frames: list[pl.DataFrame] = field(default_factory=list)
    _bad: list[dict[str, Any]] = field(default_factory=list)

    # -- feeding --------------------------------------------------------------------------

    def feed(self, d: Datagram) -> None:
        """Decode one datagram (templates first, as RFC 3954 asks, then data)."""
        self._expire(d.received)
        p = d.payload
        version = struct.unpack_from(">H", p)[0] if len(p) >= 2 else -1
        try:
            if version == 5:
                self._v5(d)
            elif version == 9:
                self._v9(d)
            elif version == 10:
                self._ipfix(d)
            else:
                self._reject(d, MALFORMED, f"not NetFlow v5/v9/IPFIX (version {version})")
        except (struct.error, ValueError) as exc:
            self._reject(d, MALFORMED, f"truncated or malformed: {exc}")

    def _v5(self, d: Datagram) -> None:
        p = d.payload
        _, count, uptime, secs, nsecs, _seq, _etype, _eid, sampling = _V5_HEADER.unpack_from(p)
        if len(p) < _V5_HEADER.size + count * _V5_RECORD.itemsize:
            raise ValueError(f"v5 header says {count} records, datagram has {len(p)} bytes")
        recs = np.frombuffer(p, _V5_RECORD, count, _V5_HEADER.size)
        header = _Header(5, secs * 1000 + nsecs // 1_000_000, uptime)
        interval = sampling & 0x3FFF
        names = {"first": "first_up", "last": "last_up", "src": "src4", "dst": "dst4"}
        cols = {names.get(k, k): recs[k].astype(np.int64) for k in _V5_RECORD.names or ()}
        self._emit(d, header, cols, interval if interval > 1 else 1)

    def _v9(self, d: Datagram) -> None:
        p = d.payload
        _, _count, uptime, secs, _seq, source = _V9_HEADER.unpack_from(p)
        header = _Header(9, secs * 1000, uptime)
        self._sets(d, header, source, _V9_HEADER.size, len(p), (0, 1))

    def _ipfix(self, d: Datagram) -> None:
        p = d.payload
        _, length, export, _seq, domain = _IPFIX_HEADER.unpack_from(p)
        if length > len(p) or length < _IPFIX_HEADER.size:
            raise ValueError(f"IPFIX message length {length}, datagram {len(p)} bytes")
        header = _Header(10, export * 1000, None)
        self._sets(d, header, domain, _IPFIX_HEADER.size, length, (2, 3))

    def _sets(
        self, d: Datagram, header: _Header, domain: int, pos: int, end: int, ids: tuple[int, int]
    ) -> None:
        p = d.payload
        data_sets: list[tuple[int, bytes]] = []
        while pos + _SET.size <= end:
            set_id, length = _SET.unpack_from(p, pos)
            if length < _SET.size or pos + length > end:
                raise ValueError(f"set {set_id} of length {length} at {pos} overruns")
            body = p[pos + _SET.size : pos + length]
            if set_id == ids[0]:
                self._templates(d.exporter, domain, body, header.version, options=False)
            elif set_id == ids[1]:
                self._templates(d.exporter, domain, body, header.version, options=True)
            elif set_id >= 256:
                data_sets.append((set_id, body))
            pos += length
        for set_id, body in data_sets:
            key = (d.exporter, domain, set_id)
            if key in self.templates:
                self._data(d, header, key, body)
            else:
                self._hold(_Pending(key, d, header, body))

    def _templates(
        self, exporter: str, domain: int, body: bytes, version: int, *, options: bool
    ) -> None:
        pos = 0
        added: list[tuple[str, int, int]] = []
        while pos + 4 <= len(body):
            tid, count = struct.unpack_from(">HH", body, pos)
            pos += 4
            scope = 0
            if version == 9 and options:
                scope_len, option_len = count, struct.unpack_from(">H", body, pos)[0]
                pos += 2
                scope, count = scope_len // 4, (scope_len + option_len) // 4
            elif options and count:
                scope = struct.unpack_from(">H", body, pos)[0]
                pos += 2
            if tid < 256:
                if version == 10 and count == 0 and tid in (2, 3):  # withdraw all
                    for key in [k for k in self.templates if k[:2] == (exporter, domain)]:
                        if self.templates[key].options == (tid == 3):
                            del self.templates[key]
                    continue
                break  # padding, or a template id the RFCs reserve
            if count == 0:  # IPFIX withdrawal of one template
                self.templates.pop((exporter, domain, tid), None)
                continue
            fields: list[tuple[int, int, int]] = []
            for _ in range(count):
                ie, length = struct.unpack_from(">HH", body, pos)
                pos += 4
                enterprise = 0
                if version == 10 and ie & 0x8000:
                    enterprise = struct.unpack_from(">I", body, pos)[0]
                    pos += 4
                    ie &= 0x7FFF
                fields.append((ie, length, enterprise))
            key = (exporter, domain, tid)
            self.templates[key] = Template(fields, scope, options)
            added.append(key)
        for key in added:
            self._release(key)

    # -- data -----------------------------------------------------------------------------

    def _data(self, d: Datagram, header: _Header, key: tuple[str, int, int], body: bytes) -> None:
        tpl = self.templates[key]
        exporter_key = key[:2]
        if tpl.options:
            for rec in _records_slow(tpl, body):
                for ie, value in rec.items():
                    if ie in _SAMPLING_IES and isinstance(value, int) and value > 0:
                        self.sampling[exporter_key] = value
                    elif ie == _SYSINIT_IE and isinstance(value, int):
                        self.sysinit_ms[exporter_key] = value
            return
        cols = _columns(tpl, body)
        if cols is None:
            return
        if header.version == 10 and "first_up" in cols:
            init = self.sysinit_ms.get(exporter_key)
            if init is not None:
                cols["start_ms"] = _near(init + cols.pop("first_up"), header.export_ms)
                if "last_up" in cols:
                    cols["end_ms"] = _near(init + cols.pop("last_up"), header.export_ms)
        self._emit(d, header, cols, self.sampling.get(exporter_key, 1))

    def _emit(
        self, d: Datagram, header: _Header, cols: dict[str, np.ndarray], sampling: int
    ) -> None:
        n = len(next(iter(cols.values()))) if cols else 0
        if n == 0:
            return
        start, end = _times(cols, header, n)
        frame: dict[str, Any] = {
            "_start": start,
            "_end": end,
            "_offset": np.full(n, d.offset, np.int64),
        }
        for name in ("bytes", "pkts"):
            if name in cols:
                frame[f"_{name}"] = cols[name] * sampling
        for name in ("proto", "flags", "sport", "dport", "input", "output"):
            if name in cols:
                frame[f"_{name}"] = cols[name]
        for name in ("src4", "dst4", "src6", "dst6"):
            if name in cols:
                frame[f"_{name}"] = cols[name]
        df = pl.DataFrame(frame).with_columns(
            pl.lit(d.exporter).alias("_exporter"),
            pl.lit(self.path).alias("_path"),
            pl.lit(_VERSION_NAME[header.version]).alias("_version"),
        )
        self._frames.append(df)

    def _hold(self, item: _Pending) -> None:
        self.pending.append(item)
        while sum(len(x.body) for x in self.pending) > PENDING_BYTES:
            self._quarantine_pending(self.pending.pop(0))

    def _release(self, key: tuple[str, int, int]) -> None:
        """Decode the held data sets of a template that has just arrived."""
        ready = [x for x in self.pending if x.key == key]
        if not ready:
            return
        self.pending = [x for x in self.pending if x.key != key]
        for x in ready:
            self._data(x.datagram, x.header, key, x.body)

    def _expire(self, now: float) -> None:
        """Quarantine held data sets older than PENDING_SECONDS of spool (receive) time."""
        if self.pending and now - self.pending[0].datagram.received > PENDING_SECONDS:
            old = [x for x in self.pending if now - x.datagram.received > PENDING_SECONDS]
            self.pending = [x for x in self.pending if now - x.datagram.received <= PENDING_SECONDS]
            for x in old:
                self._quarantine_pending(x)

    def _quarantine_pending(self, x: _Pending) -> None:
        self.expired += 1
        exporter, domain, tid = x.key
        self._reject(
            x.datagram,
            NO_TEMPLATE,
            f"no template {tid} from {exporter} domain {domain} within {PENDING_SECONDS:.0f} s",
        )

    def _reject(self, d: Datagram, reason: str, detail: str) -> None:
        self.malformed += reason == MALFORMED
        self._bad.append(
            {
                "log.file.path": self.path,
                "log.offset": d.offset,
                "error.type": reason,
                "error.message": detail,
                "event.original": d.payload[: ecs.ORIGINAL_CAP // 2].hex(),
            }
        )

    # -- output ---------------------------------------------------------------------------

    def take(self) -> Decoded:
        """The flows and quarantine rows decoded since the last call, as store tables."""
        now = dt.datetime.now(dt.UTC)
        frames, self._frames = self._frames, []
        bad, self._bad = self._bad, []
        flows = _flows(pl.concat(frames, how="diagonal"), now) if frames else _empty("flows")
        too_old = flows.filter(pl.col("@timestamp").is_null())
        if len(too_old):
            flows = flows.filter(pl.col("@timestamp").is_not_null())
            for off, path in too_old.select("log.offset", "log.file.path").iter_rows():
                bad.append(
                    {
                        "log.file.path": path,
                        "log.offset": off,
                        "error.type": "bad_timestamp",
                        "error.message": "flow time before 2000 or more than a day ahead",
                        "event.original": None,
                    }
                )
        quarantine = (
            ecs.conform(
                pl.DataFrame(bad).with_columns(
                    pl.lit(now).cast(ecs.UTC_TS).alias("@timestamp"),
                    pl.lit("netflow").alias("event.module"),
                ),
                "quarantine",
            )
            if bad
            else _empty("quarantine")
        )
        return Decoded(flows, quarantine)

    # -- state ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything later datagrams may depend on, as JSON-able data."""
        return {
            "templates": [
                [*k, t.scope, t.options, [list(f) for f in t.fields]]
                for k, t in self.templates.items()
            ],
            "sampling": [[*k, v] for k, v in self.sampling.items()],
            "sysinit_ms": [[*k, v] for k, v in self.sysinit_ms.items()],
            "pending": [
                [
                    *x.key,
                    x.datagram.offset,
                    x.datagram.received,
                    x.header.version,
                    x.header.export_ms,
                    x.header.uptime_ms,
                    base64.b64encode(x.body).decode(),
                    x.datagram.payload[:64].hex(),
                ]
                for x in self.pending
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Decoder:
        """A decoder in the state :meth:`state` described."""
        dec = cls()
        for exp, dom, tid, scope, options, fields in state.get("templates", []):
            dec.templates[(exp, dom, tid)] = Template([tuple(f) for f in fields], scope, options)
        dec.sampling = {(e, dm): v for e, dm, v in state.get("sampling", [])}
        dec.sysinit_ms = {(e, dm): v for e, dm, v in state.get("sysinit_ms", [])}
        for exp, dom, tid, off, rec, ver, export, up, body, head in state.get("pending", []):
            dgram = Datagram(off, rec, exp, bytes.fromhex(head))
            dec.pending.append(
                _Pending((exp, dom, tid), dgram, _Header(ver, export, up), base64.b64decode(body))
            )
        return dec


_VERSION_NAME: Final = {5: "netflow_v5", 9: "netflow_v9", 10: "ipfix"}


def _columns(tpl: Template, body: bytes) -> dict[str, np.ndarray] | None:
    """The fields we read from a data set, one numpy array each (None: no records)."""
    wanted = {ie: name for name, ies in IE.items() for ie in ies}
    if not tpl.fixed:
        recs = _records_slow(tpl, body)
        if not recs:
            return None
        cols: dict[str, np.ndarray] = {}
        for ie, name in wanted.items():
            vals = [r.get(ie) for r in recs]
            if any(v is not None for v in vals):
                cols[name] = _from_values(name, vals)
        return cols
    size = tpl.size
    n = len(body) // size if size else 0  # the remainder is padding (RFC 3954 5.3)
    if n == 0:
        return None
    raw = np.frombuffer(body, np.uint8, n * size).reshape(n, size)
    cols = {}
    pos = 0
    for ie, length, enterprise in tpl.fields:
        col = wanted.get(ie) if enterprise == 0 else None
        if col is not None and col not in cols:
            part = raw[:, pos : pos + length]
            cols[col] = _ip6(part) if col.endswith("6") else _uint(part)
        pos += length
    return cols


def _uint(part: np.ndarray) -> np.ndarray:
    """Big-endian unsigned integers of any width up to 8 bytes (reduced-size encoding)."""
    n, width = part.shape
    if width > 8:
        part, width = part[:, width - 8 :], 8
    buf = np.zeros((n, 8), np.uint8)
    buf[:, 8 - width :] = part
    return buf.view(">u8").ravel().astype(np.int64)


def _ip6(part: np.ndarray) -> np.ndarray:
    """IPv6 addresses (16 bytes) as text."""
    if part.shape[1] != 16:
        return np.array([None] * len(part), dtype=object)
    return np.array([socket.inet_ntop(socket.AF_INET6, bytes(r)) for r in part], dtype=object)


def _from_values(name: str, vals: list[int | bytes | None]) -> np.ndarray:
    if name.endswith("6"):
        return np.array(
            [socket.inet_ntop(socket.AF_INET6, v) if isinstance(v, bytes) else None for v in vals],
            dtype=object,
        )
    return np.array([v if isinstance(v, int) else -1 for v in vals], dtype=np.int64)


def _records_slow(tpl: Template, body: bytes) -> list[dict[int, int | bytes]]:
    """Records field by field: variable-length layouts and options data (both rare)."""
    out: list[dict[int, int | bytes]] = []
    pos = 0
    minimum = tpl.size
    while minimum and pos + minimum <= len(body):
        rec: dict[int, int | bytes] = {}
        for ie, length, enterprise in tpl.fields:
            if length == _VARLEN:
                length = body[pos]
                pos += 1
                if length == 255:
                    length = struct.unpack_from(">H", body, pos)[0]
                    pos += 2
            value = body[pos : pos + length]
            if len(value) < length:
                return out  # the rest is padding or damage; what was whole is kept
            pos += length
            if enterprise == 0:
                rec[ie] = value if ie in (27, 28) or length > 8 else int.from_bytes(value)
        out.append(rec)
    return out


def _times(cols: dict[str, np.ndarray], header: _Header, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Flow start and end in epoch milliseconds from whatever time fields the set has."""
    export = np.full(n, header.export_ms, np.int64)

    def up(name: str) -> np.ndarray | None:
        if name not in cols or header.uptime_ms is None:
            return None
        behind = (header.uptime_ms - cols[name]) & 0xFFFFFFFF  # sysUptime wraps at 2**32
        behind = np.where(behind >= 2**31, behind - 2**32, behind)
        return export - behind

    def absolute(kind: str) -> np.ndarray | None:
        if f"{kind}_ms" in cols:
            return cols[f"{kind}_ms"]
        if f"{kind}_s" in cols:
            secs: np.ndarray = cols[f"{kind}_s"] * 1000
            return secs
        for unit in ("us", "ns"):
            if f"{kind}_{unit}" in cols:
                ntp = cols[f"{kind}_{unit}"].astype(np.uint64)
                whole = (ntp >> np.uint64(32)).astype(np.int64) - _NTP_EPOCH
                frac = (ntp & np.uint64(0xFFFFFFFF)).astype(np.int64)
                ms: np.ndarray = whole * 1000 + (frac * 1000 >> 32)
                return ms
        if f"{kind}_delta_us" in cols:
            before: np.ndarray = export - cols[f"{kind}_delta_us"] // 1000
            return before
        return None

    start = absolute("start")
    if start is None:
        start = up("first_up")
    end = absolute("end")
    if end is None:
        end = up("last_up")
    if start is None:
        start = end if end is not None else export
    if end is None:
        end = start
    return start, end


def _near(ms: np.ndarray, export_ms: int) -> np.ndarray:
    """Uptime-based times moved by whole 2**32 ms wraps to the one nearest the export.

    flowStartSysUpTime is an unsigned32 that wraps every 49.7 days, and softflowd, replaying
    a pcap older than its own start, writes the negative offset as a wrapped value.
    """
    wraps = np.round((export_ms - ms) / 2**32).astype(np.int64)
    near: np.ndarray = ms + wraps * 2**32
    return near


def _ipv4(col: str) -> pl.Expr:
    v = pl.col(col)
    return pl.concat_str(
        [((v // 2 ** (8 * k)) % 256).cast(pl.String) for k in (3, 2, 1, 0)], separator="."
    )


def _flags() -> pl.Expr:
    """TCP flags as nfdump prints them (``...AP.SF``), the form nfdump's parser keeps."""
    f = pl.col("_flags").fill_null(0)
    return pl.concat_str(
        [
            pl.when((f // bit) % 2 == 1).then(pl.lit(ch)).otherwise(pl.lit("."))
            for bit, ch in zip((128, 64, 32, 16, 8, 4, 2, 1), "CEUAPRSF", strict=True)
        ]
    )


def _flows(raw: pl.DataFrame, now: dt.datetime) -> pl.DataFrame:
    """Decoded columns of all sets of a batch to conformed ECS ``flows`` rows."""
    for c in ("_src4", "_dst4", "_src6", "_dst6", "_proto", "_sport", "_dport", "_flags"):
        if c not in raw.columns:
            raw = raw.with_columns(pl.lit(None, pl.Int64 if "6" not in c else pl.String).alias(c))
    for c in ("_bytes", "_pkts", "_input", "_output"):
        if c not in raw.columns:
            raw = raw.with_columns(pl.lit(None, pl.Int64).alias(c))
    transport = (
        pl.col("_proto")
        .replace_strict(
            _TRANSPORT, default=pl.col("_proto").cast(pl.String), return_dtype=pl.String
        )
        .alias("network.transport")
    )
    ports = pl.col("_proto").is_in([6, 17, 132])
    lo = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
    hi = int((now + dt.timedelta(days=1)).timestamp() * 1000)
    start = pl.when(pl.col("_start").is_between(lo, hi)).then(pl.col("_start"))
    ts = pl.from_epoch(start, time_unit="ms").dt.replace_time_zone("UTC").cast(ecs.UTC_TS)
    end = pl.from_epoch(pl.col("_end"), time_unit="ms").dt.replace_time_zone("UTC")
    df = raw.select(
        ts.alias("@timestamp"),
        end.cast(ecs.UTC_TS).alias("event.end"),
        ((pl.col("_end") - pl.col("_start")).clip(0) * 1_000_000).alias("event.duration"),
        pl.lit("netflow.flow").alias("event.dataset"),
        pl.lit("netflow").alias("event.module"),
        pl.col("_version").alias("event.code"),
        pl.col("_exporter").alias("observer.name"),
        pl.col("_exporter").alias("observer.ip"),
        pl.lit("router").alias("observer.type"),
        pl.col("_path").alias("log.file.path"),
        pl.col("_offset").alias("log.offset"),
        pl.lit(now).cast(ecs.UTC_TS).alias("event.ingested"),
        pl.coalesce(_ipv4("_src4"), pl.col("_src6")).alias("source.ip"),
        pl.coalesce(_ipv4("_dst4"), pl.col("_dst6")).alias("destination.ip"),
        pl.when(ports).then(pl.col("_sport")).alias("source.port"),
        pl.when(ports).then(pl.col("_dport")).alias("destination.port"),
        pl.col("_bytes").alias("source.bytes"),
        pl.col("_pkts").alias("source.packets"),
        pl.col("_bytes").alias("network.bytes"),
        pl.col("_pkts").alias("network.packets"),
        transport,
        pl.when(pl.col("_proto") == 6).then(_flags()).alias("flow.state"),
        pl.col("_input").cast(pl.String).alias("observer.ingress.interface.name"),
        pl.col("_output").cast(pl.String).alias("observer.egress.interface.name"),
    )
    return ecs.conform(df, "flows")


def _empty(dataset: str) -> pl.DataFrame:
    return pl.DataFrame(schema=ecs.SCHEMAS[dataset])
