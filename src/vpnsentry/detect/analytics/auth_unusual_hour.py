"""Unusual hour: a successful VPN login at an hour of day at least ``min_gap_hours`` away from
every hour the user has ever been connected, once the user has ``learning_days`` of history
and ``min_logins`` logins.

Why it works: people keep their working hours; an intruder using a stolen credential works
in *their* daytime, which for a foreign operator is the victim's night. The baseline is the
hours the user was *connected* (each session from login to logout, at most
``max_span_hours``), not just the hours they logged in: someone who works 9 to 18 and
reconnects after lunch is not unusual at 14:00 even if they never logged in at 14:00 before.

Which clock. A fixed clock per user (UTC; a fixed offset does not change distances between
hours, so this is the user's home time zone up to daylight saving) catches the foreign
operator. It would also flag every traveller who works local hours abroad, so a login from
a *residential* line in a country other than the user's usual one (their most frequent
login country) is judged instead in the local solar time of that country (its centre's
longitude / 15, within an hour or two of civil time), against the user's hours in the same
local terms: a traveller keeps their rhythm, and nothing fires. Hosting/VPS/VPN addresses
say nothing about where the person is, so they are always judged on the user's own clock.

Deliberately ignored: what the user does once connected (long sessions, RDP from home), the
first ``learning_days`` of a user (new joiners), and users with too few logins to know their
hours. Low severity (medium from a hosting network): a late night at work is not an attack;
it is context for the other alerts on the same user. One alert per user and day.
"""

from vpnsentry.detect.base import Detection
from vpnsentry.detect.geodata import with_geo

