"""Where a login comes from, as a point on the globe: the geography detections' shared helpers.

Impossible travel, concurrent sessions from distant places and "unusual hour" (judged in the
local time of the place a login comes from) need a position for each login. Two sources:

* ``geo_city`` (lat, lon per address range) when the analyst gave a City ``.mmdb``
  (``--geoip``): city-level, typically tens of kilometres off;
* otherwise the country's centre from ``data/country_centroids.csv`` (the CIA World
  Factbook's "Geographic coordinates", public domain, see the file header), registered here
  as table ``country_centroids`` (iso2, lat, lon). Country level is coarse: for a large
  country the centre may be thousands of kilometres from where the user really is, so every
  detection that uses it subtracts a margin from distances and says "country level" in its
  alerts.

``with_geo(sql)`` turns a detection's SQL into a ``run`` function that registers the table,
the ``geo_km`` great-circle macro, the view ``geo_city_points`` (lo, hi, lat, lon: the City
database's ranges, or no rows without one, so the same SQL runs with or without a City
database and ``geo_city`` itself is left as the engine made it) and ``login_points`` (each
successful login with its position and session end, built once per run and shared). The
store's reader connection cannot read files from SQL, which is why the centres are
registered from Python.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from vpnsentry.detect.base import ParamValue, RunFn

#: The country centres shipped with the package.
CENTROIDS_CSV: Final = Path(__file__).parent / "data" / "country_centroids.csv"

#: Mean Earth radius (km), as the haversine formula uses it.
EARTH_KM: Final = 6371.0088

_PARAM_RE: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")

#: ``geo_km(lat1, lon1, lat2, lon2)``: great-circle distance in km (haversine).
GEO_KM_MACRO: Final = (
    "CREATE OR REPLACE TEMP MACRO geo_km(lat1, lon1, lat2, lon2) AS "
    f"2 * {EARTH_KM} * asin(sqrt(least(1.0, "
    "pow(sin(radians(lat2 - lat1) / 2), 2) + "
    "cos(radians(lat1)) * cos(radians(lat2)) * pow(sin(radians(lon2 - lon1) / 2), 2))))"
)


#: Table ``login_points``: the successful VPN logins (``logins`` rows with outcome success)
#: with where they come from: ``net`` (the AS number, or the AS organisation when the GeoIP
#: data has no numbers), ``lat``/``lon`` and ``precision`` ('city' from ``geo_city``, else
#: 'country' from the country centre, NULL when the country is unknown), ``up_until`` (the
#: end of the session the login started; 'infinity' while it is still open) and
#: ``end_inferred`` (the gateway logged no end: ``sessions`` guessed it). Built once per
#: connection by :func:`register_geo_points` and shared by the geography detections.
LOGIN_POINTS: Final = """
SELECT l.*, coalesce(l.asn::VARCHAR, l.as_org) AS net,
       CASE WHEN l.src_u <= gc.hi THEN gc.lat ELSE cc.lat END AS lat,
       CASE WHEN l.src_u <= gc.hi THEN gc.lon ELSE cc.lon END AS lon,
       CASE WHEN l.src_u <= gc.hi THEN 'city' WHEN cc.lat IS NOT NULL THEN 'country' END
           AS precision,
       coalesce(se.up_until, l."@timestamp") AS up_until,
       coalesce(se.end_inferred, false) AS end_inferred
FROM logins l
ASOF LEFT JOIN geo_city_points gc ON l.src_u >= gc.lo
LEFT JOIN country_centroids cc ON cc.iso2 = l.country
LEFT JOIN (
    SELECT "observer.name", "user.name", "source.ip", "vpn.tunnel_ip", "session.start",
           max(coalesce("session.end", 'infinity'::TIMESTAMPTZ)) AS up_until,
           bool_or(coalesce("session.end_inferred", false)) AS end_inferred
    FROM sessions GROUP BY ALL
) se ON se."user.name" = l."user.name" AND se."session.start" = l."@timestamp"
    AND se."observer.name" IS NOT DISTINCT FROM l."observer.name"
    AND se."source.ip" IS NOT DISTINCT FROM l."source.ip"
    AND se."vpn.tunnel_ip" IS NOT DISTINCT FROM l."vpn.tunnel_ip"
