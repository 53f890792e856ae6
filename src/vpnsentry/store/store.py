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
import dataclasses
import datetime as dt
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from vpnsentry import ecs
from vpnsentry.correlate.model import Incident, incident_from_dict, incident_to_dict
from vpnsentry.errors import StoreError

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS parts (
    part VARCHAR PRIMARY KEY,       -- path relative to the store root
    dataset VARCHAR NOT NULL,
    day DATE NOT NULL,
    rows BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressions (
    id VARCHAR PRIMARY KEY,         -- short hash, what `suppress remove` takes
    rule_id VARCHAR NOT NULL,       -- a detection id or '*'
    field VARCHAR NOT NULL,         -- see SUPPRESS_FIELDS
    value VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    expires TIMESTAMPTZ,            -- alerts whose evidence starts at or after it fire again
    author VARCHAR
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

#: Entity fields a suppression can name, and how each is matched against an alert. ``ip``
#: and ``user`` match any related address or user, so one suppression covers an address
#: whether it appears as source, destination or host.
SUPPRESS_FIELDS: Final[dict[str, str]] = {
    "user.name": 'lower(a."user.name") = lower(s.value) OR list_contains('
    'list_transform(a."related.user", lambda x: lower(x)), lower(s.value))',
    "source.ip": 'a."source.ip" = s.value',
    "destination.ip": 'a."destination.ip" = s.value',
    "ip": 'list_contains(a."related.ip", s.value)',
    "host.name": 'lower(a."host.name") = lower(s.value) OR list_contains('
    'list_transform(a."related.hosts", lambda x: lower(x)), lower(s.value))',
    "observer.name": 'lower(a."observer.name") = lower(s.value)',
    "alert.key": 'a."alert.key" = s.value',
    "alert.id": 'a."alert.id" = s.value',
}

_DUCK_TYPES: Final[dict[type[pl.DataType], str]] = {
    pl.String: "VARCHAR",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Float64: "DOUBLE",
    pl.Boolean: "BOOLEAN",
    pl.Datetime: "TIMESTAMPTZ",
}


def _duck_type(dtype: object) -> str:
    if isinstance(dtype, pl.List):
        return _duck_type(dtype.inner) + "[]"
    return _DUCK_TYPES[type(dtype)]  # type: ignore[index]


_ALERTS_SQL: Final = (
    "CREATE TABLE IF NOT EXISTS alerts ("
    + ", ".join(f'"{name}" {_duck_type(t)}' for name, t in ecs.ALERTS.items())
    + ");"
)

#: Incidents (vpnsentry.correlate): the whole incident as JSON (``incident_to_dict``) plus the
#: columns a listing sorts and filters by; ``incident_alerts`` says which alerts each holds.
_INCIDENTS_SQL: Final = """
CREATE TABLE IF NOT EXISTS incidents (
    id VARCHAR PRIMARY KEY,         -- INC-<hash of the founding alert id>, stable across runs
    payload VARCHAR NOT NULL,       -- JSON text: vpnsentry.correlate.model.incident_to_dict
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    severity VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, -- when this id was first stored (kept across reruns)
    updated_at TIMESTAMPTZ NOT NULL  -- when its payload last changed
);
CREATE TABLE IF NOT EXISTS incident_alerts (
    incident_id VARCHAR NOT NULL,
    alert_id VARCHAR NOT NULL
);
"""


@dataclass(frozen=True)
class AlertCounts:
    """What a detect run changed in the alerts table."""

    new: int
    updated: int
    removed: int
    #: Ids of the alerts this run raised for the first time (live mode sends exactly these).
    new_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncidentCounts:
    """What a correlate run changed in the incidents table."""

    new: int
    updated: int  # same id, payload changed (new evidence, new title...)
    unchanged: int
    removed: int


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
                con.execute(_ALERTS_SQL)
                con.execute(_INCIDENTS_SQL)
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
            with self._db() as con:  # stores made by older versions gain the new tables
                con.execute(_SCHEMA_SQL)
                con.execute(_ALERTS_SQL)
                con.execute(_INCIDENTS_SQL)
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

    def alerts(self) -> pl.DataFrame:
        """Every stored alert (alerts are few: they are read whole and filtered in memory)."""
        with self._db(read_only=True) as con:
            if not _has_table(con, "alerts"):
                return pl.DataFrame(schema=ecs.ALERTS)
            con.execute("SET TimeZone = 'UTC'")
            table = con.sql(
                'SELECT * FROM alerts ORDER BY "@timestamp", "alert.id"'
            ).to_arrow_table()
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        return ecs_alerts(df)

    def suppressions(self) -> list[dict[str, object]]:
        """Every suppression, newest first."""
        with self._db(read_only=True) as con:
            if not _has_table(con, "suppressions"):
                return []
            con.execute("SET TimeZone = 'UTC'")
            cur = con.execute("SELECT * FROM suppressions ORDER BY created DESC, id")
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def incidents(self) -> list[Incident]:
        """Every stored incident (from the last correlate run), earliest evidence first."""
        with self._db(read_only=True) as con:
            if not _has_table(con, "incidents"):
                return []
            con.execute("SET TimeZone = 'UTC'")
            rows = con.execute(
                "SELECT payload, created_at FROM incidents ORDER BY first_seen, id"
            ).fetchall()
        out: list[Incident] = []
        for payload, created in rows:
            d = json.loads(payload)
            d["incident.opened_at"] = created.isoformat()
            out.append(incident_from_dict(d))
        return out

    # -- reading --------------------------------------------------------------------------

    def reader(self, since: dt.datetime | None = None) -> duckdb.DuckDBPyConnection:
        """A sandboxed in-memory DuckDB connection with one view per dataset.

        Views are typed from :mod:`vpnsentry.ecs` even when a dataset has no parts yet, so
        queries never fail just because nothing of that kind was ingested. The connection
        may read the committed parts and nothing else: file access outside them is
        disabled and the configuration locked, so ``query`` cannot write or read files.

        ``since`` narrows the views to rows from that time on, and the parts read to the
        day partitions that can hold them: live detection reruns over a trailing window
        must cost the window, not the whole store.
        """
        parts = self.parts()
        con = duckdb.connect(":memory:")
        for dataset in ecs.DATASETS:
            files = parts.get(dataset, [])
            if since is not None:
                first = f"day={since.astimezone(dt.UTC).date().isoformat()}"
                files = [f for f in files if Path(f).parent.name >= first]
            if files:
                rel = con.read_parquet(files, hive_partitioning=True, union_by_name=True)
                if since is not None and dataset != "quarantine":
                    rel = rel.filter(
                        duckdb.ColumnExpression("@timestamp") >= duckdb.ConstantExpression(since)
                    )
                rel.project(
                    *[duckdb.ColumnExpression(c) for c in rel.columns if c != "day"]
                ).create_view(dataset)
            else:
                empty = pl.DataFrame(schema=ecs.SCHEMAS[dataset]).to_arrow()
                con.register(f"_empty_{dataset}", empty)
                con.execute(f"CREATE VIEW {dataset} AS SELECT * FROM _empty_{dataset}")
        # Big analytics (a month of NetFlow) must spill to disk rather than take the
        # machine's memory: DuckDB's default is 80% of RAM.
        con.execute(f"SET memory_limit = '{memory_limit_mb()}MB'")
        con.execute("SET temp_directory = " + _sql_list([str(self.root / ".tmp")])[1:-1])
        con.execute("SET preserve_insertion_order = false")
        # Days are UTC days (the partitions are): date_trunc('day', ...) must not depend on
        # the machine's zone.
        con.execute("SET TimeZone = 'UTC'")
        con.register("_alerts", self.alerts().to_arrow())
        con.execute("CREATE VIEW alerts AS SELECT * FROM _alerts")
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

    # -- alerts ---------------------------------------------------------------------------

    def replace_alerts(
        self,
        alerts: pl.DataFrame,
        rules: list[str],
        since: dt.datetime | None,
        until: dt.datetime | None,
    ) -> AlertCounts:
        """Make the stored alerts of ``rules`` in [since, until) exactly ``alerts``.

        A rerun is authoritative for what it covered: alerts it raises again keep their
        ``event.created`` (when they were first raised, which time-to-detect needs), alerts
        it no longer raises are removed, alerts of other detections or outside the window
        are untouched. Suppressions are applied to the result.
        """
        window = ['"rule.id" IN (SELECT unnest($rules))']
        if since is not None:
            window.append('"@timestamp" >= $since')
        if until is not None:
            window.append('"@timestamp" < $until')
        cond = " AND ".join(window)
        params: dict[str, object] = {"rules": rules}
        if since is not None:
            params["since"] = since
        if until is not None:
            params["until"] = until
        new = ecs_alerts(alerts).to_arrow()
        with self.store._db() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.register("_new", new)
            con.execute("BEGIN TRANSACTION")
            old = con.execute(
                f'SELECT "alert.id", "event.created" FROM alerts WHERE ({cond}) '
                'OR "alert.id" IN (SELECT "alert.id" FROM _new)',
                params,
            ).fetchall()
            created = dict(old)
            con.execute(
                f'DELETE FROM alerts WHERE ({cond}) OR "alert.id" IN (SELECT "alert.id" FROM _new)',
                params,
            )
            con.execute(
                'INSERT INTO alerts SELECT n.* REPLACE (coalesce(o.created, n."event.created") '
                'AS "event.created") FROM _new n LEFT JOIN (SELECT unnest($ids) AS id, '
                'unnest($created) AS created) o ON o.id = n."alert.id"',
                {"ids": list(created), "created": list(created.values())},
            )
            _apply_suppressions(con)
            con.execute("COMMIT")
        ids = set(new.column("alert.id").to_pylist())
        fresh = tuple(sorted(ids - set(created)))
        return AlertCounts(
            new=len(fresh),
            updated=len(ids) - len(fresh),
            removed=len(set(created) - ids),
            new_ids=fresh,
        )

    def add_suppression(
        self,
        rule_id: str,
        field: str,
        value: str,
        reason: str,
        expires: dt.datetime | None,
        author: str | None,
    ) -> tuple[str, int]:
        """Record a suppression and apply it to stored alerts; return (id, alerts matched)."""
        now = dt.datetime.now(dt.UTC)
        sid = uuid.uuid4().hex[:10]
        with self.store._db() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute(
                "INSERT INTO suppressions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [sid, rule_id, field, value, reason, now, expires, author],
            )
            _apply_suppressions(con)
            row = con.execute(
                'SELECT count(*) FROM alerts WHERE "alert.suppression" LIKE ?', [f"[{sid}]%"]
            ).fetchall()[0]
            con.execute("COMMIT")
        return sid, int(row[0]) if row else 0

    def remove_suppression(self, sid: str) -> bool:
        """Delete a suppression; alerts it covered are active again. False if unknown."""
        with self.store._db() as con:
            con.execute("BEGIN TRANSACTION")
            deleted = con.execute(
                "DELETE FROM suppressions WHERE id = ? RETURNING id", [sid]
            ).fetchall()
            _apply_suppressions(con)
            con.execute("COMMIT")
        return bool(deleted)

    # -- incidents ------------------------------------------------------------------------

    def replace_incidents(self, incidents: list[Incident]) -> IncidentCounts:
        """Make the stored incidents exactly ``incidents`` (a correlate run is authoritative).

        An id stored before keeps its ``created_at``; ``updated_at`` moves only when the
        incident's payload changed.
        """
        now = dt.datetime.now(dt.UTC)
        rows = []
        for inc in incidents:
            payload = json.dumps(
                incident_to_dict(dataclasses.replace(inc, opened_at=None)),
                ensure_ascii=False,
                sort_keys=True,
            )
            rows.append((inc, payload))
        ids = [inc.id for inc, _ in rows]
        if len(set(ids)) != len(ids):
            raise StoreError("replace_incidents: duplicate incident ids")
        with self.store._db() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("BEGIN TRANSACTION")
            old = {
                r[0]: (r[1], r[2], r[3])
                for r in con.execute(
                    "SELECT id, payload, created_at, updated_at FROM incidents"
                ).fetchall()
            }
            con.execute("DELETE FROM incidents")
            con.execute("DELETE FROM incident_alerts")
            new = updated = unchanged = 0
            values: list[tuple[object, ...]] = []
            links: list[tuple[str, str]] = []
            for inc, payload in rows:
                prev = old.get(inc.id)
                if prev is None:
                    new += 1
                    created, changed = now, now
                elif prev[0] != payload:
                    updated += 1
                    created, changed = prev[1], now
                else:
                    unchanged += 1
                    created, changed = prev[1], prev[2]
                values.append(
                    (
                        inc.id,
                        payload,
                        inc.first_seen,
                        inc.last_seen,
                        inc.severity,
                        inc.title,
                        created,
                        changed,
                    )
                )
                links.extend((inc.id, a) for a in inc.alert_ids)
            if values:
                con.executemany("INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            if links:
                con.executemany("INSERT INTO incident_alerts VALUES (?, ?)", links)
            con.execute("COMMIT")
        removed = len(set(old) - set(ids))
        return IncidentCounts(new=new, updated=updated, unchanged=unchanged, removed=removed)


def _apply_suppressions(con: duckdb.DuckDBPyConnection) -> None:
    """Mark every alert that an active suppression matches (oldest suppression wins)."""
    match = " OR ".join(
        f"(s.field = '{name}' AND ({cond}))" for name, cond in SUPPRESS_FIELDS.items()
    )
    con.execute(
        f"""
        UPDATE alerts SET "alert.suppressed" = m.text IS NOT NULL, "alert.suppression" = m.text
        FROM (
            SELECT a."alert.id" AS id,
                   arg_min('[' || s.id || '] ' || s.reason, s.created) AS text
            FROM alerts a LEFT JOIN suppressions s
              ON (s.rule_id = a."rule.id" OR s.rule_id = '*')
             AND (s.expires IS NULL OR a."@timestamp" < s.expires)
             AND ({match})
            GROUP BY a."alert.id"
        ) m
        WHERE alerts."alert.id" = m.id
        """
    )


def ecs_alerts(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with exactly the alert columns in schema order (missing ones null)."""
    return df.select(
        [
            (_fitted(n, df.schema[n], t) if n in df.columns else pl.lit(None, t)).alias(n)
            for n, t in ecs.ALERTS.items()
        ]
    )


def _fitted(name: str, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """Column ``name`` cast to ``target``. A detection's SQL sum of BIGINTs is a 128-bit
    number: past the int64 range (byte counts are attacker-written and saturate at its
    bound) it is clipped to the bound, not turned into NULL."""
    col = pl.col(name)
    if target == pl.Int64 and (isinstance(source, pl.Decimal) or source == pl.Int128):
        col = col.clip(-(2**63) + 1, 2**63 - 1)
    elif target == pl.Int64 and source == pl.UInt64:
        col = col.clip(upper_bound=2**63 - 1)
    return col.cast(target, strict=False)


def memory_limit_mb() -> int:
    """The query engine's memory budget: ``VPNSENTRY_MEMORY_MB`` or a quarter of RAM.

    A quarter leaves room for the Arrow and Python side of a run and for the machine's other
    work; DuckDB spills what does not fit to ``<store>/.tmp``.
    """
    env = os.environ.get("VPNSENTRY_MEMORY_MB")
    if env:
        try:
            return max(256, int(env))
        except ValueError as exc:
            raise StoreError(f"VPNSENTRY_MEMORY_MB must be a number of MB, not {env!r}") from exc
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return max(1024, total // 4)


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()[0]
    return bool(row and row[0])


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
