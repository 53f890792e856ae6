"""Reading files into chunks: offsets, CRLF, gzip, truncation, growth, bad bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from vpnsentry.collect.files import expand, identity, read_chunks
from vpnsentry.errors import InputError


def _read_all(path: Path, start: int = 0, chunk_bytes: int = 7) -> tuple[list[str], list[int]]:
    files, _ = expand([str(path)])
    lines: list[str] = []
    offs: list[int] = []
    for ch in read_chunks(files[0], start, chunk_bytes=chunk_bytes):
        lines += ch.lines.to_list()
        offs += ch.offsets.to_list()
    return lines, offs


def test_offsets_and_crlf_across_small_chunks(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"one\r\ntwo\n\nthree-is-long\nlast-no-newline")
    lines, offs = _read_all(p)
    assert lines == ["one", "two", "", "three-is-long", "last-no-newline"]
    data = p.read_bytes()
    for line, off in zip(lines, offs, strict=True):
        assert data[off:].startswith(line.encode())


def test_resume_from_offset(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"a\nbb\nccc\n")
    lines, offs = _read_all(p, start=2)
    assert lines == ["bb", "ccc"]
    assert offs == [2, 5]


def test_gzip_and_truncated_gzip(tmp_path: Path) -> None:
    body = b"".join(f"line {i}\n".encode() for i in range(5000))
    good = tmp_path / "good.log.gz"
    good.write_bytes(gzip.compress(body))
    lines, _ = _read_all(good, chunk_bytes=1 << 12)
    assert len(lines) == 5000
    bad = tmp_path / "bad.log.gz"
    bad.write_bytes(gzip.compress(body)[:-2000])
    files, _ = expand([str(bad)])
    got = [ln for ch in read_chunks(files[0], chunk_bytes=1 << 12) for ln in ch.lines.to_list()]
    assert 0 < len(got) < 5000
    # Every complete line is exact; the last one may have been cut by the truncation.
    assert got[:-1] == [f"line {i}" for i in range(len(got) - 1)]
    assert f"line {len(got) - 1}".startswith(got[-1])
    assert files[0].problems and "truncated" in files[0].problems[0].message


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"ok \xff\xfe end\nfine\n")
    files, _ = expand([str(p)])
    chunks = list(read_chunks(files[0]))
    assert chunks[0].lines.to_list() == ["ok \ufffd\ufffd end", "fine"]
    assert chunks[0].replaced == 2


def test_expand_folders_globs_and_missing(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "x.log").write_text("x\n")
    (tmp_path / "d" / "e" / "y.log").write_text("y\n")
    files, missing = expand([str(tmp_path / "d"), str(tmp_path / "nope*.log")])
    assert sorted(f.path.name for f in files) == ["x.log", "y.log"]
    assert missing == [str(tmp_path / "nope*.log")]
    with pytest.raises(InputError):
        expand([str(tmp_path / "nothing-here")])


def test_identity_survives_growth_and_rename(tmp_path: Path) -> None:
    p = tmp_path / "a.log"
    p.write_bytes(b"x" * 5000 + b"\n")
    before = identity(expand([str(p)])[0][0])
    with p.open("ab") as fh:
        fh.write(b"more\n")
    q = tmp_path / "renamed.log"
    p.rename(q)
    assert identity(expand([str(q)])[0][0]) == before
