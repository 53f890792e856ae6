"""Administrator login to a VPN gateway from a source that administrators do not use.

Why it works: a gateway's management plane is reached by a handful of network admins from
the admin workstations or the management network, day after day. Whoever takes over the
box through its admin interface (a leaked or default admin password, a brute-forced
``admin``) logs in from somewhere else: a rented server, a VPN user's tunnel address, an
ordinary office PC. The gateway logs every admin login with its source (FortiGate logid
0100032001/0100032002 with the Administrator role, Cisco ASA 605005/605004), so the check
is exact and cheap: the source is neither an allow-listed admin host, nor in a subnet the
inventory marks as management, nor a source this account already logged in from at least
``learning_days`` earlier. Failed admin logins from such a source count too (guessing the
admin password comes before the login), grouped per gateway, source and day.

What it deliberately ignores: admin logins from allow-listed admin hosts and management
subnets (the daily work of network admins: the gateway-admin routine), sources an account
has used for longer than the learning period, and VPN user logins (other detections). A
lone mistyped admin password from an unusual internal source raises nothing below
``min_failures`` failures.
"""

from vpnsentry.detect.base import Detection
from vpnsentry.detect.context import ADMIN_LOGIN_SQL

SQL = """
WITH adm AS (
    SELECT "@timestamp" AS ts, "observer.name" AS gw, "user.name" AS usr,
           lower(regexp_replace(regexp_replace("user.name", '^.*\\\\', ''), '@.*', ''))
               AS ukey,
           "source.ip" AS src, ip4("source.ip") AS src_u, "event.outcome" AS outcome,
           "event.code" AS code
    FROM events
    WHERE __ADMIN_LOGIN__
      AND "event.category" = 'authentication'
      AND "event.outcome" IN ('success', 'failure')
      AND "source.ip" IS NOT NULL
), known AS (
    -- (account, source) pairs proven by a successful login, with the first such time
    SELECT ukey, src, min(ts) AS since FROM adm WHERE outcome = 'success' GROUP BY ALL
), judged AS (
    SELECT a.*,
           is_admin_host(a.src_u)
           OR EXISTS (SELECT 1 FROM subnets s
                      WHERE s.role = 'management' AND a.src_u BETWEEN s.net_lo AND s.net_hi)
               AS sanctioned,
           k.since IS NOT NULL AND k.since <= a.ts - to_days($learning_days::INTEGER)
               AS usual
    FROM adm a LEFT JOIN known k USING (ukey, src)
), grouped AS (
    SELECT gw, src, src_u, date_trunc('day', ts) AS day,
           min(ts) AS first_ts, max(ts) AS last_ts,
           count(*) FILTER (WHERE outcome = 'success') AS successes,
           count(*) FILTER (WHERE outcome = 'failure') AS failures,
           min(ts) FILTER (WHERE outcome = 'success') AS first_success,
           list(DISTINCT usr ORDER BY usr) AS users,
           list(DISTINCT usr ORDER BY usr) FILTER (WHERE outcome = 'success') AS ok_users
    FROM judged
    WHERE NOT sanctioned AND NOT usual
    GROUP BY ALL
), located AS (
    SELECT g.*,
           CASE WHEN g.src_u <= a.hi THEN a.asn END AS asn,
           CASE WHEN g.src_u <= a.hi THEN a.as_org END AS as_org,
           coalesce(CASE WHEN g.src_u <= a.hi THEN a.hosting END, false) AS hosting,
           CASE WHEN g.src_u <= c.hi THEN c.country END AS country
    FROM grouped g
    ASOF LEFT JOIN geo_asn a ON g.src_u >= a.lo
    ASOF LEFT JOIN geo_country c ON g.src_u >= c.lo
)
SELECT g.first_ts AS "@timestamp", g.last_ts AS "event.end",
       concat_ws('|', g.gw, g.src, strftime(g.day, '%Y-%m-%d')) AS "alert.key",
       CASE WHEN g.successes > 0 THEN
           format('Administrator login to gateway {} as {} from {} ({}, {}), not an admin '
                  'host or management address; {} failed admin login(s) from it that day',
                  g.gw, array_to_string(g.ok_users, ', '), g.src,
                  CASE WHEN is_private(g.src_u) THEN 'internal'
                       ELSE coalesce(g.as_org, 'unknown network') END,
                  coalesce(g.country, '??'), g.failures)
       ELSE
           format('{} failed administrator logins to gateway {} from {} ({}, {}) as {}',
                  g.failures, g.gw, g.src,
                  CASE WHEN is_private(g.src_u) THEN 'internal'
                       ELSE coalesce(g.as_org, 'unknown network') END,
                  coalesce(g.country, '??'), array_to_string(g.users, ', '))
       END AS "alert.summary",
       g.src AS "source.ip", g.gw AS "observer.name",
       CASE WHEN len(g.ok_users) = 1 THEN g.ok_users[1]
            WHEN len(g.users) = 1 THEN g.users[1] END AS "user.name",
       g.country AS "source.geo.country_iso_code",
       g.asn AS "source.as.number", g.as_org AS "source.as.organization.name",
       g.users AS "related.user", [g.src] AS "related.ip", [g.gw] AS "related.hosts",
       CASE WHEN g.successes > 0 AND NOT coalesce(is_private(g.src_u), false) THEN 'critical'
            WHEN g.successes > 0 THEN 'high'
            ELSE 'medium' END AS "alert.severity",
       to_json({successes: g.successes, failures: g.failures, accounts: g.users,
                first_success: g.first_success, hosting: g.hosting,
                asn: g.asn, as_org: g.as_org})::VARCHAR AS "alert.evidence"
FROM located g
WHERE g.successes > 0 OR g.failures >= $min_failures
ORDER BY 1
""".replace("__ADMIN_LOGIN__", ADMIN_LOGIN_SQL)

DETECTION = Detection(
    id="appliance_admin_login_unusual_source",
    title="Gateway administrator login from an unusual source",
    description=__doc__ or "",
    tactics=("TA0001", "TA0003", "TA0006"),
    techniques=("T1078.001", "T1110.001"),
    severity="high",
    datasets=("events",),
    params={"min_failures": 3},
    sql=SQL,
    false_positives=(
        "Admin logins from allow-listed admin hosts (allow.admin_hosts), from subnets the "
        "inventory marks as management, and from a source the same account has used for "
        "at least learning_days are not reported. A new admin workstation raises one alert "
        "per gateway and day until it is allow-listed or learnt."
    ),
)
