"""New country (or new hosting network) for a user: a successful VPN login from a country the
account never logged in from before, or from a hosting/VPS/anonymizer network it never used.

Why it works: a VPN account's logins come from a handful of places (home, office, a phone),
so the first login from elsewhere is the moment a stolen credential is first used. Judged
only after the user has ``learning_days`` of history (new joiners are skipped: everything is
new for them; the hosting-ASN, spray and impossible-travel detections still cover them).

One detection, not two (country, ASN): a new country nearly always comes with a new network,
and two alerts about one login are noise. A new *residential* network in a known country is
deliberately ignored (mobile tethering, a new ISP, hotel Wi-Fi, and GeoIP data naming one
carrier several ways make it daily noise); a new *hosting* network is not, since employees
do not rent servers to reach the VPN, and an attacker's VPS in the victim's own country is
meant to dodge country checks (medium).

Business travel is the benign twin of a new country. What tells them apart, in order:

* high: the new country is reached through a hosting/VPS/VPN network, or the previous
  login from elsewhere was too recent to have travelled the distance (more than
  ``max_kmh``; distances between country centres, less ``country_margin_km`` for the
  uncertainty of country-level geo, or ``city_margin_km`` with a City database);
* medium: travel was possible but a session of the same user from another country was still
  connected (an intruder next to the victim's own session, or a session left connected at
  home by a traveller), or a new hosting network in a known country;
* low: physically plausible travel from a residential network, to a country outside the
  company's footprint (no site there, and fewer than ``footprint_users`` other users ever
  logged in from it): worth a look, cheap to dismiss;
* no alert: plausible travel from a residential network to a country where the company has a
  site or other users routinely log in from: this is what business trips look like.

Only the first login of each (user, country) or (user, hosting network) is judged; the alert
key is user|country (or user|network), so it is raised once.
"""

from vpnsentry.detect.base import Detection
from vpnsentry.detect.geodata import with_geo

