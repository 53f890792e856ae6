"""Dormant account wakes up: a VPN login by an account that was in regular use and then had
no successful login for at least ``dormant_days``.

Why it works: accounts of people who left, changed role or went on long leave keep working
until someone disables them, and nobody notices when they are used: their credentials leak
in old dumps, and an intruder prefers an account whose owner will not see the login. A
login after a long silence is worth a look, and it is rare in a workforce that logs in
every week.

Baseline, so that it fires on dormancy and not on habit: the account must have logged in
successfully on at least ``min_active_days`` different days before the silence (an account
used once or twice a month by an occasional remote worker has no rhythm to break), and
the silence must be the account's first of that length in the data (an account that goes
quiet for a month every quarter, a seasonal worker, is alerted once, on its first return).

Deliberately ignored: new accounts (no login before: a new joiner is not dormant; their
first logins are judged by the other detections); failed logins (they do not end
dormancy, and they are not access); the length of the data: with less than
``dormant_days`` of history nothing can fire.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH ok AS (
    SELECT "@timestamp" AS ts, coalesce("observer.name", "event.module") AS gw,
           "observer.name", "user.name", "user.key", "source.ip", country, asn, as_org,
           hosting, "vpn.tunnel_ip"
    FROM logins WHERE "event.outcome" = 'success'
), gaps AS (
    SELECT *, lag(ts) OVER w AS prev_ts, lag("source.ip") OVER w AS prev_ip,
           ts - lag(ts) OVER w AS gap,
           count(DISTINCT ts::DATE) OVER (PARTITION BY "user.key" ORDER BY ts::DATE
                                          RANGE BETWEEN UNBOUNDED PRECEDING
                                                    AND INTERVAL 1 DAY PRECEDING) AS active_days
    FROM ok WINDOW w AS (PARTITION BY "user.key" ORDER BY ts)
), wakeups AS (
    SELECT *, row_number() OVER (PARTITION BY "user.key" ORDER BY ts) AS nth
    FROM gaps WHERE gap >= to_days($dormant_days::INTEGER)
)
SELECT w.ts AS "@timestamp", w.ts AS "event.end",
       concat_ws('|', w."user.key", strftime(w.ts, '%Y-%m-%d')) AS "alert.key",
       format('{} logged in to {} from {} ({}, {}) after {} days without a login (last login '
              '{} from {}); {} active days before the silence', w."user.name", w.gw,
              w."source.ip", coalesce(w.as_org, 'unknown network'), coalesce(w.country, '??'),
              date_diff('day', w.prev_ts, w.ts), strftime(w.prev_ts, '%Y-%m-%d'), w.prev_ip,
              w.active_days) AS "alert.summary",
       w."user.name", w."source.ip", w."observer.name",
       w.country AS "source.geo.country_iso_code", w.asn AS "source.as.number",
       w.as_org AS "source.as.organization.name",
       list_concat([w."source.ip"], CASE WHEN w."vpn.tunnel_ip" IS NOT NULL
                                         THEN [w."vpn.tunnel_ip"] ELSE [] END) AS "related.ip",
       CASE WHEN w.hosting THEN 'high' ELSE 'medium' END AS "alert.severity",
       to_json({silent_days: round(epoch(w.gap) / 86400, 1), previous_login: w.prev_ts,
                previous_source: w.prev_ip, active_days_before: w.active_days,
                same_source_as_before: w."source.ip" = w.prev_ip,
                hosting: w.hosting})::VARCHAR AS "alert.evidence"
FROM wakeups w
WHERE w.nth = 1 AND w.active_days >= $min_active_days
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_dormant_account",
    title="Login by a dormant account",
    description=__doc__ or "",
    tactics=("TA0001", "TA0003"),
    techniques=("T1078",),
    severity="medium",
    datasets=("events",),
    needs=("logins",),
    params={"dormant_days": 21, "min_active_days": 3},
    sql=SQL,
    false_positives=(
        "Occasional users (fewer than min_active_days login days before the silence) and "
        "accounts that were silent that long before (seasonal) are not alerted; new joiners "
        "have no earlier login and are never dormant."
    ),
)
