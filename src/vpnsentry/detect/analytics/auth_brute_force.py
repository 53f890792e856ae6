"""Brute force: many failed logins for one account from one address in one burst, at a VPN
portal or at a gateway's own administration interface.

Why it works: guessing one account's password takes many attempts from the guesser's
address; a person who mistypes tries once or twice and then gets in (or gets locked out).
The administration interface is watched too, because the ``logins`` table leaves
administrators' logins out: those come straight from ``events`` (FortiGate
"Administrator ... login failed", Cisco ASA 605004), and a burst against a gateway's admin
account is rated high.

How: failures are cut into bursts per (gateway, account, address, plane), a new burst after
``max_gap_minutes`` without a failure; a burst with at least ``min_failures`` failures is an
alert. Severity: high for the admin interface or when the same account then logs in from the
same address within ``success_minutes`` (the guess worked); low when the account has logged
in successfully from that address before the burst (almost always its owner with a stale
saved password, a broken client or a locked-out phone); medium otherwise.

Deliberately ignored: addresses in the ``scanners`` allow-list (authenticated scans test
default credentials); one failure per account from many addresses (password spray:
``auth_password_spray``); failures against one account spread over many addresses
(distributed guessing; not covered here).
"""

from vpnsentry.detect.base import Detection
from vpnsentry.detect.context import ADMIN_LOGIN_SQL

#: Login attempts at gateways' administration interfaces (``logins`` leaves them out), with
#: the same derived columns as ``logins``. Shared with ``auth_success_after_failures``.
ADMIN_ATTEMPTS_SQL = (
    """
    SELECT e."@timestamp", e."observer.name", e."event.module", e."user.name",
           lower(regexp_replace(regexp_replace(e."user.name", '^.*\\\\', ''), '@.*$', ''))
               AS "user.key",
           e."source.ip", e."event.outcome", e."event.reason", ip4(e."source.ip") AS src_u,
           CASE WHEN ip4(e."source.ip") <= c.hi THEN c.country END AS country,
           CASE WHEN ip4(e."source.ip") <= g.hi THEN g.asn END AS asn,
           CASE WHEN ip4(e."source.ip") <= g.hi THEN g.as_org END AS as_org,
           coalesce(CASE WHEN ip4(e."source.ip") <= g.hi THEN g.hosting END, false) AS hosting
    FROM (SELECT * FROM events
          WHERE "event.category" = 'authentication' AND "event.outcome" IN ('success', 'failure')
            AND "user.name" IS NOT NULL AND "source.ip" IS NOT NULL AND """
    + ADMIN_LOGIN_SQL
    + """) e
    ASOF LEFT JOIN geo_country c ON ip4(e."source.ip") >= c.lo
    ASOF LEFT JOIN geo_asn g ON ip4(e."source.ip") >= g.lo
    """
)

