"""An Internet address reaches an internal (non-DMZ) server directly, on a service never
reached from the Internet before.

Why it works: the inventory says where Internet-facing services live (``dmz`` subnets) and
VPN users arrive from the pools. A connection from a public address straight to a host in
an ordinary server or workstation subnet means a path through the perimeter exists that
should not: typically an allow-any rule an intruder added on a gateway they control (the
rogue-admin case), or a port-forward someone opened. It is seen by the flow sensors and
downstream firewalls even while the gateway that let it through is silent. Each internal
(destination, port, transport) is judged on the first day an Internet source reaches it:
later days of a known exposure add nothing new, so each exposure raises one alert, with
every source of that day. Admin ports (RDP, SSH, SMB, WinRM) make it critical.

What it deliberately ignores: DMZ and VPN pool destinations, the gateways' own addresses,
allow-listed partner networks, and destination ports in the ephemeral range
(``min_ephemeral_port`` and up): those are the reverse halves of outbound connections in
unidirectional NetFlow. A candidate is also confirmed in the flow records themselves: at
least one record must show the Internet side on the higher (client) port, so a reply to an
outbound connection from a low source port is not mistaken for an inbound one. Exposures
seen on the first day of data are reported too: which internal services should be reachable
from the Internet is the inventory's statement, not something to learn.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH inbound AS (
    SELECT p.*
    FROM pairs p
    WHERE NOT p.src_private AND p.dst_private
      AND coalesce(p.dst_role, '') NOT IN ('dmz', 'vpn_pool')
      AND p.dport < $min_ephemeral_port
      AND NOT is_gateway_addr(p.dst_u)
      AND NOT is_partner(p.src_u)
), first_day AS (
    SELECT dst, dport, proto, min(day) AS day FROM inbound GROUP BY ALL
), candidates AS (
    SELECT i.* FROM inbound i JOIN first_day f USING (dst, dport, proto, day)
), confirmed AS (
    -- the Internet side initiated: it used the higher port (or the record is a connection
    -- log, which states the initiator)
    SELECT DISTINCT c.src, c.dst, c.dport, c.proto, c.day
    FROM (SELECT * FROM flows
          WHERE "destination.ip" IN (SELECT DISTINCT dst FROM candidates)) f
    JOIN candidates c
      ON f."source.ip" = c.src AND f."destination.ip" = c.dst
     AND f."destination.port" = c.dport AND f."network.transport" IS NOT DISTINCT FROM c.proto
     AND date_trunc('day', f."@timestamp") = c.day
    WHERE f."source.port" IS NULL OR f."source.port" > f."destination.port"
), grouped AS (
    SELECT c.dst, c.dport, c.proto, c.day, any_value(c.dst_role) AS dst_role,
           any_value(c.dst_site) AS dst_site, bool_or(c.dst_crown) AS crown,
           min(c.first_ts) AS first_ts, max(c.last_ts) AS last_ts,
           sum(c.conns)::BIGINT AS conns,
           -- saturating: byte counts are attacker-written and int64 addition fails
           least(sum(c.bytes_out::HUGEINT + c.bytes_in), 9223372036854775807)::BIGINT AS nbytes,
           count(DISTINCT c.src) AS sources, arg_max(c.src, c.conns) AS top_src,
           list(DISTINCT c.src ORDER BY c.src)[1:10] AS sample_sources,
           any_value(h.name) AS host_name
    FROM candidates c
    SEMI JOIN confirmed k USING (src, dst, dport, proto, day)
    LEFT JOIN hosts h ON h.ip_u = c.dst_u
    GROUP BY c.dst, c.dport, c.proto, c.day
), located AS (
    SELECT g.*, ip4(g.top_src) AS top_u,
           CASE WHEN ip4(g.top_src) <= a.hi THEN a.as_org END AS as_org,
           CASE WHEN ip4(g.top_src) <= a.hi THEN a.asn END AS asn,
           CASE WHEN ip4(g.top_src) <= c.hi THEN c.country END AS country
    FROM grouped g
    ASOF LEFT JOIN geo_asn a ON ip4(g.top_src) >= a.lo
    ASOF LEFT JOIN geo_country c ON ip4(g.top_src) >= c.lo
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', dst, dport::VARCHAR, coalesce(proto, '?')) AS "alert.key",
       format('Internet address {} ({}, {}){} reached internal host {} ({}{} subnet) on '
              '{}/{} directly ({} connection(s)); no Internet source had reached that '
              'service before', top_src, coalesce(as_org, 'unknown network'),
              coalesce(country, '??'),
              CASE WHEN sources > 1 THEN format(' and {} other(s)', sources - 1) ELSE '' END,
              dst, CASE WHEN host_name IS NOT NULL THEN host_name || ', ' ELSE '' END,
              coalesce(dst_role, 'unclassified'), coalesce(proto, '?'), dport, conns)
           AS "alert.summary",
       top_src AS "source.ip", dst AS "destination.ip", dport AS "destination.port",
       host_name AS "host.name", nbytes AS "network.bytes",
       country AS "source.geo.country_iso_code", asn AS "source.as.number",
       as_org AS "source.as.organization.name",
       CASE WHEN sources <= $max_related_sources THEN list_append(sample_sources, dst)
            ELSE [top_src, dst] END AS "related.ip",
       CASE WHEN list_contains($admin_ports, dport::VARCHAR) OR crown THEN 'critical'
            ELSE 'high' END AS "alert.severity",
       to_json({sources: sources, sample_sources: sample_sources, connections: conns,
                bytes: nbytes, role: dst_role, site: dst_site,
                crown_jewel: crown})::VARCHAR AS "alert.evidence"
FROM located
ORDER BY 1
"""

DETECTION = Detection(
    id="appliance_inbound_new_exposure",
    title="Internet reaches an internal server directly on a new service",
    description=__doc__ or "",
    tactics=("TA0001",),
    techniques=("T1133", "T1190"),
    severity="high",
    datasets=("flows",),
    needs=("pairs",),
    params={
        "min_ephemeral_port": 32768,
        "admin_ports": ["22", "135", "139", "445", "3389", "5985", "5986"],
        "max_related_sources": 5,
    },
    sql=SQL,
    false_positives=(
        "DMZ and VPN pool destinations and allow-listed partners are not reported, and an "
        "exposure is reported once, on the first day it is seen. A deliberate port-forward "
        "to a server outside the DMZ raises one alert: mark its subnet dmz in the "
        "inventory or suppress it."
    ),
)