SQL = """
WITH pts AS (
    SELECT * FROM login_points
), p AS (
    SELECT *,
           (epoch("@timestamp") / 3600.0) % 24 AS utc_h,
           CASE WHEN lon IS NOT NULL
                THEN ((epoch("@timestamp") / 3600.0 + lon / 15.0) % 24 + 24) % 24 END
               AS local_h,
           least(date_diff('second', "@timestamp",
                           least(up_until, "@timestamp" + INTERVAL 2 DAY)) / 3600.0,
                 $max_span_hours) AS span_h,
           min("@timestamp") OVER (PARTITION BY "user.key") AS user_first,
           mode(country) OVER (PARTITION BY "user.key") AS usual_country,
           count(*) OVER (PARTITION BY "user.key" ORDER BY "@timestamp"
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_logins
    FROM pts
), spans AS (
    -- sessions by (first hour, hours connected): many share one, so unnest the few shapes
    SELECT "user.key", 'utc' AS clock, floor(utc_h)::INTEGER AS bin0,
           floor(utc_h % 1 + span_h)::INTEGER AS extra, min("@timestamp") AS ts
    FROM p GROUP BY ALL
    UNION ALL
    SELECT "user.key", 'local', floor(local_h)::INTEGER, floor(local_h % 1 + span_h)::INTEGER,
           min("@timestamp")
    FROM p WHERE local_h IS NOT NULL GROUP BY ALL
), active AS (
    -- every hour of day (in both clocks) a session was connected, from its start
    SELECT "user.key", clock, (bin0 + k) % 24 AS bin, ts
    FROM spans, unnest(range(0, extra + 1)) AS t(k)
), known AS (
    SELECT "user.key", clock, bin, min(ts) AS first_ts FROM active GROUP BY ALL
), judged AS (
    SELECT *,
           CASE WHEN country IS DISTINCT FROM usual_country AND NOT hosting
                     AND local_h IS NOT NULL THEN 'local' ELSE 'utc' END AS clock,
           floor(CASE WHEN country IS DISTINCT FROM usual_country AND NOT hosting
                           AND local_h IS NOT NULL THEN local_h ELSE utc_h END)::INTEGER
               AS hour
    FROM p
    WHERE prior_logins >= $min_logins
      AND "@timestamp" >= user_first + to_days(CAST($learning_days AS INTEGER))
), fresh AS (
    -- logins at an hour the user was never connected before: the only ones with a gap
    SELECT j.* FROM judged j
    WHERE NOT EXISTS (
        SELECT 1 FROM known k
        WHERE k."user.key" = j."user.key" AND k.clock = j.clock AND k.bin = j.hour
          AND k.first_ts < j."@timestamp")
), gaps AS (
    SELECT j."user.key", j."@timestamp", any_value(j."user.name") AS user_name,
           any_value(j."source.ip") AS ip, any_value(j.country) AS country,
           any_value(j.asn) AS asn, any_value(j.as_org) AS as_org,
           any_value(j.hosting) AS hosting, any_value(j."observer.name") AS observer,
           any_value(j.usual_country) AS usual_country, any_value(j.clock) AS clock,
           any_value(j.hour) AS hour, any_value(j.prior_logins) AS prior_logins,
           any_value(j.user_first) AS user_first,
           min(least(abs(j.hour - k.bin), 24 - abs(j.hour - k.bin))) AS gap,
           list(k.bin ORDER BY k.bin) AS known_hours
    FROM fresh j
    JOIN known k ON k."user.key" = j."user.key" AND k.clock = j.clock
     AND k.first_ts < j."@timestamp"
    GROUP BY j."user.key", j."@timestamp"
), unusual AS (
    SELECT *, date_trunc('day', "@timestamp") AS day FROM gaps WHERE gap >= $min_gap_hours
), per_day AS (
    SELECT "user.key", day, count(*) AS logins,
           arg_min(user_name, "@timestamp") AS user_name,
           min("@timestamp") AS first_ts, max("@timestamp") AS last_ts,
           arg_min(ip, "@timestamp") AS ip, arg_min(country, "@timestamp") AS country,
           arg_min(asn, "@timestamp") AS asn, arg_min(as_org, "@timestamp") AS as_org,
           bool_or(hosting) AS any_hosting, arg_min(observer, "@timestamp") AS observer,
           arg_min(usual_country, "@timestamp") AS usual_country,
           arg_min(clock, "@timestamp") AS clock, arg_min(hour, "@timestamp") AS hour,
           arg_min(gap, "@timestamp") AS gap,
           arg_min(prior_logins, "@timestamp") AS prior_logins,
           arg_min(user_first, "@timestamp") AS user_first,
           arg_min(known_hours, "@timestamp") AS known_hours,
           list(DISTINCT ip ORDER BY ip) AS ips,
           list({time: "@timestamp", ip: ip, country: country, hour: hour, gap_hours: gap,
                 clock: clock} ORDER BY "@timestamp") AS login_list
    FROM unusual GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       "user.key" || '|' || strftime(day, '%Y-%m-%d') AS "alert.key",
       format('{} logged in at {}:xx {} from {} ({}, {}), {} h from any hour of '
              'day the user was connected in {} earlier logins over {} days{}',
              user_name, lpad(hour::VARCHAR, 2, '0'),
              CASE clock WHEN 'utc' THEN 'UTC'
                   ELSE 'local solar time (a residential line abroad: judged in local time)'
              END,
              coalesce(country, '??'), ip, coalesce(as_org, 'unknown network'), gap,
              prior_logins, date_diff('day', user_first, first_ts),
              CASE WHEN logins > 1 THEN format(' ({} such logins that day)', logins)
                   ELSE '' END) AS "alert.summary",
       CASE WHEN any_hosting THEN 'medium' ELSE 'low' END AS "alert.severity",
       user_name AS "user.name", ip AS "source.ip", observer AS "observer.name",
       country AS "source.geo.country_iso_code", asn AS "source.as.number",
       as_org AS "source.as.organization.name",
       ips AS "related.ip", [user_name] AS "related.user",
       to_json({logins: login_list, clock: clock, known_hours: known_hours,
                usual_country: usual_country, prior_logins: prior_logins,
                history_days: date_diff('day', user_first, first_ts),
                min_gap_hours: $min_gap_hours})::VARCHAR AS "alert.evidence"
FROM per_day
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_unusual_hour",
    title="VPN login at an hour the user is never connected",
    description=__doc__ or "",
    tactics=("TA0001",),
    techniques=("T1078",),
    severity="low",
    datasets=("events",),
    needs=("sessions", "logins"),
    params={"min_gap_hours": 3, "min_logins": 10, "max_span_hours": 12.0},
    run=with_geo(SQL),
    false_positives=(
        "The baseline is the hours the user was connected, not only login times, so "
        "reconnects during a working day never fire. Travellers on residential lines abroad "
        "are judged in local time. New joiners and users with fewer than min_logins logins "
        "are not judged."
    ),
)
