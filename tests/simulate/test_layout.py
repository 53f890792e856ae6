"""The layout kernel against Python's own formatting, and file assembly by row index."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsentry.simulate.layout import PAGE, FileBuffer, Layout, Lines, Table, vocab, write_file

WORDS = ["", "tcp", "Reserved", "ipsec-chi-tyo", "日本"]

rows = st.lists(
    st.tuples(
        st.integers(-(2**62), 2**62),  # any decimal
        st.integers(0, 2**32 - 1),  # an address
        st.integers(0, 999_999),  # microseconds
        st.integers(0, len(WORDS) - 1),  # a word
        st.booleans(),  # an optional run
        st.binary(min_size=3, max_size=3).map(lambda b: bytes(65 + x % 26 for x in b)),
    ),
    min_size=0,
    max_size=60,
)


def _rendered(lay: Layout) -> list[str]:
    data, offs = lay.render()
    return [bytes(data[offs[i] : offs[i + 1]]).decode("utf-8") for i in range(lay.n)]


@settings(max_examples=60, deadline=None)
@given(rows)
def test_lines_are_what_python_writes(values: list[tuple[int, int, int, int, bool, bytes]]) -> None:
    n = len(values)
    cols = [list(col) for col in zip(*values, strict=True)] or [[] for _ in range(6)]
    num, ip, us, word, flag, fixed = cols
    lay = Layout(n)
    lay.text("n=").num(np.array(num, dtype=np.int64)).text(" ip=").ip(np.array(ip, np.uint32))
    lay.text(".").pad(np.array(us, dtype=np.int64), 6).text(' w="').pick(WORDS, np.array(word))
    lay.optional(np.array(flag, dtype=bool), lambda w: w.text('" opt=').num(np.array(us)))
    mat = np.frombuffer(b"".join(fixed), dtype=np.uint8).reshape(n, 3)
    lay.text('" id=').fixed(mat).text(" end")
    expected = [
        f'n={a} ip={ipaddress.IPv4Address(b)}.{c:06d} w="{WORDS[d]}'
        + (f'" opt={c}' if e else "")
        + f'" id={f.decode()} end'
        for a, b, c, d, e, f in values
    ]
    assert _rendered(lay) == expected


def test_codes_outside_a_table_are_refused() -> None:
    with pytest.raises(IndexError):
        Layout(2).pick(["a", "b"], np.array([0, 2]))
    with pytest.raises(ValueError, match="column of 3 values for 2 lines"):
        Layout(2).num(np.arange(3))


def test_vocab_codes_words_and_nulls() -> None:
    import polars as pl

    table, codes = vocab(pl.Series(["b", None, "a", "b"]), " ({})")
    lay = Layout(4).pick(table, codes)
    assert _rendered(lay) == [" (b)", "", " (a)", " (b)"]


def test_file_assembly_orders_lines_and_replaces_garbled_ones() -> None:
    parts = []
    for words, order in ((["c", "a"], [3, 1]), (["b", "d", "late"], [2, 4, 99])):
        lay = Layout(len(words)).pick(Table.of(words), np.arange(len(words)))
        parts.append(Lines.of(lay, np.array(order), -1))
    picks = [(parts[0], np.array([0, 1])), (parts[1], np.array([0, 1]))]
    order = np.concatenate([p.order[i] for p, i in picks])
    perm = np.argsort(order, kind="stable")
    buf = FileBuffer()
    assert bytes(buf.assemble(picks, perm, {})) == b"a\nb\nc\nd\n"
    # the same buffer again, a garbled line (longer than the original) in the middle
    assert bytes(buf.assemble(picks, perm, {1: "b\x00\x00"})) == b"a\nb\x00\x00\nc\nd\n"
    # with a header and a footer around the lines
    whole = buf.assemble(picks, perm, {}, b"#head\n", b"#end\n")
    assert bytes(whole) == b"#head\na\nb\nc\nd\n#end\n"


@pytest.mark.parametrize("size", [0, 1, PAGE - 1, PAGE, 3 * PAGE + 17, (1 << 20) + 5])
@pytest.mark.parametrize("folder", ["tmp", "shm"])
def test_files_are_written_whole_with_or_without_direct_io(
    tmp_path: Path, size: int, folder: str
) -> None:
    """The page-aligned bulk goes with O_DIRECT where the file system takes it (the test
    folder), the rest and any file system that refuses it (tmpfs) through the page cache;
    either way the file holds exactly the bytes, and a shorter rewrite truncates it."""
    if folder == "shm":
        if not Path("/dev/shm").is_dir():
            pytest.skip("no /dev/shm")
        base = Path("/dev/shm")
    else:
        base = tmp_path
    path = base / f"vpnsentry-test-{size}-{tmp_path.name}.log"
    data = (b"a line of text " * (size // 15 + 1))[:size]
    lay = Layout(1).pick(Table.of([data.decode()]), np.zeros(1, dtype=np.int64))
    buf = FileBuffer()
    one = Lines.of(lay, np.zeros(1, dtype=np.int64), -1)
    view = buf.assemble([(one, np.array([0]))], np.array([0]), {})
    assert np.frombuffer(view, dtype=np.uint8).ctypes.data % PAGE == 0
    try:
        write_file(path, view)
        assert path.read_bytes() == data + b"\n"
        # a buffer that is not page-aligned: the device refuses it, the page cache takes it
        odd = np.zeros(size + 2, dtype=np.uint8)[1:]
        odd[:] = np.frombuffer(data + b"\n", dtype=np.uint8)
        write_file(path, odd.data)
        assert path.read_bytes() == data + b"\n"
        write_file(path, memoryview(b"short\n"))
        assert path.read_bytes() == b"short\n"
    finally:
        path.unlink(missing_ok=True)
