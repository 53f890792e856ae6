"""Admin chain: a host is reached over an administration protocol by an unusual source and
later itself opens first-ever administration connections: A -> B, then B -> C.

Why it works: an intruder moves hop by hop. Each hop lands on a host over SMB, RPC, RDP,
WinRM or SSH (tool transfer, remote service, interactive session) and the next hop leaves
from that host. A host that *receives* an unusual admin connection and then *starts* making
ones it never made is the pivot of such a chain; either half alone is weaker evidence (an
administrator fixing a PC, a PC mapping a new share), the two in order are the lateral
movement pattern itself (TA0008).

How: the second hop is exactly what ``lateral_new_admin_connection`` calls suspicious (a
first-seen edge of an actor with history, not routine for its subnet's peers, not an
administrator, not allow-listed). The first hop is any admin-port connection into that
host in the ``max_hours`` before it, from a source that is not an allow-listed scanner or
backup host, on an edge that is not routine for the source's own peers (``peer_min_actors``)
- a user mapping the file server everyone maps is not a hop. There is no cold start for
the first hop: an appliance that starts talking to PCs (a breached VPN gateway's inside
address) is the classic first hop. ``max_hours`` defaults to ten days because real
intruders let an implant sleep between hops (days, in the case this tool was built for).
One alert per pivot and day of its outbound hop; critical when the chain reaches a
crown-jewel subnet, high otherwise.

Deliberately ignored: pivots that are VPN tunnel addresses (an address that changes every
login is not a host anyone hops through: the outbound half is still reported by
``lateral_new_admin_connection``); chains whose outbound half is routine.
"""

from vpnsentry.detect.analytics import lateral_new_admin_connection as new_admin
from vpnsentry.detect.base import Detection

