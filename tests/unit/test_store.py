"""The store: crash leftovers are removed, empty datasets still query, commits are atomic."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from vpnsentry import ecs
from vpnsentry.store.store import Range, Store


def _events(n: int, day: int = 1) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "@timestamp": [dt.datetime(2026, 6, day, 12, i % 60, tzinfo=dt.UTC) for i in range(n)],
            "user.name": [f"u{i}" for i in range(n)],
        }
    )
    return ecs.conform(df, "events")


def test_commit_then_read_and_recover(tmp_path: Path) -> None:
    store = Store.open(tmp_path, create=True)
    with store.writer() as w:
        w.commit(
            {"events": pl.concat([_events(3, 1), _events(2, 2)])},
            [Range("sha", 10, "f.log", "fortinet_fortigate", 0, 100, 5)],
        )
    # A crash between writing a part and the catalog commit leaves an unlisted part
    # and perhaps a temporary file: readers must not see them, the next writer deletes them.
    orphan = tmp_path / "events" / "day=2026-06-01" / "part-orphan.parquet"
    _events(7).write_parquet(orphan)
    tmp = tmp_path / "events" / "day=2026-06-01" / "part-x.parquet.tmp"
    tmp.write_bytes(b"partial")
    con = store.reader()
    assert con.execute("SELECT count(*) FROM events").fetchone() == (5,)
    with store.writer() as w:
        done = w.done("sha", 10)
    assert not orphan.exists() and not tmp.exists()
    assert done is not None and done.end == 100 and done.lines == 5


def test_empty_store_has_typed_views(tmp_path: Path) -> None:
    con = Store.open(tmp_path, create=True).reader()
    assert con.execute('SELECT count(*), max("@timestamp") FROM flows').fetchone() == (0, None)
    cols = [r[0] for r in con.execute("DESCRIBE quarantine").fetchall()]
    assert cols == list(ecs.QUARANTINE)
