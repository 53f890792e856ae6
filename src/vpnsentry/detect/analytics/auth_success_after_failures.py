"""Successful login after failures: an account gets in from an address (or a network) that
shortly before failed to log in as other accounts, or failed many times as this one.

Why it works: a spray or brute force that succeeds ends in one successful login from the
guessing infrastructure; that success is the moment the attack turns into access (T1078),
and it looks ordinary on its own. What gives it away is what the same address, or other
guessing addresses of the same network (sprays rotate through one provider's addresses), did
in the ``lookback_minutes`` before it.

A success from address A by account U, at VPN or administration logins, is an alert when, in
the lookback window:

* A failed for at least ``min_accounts`` *other* accounts whose failures there were not
  followed by that account's own success from A within ``resolve_minutes`` (a shared address
  of a household, hotel or carrier NAT, where people mistype and then get in, does not
  count); or
* other addresses of A's network (AS number, or AS organisation when the geo data has no
  number) that each failed for at least ``min_accounts_per_address`` accounts failed, between
  them, for at least ``min_accounts`` other unresolved accounts; or
* A failed at least ``min_failures`` times as U, and U had never logged in from A before
  those failures (a user with a stale saved password at home is not a compromise).

Deliberately ignored: the password-typo and expired-password pattern (the same user, from
their own address, one to three failures and then success); sources in the ``partners`` and
``scanners`` allow-lists (a partner's shared egress address carries many people's typos).
"""

from vpnsentry.detect.analytics.auth_brute_force import ADMIN_ATTEMPTS_SQL
from vpnsentry.detect.base import Detection

