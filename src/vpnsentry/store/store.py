"""The store: Parquet parts per dataset and day, and a DuckDB catalog that is the truth.

Layout::

    <root>/catalog.duckdb                  parts and manifest tables
    <root>/<dataset>/day=YYYY-MM-DD/part-<uuid>.parquet
    <root>/.lock                           held by the one writer

Crash safety without a server: a part is written under a temporary name and renamed into
place, and only then is it recorded in the catalog together with the manifest ranges it
came from, in one transaction. A part the catalog does not list is invisible to readers
and deleted by the next writer; a range the manifest does not list is read again. So an
ingest killed at any instant (SIGKILL included) loses nothing and duplicates nothing.

The catalog database is opened only for the length of a transaction, so readers (``query``,
``stats``) are not locked out by a long ingest. This is the only module that writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from vpnsentry import ecs
from vpnsentry.errors import StoreError

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS parts (
    part VARCHAR PRIMARY KEY,       -- path relative to the store root
    dataset VARCHAR NOT NULL,
    day DATE NOT NULL,
    rows BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS manifest (
    head_sha VARCHAR NOT NULL,      -- file identity (see collect.files.FileIdentity)
    head_len INTEGER NOT NULL,
    path VARCHAR NOT NULL,          -- where it was read from (informational)
    format VARCHAR NOT NULL,
    start_offset BIGINT NOT NULL,
    end_offset BIGINT NOT NULL,
    lines BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL
);
"""

_LOCK_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Range:
    """A byte range of a file that has been parsed and is committed with a batch."""

    head_sha: str
    head_len: int
    path: str
    format: str
    start: int
    end: int
    lines: int


@dataclass(frozen=True)
class Done:
    """What the manifest knows of a file identity: where to resume, lines already in."""

    end: int
    lines: int
    format: str


