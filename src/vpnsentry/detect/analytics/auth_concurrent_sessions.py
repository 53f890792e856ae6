"""Concurrent VPN sessions of one user from two places: a login while another session of the
same account, from another country or from a hosting network the other is not on, is still
connected.

Why it works: VPN accounts are personal; two live tunnels of one account from two countries
mean two devices in two places, and when one of them just logged in from a rented server it
is the classic stolen-credential picture (the victim works from home, the intruder logs in
from abroad). It uses the ``sessions`` table, so it sees overlaps that impossible travel,
which compares consecutive *logins*, cannot: the victim's session may have started hours or
days before the intruder's.

A "place" is a country plus, for hosting/VPS/VPN networks, the network: two sessions from
the same country on residential lines (a laptop and a phone, a home line whose address
changed while an old session lingers, reconnects) are one place and never fire. Sessions
whose country is unknown are skipped.

Severity: high when a hosting network is involved or the second login came too soon after
the first session began to have travelled between the two places (the same geo-velocity
rule and margins as ``auth_impossible_travel``); medium otherwise, since a session left
connected at home (or one whose end the gateway did not log, ``end_inferred``) while its
owner travels abroad produces the same overlap: the summary says when that explanation
is available. One alert per user and day.
"""

from vpnsentry.detect.base import Detection
from vpnsentry.detect.geodata import with_geo

