"""A VPN gateway stops logging for much longer than it ever pauses, or while it is
demonstrably carrying traffic.

Why it works: an intruder who controls a gateway switches its logging off or deletes its
logs (the Mitsubishi Electric case, and the rogue-admin playbook) so that the collector
hears nothing from it for hours. Nothing in the logs says so: it is an absence, visible
only against what the gateway normally does. Two tests, per gateway (``observer.name``, its
events and its traffic log together, counted per minute so that the work does not grow with
the log volume):

* the pause is much longer than the gateway's usual longest pauses: at least
  ``gap_factor`` times the ``gap_quantile`` quantile of the gaps between its active minutes
  over its history (a busy gateway pauses seconds, a quiet branch box some minutes, a
  data-centre gateway with only VPN traffic logged has long nights);
* or, for a gateway that logs traffic, other sensors (NetFlow, Zeek, other firewalls) saw at
  least ``min_unlogged`` connections from its VPN pool that began and ended inside the
  pause: the gateway was serving its users and logged none of it. This catches a silence
  hidden in the quiet hours, where the first test cannot tell it from a quiet night.

Both need a pause of at least ``min_gap_minutes``. The alert runs from the last line before
the pause to the first line after it, on the gateway.

What it deliberately ignores: gateways whose feeds carry no device name (their silence
cannot be attributed), the time before a gateway's first line and after its last (the data
does not say whether a feed started late or stopped at the end), and pauses in quiet hours
when nothing else shows the gateway was in use.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH active AS MATERIALIZED (
    -- minutes in which each device logged anything (events or traffic), with the first and
    -- last line of the minute (time_bucket: the same minutes as date_trunc, which on a zoned
    -- timestamp costs twice as much over every flow)
    SELECT gw, m, bool_or(is_flow) AS traffic, min(t0) AS t0, max(t1) AS t1
    FROM (
        SELECT "observer.name" AS gw, time_bucket(INTERVAL '1 minute', "@timestamp") AS m,
               false AS is_flow, min("@timestamp") AS t0, max("@timestamp") AS t1
        FROM events WHERE "observer.name" IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT "observer.name", time_bucket(INTERVAL '1 minute', "@timestamp"), true,
               min("@timestamp"), max("@timestamp")
        FROM flows WHERE "observer.name" IS NOT NULL GROUP BY ALL
    )
    GROUP BY gw, m
), gaps AS MATERIALIZED (
    SELECT gw, lag(m) OVER w AS g0, m AS g1, lag(t1) OVER w AS last_before,
           t0 AS first_after, epoch(m - lag(m) OVER w) / 60 AS minutes,
           bool_or(traffic) OVER (PARTITION BY gw) AS logs_traffic
    FROM active
    WINDOW w AS (PARTITION BY gw ORDER BY m)
), usual AS (
    SELECT gw, quantile_cont(minutes, $gap_quantile::DOUBLE) AS q, count(*) AS n
    FROM gaps WHERE g0 IS NOT NULL GROUP BY gw
), long_gaps AS MATERIALIZED (
    SELECT g.gw, g.g0, g.g1, g.last_before, g.first_after, g.minutes, u.q, u.n,
           g.minutes >= $gap_factor * u.q AS unusual, g.logs_traffic,
           gw.pool_lo, gw.pool_hi
    FROM gaps g JOIN usual u USING (gw)
    LEFT JOIN gateways gw ON gw.name_key = upper(g.gw)
    WHERE g.g0 IS NOT NULL AND g.minutes >= $min_gap_minutes
), pool_around AS (
    -- tunnel addresses of the gateway's pool that some sensor saw during a pause
    SELECT DISTINCT p.src
    FROM long_gaps l JOIN pairs p
      ON p.src_u BETWEEN l.pool_lo AND l.pool_hi
     AND p.day >= date_trunc('day', l.g0) AND p.day <= l.g1
     AND p.first_ts < l.g1 AND p.last_ts > l.g0
    WHERE l.logs_traffic AND NOT l.unusual
), in_gap AS (
    -- other sensors' records of connections from those addresses that began and ended
    -- inside a pause (whether the gateway logs a connection at its start or its end, it
    -- would have logged it inside the pause)
    SELECT l.gw, l.g0, f.src, f.dst, f.dport, f.ts
    FROM (SELECT "source.ip" AS src, "destination.ip" AS dst, "destination.port" AS dport,
                 "@timestamp" AS ts, "observer.name" AS sensor,
                 "@timestamp" - to_microseconds(coalesce("event.duration", 0) // 1000)
                     AS began,
                 coalesce("event.end", "@timestamp") AS ended
          FROM flows WHERE "source.ip" IN (SELECT src FROM pool_around)) f
    JOIN long_gaps l
      ON f.ts > l.g0 + INTERVAL 1 MINUTE AND f.ts < l.g1
    WHERE l.logs_traffic AND NOT l.unusual
      AND f.sensor IS DISTINCT FROM l.gw
      AND f.ended < l.g1 AND f.began > l.g0 + INTERVAL 1 MINUTE
      AND ip4(f.src) BETWEEN l.pool_lo AND l.pool_hi
), unlogged AS (
    SELECT gw, g0, count(DISTINCT (src, dst, dport, date_trunc('minute', ts))) AS conns,
           list(DISTINCT src ORDER BY src)[1:10] AS tunnel_ips
    FROM in_gap GROUP BY gw, g0
), judged AS (
    SELECT l.*, coalesce(u.conns, 0) AS conns, u.tunnel_ips
    FROM long_gaps l LEFT JOIN unlogged u USING (gw, g0)
    WHERE l.unusual OR coalesce(u.conns, 0) >= $min_unlogged
)
SELECT last_before AS "@timestamp", first_after AS "event.end",
       concat_ws('|', gw, strftime(g0, '%Y-%m-%dT%H:%M')) AS "alert.key",
       format('Gateway {} logged nothing for {} minutes, from {} to {} UTC{}{}', gw,
              round(epoch(first_after - last_before) / 60)::BIGINT,
              strftime(last_before, '%Y-%m-%d %H:%M'), strftime(first_after, '%Y-%m-%d %H:%M'),
              CASE WHEN unusual
                   THEN format('; its usual longest pauses are about {} minutes',
                               round(q)::BIGINT)
                   ELSE '' END,
              CASE WHEN conns > 0
                   THEN format('; meanwhile other sensors saw {} connection(s) from its VPN '
                               'pool that it did not log', conns)
                   ELSE '' END) AS "alert.summary",
       gw AS "observer.name", [gw] AS "related.hosts",
       to_json({gap_minutes: minutes, usual_gap_quantile_minutes: q, gaps_learnt: n,
                beyond_usual: unusual, unlogged_pool_connections: conns,
                sample_tunnel_ips: tunnel_ips})::VARCHAR AS "alert.evidence"
FROM judged
ORDER BY 1
"""

DETECTION = Detection(
    id="appliance_log_silence",
    title="VPN gateway log silence",
    description=__doc__ or "",
    tactics=("TA0005",),
    techniques=("T1562.006", "T1070"),
    severity="high",
    datasets=("events", "flows"),
    needs=("pairs",),
    params={
        "min_gap_minutes": 60,
        "gap_factor": 5,
        "gap_quantile": 0.999,
        "min_unlogged": 3,
    },
    sql=SQL,
    false_positives=(
        "Quiet nights and weekends of a gateway that only logs VPN activity are within its "
        "own usual pauses; a pause is only reported beyond gap_factor times its usual "
        "longest pauses, or when other sensors show its VPN pool in use meanwhile."
    ),
)
