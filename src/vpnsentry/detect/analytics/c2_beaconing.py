"""Beaconing: an internal host calls the same rare external address at regular intervals,
with requests of regular size, hour after hour (command and control check-ins).

Why it works: an implant polls its C2 server on a timer (every N seconds plus jitter) and
each poll is the same small HTTPS request, so the gaps between connections and their sizes
are far more regular than anything a person causes. The score follows RITA's: for the gaps
between consecutive connections, the Bowley (quartile) skewness (a timer with symmetric
jitter has none) and the median absolute deviation relative to the median gap (+-20 %
jitter still scores 0.9; random arrivals about 0.3); the same two for connection sizes,
plus smallness (check-ins are small); and persistence, the share of clock hours between
the first and last connection (at least a day) in which the pair talked. The time score and
the size score are averaged, each the mean of its three parts.

Where it looks: per (internal host, external address) over the whole history, only where
the destination's /24 is rare (at most ``max_sources`` internal hosts ever exchanged traffic
with it, in either direction, as ``transfer_nets`` counts for the whole pack: cloud and CDN
services rotate addresses inside their blocks, a rented server does not) and
the pair made at least ``min_connections`` connections, from the ``pairs`` table. Only those
pairs' connections are read from ``flows``. The same connection is logged by several
sensors (gateway traffic log, NetFlow, Zeek) with slightly different timestamps; mixing
them would make the gaps irregular, so each pair's connections come from one sensor, the
one that logged most of them (ASA's flow-creation twins are left out).

What it ignores: update checks, NTP, telemetry and SaaS polling are regular too, but many
hosts talk to those networks, so they are not rare. The company's own VPN gateways and
partner networks (allow-list ``partners``) are never C2. A legitimate poller to a rare
address (a monitoring agent, a licence check) does look like this: suppress it by
destination.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH outbound AS (
    -- only pairs to a rare /24 (transfer_nets: internal hosts that talk with it, counted
    -- once for the pack), so the costly aggregates below see few rows
    SELECT p.src, p.dst, p.day, p.dport, p.conns, p.dst_org, p.dst_country, n.net_hosts
    FROM pairs p JOIN transfer_nets n ON n.net = p.dst_u // 256
    WHERE p.src_private AND NOT p.dst_private
      AND NOT is_gateway_addr(p.dst_u) AND NOT is_partner(p.dst_u)
      AND n.net_hosts <= $max_sources
), busy AS (
    -- pairs with enough connections, found with a plain sum before the costly aggregates
    -- (mode, distinct days) are computed for them alone
    SELECT src, dst FROM outbound GROUP BY src, dst HAVING sum(conns) >= $min_connections
), candidates AS (
    SELECT o.src, o.dst, sum(o.conns) AS pair_conns, count(DISTINCT o.day) AS active_days,
           mode(o.dport) AS port, any_value(o.dst_org) AS org,
           any_value(o.dst_country) AS country, any_value(o.net_hosts) AS net_hosts
    FROM outbound o SEMI JOIN busy b USING (src, dst)
    GROUP BY o.src, o.dst
), seen AS (
    SELECT f."source.ip" AS src, f."destination.ip" AS dst, f."@timestamp" AS ts,
           coalesce(f."source.bytes", f."network.bytes") AS size,
           coalesce(f."observer.name", f."observer.ip", f."event.module") AS sensor,
           f."user.name" AS usr
    FROM flows f
    SEMI JOIN candidates c ON f."source.ip" = c.src AND f."destination.ip" = c.dst
    WHERE f."event.action" IS DISTINCT FROM 'flow-creation'
), chosen AS (
    SELECT src, dst, sensor FROM (SELECT src, dst, sensor, count(*) AS n FROM seen GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY src, dst ORDER BY n DESC, sensor) = 1
), conn AS (
    SELECT s.src, s.dst, s.ts, s.size, s.sensor, s.usr,
           epoch(s.ts) - epoch(lag(s.ts) OVER (PARTITION BY s.src, s.dst ORDER BY s.ts)) AS gap
    FROM seen s SEMI JOIN chosen c ON s.src = c.src AND s.dst = c.dst AND s.sensor = c.sensor
), stats AS (
    SELECT src, dst, any_value(sensor) AS sensor, max(usr) AS usr, count(*) AS n,
           min(ts) AS first_ts, max(ts) AS last_ts, sum(size) AS total_bytes,
           quantile_cont(gap, 0.25) AS g1, quantile_cont(gap, 0.5) AS g2,
           quantile_cont(gap, 0.75) AS g3, mad(gap) AS gmad,
           quantile_cont(size, 0.25) AS s1, quantile_cont(size, 0.5) AS s2,
           quantile_cont(size, 0.75) AS s3, mad(size) AS smad,
           count(DISTINCT date_trunc('hour', ts)) AS hours,
           date_diff('hour', date_trunc('hour', min(ts)), date_trunc('hour', max(ts))) + 1
               AS span_hours
    FROM conn GROUP BY src, dst
), parts AS (
    SELECT *,
           1 - least(1, abs(CASE WHEN g3 > g1 THEN (g1 + g3 - 2 * g2) / (g3 - g1) ELSE 0 END))
               AS ts_skew,
           coalesce(greatest(0, 1 - gmad / nullif(g2, 0)), 0) AS ts_mad,
           least(1, hours / greatest(span_hours, 24)) AS ts_persistence,
           1 - least(1, abs(CASE WHEN s3 > s1 THEN (s1 + s3 - 2 * s2) / (s3 - s1) ELSE 0 END))
               AS ds_skew,
           coalesce(greatest(0, 1 - smad / nullif(s2, 0)), 1) AS ds_mad,
           greatest(0, 1 - coalesce(s2, 0) / 65535) AS ds_small
    FROM stats
), scored AS (
    SELECT *, (ts_skew + ts_mad + ts_persistence) / 3 AS ts_score,
           (ds_skew + ds_mad + ds_small) / 3 AS ds_score,
           ((ts_skew + ts_mad + ts_persistence) / 3 + (ds_skew + ds_mad + ds_small) / 3) / 2
               AS score
    FROM parts
    WHERE n >= $min_connections
)
SELECT s.first_ts AS "@timestamp", s.last_ts AS "event.end",
       concat_ws('|', s.src, s.dst) AS "alert.key",
       format('{} beacons to {}:{} ({}, {}): {:,} connections over {} day(s), about every '
              '{:.0f} s (MAD {:.0f} s), median {:,} bytes; score {:.2f}; {} internal host(s) '
              'talk to that /24', s.src, s.dst, c.port, coalesce(c.org, 'unknown network'),
              coalesce(c.country, '??'), s.n, c.active_days, s.g2, s.gmad,
              coalesce(s.s2, 0)::BIGINT, s.score, c.net_hosts) AS "alert.summary",
       s.src AS "source.ip", s.dst AS "destination.ip", c.port AS "destination.port",
       s.usr AS "user.name",
       s.total_bytes::BIGINT AS "network.bytes", [s.src, s.dst] AS "related.ip",
       to_json({score: round(s.score, 3), time_score: round(s.ts_score, 3),
                size_score: round(s.ds_score, 3), interval_skew_score: round(s.ts_skew, 3),
                interval_mad_score: round(s.ts_mad, 3),
                persistence: round(s.ts_persistence, 3), size_skew_score: round(s.ds_skew, 3),
                size_mad_score: round(s.ds_mad, 3), smallness: round(s.ds_small, 3),
                connections: s.n, median_interval_s: round(s.g2, 1),
                interval_mad_s: round(s.gmad, 1), median_bytes: s.s2, active_hours: s.hours,
                span_hours: s.span_hours, active_days: c.active_days,
                internal_hosts_to_network: c.net_hosts, sensor: s.sensor,
                destination_org: c.org, destination_country: c.country})::VARCHAR
           AS "alert.evidence",
       least(100, 40 + 50 * s.score)::DOUBLE AS "event.risk_score"
FROM scored s JOIN candidates c USING (src, dst)
WHERE s.score >= $min_score
ORDER BY 1, 3
"""

DETECTION = Detection(
    id="c2_beaconing",
    title="Beaconing to a rare external address",
    description=__doc__ or "",
    tactics=("TA0011",),
    techniques=("T1071.001", "T1573"),
    severity="high",
    datasets=("flows",),
    needs=("pairs", "transfers"),
    params={"min_connections": 20, "max_sources": 20, "min_score": 0.85},
    sql=SQL,
    false_positives=(
        "Only destinations whose /24 at most max_sources internal hosts ever talked to: "
        "update, time, telemetry and SaaS services are regular too but popular. VPN gateways "
        "and partner networks are skipped. A legitimate poller to a rare address (monitoring "
        "agent, licence server) scores like a beacon: suppress it by destination.ip."
    ),
)