WHERE l."event.outcome" = 'success'
"""


@functools.cache
def _load() -> dict[str, tuple[float, float]]:
    with CENTROIDS_CSV.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        out = {r["iso2"]: (float(r["lat"]), float(r["lon"])) for r in rows}
    bad = [k for k, (lat, lon) in out.items() if not (-90 <= lat <= 90 and -180 <= lon <= 180)]
    if bad:  # pragma: no cover - guards edits of the data file
        raise ValueError(f"{CENTROIDS_CSV}: coordinates out of range for {bad}")
    return out


#: ISO 3166-1 alpha-2 -> (latitude, longitude) of the country's centre.
CENTROIDS: Final[Mapping[str, tuple[float, float]]] = _load()


def centroid_frame() -> pl.DataFrame:
    """The centres as a frame: iso2, lat, lon."""
    return pl.DataFrame(
        {
            "iso2": list(CENTROIDS),
            "lat": [v[0] for v in CENTROIDS.values()],
            "lon": [v[1] for v in CENTROIDS.values()],
        },
        schema={"iso2": pl.String, "lat": pl.Float64, "lon": pl.Float64},
    )


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``name`` is a table or view visible to ``con`` (temp ones included)."""
    rows = con.execute(
        "SELECT count(*) FROM (SELECT table_name FROM duckdb_tables() UNION ALL "
        "SELECT view_name FROM duckdb_views()) WHERE table_name = $n",
        {"n": name},
    ).fetchall()
    return bool(rows and rows[0][0])


def register_geo_points(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``country_centroids``, macro ``geo_km``, view ``geo_city_points`` and, when
    ``logins`` and ``sessions`` exist, table ``login_points`` (each once per connection)."""
    if not has_table(con, "country_centroids"):
        con.register("_country_centroids_src", centroid_frame().to_arrow())
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE country_centroids AS "
                "SELECT * FROM _country_centroids_src"
            )
        finally:
            con.unregister("_country_centroids_src")
    con.execute(GEO_KM_MACRO)
    if has_table(con, "geo_city"):
        con.execute(
            "CREATE OR REPLACE TEMP VIEW geo_city_points AS SELECT lo::UBIGINT AS lo, "
            "hi::UBIGINT AS hi, lat::DOUBLE AS lat, lon::DOUBLE AS lon FROM geo_city "
            "WHERE lat IS NOT NULL AND lon IS NOT NULL"
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW geo_city_points AS SELECT NULL::UBIGINT AS lo, "
            "NULL::UBIGINT AS hi, NULL::DOUBLE AS lat, NULL::DOUBLE AS lon WHERE false"
        )
    ready = has_table(con, "logins") and has_table(con, "sessions")
    if ready and not has_table(con, "login_points"):
        con.execute(f"CREATE TEMP TABLE login_points AS {LOGIN_POINTS}")


def bind(sql: str, params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """The parameters ``sql`` names, from ``params``; an undeclared one is an error."""
    names = set(_PARAM_RE.findall(sql))
    missing = names - set(params)
    if missing:
        raise ValueError(f"SQL uses undeclared parameters {sorted(missing)}")
    return {n: params[n] for n in names}


def with_geo(sql: str) -> RunFn:
    """A ``run`` function: register the geo helpers, then run ``sql`` with its parameters."""

    def run(con: duckdb.DuckDBPyConnection, params: Mapping[str, ParamValue]) -> pl.DataFrame:
        register_geo_points(con)
        frame = pl.from_arrow(con.sql(sql, params=bind(sql, params)).to_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        return frame

    return run
