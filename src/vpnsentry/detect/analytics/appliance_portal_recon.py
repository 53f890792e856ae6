"""One Internet address keeps probing a gateway's VPN portal for hours or days, never logging in.

Why it works: before exploiting a VPN appliance, an intruder fingerprints its portal
(version, login page, known vulnerable URLs) again and again from a few rented servers. The
portal sees connections that never get as far as a login: FortiGate logs "SSL VPN new
connection" (logid 0101039943, user N/A), OpenVPN a TLS "Initial packet" that leads nowhere,
and NetFlow, Zeek or the gateway's own traffic log (ASA connections to its ``identity``
interface) show the connections to the gateway's outside address. Ordinary Internet
background noise knocks on every portal all day, but each noise source shows up once or
twice; users' home addresses log in. So: per gateway and source address, the pre-login
portal connections (one sensor's count per day, so that a connection both logged and seen
by a flow sensor counts once), from an address that never made a login attempt at any
gateway; reported when there are at least ``min_probes`` of them spread over at least
``min_span_hours``. Hosting-provider addresses (the usual recon platforms) raise the
severity, they do not gate the alert.

What it deliberately ignores: sources that ever attempted a VPN login (users, and bots
trying default accounts: password-guessing detections cover those), bursts shorter than
``min_span_hours`` (a client retrying), and private addresses.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH login_src AS (
    SELECT DISTINCT src_u FROM logins WHERE src_u IS NOT NULL
), one_openvpn AS (
    -- OpenVPN's own log names no device: it is the inventory's only OpenVPN gateway, if so
    SELECT any_value(hostname) AS hostname FROM gateways WHERE vendor = 'openvpn'
    HAVING count(*) = 1
), ev AS (
    SELECT coalesce(e."observer.name",
                    CASE WHEN e."event.module" = 'openvpn'
                         THEN (SELECT hostname FROM one_openvpn) END) AS gw,
           e."source.ip" AS src, ip4(e."source.ip") AS src_u,
           date_trunc('day', e."@timestamp") AS day, e."event.module" AS sensor,
           count(*) AS n, min(e."@timestamp") AS first_ts, max(e."@timestamp") AS last_ts
    FROM events e
    WHERE (e."event.code" = '0101039943'
           OR (e."event.module" = 'openvpn' AND e."event.action" = 'connection-attempt'))
      AND e."source.ip" IS NOT NULL
    GROUP BY ALL
), fl AS (
    SELECT g.hostname AS gw, p.src, p.src_u, p.day, 'flows' AS sensor, p.conns AS n,
           p.first_ts, p.last_ts
    FROM pairs p JOIN gateways g ON p.dst_u = g.outside_u
    WHERE NOT p.src_private
), probes AS (
    SELECT gw, src, src_u, day, max(n) AS n, min(first_ts) AS first_ts,
           max(last_ts) AS last_ts, list(DISTINCT sensor ORDER BY sensor) AS sensors
    FROM (SELECT * FROM ev UNION ALL SELECT * FROM fl)
    WHERE gw IS NOT NULL AND NOT coalesce(is_private(src_u), false)
      AND src_u NOT IN (SELECT src_u FROM login_src)
    GROUP BY gw, src, src_u, day
), per_source AS (
    SELECT gw, src, src_u, sum(n)::BIGINT AS probes, count(*) AS active_days,
           min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           list_sort(list_distinct(flatten(list(sensors)))) AS sensors
    FROM probes
    GROUP BY gw, src, src_u
), located AS (
    SELECT p.*,
           CASE WHEN p.src_u <= a.hi THEN a.asn END AS asn,
           CASE WHEN p.src_u <= a.hi THEN a.as_org END AS as_org,
           coalesce(CASE WHEN p.src_u <= a.hi THEN a.hosting END, false) AS hosting,
           CASE WHEN p.src_u <= c.hi THEN c.country END AS country
    FROM per_source p
    ASOF LEFT JOIN geo_asn a ON p.src_u >= a.lo
    ASOF LEFT JOIN geo_country c ON p.src_u >= c.lo
    WHERE p.probes >= $min_probes
      AND p.last_ts - p.first_ts >= to_hours($min_span_hours::BIGINT)
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', gw, src) AS "alert.key",
       format('{} probed the VPN portal of gateway {} {} times over {} hours ({} day(s)) '
              'without ever attempting a login; source is {} ({}, {})',
              src, gw, probes, round(epoch(last_ts - first_ts) / 3600)::BIGINT,
              active_days, CASE WHEN hosting THEN 'a hosting provider' ELSE 'an ISP' END,
              coalesce(as_org, 'unknown network'), coalesce(country, '??'))
           AS "alert.summary",
       src AS "source.ip", gw AS "observer.name",
       country AS "source.geo.country_iso_code", asn AS "source.as.number",
       as_org AS "source.as.organization.name",
       [src] AS "related.ip", [gw] AS "related.hosts",
       CASE WHEN hosting THEN 'high' ELSE 'medium' END AS "alert.severity",
       to_json({probes: probes, active_days: active_days, sensors: sensors,
                hosting: hosting, asn: asn, as_org: as_org})::VARCHAR AS "alert.evidence"
FROM located
ORDER BY 1
"""

DETECTION = Detection(
    id="appliance_portal_recon",
    title="Repeated VPN portal probing without a login",
    description=__doc__ or "",
    tactics=("TA0043",),
    techniques=("T1595.002",),
    severity="medium",
    datasets=("events", "flows"),
    needs=("logins", "pairs"),
    params={"min_probes": 10, "min_span_hours": 6},
    sql=SQL,
    false_positives=(
        "Internet background noise (each address once or twice), users' addresses (they "
        "log in) and bots trying default accounts (a login attempt) are not reported. "
        "Commercial Internet scanners that fingerprint portals persistently are, at "
        "medium severity unless they come from a hosting provider; suppress them by "
        "source."
    ),
)
