"""VPN login from a hosting provider: a session starts from an address of a cloud/VPS
provider, a commercial VPN, a Tor exit or a proxy service (``logins.hosting``).

Why it works: employees connect from home ISPs, mobile carriers and hotels; an attacker with
stolen credentials connects from a rented server (or hides behind an anonymiser), because
that is where their tooling runs. A successful VPN login from such a network is therefore
rare for a person and common for an intruder, whatever the country.

Baseline: some people do connect from a provider every day (a cloud desktop, a jump box in a
public cloud, a personal VPN service). An account that logged in successfully from the same
network (AS number, or AS organisation when the geo data has no number) on at least
``min_known_days`` different days in the ``baseline_days`` before the day of the login is
using that network routinely: it is not alerted. The first days of such a habit are alerted
(that is also how an intruder who comes back daily looks), and a routine user who appears
from a *different* provider is alerted as usual. Severity: high for hosting, Tor and proxy
networks, medium for commercial VPN services (employees use those for privacy).

Deliberately ignored: failed logins from providers (that is Internet background noise;
spray and brute force have their own detections); sources in the ``partners`` allow-list (a
partner's cloud egress). Accuracy depends on the hosting-ASN list shipped with the geo data.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH ok AS (
    SELECT "@timestamp" AS ts, coalesce("observer.name", "event.module") AS gw,
           "observer.name", "user.name", "user.key", "source.ip", src_u, country, asn, as_org,
           hosting, hosting_kind, "vpn.tunnel_ip",
           coalesce('AS' || asn::VARCHAR, 'ORG ' || as_org, "source.ip") AS network
    FROM logins WHERE "event.outcome" = 'success'
), hosted AS (
    SELECT * FROM ok h
    WHERE hosting
      AND NOT is_partner(h.src_u)
), net_days AS (  -- the days each account logged in from each provider network
    SELECT DISTINCT "user.key", network, ts::DATE AS day FROM ok WHERE hosting
), grouped AS (
    SELECT gw, "user.key", network, ts::DATE AS day, any_value("observer.name") AS "observer.name",
           mode("user.name") AS "user.name", min(ts) AS first_ts, max(ts) AS last_ts,
           count(*) AS logins, arg_min("source.ip", ts) AS first_ip,
           list_sort(list(DISTINCT "source.ip"))[1:10] AS ips,
           list_sort(list(DISTINCT "vpn.tunnel_ip") FILTER (WHERE "vpn.tunnel_ip" IS NOT NULL))
               AS tunnel_ips,
           any_value(country) AS country, any_value(asn) AS asn, any_value(as_org) AS as_org,
           any_value(hosting_kind) AS hosting_kind
    FROM hosted GROUP BY gw, "user.key", network, day
), judged AS (
    SELECT g.*,
           (SELECT count(*) FROM net_days d
            WHERE d."user.key" = g."user.key" AND d.network = g.network AND d.day < g.day
              AND d.day >= g.day - $baseline_days::INTEGER) AS known_days
    FROM grouped g
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', gw, "user.key", network, strftime(day, '%Y-%m-%d')) AS "alert.key",
       format('{} logged in to {} from {} ({}, {} network, {}){}', "user.name", gw, first_ip,
              coalesce(as_org, 'unknown organisation'), hosting_kind, coalesce(country, '??'),
              CASE WHEN logins > 1 THEN format(' ({} logins that day)', logins) ELSE '' END)
           AS "alert.summary",
       "user.name", first_ip AS "source.ip", "observer.name",
       country AS "source.geo.country_iso_code", asn AS "source.as.number",
       as_org AS "source.as.organization.name", list_concat(ips, tunnel_ips) AS "related.ip",
       CASE WHEN hosting_kind = 'vpn' THEN 'medium' ELSE 'high' END AS "alert.severity",
       to_json({logins: logins, addresses: ips, tunnel_ips: tunnel_ips,
                hosting_kind: hosting_kind, network: network,
                earlier_days_from_this_network: known_days,
                baseline_days: $baseline_days})::VARCHAR AS "alert.evidence"
FROM judged
WHERE known_days < $min_known_days
ORDER BY 1
"""

DETECTION = Detection(
    id="auth_hosting_asn",
    title="VPN login from a hosting, VPN or anonymiser network",
    description=__doc__ or "",
    tactics=("TA0001", "TA0003"),
    techniques=("T1078", "T1133"),
    severity="high",
    datasets=("events",),
    needs=("logins",),
    params={"min_known_days": 3, "baseline_days": 30},
    sql=SQL,
    false_positives=(
        "An account that logged in from the same provider network on min_known_days earlier "
        "days (within baseline_days) is using it routinely (cloud desktop, personal VPN) and "
        "is not alerted. Commercial VPN services are medium, not high. Sources in the "
        "partners allow-list are ignored."
    ),
)
