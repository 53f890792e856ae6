"""Offline GeoIP: country and AS (and city, from a user's City database) for IPv4 addresses.

Detections run as DuckDB SQL over millions of stored events, so geo data is served as range
tables (``lo``, ``hi`` as integers, sorted by ``lo``, non-overlapping) that SQL joins with one
vectorized ASOF join; nothing here looks addresses up one at a time. ``load_geo`` builds the
tables, ``register_geo`` puts them (and the ``ip4()`` string-to-integer macro) into a DuckDB
connection, and ``lookup`` answers the same question with numpy for tests and small lists.

Sources, most specific first:

* ``.mmdb`` files the user passes (MaxMind GeoIP2/GeoLite2 or DB-IP; Country, City or ASN,
  told apart by the file's own ``database_type``). Each replaces the embedded table of its
  kind; a City database also replaces the country table, unless a Country database is given
  too. All IPv4 networks are read by walking the file's search tree with numpy, level by
  level, and decoding each distinct record once.
* The embedded default: the data file that the ``geoip2fast`` package ships
  (``geoip2fast-asn.dat.gz``: GeoLite2 Country + ASN, IPv4), read directly from its pickled
  arrays (well under a second; cached per process). That file keeps AS *organisation names*
  but not AS *numbers*, so with the embedded data ``asn`` is filled in from the hosting list
  (``data/hosting_asns.csv``) for the organisations listed there and is null for everyone
  else; an organisation that announces several ASNs under one name (Hetzner, for one) gets
  the number it is listed under. Pass an ASN ``.mmdb`` for exact numbers everywhere.

``hosting`` says whether the AS belongs to a cloud/VPS provider, a commercial VPN, a Tor exit
operator or a proxy service, per ``data/hosting_asns.csv`` (matched by AS number, and by the
organisation name as GeoLite2 spells it, so that sibling ASNs of a listed provider count too).
A VPN login from such an address is far more often an attacker's rented server than a home.

Limits: IPv6 addresses get no geo yet (the tables are IPv4; ``ip4()`` returns NULL for them).
Private, reserved and unallocated addresses get nulls. geoip2fast itself reports Andorra (its
first real country code) as private; reading its arrays directly avoids that bug.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import importlib.metadata
import importlib.util
import itertools
import pickle
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import maxminddb
import numpy as np
import numpy.typing as npt
import polars as pl

from vpnsentry.errors import UsageError

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

#: The hosting/VPS/anonymizer ASN list shipped with the package.
HOSTING_CSV: Final = Path(__file__).parent / "data" / "hosting_asns.csv"
HOSTING_KINDS: Final = ("hosting", "vpn", "tor", "proxy")

#: A dotted-quad IPv4 address in canonical form (no leading zeros, each octet 0-255).
_OCTET: Final = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE: Final = _OCTET + r"(\." + _OCTET + "){3}"

#: ``ip4(s)``: UBIGINT for a dotted-quad string, NULL for anything else. The regex guard
#: matters: TRY_CAST alone accepts ``' 1'``, ``'1e2'`` and ``'1_0'`` as octets. A dot
#: product of the four octets avoids lambdas, whose syntax changed across DuckDB versions.
IP4_MACRO: Final = (
    "CREATE OR REPLACE TEMP MACRO ip4(s) AS CASE WHEN regexp_full_match(s, '"
    + IPV4_RE
    + "') THEN list_dot_product(CAST(string_split(s, '.') AS DOUBLE[]),"
    " [16777216.0, 65536.0, 256.0, 1.0])::UBIGINT END"
)

_ASN_SCHEMA: Final = {
    "asn": pl.Int64,
    "as_org": pl.String,
    "hosting": pl.Boolean,
    "hosting_kind": pl.String,
}
_CITY_SCHEMA: Final = {
    "country": pl.String,
    "city": pl.String,
    "lat": pl.Float64,
    "lon": pl.Float64,
}


@dataclass(frozen=True)
class GeoTables:
    """IPv4 range tables, each sorted by ``lo`` with non-overlapping ``[lo, hi]`` ranges.

    ``country``: lo, hi (UInt32), country (ISO 3166-1 alpha-2).
    ``asn``: lo, hi, asn (Int64, may be null, see the module doc), as_org, hosting (Boolean),
    hosting_kind (hosting|vpn|tor|proxy, null unless hosting).
    ``city``: lo, hi, country, city, lat, lon; only from a City ``.mmdb``, else None.
    ``sources``: where each table came from, for reports.
    """

    country: pl.DataFrame
    asn: pl.DataFrame
    city: pl.DataFrame | None
    sources: tuple[str, ...]


def load_geo(mmdb: Sequence[Path] = ()) -> GeoTables:
    """The embedded tables, with the kinds found in ``mmdb`` files replacing their own.

    Cached per process and per file version (path, size, mtime), since detections and
    reports ask again and again. Raises UsageError naming the file for a missing, corrupt or
    unsupported file, or for two files of the same kind.
    """
    keys = []
    for p in mmdb:
        path = Path(p)
        try:
            st = path.resolve(strict=True).stat()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read GeoIP database ({exc.strerror})") from None
        keys.append((path.resolve(), st.st_size, st.st_mtime_ns))
    return _load_geo(tuple(keys))


def register_geo(con: duckdb.DuckDBPyConnection, tables: GeoTables) -> None:
    """Create views geo_country, geo_asn and (if city) geo_city in ``con``, and macro ip4().

    ``lo``/``hi`` are UBIGINT, like ``ip4()``, so the join compares equal types. Views and
    macro are TEMP: they live in memory for this connection only, so a store stays untouched
    and read-only connections work. A missing city table drops any earlier ``geo_city``.

    Join pattern (compute ``ip4`` once in a subquery: an expression inside the ASOF
    condition is evaluated per comparison and is about 3x slower)::

        SELECT x.*,
               CASE WHEN x._ip <= g.hi THEN g.asn END AS asn,
               CASE WHEN x._ip <= g.hi THEN g.hosting END AS hosting
        FROM (SELECT *, ip4("source.ip") AS _ip FROM events) x
        ASOF LEFT JOIN geo_asn g ON x._ip >= g.lo

    or, inline: ``ASOF LEFT JOIN geo_asn g ON ip4(x."source.ip") >= g.lo`` then
    ``CASE WHEN ip4(x."source.ip") <= g.hi THEN g.asn END``. The ``<= g.hi`` test is what
    makes an address in a gap (private, unallocated) get NULL instead of its left neighbour.
    """
    con.execute(IP4_MACRO)
    frames = {"geo_country": tables.country, "geo_asn": tables.asn, "geo_city": tables.city}
    for name, df in frames.items():
        # Views over the registered frames, not copies: registering costs nothing, which
        # matters to a live collector that reruns detections every few seconds. (An ASOF
        # join sorts its right side whatever it reads from.)
        kind = con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = $n UNION ALL "
            "SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = $n",
            {"n": name},
        ).fetchall()
        for (what,) in kind:  # temp only: never a store's own table
            con.execute(f"DROP {what} temp.{name}")
        if df is None:
            continue
        source = f"_{name}_src"
        con.register(source, df)
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT * REPLACE"
            f" (lo::UBIGINT AS lo, hi::UBIGINT AS hi) FROM {source}"
        )


def lookup(tables: GeoTables, ips: pl.Series) -> pl.DataFrame:
    """Geo for each IPv4 string in ``ips``: one row per input, in order.

    Columns ip, country, asn, as_org, hosting, hosting_kind, city, lat, lon; nulls where the
    address is unknown, private, not IPv4 or not an address. Vectorized (numpy searchsorted),
    for tests and small Python-side uses; SQL callers use ``register_geo``.
    """
    ip, valid = parse_ipv4(ips)
    country = _gather(tables.country, ip, valid).select("country")
    asn = _gather(tables.asn, ip, valid).select(list(_ASN_SCHEMA))
    if tables.city is None:
        city = pl.DataFrame(
            {c: pl.Series(c, [None] * len(ips), dtype=t) for c, t in _CITY_SCHEMA.items()}
        )
    else:
        city = _gather(tables.city, ip, valid)
    return pl.concat(
        [
            pl.DataFrame({"ip": ips.cast(pl.String)}),
            country,
            asn,
            city.select("city", "lat", "lon"),
        ],
        how="horizontal",
    )


def parse_ipv4(ips: pl.Series) -> tuple[U64, npt.NDArray[np.bool_]]:
    """Dotted-quad strings as integers, and which of them were valid IPv4 (same rule as ip4)."""
    s = ips.cast(pl.String)
    valid = s.str.contains(f"^{IPV4_RE}$").fill_null(False)
    octets = s.str.split_exact(".", 3).struct.unnest()
    value = pl.Series(np.zeros(len(s), dtype=np.uint64))
    for col in octets.columns:
        octet = octets[col].cast(pl.UInt64, strict=False).fill_null(0)
        value = value * 256 + octet
    return (
        value.to_numpy().astype(np.uint64),
        valid.to_numpy().astype(np.bool_),
    )


def dotted(ip: U64) -> pl.Series:
    """Integers as dotted-quad strings (the inverse of ``parse_ipv4``), vectorized."""
    u = pl.Series("ip", ip, dtype=pl.UInt64)
    return pl.select(
        pl.concat_str([(u // 256**k % 256).cast(pl.String) for k in (3, 2, 1, 0)], separator=".")
    ).to_series()


# ---- range helpers -------------------------------------------------------------------------


def _gather(table: pl.DataFrame, ip: U64, valid: npt.NDArray[np.bool_]) -> pl.DataFrame:
    """Rows of ``table`` whose [lo, hi] holds each address (null rows where none does)."""
    lo = table["lo"].to_numpy().astype(np.uint64)
    hi = table["hi"].to_numpy().astype(np.uint64)
    i = np.searchsorted(lo, ip, side="right").astype(np.int64) - 1
    hit = valid & (i >= 0)
    if len(hi):
        hit &= ip <= hi[np.maximum(i, 0)]
    idx = pl.Series("i", i).scatter(np.flatnonzero(~hit), None)
    return table.select(pl.all().gather(idx))


def _ranges(lo: U64, hi: U64, key: I64) -> tuple[U64, U64, I64]:
    """Sorted, non-overlapping ranges with adjacent ranges of the same key merged.

    ``key`` < 0 means "no data": such ranges are dropped after clipping, so they still cut
    off an earlier range that claims to extend over them (geoip2fast's lookup semantics).
    """
    order = np.argsort(lo, kind="stable")
    lo, hi, key = lo[order], hi[order], key[order]
    if len(lo) > 1:
        hi = hi.copy()
        hi[:-1] = np.minimum(hi[:-1], lo[1:] - np.uint64(1))
    keep = (key >= 0) & (hi >= lo)
    lo, hi, key = lo[keep], hi[keep], key[keep]
    if len(lo) == 0:
        return lo, hi, key
    start = np.ones(len(lo), dtype=np.bool_)
    start[1:] = (key[1:] != key[:-1]) | (lo[1:] != hi[:-1] + np.uint64(1))
    first = np.flatnonzero(start)
    last = np.append(first[1:] - 1, len(lo) - 1)
    return lo[first], hi[last], key[first]


def _frame(lo: U64, hi: U64, key: I64, values: pl.DataFrame) -> pl.DataFrame:
    """A range table: ``lo``, ``hi`` and the row of ``values`` that each range's key picks."""
    return pl.concat(
        [
            pl.DataFrame(
                {"lo": pl.Series(lo, dtype=pl.UInt32), "hi": pl.Series(hi, dtype=pl.UInt32)}
            ),
            values[pl.Series(key)],
        ],
        how="horizontal",
    )


# ---- hosting list ---------------------------------------------------------------------------


@functools.cache
def hosting_asns() -> pl.DataFrame:
    """The shipped hosting/VPS/anonymizer ASN list (asn, org, kind, source)."""
    df = pl.read_csv(
        HOSTING_CSV,
        schema={"asn": pl.Int64, "org": pl.String, "kind": pl.String, "source": pl.String},
    )
    bad = df.filter(~pl.col("kind").is_in(HOSTING_KINDS) | pl.col("asn").is_null())
    if len(bad):
        raise UsageError(
            f"{HOSTING_CSV}: row for AS{bad['asn'][0]} needs an AS number and a kind among"
            f" {', '.join(HOSTING_KINDS)} (got {bad['kind'][0]!r})"
        )
    return df


def _classify(asn: pl.Series, org: pl.Series) -> pl.DataFrame:
    """asn, as_org, hosting, hosting_kind for parallel AS numbers (may be null) and names.

    The number is filled from the hosting list when missing and the name is listed under
    exactly one ASN; the kind comes from the number if listed, else from the name.
    """
    host = hosting_asns()
    by_asn = host.unique("asn", keep="first").select("asn", pl.col("kind").alias("_k_asn"))
    by_org = host.group_by("org").agg(
        pl.col("kind").first().alias("_k_org"),
        pl.when(pl.col("asn").n_unique() == 1).then(pl.col("asn").first()).alias("_asn_org"),
    )
    df = (
        pl.DataFrame({"asn": asn.cast(pl.Int64), "as_org": org.cast(pl.String)})
        .with_row_index("_row")
        .join(by_org, left_on="as_org", right_on="org", how="left")
        .with_columns(pl.coalesce("asn", "_asn_org").alias("asn"))
        .join(by_asn, on="asn", how="left")
        .sort("_row")
    )
    kind = pl.coalesce("_k_asn", "_k_org")
    return df.select(
        "asn", "as_org", kind.is_not_null().alias("hosting"), kind.alias("hosting_kind")
    )


# ---- the embedded default -------------------------------------------------------------------


def _flat(chunks: Iterable[Iterable[int]]) -> U64:
    """geoip2fast keeps its arrays as lists of 5,000-item chunks: one flat array."""
    return np.fromiter(itertools.chain.from_iterable(chunks), dtype=np.uint64)


def _cidr_hi(first: U64, netlen: U64) -> U64:
    hi: U64 = first + (np.uint64(1) << (np.uint64(32) - netlen)) - np.uint64(1)
    return hi


@functools.cache
def _embedded() -> GeoTables:
    """Country and AS tables from geoip2fast's own data file, without its per-IP API.

    Layout (geoip2fast 1.2.x, data version 120, country + ASN file): a pickled tuple
    (version, info, total, db) where db holds index lists, the "CC:Country name" list, the AS
    name list, and per network its first address, name index and prefix length, each as lists
    of chunks. Country name indexes whose code is not two letters are reserved/private
    blocks; AS name 0 is "<unknown>" and "IANA.ORG" marks reserved blocks.
    """
    # find_spec, not import: geoip2fast's module costs 0.1 s to import and is not needed.
    spec = importlib.util.find_spec("geoip2fast")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("geoip2fast is not installed (a vpnsentry dependency)")
    path = Path(spec.origin).parent / "geoip2fast-asn.dat.gz"
    # The file is part of an installed dependency: trusted exactly like its code. Inflating
    # it in one go is faster than unpickling from a gzip stream.
    version, info, _total, db = pickle.loads(gzip.decompress(path.read_bytes()))  # noqa: S301
    if version != 120 or not (info.get("country") and info.get("asn")) or len(db) != 10:
        raise RuntimeError(
            f"{path}: unexpected geoip2fast data layout (version {version}); vpnsentry reads"
            " geoip2fast 1.2.x files, check the installed geoip2fast version"
        )
    _, _, names_c, names_a, first_c, first_a, id_c, id_a, len_c, len_a = db

    codes = [n.split(":", 1)[0] for n in names_c]
    code_ok = np.array([len(c) == 2 and c.isalpha() for c in codes], dtype=np.bool_)
    lo = _flat(first_c)
    cid = _flat(id_c).astype(np.int64)
    cid = np.where(code_ok[cid], cid, -1)
    lo, hi, key = _ranges(lo, _cidr_hi(lo, _flat(len_c)), cid)
    country = _frame(lo, hi, key, pl.DataFrame({"country": pl.Series(codes, dtype=pl.String)}))

    names = pl.Series("as_org", names_a, dtype=pl.String)
    lo = _flat(first_a)
    aid = _flat(id_a).astype(np.int64)
    no_org = np.asarray(names.is_in(["<unknown>", "IANA.ORG", ""]).to_numpy(), dtype=np.bool_)
    aid = np.where(no_org[aid], -1, aid)
    lo, hi, key = _ranges(lo, _cidr_hi(lo, _flat(len_a)), aid)
    asn_values = _classify(pl.Series([None] * len(names), dtype=pl.Int64), names)
    asn = _frame(lo, hi, key, asn_values)

    m = re.fullmatch(r"MAXMIND:(?P<db>[\w-]+?)-en-(?P<d>\d{8})", str(info.get("info", "")))
    what = f"{m['db']} {m['d'][:4]}-{m['d'][4:6]}-{m['d'][6:]}" if m else str(info.get("info"))
    label = f"geoip2fast {importlib.metadata.version('geoip2fast')} embedded ({what})"
    return GeoTables(country=country, asn=asn, city=None, sources=(label,))


# ---- user-supplied .mmdb files --------------------------------------------------------------


def _dig(record: object, *keys: str) -> object:
    """``record[k1][k2]...`` through nested maps, None where a level is missing.

    maxminddb decodes maps to plain dicts; checking for ``dict`` rather than ``Mapping``
    keeps this cheap, as it runs a few times per distinct record of a City database.
    """
    for k in keys:
        if not isinstance(record, dict):
            return None
        record = record.get(k)
    return record


def _str(v: object) -> str | None:
    return v if isinstance(v, str) and v else None


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _country_of(rec: object) -> str | None:
    # Where the address is used; else where it is registered (some blocks only have that).
    return _str(_dig(rec, "country", "iso_code")) or _str(
        _dig(rec, "registered_country", "iso_code")
    )


def _tree_children(buf: npt.NDArray[np.uint8], node_count: int, record_size: int) -> U64:
    """The search tree as an (node_count, 2) array of left/right records (MaxMind DB spec)."""
    b = buf[: node_count * record_size // 4].reshape(node_count, record_size // 4)
    b = b.astype(np.uint64)
    if record_size == 24:
        left = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        right = (b[:, 3] << 16) | (b[:, 4] << 8) | b[:, 5]
    elif record_size == 28:
        left = ((b[:, 3] & 0xF0) << 20) | (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        right = ((b[:, 3] & 0x0F) << 24) | (b[:, 4] << 16) | (b[:, 5] << 8) | b[:, 6]
    elif record_size == 32:
        left = (b[:, 0] << 24) | (b[:, 1] << 16) | (b[:, 2] << 8) | b[:, 3]
        right = (b[:, 4] << 24) | (b[:, 5] << 16) | (b[:, 6] << 8) | b[:, 7]
    else:
        raise ValueError(f"record size {record_size} is not 24, 28 or 32")
    out: U64 = np.stack([left, right], axis=1)
    return out


def _ipv4_networks(children: U64, node_count: int, ip_version: int) -> tuple[U64, U64, U64]:
    """Every IPv4 network in the tree: (first address, last address, data record).

    Breadth-first over the 32 levels below the IPv4 root (``::/96`` in an IPv6 tree), all
    nodes of a level at once, so the cost is 32 numpy steps rather than one Python step per
    node. Records equal to node_count are "no data"; larger ones point into the data section.
    """
    root = 0
    if ip_version == 6:
        for _ in range(96):
            if root >= node_count:
                break
            root = int(children[root, 0])
    nodes = np.array([root], dtype=np.uint64)
    acc = np.zeros(1, dtype=np.uint64)
    los: list[U64] = []
    sizes: list[U64] = []
    recs: list[U64] = []
    for depth in range(33):
        data = nodes > node_count
        los.append(acc[data] << np.uint64(32 - depth))
        sizes.append(np.full(int(data.sum()), 1 << (32 - depth), dtype=np.uint64))
        recs.append(nodes[data])
        inner = nodes < node_count
        if not inner.any():
            break
        if depth == 32:
            raise ValueError("search tree deeper than 32 bits below the IPv4 root")
        parent = nodes[inner].astype(np.int64)
        if len(parent) > node_count:  # more nodes on one level than in the tree: a loop
            raise ValueError("search tree refers back to itself")
        nodes = children[parent].reshape(-1)
        acc = np.stack([acc[inner] << np.uint64(1), (acc[inner] << np.uint64(1)) | 1], 1)
        acc = acc.reshape(-1)
    lo = np.concatenate(los)
    return lo, lo + np.concatenate(sizes) - np.uint64(1), np.concatenate(recs)


@dataclass(frozen=True)
class _Mmdb:
    kind: str  # "country" | "city" | "asn"
    table: pl.DataFrame
    label: str


def _kind_of(database_type: str) -> str | None:
    for kind in ("city", "country", "asn"):  # "city" first: City databases have countries
        if kind in database_type.lower():
            return kind
    return None


def _read_mmdb(path: Path) -> _Mmdb:
    """All IPv4 networks of a Country, City or ASN ``.mmdb`` as one range table."""

    def bad(exc_or_why: Exception | str) -> UsageError:
        why = str(exc_or_why).splitlines()[0] if str(exc_or_why) else type(exc_or_why).__name__
        return UsageError(f"{path}: not a usable GeoIP database: {why}")

    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise bad(exc) from None
    with reader:
        meta = reader.metadata()
        kind = _kind_of(meta.database_type)
        if kind is None:
            raise bad(f"type {meta.database_type!r} is not a Country, City or ASN database")
        n, size = int(meta.node_count), int(meta.record_size)
        try:
            buf = np.fromfile(path, dtype=np.uint8, count=n * size // 4)
            if len(buf) < n * size // 4:
                raise ValueError("file shorter than its search tree")
            lo, hi, rec = _ipv4_networks(_tree_children(buf, n, size), n, meta.ip_version)
            _, first, inverse = np.unique(rec, return_index=True, return_inverse=True)
            # One decode per distinct record (far fewer than networks), through the reader's
            # public lookup of the first network that points at it.
            records = [reader.get(a) for a in dotted(lo[first]).to_list()]
        except (ValueError, RuntimeError, IndexError) as exc:
            raise bad(exc) from None
    values = _record_values(kind, records)
    key = np.where(_has_data(kind, values)[inverse], inverse, -1).astype(np.int64)
    lo, hi, key = _ranges(lo, hi, key)
    built = dt.datetime.fromtimestamp(meta.build_epoch, dt.UTC).date().isoformat()
    return _Mmdb(kind, _frame(lo, hi, key, values), f"{path.name} ({meta.database_type} {built})")


def _record_values(kind: str, recs: Sequence[object]) -> pl.DataFrame:
    """The columns of ``kind``'s table for each decoded record, in order."""
    if kind == "asn":
        return _classify(
            pl.Series([_int(_dig(r, "autonomous_system_number")) for r in recs], dtype=pl.Int64),
            pl.Series(
                [_str(_dig(r, "autonomous_system_organization")) for r in recs], dtype=pl.String
            ),
        )
    cols: dict[str, list[str | None] | list[float | None]] = {
        "country": [_country_of(r) for r in recs]
    }
    if kind == "city":
        cols["city"] = [_str(_dig(r, "city", "names", "en")) for r in recs]
        cols["lat"] = [_num(_dig(r, "location", "latitude")) for r in recs]
        cols["lon"] = [_num(_dig(r, "location", "longitude")) for r in recs]
    return pl.DataFrame(cols, schema={c: _CITY_SCHEMA[c] for c in cols})


def _has_data(kind: str, values: pl.DataFrame) -> npt.NDArray[np.bool_]:
    """Which records carry what ``kind``'s table is for (others become gaps)."""
    cols = {"asn": ["asn"], "country": ["country"], "city": ["country", "city", "lat"]}[kind]
    has = values.select(pl.any_horizontal(pl.col(cols).is_not_null())).to_series()
    return has.to_numpy().astype(np.bool_)


@functools.cache
def _load_geo(files: tuple[tuple[Path, int, int], ...]) -> GeoTables:
    """``load_geo`` for resolved paths; size and mtime are in the key so edits reload."""
    base = _embedded()
    found: dict[str, _Mmdb] = {}
    for path, _size, _mtime in files:
        db = _read_mmdb(path)
        if db.kind in found:
            raise UsageError(
                f"{path}: a second {db.kind} database (already have {found[db.kind].label});"
                " pass at most one GeoIP database of each kind"
            )
        found[db.kind] = db
    country = base.country
    if "country" in found:
        country = found["country"].table
    elif "city" in found:
        city_t = found["city"].table
        country = city_t.filter(pl.col("country").is_not_null()).select("lo", "hi", "country")
    asn = found["asn"].table if "asn" in found else base.asn
    city = found["city"].table if "city" in found else None
    embedded_used = "asn" not in found or not found.keys() & {"country", "city"}
    sources = (*(base.sources if embedded_used else ()), *(db.label for db in found.values()))
    return GeoTables(country=country, asn=asn, city=city, sources=sources)
