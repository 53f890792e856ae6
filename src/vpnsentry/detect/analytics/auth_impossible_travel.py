"""Impossible travel: two consecutive successful VPN logins of one user from places too far
apart for the time between them (faster than ``max_kmh``, an airliner's speed).

Why it works: a person cannot be in Frankfurt and Singapore forty minutes apart; when the
logins say so, two parties hold the credential (or the session is being relayed). Unlike the
novelty detections it needs no history, so it also covers new joiners and accounts whose
attacker comes back from a place already seen.

Where a login is: the City database's coordinates when the analyst gave one (``--geoip``),
otherwise the centre of the country (``detect/geodata.py``). Country level is coarse (a
border town is hundreds of kilometres from its country's centre, and more for Russia, the
US, China or Canada), so the distance is reduced by ``country_margin_km`` before the speed is
computed (``city_margin_km`` when both ends are city-level): neighbouring countries, and a
country and its enclaves (China and Hong Kong), never fire, and the summary says which
precision was used. Logins whose country is unknown (IPv6, private addresses) are skipped,
not treated as "somewhere else".

Deliberately ignored: the time a session stays connected (left-open sessions say nothing
about where the person is: see ``auth_concurrent_sessions``), and slow-but-unusual trips
(``auth_new_country_asn``). Severity is high when either end is a hosting/VPN network or both
ends are city-level, medium otherwise (a commercial VPN app or a roaming mobile line can
also jump countries). One alert per user and day, with every impossible leg in the evidence.
"""

from vpnsentry.detect.base import Detection
from vpnsentry.detect.geodata import with_geo

SQL = """
WITH pts AS (
    SELECT * FROM login_points
), located AS (
    SELECT * FROM pts WHERE lat IS NOT NULL
), seq AS (
    SELECT *,
           lag("@timestamp") OVER w AS prev_ts, lag("source.ip") OVER w AS prev_ip,
           lag(country) OVER w AS prev_country, lag(as_org) OVER w AS prev_org,
           lag(hosting) OVER w AS prev_hosting, lag(lat) OVER w AS prev_lat,
           lag(lon) OVER w AS prev_lon, lag(precision) OVER w AS prev_precision,
           lag("observer.name") OVER w AS prev_observer
    FROM located
    WINDOW w AS (PARTITION BY "user.key" ORDER BY "@timestamp")
), user_countries AS (
    SELECT "user.key", country, count(*) AS logins FROM located GROUP BY ALL
), legs AS (
    SELECT s.*,
           geo_km(prev_lat, prev_lon, lat, lon) AS km,
           date_diff('second', prev_ts, "@timestamp") / 3600.0 AS hours,
           CASE WHEN precision = 'city' AND prev_precision = 'city' THEN 'city'
                ELSE 'country' END AS leg_precision
    FROM seq s
    WHERE prev_ts IS NOT NULL AND "source.ip" IS DISTINCT FROM prev_ip
), fast AS (
    SELECT l.*,
           greatest(km - CASE leg_precision WHEN 'city' THEN $city_margin_km
                             ELSE $country_margin_km END, 0) AS km_min,
           a.logins AS prev_country_logins, b.logins AS country_logins
    FROM legs l
    JOIN user_countries a ON a."user.key" = l."user.key" AND a.country = l.prev_country
    JOIN user_countries b ON b."user.key" = l."user.key" AND b.country = l.country
), impossible AS (
    SELECT *,
           km_min / greatest(hours, 1 / 60.0) AS kmh,
           -- the rarer place for this user is the likelier intruder
           country_logins <= prev_country_logins AS new_side_suspect,
           date_trunc('day', "@timestamp") AS day
    FROM fast
    WHERE km_min > $max_kmh * hours
), per_day AS (
    SELECT "user.key", day,
           arg_max("user.name", kmh) AS user_name,
           min(prev_ts) AS first_ts, max("@timestamp") AS last_ts, count(*) AS legs,
           max(kmh) AS max_kmh_seen,
           arg_max(CASE WHEN new_side_suspect THEN "source.ip" ELSE prev_ip END, kmh) AS ip,
           arg_max(CASE WHEN new_side_suspect THEN country ELSE prev_country END, kmh)
               AS cc,
           arg_max(CASE WHEN new_side_suspect THEN asn END, kmh) AS asn_,
           arg_max(CASE WHEN new_side_suspect THEN as_org ELSE prev_org END, kmh) AS org,
           arg_max(coalesce("observer.name", prev_observer), kmh) AS observer,
           bool_or(hosting OR prev_hosting) AS any_hosting,
           bool_and(leg_precision = 'city') AS all_city,
           arg_max(format('{} ({}, {}) at {} then {} ({}, {}) at {} UTC, {} km apart{} '
                          'in {} h', prev_country, prev_ip, coalesce(prev_org, '?'),
                          strftime(prev_ts, '%Y-%m-%d %H:%M'), country, "source.ip",
                          coalesce(as_org, '?'), strftime("@timestamp", '%Y-%m-%d %H:%M'),
                          round(km)::BIGINT,
                          CASE leg_precision WHEN 'city' THEN ' (city level)'
                               ELSE ' between country centres' END,
                          round(hours, 2)), kmh) AS worst,
           arg_max(leg_precision, kmh) AS worst_precision,
           list(DISTINCT prev_ip) || list(DISTINCT "source.ip") AS ips,
           list({from_time: prev_ts, from_ip: prev_ip, from_country: prev_country,
                 from_org: prev_org, to_time: "@timestamp", to_ip: "source.ip",
                 to_country: country, to_org: as_org, km: round(km),
                 km_less_margin: round(km_min), hours: round(hours, 3),
                 kmh: round(kmh), precision: leg_precision} ORDER BY "@timestamp")
               AS leg_list
    FROM impossible GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       "user.key" || '|' || strftime(day, '%Y-%m-%d') AS "alert.key",
       format('Impossible travel for {}: {}: over {} km/h even allowing a {} km margin for '
              '{}-level location{}', user_name, worst, round(max_kmh_seen)::BIGINT,
              CASE worst_precision WHEN 'city' THEN $city_margin_km
                   ELSE $country_margin_km END::BIGINT,
              worst_precision,
              CASE WHEN legs > 1 THEN format(' ({} such legs that day)', legs) ELSE '' END)
           AS "alert.summary",
       CASE WHEN any_hosting OR all_city THEN 'high' ELSE 'medium' END AS "alert.severity",
       user_name AS "user.name", ip AS "source.ip", observer AS "observer.name",
       cc AS "source.geo.country_iso_code", asn_ AS "source.as.number",
       org AS "source.as.organization.name",
       list_sort(list_distinct(ips)) AS "related.ip", [user_name] AS "related.user",
       to_json({legs: leg_list, max_kmh: $max_kmh, country_margin_km: $country_margin_km,
                city_margin_km: $city_margin_km,
                location_precision: worst_precision})::VARCHAR AS "alert.evidence"
FROM per_day
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_impossible_travel",
    title="Impossible travel between two VPN logins of one user",
    description=__doc__ or "",
    tactics=("TA0001",),
    techniques=("T1078",),
    severity="high",
    datasets=("events",),
    needs=("sessions", "logins"),
    params={"max_kmh": 1000.0, "country_margin_km": 2000.0, "city_margin_km": 200.0},
    run=with_geo(SQL),
    false_positives=(
        "Country-level distances are reduced by country_margin_km, so neighbouring countries "
        "never fire; travellers (a travel day between the last login at home and the first "
        "abroad) are physically plausible. Commercial VPN apps and mobile roaming can still "
        "jump countries: those alerts are medium unless a hosting network is involved."
    ),
)