SQL = """
WITH pts AS (
    SELECT * FROM login_points
), placed AS (
    SELECT *, country || '|' || CASE WHEN hosting THEN coalesce(net, 'hosting')
                                     ELSE 'residential' END AS place
    FROM pts WHERE country IS NOT NULL
), sess AS (
    -- only users seen in two places or more can be in two at once
    SELECT * FROM placed
    WHERE "user.key" IN (SELECT "user.key" FROM placed GROUP BY ALL
                         HAVING count(DISTINCT place) > 1)
), running AS (
    -- per user and place, at each session start: the longest-lasting session so far
    SELECT "user.key", place, "@timestamp" AS ts,
           max(up_until) OVER w AS a_until,
           arg_max("@timestamp", up_until) OVER w AS a_start,
           arg_max("source.ip", up_until) OVER w AS a_ip,
           arg_max(end_inferred, up_until) OVER w AS a_inferred,
           arg_max("observer.name", up_until) OVER w AS a_observer,
           arg_max(country, up_until) OVER w AS a_country,
           arg_max(as_org, up_until) OVER w AS a_org,
           arg_max(hosting, up_until) OVER w AS a_hosting,
           arg_max(lat, up_until) OVER w AS a_lat,
           arg_max(lon, up_until) OVER w AS a_lon,
           arg_max(precision, up_until) OVER w AS a_precision
    FROM sess
    WINDOW w AS (PARTITION BY "user.key", place ORDER BY "@timestamp"
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), places AS (
    SELECT "user.key", place, count(*) AS logins FROM sess GROUP BY ALL
), probe AS (
    SELECT b.*, p.place AS other_place, p.logins AS a_logins
    FROM sess b JOIN places p ON p."user.key" = b."user.key" AND p.place <> b.place
), overlap AS (
    SELECT pr.*, r.a_until, r.a_start, r.a_ip, r.a_inferred, r.a_observer, r.a_country,
           r.a_org, r.a_hosting, r.a_lat, r.a_lon, r.a_precision, me.logins AS b_logins
    FROM probe pr
    ASOF JOIN running r
      ON r."user.key" = pr."user.key" AND r.place = pr.other_place AND pr."@timestamp" >= r.ts
    JOIN places me ON me."user.key" = pr."user.key" AND me.place = pr.place
    WHERE r.a_until > pr."@timestamp" AND r.a_ip IS DISTINCT FROM pr."source.ip"
), scored AS (
    SELECT *,
           geo_km(a_lat, a_lon, lat, lon) AS km,
           date_diff('second', a_start, "@timestamp") / 3600.0 AS hours,
           CASE WHEN precision = 'city' AND a_precision = 'city' THEN 'city'
                ELSE 'country' END AS pair_precision,
           date_trunc('day', "@timestamp") AS day
    FROM overlap
), judged AS (
    SELECT *,
           greatest(km - CASE pair_precision WHEN 'city' THEN $city_margin_km
                             ELSE $country_margin_km END, 0) > $max_kmh * hours AS too_fast,
           hosting OR a_hosting AS any_hosting,
           b_logins <= a_logins AS b_suspect
    FROM scored
), per_day AS (
    SELECT "user.key", day,
           arg_max("user.name", "@timestamp") AS user_name,
           min(a_start) AS first_ts, max("@timestamp") AS last_ts, count(*) AS pairs,
           bool_or(too_fast OR any_hosting) AS strong,
           bool_or(a_inferred) AS inferred_end,
           arg_max(CASE WHEN b_suspect THEN "source.ip" ELSE a_ip END, "@timestamp") AS ip,
           arg_max(CASE WHEN b_suspect THEN country ELSE a_country END, "@timestamp") AS cc,
           arg_max(CASE WHEN b_suspect THEN asn END, "@timestamp") AS asn_,
           arg_max(CASE WHEN b_suspect THEN as_org ELSE a_org END, "@timestamp") AS org,
           arg_max(coalesce("observer.name", a_observer), "@timestamp") AS observer,
           arg_max(format('{} ({}, {}{}, connected since {}) and {} ({}, {}{}, '
                          'logged in {} UTC), {} km apart ({} level)', a_country, a_ip,
                          coalesce(a_org, '?'), CASE WHEN a_hosting THEN ', hosting' ELSE '' END,
                          strftime(a_start, '%Y-%m-%d %H:%M'), country, "source.ip",
                          coalesce(as_org, '?'), CASE WHEN hosting THEN ', hosting' ELSE '' END,
                          strftime("@timestamp", '%Y-%m-%d %H:%M'), round(km)::BIGINT,
                          pair_precision), too_fast OR any_hosting) AS worst,
           list(DISTINCT a_ip) || list(DISTINCT "source.ip") AS ips,
           list({first_ip: a_ip, first_country: a_country, first_org: a_org,
                 first_start: a_start, first_connected_until: a_until,
                 first_end_inferred: a_inferred, second_ip: "source.ip",
                 second_country: country, second_org: as_org, second_start: "@timestamp",
                 km: round(km), hours_between_logins: round(hours, 2),
                 travel_possible: NOT too_fast, hosting: any_hosting,
                 precision: pair_precision} ORDER BY "@timestamp") AS pair_list
    FROM judged GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       "user.key" || '|' || strftime(day, '%Y-%m-%d') AS "alert.key",
       format('Concurrent VPN sessions of {} from two places: {}{}', user_name, worst,
              CASE WHEN strong THEN ''
                   ELSE '; travel between the logins was possible, so a session left '
                        || 'connected may explain it' END) AS "alert.summary",
       CASE WHEN strong THEN 'high' ELSE 'medium' END AS "alert.severity",
       user_name AS "user.name", ip AS "source.ip", observer AS "observer.name",
       cc AS "source.geo.country_iso_code", asn_ AS "source.as.number",
       org AS "source.as.organization.name",
       list_sort(list_distinct(ips)) AS "related.ip", [user_name] AS "related.user",
       to_json({pairs: pair_list, any_end_inferred: inferred_end,
                max_kmh: $max_kmh})::VARCHAR AS "alert.evidence"
FROM per_day
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_concurrent_sessions",
    title="Concurrent VPN sessions of one user from two places",
    description=__doc__ or "",
    tactics=("TA0001",),
    techniques=("T1078",),
    severity="high",
    datasets=("events",),
    needs=("sessions", "logins"),
    params={"max_kmh": 1000.0, "country_margin_km": 2000.0, "city_margin_km": 200.0},
    run=with_geo(SQL),
    false_positives=(
        "Two residential sessions from one country (reconnects, a phone and a laptop, a "
        "home address that changed under a long-lived session) are one place and never "
        "fire. A session left connected at home while its owner travels is medium, not "
        "high, when the time since it began allows the trip."
    ),
)