class Store:
    """A store rooted at ``root``. Create with :meth:`open`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.catalog = root / "catalog.duckdb"

    @classmethod
    def open(cls, root: Path, *, create: bool) -> Store:
        """Open a store; with ``create`` make it if missing, else it must exist."""
        root = Path(root)
        if not (root / "catalog.duckdb").exists():
            if not create:
                raise StoreError(
                    f"no vpnsentry store at {root} (ingest something first, or pass --store)"
                )
            root.mkdir(parents=True, exist_ok=True)
        store = cls(root)
        if create:
            with store._db() as con:
                con.execute(_SCHEMA_SQL)
        return store

    # -- catalog access -------------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived catalog connection; waits while another process holds the file."""
        deadline = time.monotonic() + _LOCK_RETRY_SECONDS
        while True:
            try:
                con = duckdb.connect(str(self.catalog), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StoreError(f"cannot open store catalog {self.catalog}: {exc}") from exc
                time.sleep(0.05)
            except duckdb.Error as exc:
                raise StoreError(f"cannot open store catalog {self.catalog}: {exc}") from exc
        try:
            yield con
        except duckdb.Error as exc:
            raise StoreError(f"store catalog error: {exc}") from exc
        finally:
            con.close()

    @contextlib.contextmanager
    def writer(self) -> Iterator[Writer]:
        """Exclusive write access: one writer per store, leftovers of crashes removed."""
        lock_path = self.root / ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(f"store {self.root} is being written by another process") from exc
            self._recover()
            yield Writer(self)
        finally:
            os.close(fd)

    def _recover(self) -> None:
        """Delete temporary files and parts that no committed transaction lists."""
        with self._db(read_only=True) as con:
            known = {r[0] for r in con.execute("SELECT part FROM parts").fetchall()}
        for dataset in ecs.DATASETS:
            base = self.root / dataset
            if not base.exists():
                continue
            for f in base.rglob("*"):
                if not f.is_file():
                    continue
                rel = f.relative_to(self.root).as_posix()
                if f.name.endswith(".tmp") or rel not in known:
                    f.unlink()

    def parts(self) -> dict[str, list[str]]:
        """Committed part paths per dataset (absolute)."""
        out: dict[str, list[str]] = {d: [] for d in ecs.DATASETS}
        with self._db(read_only=True) as con:
            rows = con.execute("SELECT dataset, part FROM parts ORDER BY part").fetchall()
        for dataset, part in rows:
            out.setdefault(dataset, []).append(str(self.root / part))
        return out

    # -- reading --------------------------------------------------------------------------

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A sandboxed in-memory DuckDB connection with one view per dataset.

        Views are typed from :mod:`vpnsentry.ecs` even when a dataset has no parts yet, so
        queries never fail just because nothing of that kind was ingested. The connection
        may read the committed parts and nothing else: file access outside them is
        disabled and the configuration locked, so ``query`` cannot write or read files.
        """
        parts = self.parts()
        con = duckdb.connect(":memory:")
        for dataset in ecs.DATASETS:
            files = parts.get(dataset, [])
            if files:
                rel = con.read_parquet(files, hive_partitioning=True, union_by_name=True)
                rel.project(
                    *[duckdb.ColumnExpression(c) for c in rel.columns if c != "day"]
                ).create_view(dataset)
            else:
                empty = pl.DataFrame(schema=ecs.SCHEMAS[dataset]).to_arrow()
                con.register(f"_empty_{dataset}", empty)
                con.execute(f"CREATE VIEW {dataset} AS SELECT * FROM _empty_{dataset}")
        allowed = [f for files in parts.values() for f in files]
        con.execute("SET allowed_paths = " + _sql_list(allowed))
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con


class Writer:
    """Writes batches of parsed tables and their manifest ranges, atomically.

    The manifest summary is read once when writing starts and kept up to date in memory:
    a folder of thousands of files must not cost a catalog round trip per file.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        with store._db(read_only=True) as con:
            rows = con.execute(
                "SELECT head_sha, head_len, max(end_offset), sum(lines), any_value(format) "
                "FROM manifest GROUP BY ALL"
            ).fetchall()
        self._done = {(r[0], int(r[1])): Done(int(r[2]), int(r[3]), str(r[4])) for r in rows}

    def done(self, head_sha: str, head_len: int) -> Done | None:
        """How far a file identity has been ingested, or None if never."""
        return self._done.get((head_sha, head_len))

    def claim(self, r: Range) -> None:
        """Note a range as taken by this run before it is committed.

        A second file with the same content in the same run then resumes after it instead
        of being ingested again. Only the committed catalog survives a crash, so a claim
        that never commits is simply read again next run.
        """
        prev = self._done.get((r.head_sha, r.head_len))
        lines = r.lines + (prev.lines if prev else 0)
        end = max(r.end, prev.end if prev else 0)
        self._done[(r.head_sha, r.head_len)] = Done(end, lines, r.format)

    def head_lengths(self) -> list[int]:
        """Distinct identity lengths (to recognise files first seen while small)."""
        return sorted({length for _, length in self._done})

    def commit(self, tables: dict[str, pl.DataFrame], ranges: list[Range]) -> int:
        """Write ``tables`` as parts per day, then record parts and ranges together.

        Returns the number of rows written. Partial failure before the catalog transaction
        leaves only unlisted files, which :meth:`Store._recover` removes.
        """
        root = self.store.root
        now = dt.datetime.now(dt.UTC)
        written: list[tuple[str, str, dt.date, int]] = []
        folders: set[Path] = set()
        for dataset, df in tables.items():
            if df.is_empty():
                continue
            days = df.with_columns(pl.col("@timestamp").dt.date().alias("_day"))
            for (day,), part_df in days.partition_by("_day", as_dict=True).items():
                assert isinstance(day, dt.date)
                folder = root / dataset / f"day={day.isoformat()}"
                folder.mkdir(parents=True, exist_ok=True)
                name = f"part-{uuid.uuid4().hex}.parquet"
                tmp = folder / (name + ".tmp")
                part_df.drop("_day").write_parquet(
                    tmp, compression="zstd", compression_level=1, statistics=True
                )
                with tmp.open("rb") as fh:
                    os.fsync(fh.fileno())
                tmp.rename(folder / name)
                folders.add(folder)
                written.append(
                    ((folder / name).relative_to(root).as_posix(), dataset, day, len(part_df))
                )
        for folder in folders:
            _fsync_dir(folder)
        with self.store._db() as con:
            con.execute("BEGIN TRANSACTION")
            if written:
                con.executemany(
                    "INSERT INTO parts VALUES (?, ?, ?, ?, ?)",
                    [(p, d, day, n, now) for p, d, day, n in written],
                )
            if ranges:
                con.executemany(
                    "INSERT INTO manifest VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.head_sha, r.head_len, r.path, r.format, r.start, r.end, r.lines, now)
                        for r in ranges
                    ],
                )
            con.execute("COMMIT")
        return sum(n for *_, n in written)


def _fsync_dir(path: Path) -> None:
    """Make renames durable before the catalog says the parts exist."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sql_list(items: list[str]) -> str:
    """A DuckDB list literal of strings (SET cannot take bound parameters)."""
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"
