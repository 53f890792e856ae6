"""The ``indicators`` table of the store catalog: upsert from feeds, read for matching.

One row per (source, type, canonical value): the same address in two feeds is two rows (two
sources vouch for it, each with its own confidence and validity), the same address twice in
one source is one. Re-adding a feed updates rows in place and keeps ``first_added``; a row
is only replaced by a version at least as new (``modified``), so re-adding an old export
does not undo a newer one. Revoked indicators stay, marked, so that revocation sticks.

Values go in through Arrow and bound parameters, never SQL text: a feed is attacker-
reachable input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import polars as pl

from vpnsentry.intel.model import Feed, Skipped, normalize
from vpnsentry.store.store import Store

TABLE_SQL: Final = """
CREATE TABLE IF NOT EXISTS indicators (
    source VARCHAR NOT NULL,        -- who vouches: STIX identity, MISP Orgc, CSV column
    type VARCHAR NOT NULL,          -- intel.model.TYPES
    norm VARCHAR NOT NULL,          -- canonical value (intel.model.normalize)
    value VARCHAR NOT NULL,         -- as the feed wrote it
    lo4 UBIGINT, hi4 UBIGINT,       -- IPv4 range (equal for one address)
    lo6 VARCHAR, hi6 VARCHAR,       -- IPv6 range as 32 hex digits
    confidence INTEGER,             -- 0-100, null when the feed gives none
    valid_from TIMESTAMPTZ,         -- null: since always
    valid_until TIMESTAMPTZ,        -- null: no end; the window is [valid_from, valid_until)
    revoked BOOLEAN NOT NULL,
    modified TIMESTAMPTZ,           -- the feed's version of the indicator
    description VARCHAR,
    labels VARCHAR[],
    kill_chain VARCHAR[],
    feed VARCHAR NOT NULL,          -- file name it was last loaded from
    ref VARCHAR,                    -- the feed's id: STIX id, MISP uuid, CSV line
    first_added TIMESTAMPTZ NOT NULL,
    updated TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, type, norm)
);
"""

SCHEMA: Final[dict[str, pl.DataType]] = {
    "source": pl.String(),
    "type": pl.String(),
    "norm": pl.String(),
    "value": pl.String(),
    "lo4": pl.UInt64(),
    "hi4": pl.UInt64(),
    "lo6": pl.String(),
    "hi6": pl.String(),
    "confidence": pl.Int32(),
    "valid_from": pl.Datetime("us", "UTC"),
    "valid_until": pl.Datetime("us", "UTC"),
    "revoked": pl.Boolean(),
    "modified": pl.Datetime("us", "UTC"),
    "description": pl.String(),
    "labels": pl.List(pl.String),
    "kill_chain": pl.List(pl.String),
    "feed": pl.String(),
    "ref": pl.String(),
}
_KEY: Final = ("source", "type", "norm")
#: Columns whose change makes a re-added indicator "updated".
_CONTENT: Final = tuple(c for c in SCHEMA if c not in (*_KEY, "feed", "ref"))


@dataclass(frozen=True)
class AddCounts:
    """What adding a feed changed in the table."""

    new: int
    updated: int
    unchanged: int
    older: int  # the store holds a newer version: kept
    duplicates: int  # the same indicator again within the feed


def normalize_feed(feed: Feed) -> tuple[pl.DataFrame, int]:
    """The feed's indicators as table rows; those that do not normalize join ``feed.skipped``.

    Returns the rows (one per key, the feed's last statement of it winning) and how many
    duplicates within the feed were dropped.
    """
    rows: list[dict[str, object]] = []
    for ind in feed.indicators:
        try:
            n = normalize(ind.type, ind.value)
        except ValueError as exc:
            feed.skipped.append(Skipped(ind.ref or "?", ind.value, str(exc)))
            continue
        if ind.valid_until and ind.valid_from and ind.valid_until <= ind.valid_from:
            reason = "valid_until is not after valid_from: the indicator is never valid"
            feed.skipped.append(Skipped(ind.ref or "?", ind.value, reason))
            continue
        rows.append(
            {
                "source": ind.source,
                "type": n.type,
                "norm": n.norm,
                "value": ind.value,
                "lo4": n.lo4,
                "hi4": n.hi4,
                "lo6": n.lo6,
                "hi6": n.hi6,
                "confidence": ind.confidence,
                "valid_from": ind.valid_from,
                "valid_until": ind.valid_until,
                "revoked": ind.revoked,
                "modified": ind.modified,
                "description": ind.description,
                "labels": list(ind.labels),
                "kill_chain": list(ind.kill_chain),
                "feed": ind.feed,
                "ref": ind.ref,
            }
        )
    df = pl.DataFrame(rows, schema=SCHEMA)
    unique = df.unique(list(_KEY), keep="last", maintain_order=True)
    return unique, df.height - unique.height


def add(store: Store, rows: pl.DataFrame, dup: int = 0) -> AddCounts:
    """Upsert ``rows`` (from :func:`normalize_feed`) into the store's indicators table."""
    now = dt.datetime.now(dt.UTC)
    key = " AND ".join(f"o.{c} = n.{c}" for c in _KEY)
    older = "n.modified < o.modified"
    new_row, old_row = (", ".join(f"{t}.{c}" for c in _CONTENT) for t in "no")
    changed = f"({new_row}) IS DISTINCT FROM ({old_row})"
    with store.writer(), store._db() as con:  # the store's own short-lived catalog connection
        con.execute("SET TimeZone = 'UTC'")
        con.execute(TABLE_SQL)
        con.register("_new", rows.to_arrow())
        con.execute("BEGIN TRANSACTION")
        counts = con.execute(
            f"""
            SELECT count(*) FILTER (WHERE o.norm IS NULL),
                   count(*) FILTER (WHERE o.norm IS NOT NULL AND coalesce({older}, false)),
                   count(*) FILTER (WHERE o.norm IS NOT NULL AND NOT coalesce({older}, false)
                                    AND {changed})
            FROM _new n LEFT JOIN indicators o ON {key}
            """
        ).fetchall()[0]
        assert counts is not None
        sets = ", ".join(f"{c} = n.{c}" for c in (*_CONTENT, "feed", "ref"))
        con.execute(
            f"UPDATE indicators o SET {sets}, updated = CASE WHEN {changed} THEN $now "
            f"ELSE o.updated END FROM _new n WHERE {key} AND NOT coalesce({older}, false)",
            {"now": now},
        )
        cols = ", ".join(SCHEMA)
        con.execute(
            f"INSERT INTO indicators ({cols}, first_added, updated) "
            f"SELECT {cols}, $now, $now FROM _new n "
            f"WHERE NOT EXISTS (SELECT 1 FROM indicators o WHERE {key})",
            {"now": now},
        )
        con.execute("COMMIT")
    new, old, upd = (int(x) for x in counts)
    return AddCounts(new, upd, rows.height - new - old - upd, old, dup)


def indicators(store: Store) -> pl.DataFrame:
    """Every stored indicator (``first_added`` and ``updated`` included)."""
    with store._db(read_only=True) as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'indicators'"
        ).fetchall()[0]
        if not exists or not exists[0]:
            return pl.DataFrame(
                schema={
                    **SCHEMA,
                    "first_added": SCHEMA["valid_from"],
                    "updated": SCHEMA["modified"],
                }
            )
        con.execute("SET TimeZone = 'UTC'")
        df = pl.from_arrow(
            con.sql("SELECT * FROM indicators ORDER BY source, type, norm").to_arrow_table()
        )
    assert isinstance(df, pl.DataFrame)
    return df
