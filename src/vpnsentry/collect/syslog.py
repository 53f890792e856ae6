"""Collect: syslog receive side, from datagrams and byte streams to spool lines.

Transports (the listeners are in ``serve/listeners.py``; this module only frames):

* UDP (RFC 5426): one datagram is one message.
* TCP (RFC 6587): octet counting (``MSG-LEN SP SYSLOG-MSG``) or non-transparent framing
  (messages ended by LF). Senders do not announce which, so it is detected per connection
  from the first byte: a digit starts an octet count (a syslog message itself starts with
  ``<``). An octet-counted stream whose next header is not ``digits SP`` has lost its
  framing; the connection falls back to LF framing from there, so nothing is dropped.
* TLS (RFC 5425) carries octet-counted frames; the same framer reads it.

RFC 3164 and RFC 5424 headers are not taken apart here: the vendor parsers already read both
(``parse/syslog.py``), so the spool keeps each message exactly as sent, one per line. A line
break inside a message (possible with octet counting) is written as ``#012`` and a carriage
return as ``#015``, the escapes rsyslog writes for control characters, so a message stays
one line and one store row. A trailing LF, CR or NUL that some senders add is dropped.

Messages longer than :data:`MAX_MESSAGE_BYTES` are cut to that length (and counted in
``oversize``); the parsers then quarantine them as ``line_too_long`` with their start kept,
so even a hostile sender costs bounded memory and leaves a trace.
"""

from __future__ import annotations

import re

#: Longest message kept whole. Above the parsers' 64 KiB line limit, so a cut line is
#: always reported as too long rather than parsed half.
MAX_MESSAGE_BYTES = 128 * 1024
#: Longest octet-count header we accept: 10 digits is more than any sane message.
_MAX_HEADER = 10
_HEADER = re.compile(rb"[\r\n ]*([0-9]{1,10}) ")


def escape(msg: bytes) -> bytes:
    """One message as one spool line body: strip trailers, escape inner CR/LF, cap length."""
    msg = msg.rstrip(b"\r\n\x00")
    if len(msg) > MAX_MESSAGE_BYTES:
        msg = msg[:MAX_MESSAGE_BYTES]
    if b"\n" in msg or b"\r" in msg:
        msg = msg.replace(b"\r", b"#015").replace(b"\n", b"#012")
    return msg


def datagram(payload: bytes) -> bytes:
    """The spool line (LF-terminated) for one UDP datagram."""
    return escape(payload) + b"\n"


class StreamFramer:
    """Frames one TCP/TLS connection's byte stream into spool lines.

    ``feed`` returns complete messages as LF-terminated lines ready for the spool and how
    many there are; a partial message stays buffered until its rest arrives.
    """

    def __init__(self) -> None:
        self.mode: str | None = None  # "octet" or "lf", decided by the first byte
        self._buf = b""
        self._skip = 0  # octet mode: bytes of an oversize message still to discard
        self._discarding = False  # LF mode: inside an oversize line, drop up to its LF
        self.oversize = 0
        self.framing_errors = 0

    def feed(self, data: bytes) -> tuple[bytes, int]:
        """Add received bytes; return (spool lines, number of messages)."""
        if self.mode is None:
            stripped = data.lstrip(b"\r\n ")
            if not stripped:
                return b"", 0
            self.mode = "octet" if stripped[:1].isdigit() else "lf"
        if self.mode == "octet":
            return self._octets(data)
        return self._lines(data)

    def finish(self) -> tuple[bytes, int]:
        """At end of stream: a last message without its LF still counts (LF framing)."""
        rest, self._buf = self._buf, b""
        if self.mode == "lf" and rest.strip(b"\r\n\x00 ") and not self._discarding:
            return escape(rest) + b"\n", 1
        return b"", 0

    def _lines(self, data: bytes) -> tuple[bytes, int]:
        if self._discarding:
            cut = data.find(b"\n")
            if cut < 0:
                return b"", 0
            self._discarding = False
            data = data[cut + 1 :]
        buf = self._buf + data if self._buf else data
        cut = buf.rfind(b"\n") + 1
        out, self._buf = buf[:cut], buf[cut:]
        count = out.count(b"\n")
        if len(self._buf) > MAX_MESSAGE_BYTES:  # no LF in sight: keep the start, drop on
            out += escape(self._buf) + b"\n"
            count += 1
            self.oversize += 1
            self._buf = b""
            self._discarding = True
        return out, count

    def _octets(self, data: bytes) -> tuple[bytes, int]:
        if self._skip:
            drop = min(self._skip, len(data))
            self._skip -= drop
            data = data[drop:]
        buf = self._buf + data if self._buf else data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while pos < end:
            m = _HEADER.match(buf, pos)
            if m is None:
                if end - pos <= _MAX_HEADER + 2 and buf[pos:].strip(b"\r\n ").isdigit():
                    break  # a header cut by the read: wait for the rest
                # Lost framing: read the rest of the connection as LF-framed lines.
                self.framing_errors += 1
                self.mode, self._buf = "lf", b""
                lines, n = self._lines(buf[pos:])
                return b"".join(out) + lines, len(out) + n
            size = int(m.group(1))
            body = m.end()
            if size > MAX_MESSAGE_BYTES:
                if end - body < MAX_MESSAGE_BYTES:
                    break  # wait until the kept part is here
                out.append(escape(buf[body : body + MAX_MESSAGE_BYTES]) + b"\n")
                self.oversize += 1
                left = size - MAX_MESSAGE_BYTES
                avail = end - body - MAX_MESSAGE_BYTES
                if avail < left:
                    self._skip = left - avail
                    pos = end
                    break
                pos = body + size
                continue
            if end - body < size:
                break
            out.append(escape(buf[body : body + size]) + b"\n")
            pos = body + size
        self._buf = buf[pos:]
        return b"".join(out), len(out)
