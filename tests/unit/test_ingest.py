"""The ingest stage's accounting, called in-process (the CLI tests cover the subprocess)."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_ingest_cli import FORTI
from vpnsentry.ingest import ingest
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
