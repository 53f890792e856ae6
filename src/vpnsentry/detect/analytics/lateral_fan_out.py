"""Internal fan-out: one source connects to far more internal hosts (or ports of one host)
in a day than it ever did, as a network scan or a sweep for shares and services does.

Why it works: discovery has to touch what it wants to find. A workstation talks to the same
handful of servers every day, a VPN user to a few more, an administrator's jump host to a
couple of dozen; a scan of a subnet touches hundreds of addresses in minutes, most of which
never answer. Counting distinct internal destinations per source and day (from ``pairs``,
so every sensor that saw a connection counts it once) and comparing with the source's own
busiest earlier day separates the two without a company-wide ceiling.

The source is the person behind a VPN tunnel address when a session holds it (tunnel
addresses change every login: the baseline follows the user), else the address. An alert
needs at least ``min_hosts`` distinct destinations and ``baseline_factor`` times the
actor's busiest earlier day, or ``min_ports`` ports probed on one host (a vertical scan).
A source with no history has a baseline of zero: a device that appears and scans is exactly
what the gateway-side intrusions look like, so there is no cold-start exemption here beyond
the first day of the data (when every source is without history).
Severity is high when most destinations never answered (probes to closed or absent hosts)
or when the fan-out reaches ``high_hosts`` hosts.

Deliberately ignored: allow-listed scanners; destination ports in the dynamic range
(``ephemeral_from`` and up), which are where the reply halves of unidirectional NetFlow
records go (a busy server "connecting" to its clients' ephemeral ports) and where RPC's
dynamic endpoints live; traffic to public addresses (exfiltration and C2 detections cover
it); sources whose fan-out is their normal day (mail or WSUS servers, backup servers,
jump hosts learn their own baseline).
"""

from vpnsentry.detect.analytics.lateral_new_admin_connection import actor_ctes
from vpnsentry.detect.base import Detection