SQL = (
    """
WITH admin_attempts AS ("""
    + ADMIN_ATTEMPTS_SQL
    + """), attempts AS (
    SELECT "@timestamp" AS ts, "observer.name", "event.module", "user.name", "user.key",
           "source.ip", "event.outcome", src_u, country, asn, as_org, hosting, false AS admin
    FROM logins
    UNION ALL
    SELECT "@timestamp", "observer.name", "event.module", "user.name", "user.key",
           "source.ip", "event.outcome", src_u, country, asn, as_org, hosting, true
    FROM admin_attempts
), scoped AS (
    SELECT *, coalesce('AS' || asn::VARCHAR, 'ORG ' || as_org) AS network FROM attempts t
    WHERE NOT is_partner(t.src_u) AND NOT is_scanner(t.src_u)
), succ AS (
    SELECT row_number() OVER (ORDER BY ts, "user.key", "source.ip") AS sid, *
    FROM scoped WHERE "event.outcome" = 'success'
), fails AS (
    SELECT f.*, coalesce(s.ts <= f.ts + to_minutes($resolve_minutes::BIGINT), false) AS resolved
    FROM (SELECT * FROM scoped WHERE "event.outcome" = 'failure') f
    ASOF LEFT JOIN (SELECT ts, "user.key", "source.ip" FROM scoped
                    WHERE "event.outcome" = 'success') s
      ON f."user.key" = s."user.key" AND f."source.ip" = s."source.ip" AND s.ts >= f.ts
), open_fails AS (
    SELECT * FROM fails WHERE NOT resolved
), addr_marked AS (
    SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY "source.ip" ORDER BY ts)
                        <= to_minutes($lookback_minutes::BIGINT) THEN 0 ELSE 1 END AS new_burst
    FROM open_fails
), addr_bursts AS (
    SELECT *, sum(new_burst) OVER (PARTITION BY "source.ip" ORDER BY ts
                                   ROWS UNBOUNDED PRECEDING) AS ab
    FROM addr_marked
), guessing AS (
    SELECT b.* FROM addr_bursts b
    SEMI JOIN (SELECT "source.ip", ab FROM addr_bursts GROUP BY ALL
               HAVING count(DISTINCT "user.key") >= $min_accounts_per_address) q
      USING ("source.ip", ab)
    WHERE b.network IS NOT NULL
), same_addr AS (
    SELECT s.sid,
           count(DISTINCT f."user.key") FILTER (WHERE f."user.key" <> s."user.key"
                                                AND NOT f.resolved) AS other_accounts,
           count(*) FILTER (WHERE f."user.key" = s."user.key") AS own_failures,
           min(f.ts) FILTER (WHERE f."user.key" = s."user.key") AS own_first,
           min(f.ts) AS first_fail, max(f.ts) AS last_fail,
           list_sort(list(DISTINCT f."user.name") FILTER (WHERE f."user.key" <> s."user.key"
                                                          AND NOT f.resolved))[1:10]
               AS sample_accounts
    FROM succ s JOIN fails f
      ON f."source.ip" = s."source.ip" AND f.ts <= s.ts
     AND f.ts >= s.ts - to_minutes($lookback_minutes::BIGINT)
    GROUP BY s.sid
), same_net AS (
    SELECT s.sid,
           count(DISTINCT f."user.key") FILTER (WHERE f."user.key" <> s."user.key")
               AS net_accounts,
           count(DISTINCT f."source.ip") AS net_addresses,
           list_sort(list(DISTINCT f."source.ip"))[1:$max_listed] AS net_ips,
           min(f.ts) AS net_first, max(f.ts) AS net_last
    FROM succ s JOIN guessing f
      ON f.network = s.network AND f."source.ip" <> s."source.ip" AND f.ts <= s.ts
     AND f.ts >= s.ts - to_minutes($lookback_minutes::BIGINT)
    GROUP BY s.sid
), hits AS (
    SELECT s.*, coalesce(a.other_accounts, 0) AS other_accounts,
           coalesce(a.own_failures, 0) AS own_failures, a.first_fail, a.last_fail,
           a.sample_accounts, coalesce(n.net_accounts, 0) AS net_accounts,
           coalesce(n.net_addresses, 0) AS net_addresses, coalesce(n.net_ips, []) AS net_ips,
           n.net_first, n.net_last,
           EXISTS (SELECT 1 FROM succ p
                   WHERE p."user.key" = s."user.key" AND p."source.ip" = s."source.ip"
                     AND p.ts < a.own_first) AS known_source
    FROM succ s LEFT JOIN same_addr a USING (sid) LEFT JOIN same_net n USING (sid)
    WHERE a.sid IS NOT NULL OR n.sid IS NOT NULL
), alerts AS (
    SELECT * FROM hits
    WHERE other_accounts >= $min_accounts OR net_accounts >= $min_accounts
       OR (own_failures >= $min_failures AND NOT known_source)
), grouped AS (
    SELECT coalesce("observer.name", "event.module") AS gw, "user.key", "source.ip",
           ts::DATE AS day, any_value("observer.name") AS "observer.name",
           mode("user.name") AS "user.name", min(ts) AS first_success, max(ts) AS last_success,
           count(*) AS logins, bool_or(admin) AS admin,
           max(other_accounts) AS other_accounts, max(own_failures) AS own_failures,
           max(net_accounts) AS net_accounts, max(net_addresses) AS net_addresses,
           max(net_ips) AS net_ips, any_value(sample_accounts) AS sample_accounts,
           least(min(first_fail), min(net_first)) AS first_fail,
           greatest(max(last_fail), max(net_last)) AS last_fail,
           any_value(country) AS country, any_value(asn) AS asn, any_value(as_org) AS as_org,
           bool_or(hosting) AS hosting
    FROM alerts GROUP BY gw, "user.key", "source.ip", day
)
SELECT first_fail AS "@timestamp", last_success AS "event.end",
       concat_ws('|', gw, "user.key", "source.ip", strftime(day, '%Y-%m-%d')) AS "alert.key",
       format('{} logged in{} at {} from {} ({}, {}) after {}', "user.name",
              CASE WHEN admin THEN ' as administrator' ELSE '' END, gw, "source.ip",
              coalesce(as_org, 'unknown network'), coalesce(country, '??'),
              concat_ws(' and ',
                  CASE WHEN other_accounts > 0 THEN format(
                      'failures for {} other accounts from the same address', other_accounts)
                  END,
                  CASE WHEN net_accounts > 0 THEN format(
                      'failures for {} other accounts from {} other address(es) of its network',
                      net_accounts, net_addresses) END,
                  CASE WHEN own_failures > 0 THEN format(
                      '{} failures for this account from the same address', own_failures)
                  END)) AS "alert.summary",
       "user.name", "source.ip", "observer.name", country AS "source.geo.country_iso_code",
       asn AS "source.as.number", as_org AS "source.as.organization.name",
       list_prepend("source.ip", net_ips) AS "related.ip",
       to_json({successes: logins, first_success: first_success,
                other_accounts_same_address: other_accounts,
                own_failures_same_address: own_failures,
                sample_other_accounts: sample_accounts,
                other_accounts_same_network: net_accounts,
                guessing_addresses_same_network: net_ips, admin_login: admin,
                hosting: hosting})::VARCHAR AS "alert.evidence"
FROM grouped
ORDER BY 1
"""
)

DETECTION = Detection(
    id="auth_success_after_failures",
    title="Successful login from an address that was guessing passwords",
    description=__doc__ or "",
    tactics=("TA0006", "TA0001"),
    techniques=("T1110", "T1078"),
    severity="high",
    datasets=("events",),
    needs=("logins",),
    params={
        "lookback_minutes": 1440,
        "min_accounts": 3,
        "min_accounts_per_address": 2,
        "min_failures": 5,
        "resolve_minutes": 30,
        "max_listed": 10,
    },
    sql=SQL,
    live=True,
    false_positives=(
        "A user's own typos or expired password (1-3 failures, then success, from their own "
        "address) never fire; failures of other accounts count only when those accounts did "
        "not then log in from the same address (shared NAT, hotels). Many failures of the "
        "account itself count only from an address it had never logged in from. Partner and "
        "scanner allow-lists are ignored."
    ),
)