SQL = (
    """
WITH admin_attempts AS ("""
    + ADMIN_ATTEMPTS_SQL
    + """), attempts AS (
    SELECT "@timestamp" AS ts, "observer.name", "event.module", "user.name", "user.key",
           "source.ip", "event.outcome", "event.reason", src_u, country, asn, as_org, hosting,
           false AS admin
    FROM logins
    UNION ALL
    SELECT "@timestamp", "observer.name", "event.module", "user.name", "user.key",
           "source.ip", "event.outcome", "event.reason", src_u, country, asn, as_org, hosting,
           true
    FROM admin_attempts
), failures AS (
    SELECT *, coalesce("observer.name", "event.module") AS gw FROM attempts f
    WHERE "event.outcome" = 'failure'
      AND NOT is_scanner(f.src_u)
), marked AS (
    SELECT *, CASE WHEN ts - lag(ts) OVER w <= to_minutes($max_gap_minutes::BIGINT)
                   THEN 0 ELSE 1 END AS new_burst
    FROM failures WINDOW w AS (PARTITION BY gw, admin, "user.key", "source.ip" ORDER BY ts)
), bursts AS (
    SELECT *, sum(new_burst) OVER (PARTITION BY gw, admin, "user.key", "source.ip" ORDER BY ts
                                   ROWS UNBOUNDED PRECEDING) AS b
    FROM marked
), grouped AS (
    SELECT gw, admin, "user.key", "source.ip", b, any_value("observer.name") AS "observer.name",
           mode("user.name") AS "user.name", min(ts) AS first_ts, max(ts) AS last_ts,
           count(*) AS failures, any_value(src_u) AS src_u, any_value(country) AS country,
           any_value(asn) AS asn, any_value(as_org) AS as_org, bool_or(hosting) AS hosting,
           list(DISTINCT "event.reason" ORDER BY "event.reason")
               FILTER (WHERE "event.reason" IS NOT NULL) AS reasons
    FROM bursts GROUP BY ALL
    HAVING count(*) >= $min_failures
), successes AS (
    SELECT ts, "user.key", "source.ip", admin FROM attempts WHERE "event.outcome" = 'success'
), judged AS (
    SELECT g.*,
           (SELECT min(s.ts) FROM successes s
            WHERE s."user.key" = g."user.key" AND s."source.ip" = g."source.ip"
              AND s.admin = g.admin AND s.ts >= g.first_ts
              AND s.ts <= g.last_ts + to_minutes($success_minutes::BIGINT)) AS success_ts,
           EXISTS (SELECT 1 FROM successes s
                   WHERE s."user.key" = g."user.key" AND s."source.ip" = g."source.ip"
                     AND s.admin = g.admin AND s.ts < g.first_ts) AS known_source
    FROM grouped g
)
SELECT first_ts AS "@timestamp", greatest(last_ts, success_ts) AS "event.end",
       concat_ws('|', gw, CASE WHEN admin THEN 'admin' ELSE 'vpn' END, "user.key", "source.ip",
                 strftime(first_ts, '%Y-%m-%dT%H:%M')) AS "alert.key",
       format('{} failed {} logins for {} from {} ({}, {}) at {} in {} minutes{}',
              failures, CASE WHEN admin THEN 'administrator' ELSE 'VPN' END, "user.name",
              "source.ip", coalesce(as_org, 'unknown network'), coalesce(country, '??'), gw,
              greatest(1, round(epoch(last_ts - first_ts) / 60))::BIGINT,
              CASE WHEN success_ts IS NOT NULL
                   THEN format(', then a successful login from the same address at {} UTC',
                               strftime(success_ts, '%H:%M'))
                   WHEN known_source THEN ' (the account has logged in from there before)'
                   ELSE '' END) AS "alert.summary",
       "user.name", "source.ip", "observer.name", country AS "source.geo.country_iso_code",
       asn AS "source.as.number", as_org AS "source.as.organization.name",
       CASE WHEN admin OR success_ts IS NOT NULL THEN 'high'
            WHEN known_source THEN 'low' ELSE 'medium' END AS "alert.severity",
       to_json({failures: failures, plane: CASE WHEN admin THEN 'admin' ELSE 'vpn' END,
                reasons: list_sort(reasons), first: first_ts, last: last_ts,
                success_after: success_ts, known_source: known_source,
                hosting: hosting})::VARCHAR AS "alert.evidence"
FROM judged
ORDER BY 1
"""
)

DETECTION = Detection(
    id="auth_brute_force",
    title="Brute force against one account",
    description=__doc__ or "",
    tactics=("TA0006",),
    techniques=("T1110.001",),
    severity="medium",
    datasets=("events",),
    needs=("logins",),
    params={"min_failures": 5, "max_gap_minutes": 30, "success_minutes": 60},
    sql=SQL,
    live=True,
    false_positives=(
        "Typos (1-3 failures then success) and expired passwords stay under min_failures. A "
        "burst from an address the account has logged in from before is rated low (stale "
        "saved password). Addresses in the scanners allow-list are ignored."
    ),
)