SQL = (
    """
WITH internal AS (
    SELECT src, dst, dport, day, first_ts, last_ts, conns, bytes_in, bytes_out, src_u,
           src_site, src_role, dst_site, dst_role
    FROM pairs
    WHERE src_private AND dst_private AND src <> dst AND dport < $ephemeral_from
), per_dst AS (
    SELECT src, day, dst, any_value(src_u) AS src_u, any_value(src_site) AS src_site,
           any_value(src_role) AS src_role, any_value(dst_site) AS dst_site,
           count(DISTINCT dport) AS ports, sum(bytes_in) AS bytes_in, sum(conns) AS conns,
           min(first_ts) AS first_ts, max(last_ts) AS last_ts
    FROM internal GROUP BY src, day, dst
), src_day AS (
    SELECT src, day, any_value(src_u) AS src_u, any_value(src_site) AS src_site,
           any_value(src_role) AS src_role, count(*) AS hosts, max(ports) AS max_ports,
           sum(conns) AS conns, min(first_ts) AS first_ts, max(last_ts) AS last_ts
    FROM per_dst GROUP BY src, day
), """
    + actor_ctes("src_day", "actor_day")
    + """
), baselined AS (
    SELECT d.*,
           coalesce(max(hosts) OVER w, 0) AS baseline_hosts,
           coalesce(max(max_ports) OVER w, 0) AS baseline_ports,
           count(*) OVER w AS baseline_days
    FROM actor_day d
    WINDOW w AS (PARTITION BY actor ORDER BY day
                 RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL 1 DAY PRECEDING)
), hits AS (
    SELECT b.* FROM baselined b
    -- On the first day of the data every source is without history: not judged then.
    WHERE (b.baseline_days > 0 OR b.day > (SELECT min(day) FROM actor_day))
      AND ((hosts >= $min_hosts AND hosts >= $baseline_factor * baseline_hosts)
           OR (max_ports >= $min_ports AND max_ports >= $baseline_factor * baseline_ports))
      AND NOT is_scanner(b.src_u)
), replies AS (
    -- A destination answered if a sensor saw reply bytes, or saw the reverse direction as a
    -- flow of its own (NetFlow is unidirectional and carries no reply bytes).
    SELECT DISTINCT r.src AS dst, r.dst AS src, r.day FROM pairs r
    SEMI JOIN hits h ON r.dst = h.src AND r.day = h.day
), detail AS (
    SELECT h.src, h.day,
           count(*) FILTER (WHERE p.bytes_in = 0 AND r.src IS NULL) AS silent_hosts,
           list(p.dst ORDER BY p.first_ts, p.dst)[1:$max_samples] AS sample_hosts,
           list(DISTINCT p.dst_site ORDER BY p.dst_site) FILTER (WHERE p.dst_site IS NOT NULL)
               AS dst_sites
    FROM hits h JOIN per_dst p ON p.src = h.src AND p.day = h.day
    LEFT JOIN replies r ON r.src = p.src AND r.dst = p.dst AND r.day = p.day
    GROUP BY h.src, h.day
), ports AS (
    SELECT i.src, i.day, i.dport, count(DISTINCT i.dst) AS hosts
    FROM internal i SEMI JOIN hits h ON i.src = h.src AND i.day = h.day
    GROUP BY ALL
), top_ports AS (
    SELECT src, day, list({port: dport, hosts: hosts} ORDER BY hosts DESC, dport)[1:10] AS top,
           count(*) AS n_ports
    FROM ports GROUP BY src, day
)
SELECT h.first_ts AS "@timestamp", h.last_ts AS "event.end",
       concat_ws('|', h.actor, h.src, strftime(h.day, '%Y-%m-%d')) AS "alert.key",
       format('{} ({} {}{}) connected to {} internal hosts{} on {} port(s) in one day, {} with '
              'no reply seen; {}',
              h.src, coalesce(h.src_site, 'unknown site'), coalesce(h.src_role, 'address'),
              CASE WHEN h."user.name" IS NOT NULL THEN ', VPN user ' || h."user.name"
                   ELSE '' END,
              h.hosts,
              CASE WHEN len(d.dst_sites) > 1
                   THEN format(' at {} sites', len(d.dst_sites)) ELSE '' END,
              t.n_ports, d.silent_hosts,
              CASE WHEN h.baseline_days = 0 THEN 'the source has no earlier history'
                   ELSE format('its busiest of {} earlier day(s) reached {} hosts',
                               h.baseline_days, h.baseline_hosts) END) AS "alert.summary",
       h.src AS "source.ip", h."user.name",
       [h.src] AS "related.ip",
       CASE WHEN h."user.name" IS NOT NULL THEN [h."user.name"] END AS "related.user",
       CASE WHEN d.silent_hosts * 2 >= h.hosts OR h.hosts >= $high_hosts THEN 'high'
            ELSE 'medium' END AS "alert.severity",
       to_json({actor: h.actor, day: strftime(h.day, '%Y-%m-%d'), hosts: h.hosts,
                silent_hosts: d.silent_hosts, max_ports_one_host: h.max_ports,
                connections: h.conns, destination_sites: d.dst_sites,
                baseline_max_hosts: h.baseline_hosts,
                baseline_max_ports_one_host: h.baseline_ports,
                baseline_days: h.baseline_days, top_ports: t.top,
                sample_hosts: d.sample_hosts})::VARCHAR AS "alert.evidence"
FROM hits h
JOIN detail d ON d.src = h.src AND d.day = h.day
JOIN top_ports t ON t.src = h.src AND t.day = h.day
ORDER BY 1, 3
"""
)

DETECTION = Detection(
    id="lateral_fan_out",
    title="Internal fan-out: one source reaches many hosts or ports",
    description=__doc__ or "",
    tactics=("TA0007",),
    techniques=("T1046", "T1018", "T1135"),
    severity="medium",
    datasets=("flows", "events"),
    needs=("pairs", "sessions"),
    params={
        "min_hosts": 25,
        "min_ports": 20,
        "baseline_factor": 3.0,
        "high_hosts": 100,
        "ephemeral_from": 49152,
        "max_samples": 20,
    },
    sql=SQL,
    live=True,
    false_positives=(
        "Allow-listed scanners are exempt. Sources whose daily fan-out is routine (servers, "
        "jump hosts, backup servers) learn it: an alert needs baseline_factor times the "
        "source's busiest earlier day. Reply halves of unidirectional NetFlow (to ports from "
        "ephemeral_from up) are not counted. A new inventory or monitoring tool that is not "
        "on the scanners allow-list fires on its first run."
    ),
)
