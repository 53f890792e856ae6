"""RFC 6587 framing of syslog streams, whatever the reads look like; the example config."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tests.serve.helpers import octet_frame
from vpnsentry.collect.syslog import MAX_MESSAGE_BYTES, StreamFramer, datagram, escape
from vpnsentry.serve.config import Listen, load

ROOT = Path(__file__).resolve().parents[2]
messages = st.lists(
    st.binary(min_size=1, max_size=300).filter(lambda m: m.strip(b"\r\n\x00 ") != b""),
    min_size=1,
    max_size=20,
)


def _feed(framer: StreamFramer, stream: bytes, cuts: list[int]) -> tuple[bytes, int]:
    out, count, pos = b"", 0, 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        lines, n = framer.feed(stream[pos:cut])
        out, count, pos = out + lines, count + n, max(pos, cut)
    lines, n = framer.finish()
    return out + lines, count + n


@given(messages, st.lists(st.integers(min_value=0), max_size=10))
def test_octet_counting_survives_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    msgs = [b"<13>" + m for m in msgs]  # a syslog message starts with its PRI
    framer = StreamFramer()
    out, count = _feed(framer, b"".join(octet_frame(m) for m in msgs), cuts)
    assert framer.mode == "octet" and framer.framing_errors == 0
    assert count == len(msgs)
    assert out == b"".join(escape(m) + b"\n" for m in msgs)
    assert out.count(b"\n") == len(msgs)  # inner line breaks were escaped


@given(messages, st.lists(st.integers(min_value=0), max_size=10))
def test_lf_framing_survives_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    lines = [b"<13>" + m.replace(b"\n", b" ") for m in msgs]
    framer = StreamFramer()
    out, count = _feed(framer, b"".join(ln + b"\n" for ln in lines), cuts)
    assert framer.mode == "lf"
    assert count == len(lines)
    assert out == b"".join(ln + b"\n" for ln in lines)


def test_last_line_without_lf_counts_at_end_of_stream() -> None:
    framer = StreamFramer()
    assert framer.feed(b"<13>one\n<13>two") == (b"<13>one\n", 1)
    assert framer.finish() == (b"<13>two\n", 1)


def test_oversize_messages_are_cut_and_counted_in_both_framings() -> None:
    big = b"<13>" + b"x" * (MAX_MESSAGE_BYTES * 2)
    framer = StreamFramer()
    out, count = _feed(framer, octet_frame(big) + octet_frame(b"<13>after"), [1000, 70000])
    assert count == 2 and framer.oversize == 1
    assert out == big[:MAX_MESSAGE_BYTES] + b"\n<13>after\n"
    framer = StreamFramer()
    out, count = _feed(framer, big + b"\n<13>after\n", [5000, 150000])
    assert framer.oversize == 1 and count == 2  # the line's start kept, its tail dropped
    assert out == big[:MAX_MESSAGE_BYTES] + b"\n<13>after\n"


def test_broken_octet_count_falls_back_to_lines_without_loss() -> None:
    framer = StreamFramer()
    out, count = _feed(framer, octet_frame(b"<13>ok") + b"<13>not counted\n<13>more\n", [])
    assert framer.framing_errors == 1
    assert out == b"<13>ok\n<13>not counted\n<13>more\n" and count == 3


def test_datagrams_lose_trailers_and_keep_one_line() -> None:
    assert datagram(b"<13>a\nb\r\n\x00") == b"<13>a#012b\n"
    assert escape(b"<13>a\rb") == b"<13>a#015b"


def test_example_config_is_what_the_loader_reads() -> None:
    cfg = load(ROOT / "deploy" / "serve.toml", {"syslog_udp": ["127.0.0.1:5514"]})
    assert cfg.syslog_udp == [Listen("127.0.0.1", 5514)]  # a flag replaces the file's list
    assert cfg.syslog_tcp == [Listen("0.0.0.0", 514)]
    assert cfg.netflow == [Listen("0.0.0.0", 2055), Listen("0.0.0.0", 4739)]
    assert cfg.metrics == Listen("127.0.0.1", 9514)
    assert cfg.spool_max_bytes == 256 * 1024 * 1024 and cfg.fsync_seconds == 0.1
