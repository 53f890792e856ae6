"""Password spray: addresses that each try several accounts fail against many real accounts
of one gateway, a few attempts per account, in one burst.

Why it works: a spray tries one or two common passwords against many accounts to stay under
per-account lockouts, and it needs many attempts, so it comes from a few rented addresses,
each of which fails for *several different* accounts. Legitimate failures do not look like
that: an employee mistypes their own password (or name) from their own address, so each
address fails for one account, however many employees of a large ISP fail on the same day.

How: failed VPN logins (``logins``, administrators' logins excluded) are cut into bursts per
gateway and address (a new burst after ``max_gap_minutes`` without a failure). An address
whose burst fails for at least ``min_accounts_per_address`` accounts is *spraying*. The
spraying addresses' failures at one gateway are then cut into bursts again, across addresses
and providers, because sprays rotate through rented addresses of several hosting companies:
one alert per campaign, with every address and network in it. A burst is a spray when it
tried at least ``min_accounts`` accounts, at least ``min_real_accounts`` of them real (the
name logged in successfully at some time), and at most ``max_attempts_per_account`` attempts
per account on average (more is brute force: ``auth_brute_force``).

Deliberately ignored: Internet background noise trying default names (admin, test, vpn)
has no real accounts; typos (one account per address) never make an address spraying; the
``scanners`` allow-list (an authorised scanner testing default credentials). Blind spots: a
spray through a residential proxy network that uses each address for one account only, and
sprays slower than ``max_gap_minutes`` between attempts of one address.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH real_users AS (
    SELECT DISTINCT "user.key" FROM logins WHERE "event.outcome" = 'success'
), failures AS (
    SELECT l."@timestamp" AS ts, coalesce(l."observer.name", l."event.module") AS gw,
           l."observer.name", l."user.name", l."user.key", l."source.ip", l.asn, l.as_org,
           l.country, r."user.key" IS NOT NULL AS is_real
    FROM logins l LEFT JOIN real_users r USING ("user.key")
    WHERE l."event.outcome" = 'failure'
      AND NOT is_scanner(l.src_u)
), addr_marked AS (
    SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY gw, "source.ip" ORDER BY ts)
                        <= to_minutes($max_gap_minutes::BIGINT) THEN 0 ELSE 1 END AS new_burst
    FROM failures
), addr_bursts AS (
    SELECT *, sum(new_burst) OVER (PARTITION BY gw, "source.ip" ORDER BY ts
                                   ROWS UNBOUNDED PRECEDING) AS ab
    FROM addr_marked
), spraying AS (
    SELECT gw, "source.ip", ab FROM addr_bursts GROUP BY ALL
    HAVING count(DISTINCT "user.key") >= $min_accounts_per_address
), sprayed AS (
    SELECT b.* EXCLUDE (new_burst, ab) FROM addr_bursts b
    SEMI JOIN spraying s USING (gw, "source.ip", ab)
), gw_marked AS (
    SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY gw ORDER BY ts)
                        <= to_minutes($max_gap_minutes::BIGINT) THEN 0 ELSE 1 END AS new_burst
    FROM sprayed
), gw_bursts AS (
    SELECT *, sum(new_burst) OVER (PARTITION BY gw ORDER BY ts ROWS UNBOUNDED PRECEDING) AS gb
    FROM gw_marked
), per_addr AS (
    SELECT gw, gb, "source.ip", count(*) AS n, any_value(asn) AS asn, any_value(as_org) AS as_org,
           any_value(country) AS country
    FROM gw_bursts GROUP BY ALL
), addr_summary AS (
    SELECT gw, gb,
           arg_max("source.ip", n) AS top_ip, arg_max(asn, n) AS asn,
           arg_max(as_org, n) AS as_org, arg_max(country, n) AS country,
           list("source.ip" ORDER BY n DESC, "source.ip")[1:$max_listed] AS ips,
           list_sort(list(DISTINCT coalesce(as_org, 'unknown network'))) AS networks,
           list_sort(list(DISTINCT country) FILTER (WHERE country IS NOT NULL)) AS countries
    FROM per_addr GROUP BY ALL
), grouped AS (
    SELECT gw, gb, any_value("observer.name") AS "observer.name",
           min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS attempts,
           count(DISTINCT "user.key") AS users,
           count(DISTINCT "user.key") FILTER (WHERE is_real) AS real_users,
           count(DISTINCT "source.ip") AS addresses,
           list_sort(list(DISTINCT "user.name"))[1:10] AS sample_users
    FROM gw_bursts GROUP BY ALL
)
SELECT g.first_ts AS "@timestamp", g.last_ts AS "event.end",
       concat_ws('|', g.gw, strftime(g.first_ts, '%Y-%m-%dT%H:%M')) AS "alert.key",
       format('Password spray at {}: {} failed logins against {} accounts ({} real) from {} '
              'address(es) in {} ({}) between {} and {} UTC', g.gw, g.attempts, g.users,
              g.real_users, g.addresses, array_to_string(a.networks, ', '),
              coalesce(array_to_string(a.countries, ', '), '??'),
              strftime(g.first_ts, '%Y-%m-%d %H:%M'), strftime(g.last_ts, '%H:%M'))
           AS "alert.summary",
       a.top_ip AS "source.ip", a.country AS "source.geo.country_iso_code",
       a.asn AS "source.as.number", a.as_org AS "source.as.organization.name",
       g."observer.name", a.ips AS "related.ip",
       to_json({attempts: g.attempts, accounts: g.users, real_accounts: g.real_users,
                addresses: g.addresses, listed_addresses: a.ips, networks: a.networks,
                countries: a.countries, sample_accounts: g.sample_users,
                attempts_per_account: round(g.attempts / g.users, 2)})::VARCHAR
           AS "alert.evidence",
       least(100, 60 + g.real_users)::DOUBLE AS "event.risk_score"
FROM grouped g JOIN addr_summary a USING (gw, gb)
WHERE g.users >= $min_accounts AND g.real_users >= $min_real_accounts
  AND g.attempts <= $max_attempts_per_account * g.users
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_password_spray",
    title="Password spray against a VPN gateway",
    description=__doc__ or "",
    tactics=("TA0006",),
    techniques=("T1110.003",),
    severity="high",
    datasets=("events",),
    needs=("logins",),
    params={
        "min_accounts": 10,
        "min_real_accounts": 5,
        "max_attempts_per_account": 3,
        "min_accounts_per_address": 2,
        "max_gap_minutes": 180,
        "max_listed": 20,
    },
    sql=SQL,
    live=True,
    false_positives=(
        "Only addresses that fail for several accounts count, so employees' typos (one "
        "account per home address, however many share an ISP) never add up to a spray. "
        "Background noise trying default account names does not count: at least "
        "min_real_accounts of the tried names must have logged in successfully somewhere. "
        "Addresses in the scanners allow-list are ignored."
    ),
)
