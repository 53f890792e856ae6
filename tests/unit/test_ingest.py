"""The ingest stage's accounting, called in-process (the CLI tests cover the subprocess)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

from tests.e2e.test_ingest_cli import FORTI
from vpnsentry.collect.files import CHUNK_BYTES
from vpnsentry.ingest import ingest
from vpnsentry.parse.base import registry
from vpnsentry.store.store import Store


def test_same_content_twice_in_one_run_is_stored_once(tmp_path: Path) -> None:
    body = "".join(FORTI.format(s=i, user=f"u{i}") + "\n" for i in range(30))
    (tmp_path / "a.log").write_text(body)
    (tmp_path / "copy-of-a.log").write_text(body)
    stats = ingest([str(tmp_path / "a.log"), str(tmp_path / "copy-of-a.log")], tmp_path / "s")
    assert [f.parsed for f in stats.files] == [30, 0]
    assert [f.duplicates for f in stats.files] == [0, 30]
    con = Store.open(tmp_path / "s", create=False).reader()
    assert con.execute("SELECT count(*) FROM events").fetchone() == (30,)


def test_small_file_that_grows_resumes(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(FORTI.format(s=1, user="a") + "\n")  # far below the identity's 4 KiB
    ingest([str(log)], tmp_path / "s")
    with log.open("a") as fh:
        fh.write("".join(FORTI.format(s=i, user=f"b{i}") + "\n" for i in range(20)))
    stats = ingest([str(log)], tmp_path / "s")
    assert stats.files[0].duplicates == 1 and stats.files[0].parsed == 20
    con = Store.open(tmp_path / "s", create=False).reader()
    assert con.execute("SELECT count(*) FROM events").fetchone() == (21,)


# -- formats whose chunks depend on the chunk before (parser.stateful) ----------------------

_NFDUMP_HEADER = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out"
_NFDUMP_ROW = (
    "2025-03-03 10:{m:02d}:{s:02d},2025-03-03 10:{m:02d}:{s:02d},0.500,10.10.{a}.{b},"
    "52.216.141.142,{p},443,TCP,.AP.SF,0,0,11,10142,0,0,2,1"
)
_ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
    "#path\tconn\n#open\t2025-03-03-00-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration"
    "\torig_bytes\tresp_bytes\tconn_state\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\n"
)
_ZEEK_ROW = (
    "1741000000.{i:06d}\tC{i:017d}\t10.10.{a}.{b}\t{p}\t52.216.141.142\t443\ttcp\tssl\t0.5"
    "\t100\t200\tSF"
)


def _past_one_chunk(row: str, count_guess: int) -> list[str]:
    """Enough distinct ``row`` lines for a file larger than one read chunk (16 MiB)."""
    lines = [
        row.format(i=i, m=(i // 60) % 60, s=i % 60, a=(i >> 8) & 255, b=i & 255, p=1024 + i % 60000)
        for i in range(count_guess)
    ]
    assert sum(len(x) + 1 for x in lines) > CHUNK_BYTES + 1_000_000
    return lines


@pytest.mark.slow
def test_headed_formats_parse_every_chunk_of_a_large_file(tmp_path: Path) -> None:
    """A CSV or Zeek header at the top of a file governs all of it, not the first chunk only:
    parsed in parallel, every nfdump line past the first 16 MiB was quarantined."""
    nf = _past_one_chunk(_NFDUMP_ROW, 230_000)
    (tmp_path / "nfcapd.csv").write_text(_NFDUMP_HEADER + "\n" + "\n".join(nf) + "\n")
    zeek = _past_one_chunk(_ZEEK_ROW, 190_000)
    (tmp_path / "conn.log").write_text(_ZEEK_HEADER + "\n".join(zeek) + "\n")
    stats = ingest([str(tmp_path / "nfcapd.csv"), str(tmp_path / "conn.log")], tmp_path / "s")
    by_format = {f.format: f for f in stats.files}
    assert by_format["nfdump"].quarantined == 0 and by_format["nfdump"].parsed == len(nf)
    assert by_format["zeek_conn"].quarantined == 0
    assert by_format["zeek_conn"].parsed == len(zeek)


@pytest.mark.slow
def test_asa_teardown_in_a_later_chunk_keeps_its_builds_direction(tmp_path: Path) -> None:
    host = "<166>Oct 07 2026 08:30:00 asa-fw-01 : "
    built = (
        host + "%ASA-6-302013: Built outbound TCP connection {i} for outside:198.51.100.80/5000 "
        "(198.51.100.80/5000) to inside:192.0.2.15/5001 (203.0.113.5/5001)"
    )
    # filler between build and teardown: denials, which keep no state
    filler = (
        host + "%ASA-4-106023: Deny udp src outside:198.51.100.{a}/{p} dst inside:192.0.2.40/53 "
        'by access-group "acl" [0x0, 0x0] {i}'
    )
    teardown = (
        host + "%ASA-6-302014: Teardown TCP connection {i} for outside:198.51.100.80/5000 "
        "to inside:192.0.2.15/5001 duration 0:00:10 bytes 100 TCP FINs"
    )
    lines = [built.format(i=i) for i in range(1, 101)]
    lines += _past_one_chunk(filler, 150_000)
    lines += [teardown.format(i=i) for i in range(1, 101)]
    (tmp_path / "asa.log").write_text("\n".join(lines) + "\n")
    stats = ingest([str(tmp_path / "asa.log")], tmp_path / "s")
    assert stats.files[0].format == "cisco_asa" and stats.files[0].quarantined == 0
    con = Store.open(tmp_path / "s", create=False).reader()
    got = con.execute(
        """SELECT "source.ip", "network.direction", count(*) FROM flows
           WHERE "event.action" = 'flow-expiration' GROUP BY ALL"""
    ).fetchall()
    # ports alone would make the outside host (lower port) the server: the build says the
    # inside host initiated
    assert got == [("192.0.2.15", "outbound", 100)]


def test_every_parser_that_keeps_state_declares_it() -> None:
    """Ingest parses a stateful parser's chunks in order, one at a time; one that used
    ``ctx.state`` undeclared would see chunks out of order."""
    for name, cls in registry().items():
        source = inspect.getsource(sys.modules[cls.__module__])
        assert cls.stateful == ("ctx.state" in source), name