SQL = (
    "WITH "
    + new_admin.NEW_EDGES_SQL
    + """, hubs AS (
    SELECT src AS hub, day, min(first_ts) AS t2, max(last_ts) AS t2_end,
           any_value(src_site) AS hub_site, any_value(src_role) AS hub_role,
           list(DISTINCT dst ORDER BY dst) AS outs, count(DISTINCT dst) AS n_out,
           count(DISTINCT dst) FILTER (WHERE dst_crown) AS crown_out,
           list(DISTINCT dport ORDER BY dport) AS out_ports
    FROM suspicious WHERE actor LIKE 'ip:%' GROUP BY src, day
), inbound AS (
    SELECT e.src AS a, e.actor AS a_actor, e."user.name" AS a_user, e.src_u AS a_u,
           e.peer, e.dst AS hub, e.dport, e.day, e.first_ts, e.last_ts, e.src_site AS a_site
    FROM admin_edges e SEMI JOIN hubs p ON e.dst = p.hub
    WHERE list_contains(CAST($hop_ports AS INTEGER[]), e.dport)
      AND NOT is_scanner(e.src_u) AND NOT is_backup_host(e.src_u)
), inbound_peers AS (
    SELECT f.peer, f.dst, f.dport, f.actor, min(f.day) AS first_day FROM admin_edges f
    SEMI JOIN inbound i ON f.peer = i.peer AND f.dst = i.hub AND f.dport = i.dport
    GROUP BY ALL
), hop1 AS (
    SELECT i.*,
           (SELECT count(DISTINCT q.actor) FROM inbound_peers q
            WHERE q.peer = i.peer AND q.dst = i.hub AND q.dport = i.dport
              AND q.actor <> i.a_actor AND q.first_day < i.day) AS peers
    FROM inbound i
), chains AS (
    SELECT p.*, h.a, h.a_user, h.a_site, h.dport AS in_port, h.first_ts AS t1
    FROM hubs p JOIN hop1 h ON h.hub = p.hub
    WHERE h.peers < $peer_min_actors AND h.first_ts < p.t2
      AND p.t2 - h.first_ts <= to_hours(CAST($max_hours AS BIGINT))
      AND NOT list_contains(p.outs, h.a)
), grouped AS (
    SELECT hub, day, any_value(hub_site) AS hub_site, any_value(hub_role) AS hub_role,
           min(t1) AS first_ts, any_value(t2) AS t2, any_value(t2_end) AS t2_end,
           any_value(outs) AS outs, any_value(n_out) AS n_out,
           any_value(crown_out) AS crown_out, any_value(out_ports) AS out_ports,
           list(DISTINCT a ORDER BY a) AS ins, list(DISTINCT in_port ORDER BY in_port) AS in_ports,
           list(DISTINCT a_user ORDER BY a_user) FILTER (WHERE a_user IS NOT NULL) AS in_users,
           arg_max(a, t1) AS last_in, max(t1) AS last_t1,
           list({source: a, site: a_site, port: in_port, first: t1} ORDER BY t1)[1:$max_samples]
               AS inbound_samples
    FROM chains GROUP BY hub, day
)
SELECT g.first_ts AS "@timestamp", g.t2_end AS "event.end",
       concat_ws('|', g.hub, strftime(g.day, '%Y-%m-%d')) AS "alert.key",
       format('Admin chain through {} ({} {}): reached from {} over port(s) {} (last {}), then '
              'it opened first-ever admin connections to {} host(s){} ({} h later): {}',
              g.hub, coalesce(g.hub_site, 'unknown site'), coalesce(g.hub_role, 'host'),
              array_to_string(g.ins[1:3], ', ')
                  || CASE WHEN len(g.ins) > 3 THEN ', ...' ELSE '' END,
              array_to_string(g.in_ports, '/'), strftime(g.last_t1, '%Y-%m-%d %H:%M'),
              g.n_out,
              CASE WHEN g.crown_out > 0 THEN format(', {} crown-jewel', g.crown_out) ELSE '' END,
              round(epoch(g.t2 - g.last_t1) / 3600.0, 1),
              array_to_string(g.outs[1:5], ', ')
                  || CASE WHEN g.n_out > 5 THEN ', ...' ELSE '' END) AS "alert.summary",
       g.hub AS "source.ip", h.name AS "host.name",
       list_concat(g.ins[1:3], [g.hub], g.outs[1:$max_related_hosts]) AS "related.ip",
       CASE WHEN len(g.in_users) > 0 THEN g.in_users END AS "related.user",
       CASE WHEN g.crown_out > 0 THEN 'critical' ELSE 'high' END AS "alert.severity",
       to_json({hub: g.hub, day: strftime(g.day, '%Y-%m-%d'), inbound_sources: g.ins,
                inbound_ports: g.in_ports, inbound_samples: g.inbound_samples,
                outbound_hosts: g.outs[1:$max_samples], outbound_count: g.n_out,
                outbound_ports: g.out_ports, outbound_crown_jewel: g.crown_out,
                outbound_first: g.t2,
                hours_between: round(epoch(g.t2 - g.last_t1) / 3600.0, 1)})::VARCHAR
           AS "alert.evidence"
FROM grouped g LEFT JOIN hosts h ON h.ip = g.hub
ORDER BY 1, 3
"""
)

DETECTION = Detection(
    id="lateral_admin_chain",
    title="Admin chain: a host reached over admin ports then moves on",
    description=__doc__ or "",
    tactics=("TA0008",),
    techniques=("T1021", "T1021.002", "T1570"),
    severity="high",
    datasets=("flows", "events"),
    needs=("pairs", "sessions"),
    params={
        **{
            k: v
            for k, v in new_admin.DETECTION.params.items()
            if k in ("admin_ports", "interactive_ports", "peer_min_actors", "admin_min_hosts")
        },
        "hop_ports": ["22", "135", "445", "3389", "5985", "5986"],
        "max_hours": 240,
        "max_samples": 20,
        "max_related_hosts": 5,
    },
    sql=SQL,
    false_positives=(
        "Needs both halves: the outbound half is lateral_new_admin_connection's suspicious "
        "edges (so its exemptions apply), the inbound half excludes scanners, backup hosts "
        "and edges routine for the source's peers. An administrator who first fixes a PC "
        "and whose PC then maps shares nobody uses would chain."
    ),
)
