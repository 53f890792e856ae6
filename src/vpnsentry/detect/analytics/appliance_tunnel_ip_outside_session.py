"""Traffic from a VPN tunnel address at a time when no VPN session held that address.

Why it works: a gateway hands each VPN session an address from its pool and logs when the
session starts and ends; between sessions, or before any session got it, a pool address
should be silent. Traffic from a pool address with no session around it means the tunnel
outlived its logged session (a stolen session cookie replayed, so the gateway kept the
tunnel up after the user logged out), a tunnel the gateway set up without logging it (a
compromised gateway, or a gap in its logs), or someone spoofing the pool from inside. The
session table (enrich/sessions.py) says who held which tunnel address when; this detection
checks every flow from a pool address against it, allowing ``grace_seconds`` around each
session for clock skew between sensors and the gateway and for flows still draining after
a logout. A session whose end the data does not hold covers its address until further
notice. Findings are grouped per tunnel address and UTC day, and name the user whose
session held the address last (the session that was taken over).

How it stays cheap: the ``pairs`` table gives, per day and (address, destination, port),
the first and last flow; a pair whose first and last flow fall in the same session is
entirely inside it, so only the other (address, day) combinations are looked up in the
flows.

A flow is judged by when its connection began (a firewall logs a connection at its
teardown, and one opened inside a session may close after the logout).

What it deliberately ignores: pools whose gateway logs no sessions at all, and times
outside the span the gateway's session records cover (before its first session or after
its last one), since there the data cannot tell; an address that no session held before
is only judged once the session records span ``learning_days`` (before that its session
may have begun before the data); fewer than ``min_connections`` distinct connections (a
late packet after a logout).
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH sess AS (
    -- an end the gateway did not log (inferred) is no proof the tunnel went down: such a
    -- session covers its address until the address is handed to the next session
    SELECT "vpn.tunnel_ip" AS tip, "session.start" AS s_start,
           CASE WHEN NOT coalesce("session.end_inferred", false) THEN "session.end" END
               AS s_end,
           "session.end" AS s_end_seen,
           "user.name" AS s_user, "observer.name" AS s_gw, "source.ip" AS s_src,
           lag("session.start") OVER w AS p_start,
           lag(CASE WHEN NOT coalesce("session.end_inferred", false) THEN "session.end" END)
               OVER w AS p_end
    FROM sessions
    WHERE "vpn.tunnel_ip" IS NOT NULL AND "session.start" IS NOT NULL
    WINDOW w AS (PARTITION BY "vpn.tunnel_ip" ORDER BY "session.start")
), pool_cover AS (
    -- per gateway pool: the span its session records cover
    SELECT g.hostname, g.pool_lo, g.pool_hi, min(s.s_start) AS cov_start,
           max(greatest(s.s_start, coalesce(s.s_end_seen, s.s_start))) AS cov_end
    FROM gateways g JOIN sess s ON ip4(s.tip) BETWEEN g.pool_lo AND g.pool_hi
    GROUP BY ALL
), pool_pairs AS (
    SELECT p.src, p.day, p.first_ts, p.last_ts,
           p.first_ts + to_seconds($grace_seconds::BIGINT) AS first_g,
           p.last_ts + to_seconds($grace_seconds::BIGINT) AS last_g
    FROM pairs p JOIN pool_cover c ON p.src_u BETWEEN c.pool_lo AND c.pool_hi
), first_held AS (
    SELECT f.src, f.day, f.last_ts, f.last_g,
           s.s_start AS h_start, s.s_end AS h_end,
           s.s_start IS NOT NULL
           AND (f.first_ts < s.s_start OR s.s_end IS NULL
                OR f.first_ts <= s.s_end + to_seconds($grace_seconds::BIGINT)) AS held
    FROM pool_pairs f ASOF LEFT JOIN sess s ON f.src = s.tip AND f.first_g >= s.s_start
), candidates AS (
    -- (address, day) with a pair not entirely inside one session
    SELECT DISTINCT f.src, f.day
    FROM first_held f
    WHERE NOT f.held OR (f.h_end IS NOT NULL
                         AND f.last_ts > f.h_end + to_seconds($grace_seconds::BIGINT))
       OR EXISTS (SELECT 1 FROM sess s2 WHERE s2.tip = f.src AND s2.s_start > f.h_start
                  AND s2.s_start <= f.last_g)
), cand_flows AS (
    -- judged by when the connection began: firewalls log a flow at its teardown, and a
    -- connection opened inside a session may close after the logout
    SELECT least(fl."@timestamp",
                 coalesce(fl."event.end", fl."@timestamp")
                     - to_microseconds(coalesce(fl."event.duration", 0) // 1000)) AS ts,
           fl."source.ip" AS src, fl."destination.ip" AS dst,
           fl."destination.port" AS dport, ip4(fl."source.ip") AS src_u,
           coalesce(fl."observer.name", fl."observer.ip", fl."event.module") AS sensor
    FROM (SELECT * FROM flows
          WHERE "source.ip" IN (SELECT src FROM candidates)
            AND "event.action" IS DISTINCT FROM 'flow-creation') fl
    SEMI JOIN candidates c
        ON fl."source.ip" = c.src AND date_trunc('day', fl."@timestamp") = c.day
), judged AS (
    SELECT f.*, s.s_start, s.s_end, s.s_user, s.s_gw, s.s_src,
           s.s_start IS NOT NULL
           AND (f.ts < s.s_start OR s.s_end IS NULL
                OR f.ts <= s.s_end + to_seconds($grace_seconds::BIGINT)
                OR (s.p_start IS NOT NULL
                    AND (s.p_end IS NULL
                         OR f.ts <= s.p_end + to_seconds($grace_seconds::BIGINT)))) AS held
    FROM (SELECT *, ts + to_seconds($grace_seconds::BIGINT) AS ts_g FROM cand_flows) f
    ASOF LEFT JOIN sess s ON f.src = s.tip AND f.ts_g >= s.s_start
), outside AS (
    SELECT j.*, c.hostname
    FROM judged j JOIN pool_cover c ON j.src_u BETWEEN c.pool_lo AND c.pool_hi
    WHERE NOT j.held AND j.ts <= c.cov_end
      -- an address with no session before it is only judged once the gateway's session
      -- records span learning_days: before that, its session may have begun before the data
      AND j.ts >= CASE WHEN j.s_start IS NULL
                       THEN c.cov_start + to_days($learning_days::INTEGER)
                       ELSE c.cov_start END
), grouped AS (
    SELECT src, hostname, date_trunc('day', ts) AS day, min(ts) AS first_ts,
           max(ts) AS last_ts,
           count(DISTINCT (dst, dport, epoch(date_trunc('minute', ts)))) AS connections,
           count(DISTINCT dst) AS hosts, list(DISTINCT dport ORDER BY dport)[1:10] AS ports,
           list(DISTINCT dst ORDER BY dst)[1:10] AS sample_hosts,
           list(DISTINCT sensor ORDER BY sensor) AS sensors,
           arg_min(s_user, ts) AS last_user, arg_min(s_end, ts) AS last_end,
           arg_min(s_src, ts) AS last_src, arg_min(s_gw, ts) AS last_gw
    FROM outside GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', hostname, src, strftime(day, '%Y-%m-%d')) AS "alert.key",
       CASE WHEN last_end IS NOT NULL THEN
           format('Tunnel address {} of gateway {} sent {} connection(s) to {} host(s) from '
                  '{} to {}, while no VPN session held it: the last session ({}) ended {} '
                  'minutes before', src, hostname, connections, hosts,
                  strftime(first_ts, '%Y-%m-%d %H:%M'), strftime(last_ts, '%H:%M'),
                  coalesce(last_user, 'unknown user'),
                  round(epoch(first_ts - last_end) / 60)::BIGINT)
       ELSE
           format('Tunnel address {} of gateway {} sent {} connection(s) to {} host(s) from '
                  '{} to {}, while no VPN session held it (no session before it)', src,
                  hostname, connections, hosts, strftime(first_ts, '%Y-%m-%d %H:%M'),
                  strftime(last_ts, '%H:%M'))
       END AS "alert.summary",
       src AS "source.ip", hostname AS "observer.name", last_user AS "user.name",
       list_filter([src, last_src], lambda x: x IS NOT NULL) AS "related.ip",
       CASE WHEN last_user IS NOT NULL THEN [last_user] ELSE [] END AS "related.user",
       [hostname] AS "related.hosts",
       to_json({connections: connections, hosts: hosts, ports: ports,
                sample_hosts: sample_hosts, sensors: sensors,
                last_session: {user: last_user, ended: last_end, client: last_src,
                               gateway: last_gw}})::VARCHAR AS "alert.evidence"
FROM grouped
WHERE connections >= $min_connections
ORDER BY 1
"""

DETECTION = Detection(
    id="appliance_tunnel_ip_outside_session",
    title="VPN tunnel address used outside any session",
    description=__doc__ or "",
    tactics=("TA0008", "TA0005"),
    techniques=("T1563", "T1550.004"),
    severity="high",
    datasets=("flows", "events"),
    needs=("sessions", "pairs"),
    params={"grace_seconds": 120, "min_connections": 3},
    sql=SQL,
    live=True,
    false_positives=(
        "Sessions left open (no logout in the data) cover their address until further "
        "notice, so long-lived sessions do not fire; flows within grace_seconds of a "
        "session's start or end, pools of gateways that log no sessions, and times outside "
        "the span of a gateway's session records are not judged."
    ),
)