SQL = """
WITH pts AS (
    SELECT * FROM login_points
), user_first AS (
    SELECT "user.key", min("@timestamp") AS user_first FROM pts GROUP BY ALL
), firsts AS (
    -- the first login of each (user, country) and (user, hosting network)
    SELECT "user.key", min("@timestamp") AS ts, 'country' AS novelty
    FROM pts WHERE country IS NOT NULL GROUP BY "user.key", country
    UNION ALL
    SELECT "user.key", min("@timestamp"), 'network'
    FROM pts WHERE hosting AND net IS NOT NULL GROUP BY "user.key", net
), novel AS (
    SELECT p.*, f.novelty, u.user_first,
           (SELECT count(*) FROM pts h
             WHERE h."user.key" = p."user.key" AND h."@timestamp" < p."@timestamp")
               AS prior_logins
    FROM firsts f
    JOIN user_first u USING ("user.key")
    JOIN pts p ON p."user.key" = f."user.key" AND p."@timestamp" = f.ts
    WHERE f.ts >= u.user_first + to_days(CAST($learning_days AS INTEGER))
      AND (f.novelty = 'country' OR p.hosting)
      AND EXISTS (SELECT 1 FROM pts h WHERE h."user.key" = p."user.key"
                  AND h."@timestamp" < p."@timestamp" AND h.country IS NOT NULL)
    -- one row per login: a new country that is also a new network counts as a country
    QUALIFY row_number() OVER (PARTITION BY p."user.key", p."@timestamp"
                               ORDER BY f.novelty = 'country' DESC) = 1
), user_countries AS (
    SELECT "user.key", country, min("@timestamp") AS first_ts, count(*) AS logins
    FROM pts WHERE country IS NOT NULL GROUP BY ALL
), previous AS (
    -- the user's last located login before the new one (where they were last seen)
    SELECT n."user.key", n."@timestamp", p."@timestamp" AS prev_ts, p.country AS prev_country,
           p."source.ip" AS prev_ip, p.lat AS prev_lat, p.lon AS prev_lon,
           p.precision AS prev_precision
    FROM novel n ASOF JOIN (SELECT * FROM pts WHERE country IS NOT NULL) p
      ON p."user.key" = n."user.key" AND p."@timestamp" < n."@timestamp"
), concurrent AS (
    SELECT n."user.key", n."@timestamp",
           list(DISTINCT o.country ORDER BY o.country) AS countries,
           list(DISTINCT o."source.ip" ORDER BY o."source.ip") AS ips
    FROM novel n JOIN pts o
      ON o."user.key" = n."user.key" AND o."@timestamp" < n."@timestamp"
     AND o.up_until > n."@timestamp" AND o.country IS NOT NULL
     AND o.country <> n.country
    GROUP BY ALL
), judged AS (
    SELECT n.*, pv.prev_ts, pv.prev_country, pv.prev_ip, pv.prev_precision,
           c.countries AS concurrent_countries, c.ips AS concurrent_ips,
           geo_km(pv.prev_lat, pv.prev_lon, n.lat, n.lon) AS km,
           date_diff('second', pv.prev_ts, n."@timestamp") / 3600.0 AS hours,
           CASE WHEN n.precision = 'city' AND pv.prev_precision = 'city'
                THEN $city_margin_km ELSE $country_margin_km END AS margin_km,
           (SELECT list(uc.country ORDER BY uc.first_ts) FROM user_countries uc
             WHERE uc."user.key" = n."user.key" AND uc.first_ts < n."@timestamp")
               AS known_countries,
           (SELECT count(*) FROM user_countries uc
             WHERE uc.country = n.country AND uc."user.key" <> n."user.key"
               AND uc.first_ts < n."@timestamp") AS other_users,
           n.country IN (SELECT country FROM subnets WHERE country IS NOT NULL) AS site_country
    FROM novel n
    LEFT JOIN previous pv USING ("user.key", "@timestamp")
    LEFT JOIN concurrent c USING ("user.key", "@timestamp")
), scored AS (
    SELECT *,
           greatest(km - margin_km, 0) AS km_beyond_margin,
           greatest(km - margin_km, 0) > $max_kmh * hours AS too_fast,
           site_country OR other_users >= $footprint_users AS in_footprint
    FROM judged
), alerts AS (
    SELECT *,
           CASE WHEN too_fast OR (hosting AND novelty = 'country') THEN 'high'
                WHEN concurrent_countries IS NOT NULL OR novelty = 'network' THEN 'medium'
                WHEN NOT in_footprint THEN 'low' END AS severity,
           concat_ws('; ',
               CASE WHEN hosting THEN CASE hosting_kind WHEN 'vpn' THEN 'commercial VPN exit'
                    WHEN 'tor' THEN 'Tor exit' WHEN 'proxy' THEN 'proxy network'
                    ELSE 'hosting/VPS network' END END,
               CASE WHEN concurrent_countries IS NOT NULL THEN 'session from '
                    || array_to_string(concurrent_countries, ', ') || ' still connected' END,
               CASE WHEN too_fast THEN format('{} km from the previous login ({}) in {} h',
                    round(km)::BIGINT, prev_country, round(hours, 1)) END,
               CASE WHEN novelty = 'country' AND NOT in_footprint
                    THEN 'country outside the company footprint' END
           ) AS reasons
    FROM scored
)
SELECT "@timestamp", "@timestamp" AS "event.end",
       CASE novelty WHEN 'country' THEN "user.key" || '|country:' || country
            ELSE "user.key" || '|net:' || net END AS "alert.key",
       format('{} logged in from {} {} ({}, {}) for the first time after {} logins '
              'over {} days from {}: {}', "user.name",
              CASE novelty WHEN 'country' THEN 'new country' ELSE 'new hosting network in' END,
              coalesce(country, '??'), coalesce(as_org, net, 'unknown network'), "source.ip",
              prior_logins,
              date_diff('day', user_first, "@timestamp"),
              array_to_string(known_countries, ', '),
              CASE WHEN reasons <> '' THEN reasons ELSE 'plausible travel' END)
           AS "alert.summary",
       severity AS "alert.severity",
       "user.name", "source.ip", "observer.name",
       country AS "source.geo.country_iso_code", asn AS "source.as.number",
       as_org AS "source.as.organization.name",
       ["source.ip"] AS "related.ip", ["user.name"] AS "related.user",
       to_json({novelty: novelty, country: country, network: net, hosting: hosting,
                hosting_kind: hosting_kind, known_countries: known_countries,
                prior_logins: prior_logins, history_days: date_diff('day', user_first,
                "@timestamp"), previous_login: {time: prev_ts, country: prev_country,
                ip: prev_ip}, distance_km: round(km), hours_since_previous: round(hours, 2),
                margin_km: margin_km, location_precision: coalesce(prev_precision, precision),
                concurrent_countries: concurrent_countries, concurrent_ips: concurrent_ips,
                site_country: site_country, other_users_from_country: other_users,
                reasons: reasons})::VARCHAR AS "alert.evidence"
FROM alerts
WHERE severity IS NOT NULL
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_new_country_asn",
    title="VPN login from a new country or hosting network for the user",
    description=__doc__ or "",
    tactics=("TA0001",),
    techniques=("T1078", "T1133"),
    severity="high",
    datasets=("events",),
    needs=("sessions", "logins"),
    params={
        "max_kmh": 1000.0,
        "country_margin_km": 2000.0,
        "city_margin_km": 200.0,
        "footprint_users": 2,
    },
    run=with_geo(SQL),
    false_positives=(
        "Business travel: plausible travel (no login from elsewhere for the flight time, no "
        "session from elsewhere still connected) from a residential network raises nothing "
        "when the country has a company site or footprint_users other users log in from it, "
        "and a low alert otherwise. New joiners are judged after learning_days. A new "
        "residential ISP in a known country is ignored."
    ),
)
