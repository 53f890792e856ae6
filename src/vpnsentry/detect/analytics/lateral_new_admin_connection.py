"""New admin connection: a source makes its first-ever connections on administration ports
(SMB, RPC, RDP, WinRM, SSH, LDAP) to internal hosts that neither it nor its peers ever used.

Why it works: lateral movement reuses the estate's own administration protocols, so the
port proves nothing; what gives it away is the *edge*. A branch PC has no business opening
SMB and WinRM to HQ PCs; a VPN user who always mapped two shares does not suddenly read
file servers in five countries. Three baselines decide what is new, all learnt from data:

* the actor's own history: the (actor, destination, port) edge was never seen before that
  day. The actor is the person behind a VPN tunnel address (session attribution: tunnel
  addresses change every login, the user does not) and the address itself otherwise;
* its peers: the edge is not routine for the source's subnet (at least ``peer_min_actors``
  other actors of the same subnet or VPN pool used that destination and port before). A new
  hire's first LDAP bind to the domain controller is what the whole LAN does;
* its role: an actor that reached ``admin_min_hosts`` or more hosts over interactive
  administration ports (RDP, SSH, WinRM) in its learnt history is an administrator's
  workstation or account. That history lags ``learning_days`` behind the day judged, so a
  burst of attacker activity cannot whitelist the rest of its own campaign.

An actor is judged only once it has ``learning_days`` of history (cold start: its first
days are all "new"). Alerts group per actor and UTC day; severity is high when a new edge
reaches a crown-jewel subnet or a workstation (PC-to-PC administration is rare and is how
implants spread) or when several hosts are new at once.

Deliberately ignored: allow-listed scanners, backup and admin hosts and admin users (their
VPN sessions); a VPN user's remote desktop to the one office PC they ever use (the daily
"RDP to my own desk" of remote work: a second PC is not ignored); connections in the first
``learning_days`` of an actor (the gateway-side detections cover an appliance that starts
talking); reply halves of unidirectional NetFlow never reach admin ports, so need no rule.
Per-day ``pairs`` rows are attributed to the user holding the tunnel address at the pair's
first connection: a tunnel address handed to two users on one day is rare and shows as the
first of them.
"""

from vpnsentry.detect.base import Detection
from vpnsentry.enrich.sessions import attribute_sql

#: User key as ``logins`` has it: lower case, domain (``KASUMI\\`` or ``@corp``) stripped.
USER_KEY_SQL = "lower(regexp_replace(regexp_replace({col}, '^.*\\\\', ''), '@.*$', ''))"

#: Every internal connection on an administration port, one row per day and (source,
#: destination, port), with the actor (the VPN user behind a tunnel address, else the
#: address), the source's peer group (its subnet) and the site and role of both ends.
#: Shared with ``lateral_admin_chain``. Uses $admin_ports.


def actor_ctes(relation: str, name: str) -> str:
    """Two CTEs: ``attributed`` (``relation`` with the VPN session user of a tunnel source)
    and ``name``: its rows with that user as ``user.name`` and an ``actor`` key, the user
    when a session held the source address, else the address. Detections group by actor so
    a VPN user who reconnects with a new tunnel address stays one actor.
    """
    return (
        "attributed AS (\n"
        + attribute_sql(relation, ip_column="src", ts_column="first_ts")
        + f"""
), {name} AS (
    SELECT a.* EXCLUDE ("session.user", "session.gateway"),
           a."session.user" AS "user.name",
           CASE WHEN a."session.user" IS NOT NULL
                THEN 'user:' || {USER_KEY_SQL.format(col='a."session.user"')}
                ELSE 'ip:' || a.src END AS actor
    FROM attributed a"""
    )


ADMIN_EDGES_SQL = (
    """
admin_pairs AS (
    SELECT p.src, p.dst, p.dport, p.day, p.first_ts, p.last_ts, p.conns, p.bytes_out,
           p.bytes_in, p.src_u, p.dst_u, p.src_site, p.src_role, p.dst_site, p.dst_role,
           p.dst_crown,
           coalesce(CASE WHEN p.src_u <= n.net_hi THEN n.cidr END, p.src) AS peer
    FROM pairs p
    ASOF LEFT JOIN subnets n ON p.src_u >= n.net_lo
    WHERE p.src_private AND p.dst_private AND p.src <> p.dst
      AND list_contains(CAST($admin_ports AS INTEGER[]), p.dport)
), """
    + actor_ctes("admin_pairs", "admin_edges")
    + """
)"""
)

#: When each actor was first seen: a user at their first VPN session, an address at its
#: first flow of any kind. Only for the actors in ``cand`` (a CTE with an ``actor`` column).
ACTOR_FIRST_SQL = (
    """
actor_first AS (
    SELECT 'user:' || """
    + USER_KEY_SQL.format(col='"user.name"')
    + """ AS actor, min("session.start") AS first_seen
    FROM sessions WHERE "user.name" IS NOT NULL AND "session.start" IS NOT NULL
    GROUP BY 1
    UNION ALL
    SELECT 'ip:' || src, min(first_ts) FROM pairs
    WHERE src IN (SELECT substr(actor, 4) FROM cand WHERE actor LIKE 'ip:%')
    GROUP BY src
)"""
)

#: An actor is exempt when allow-listed (scanners, backup and admin hosts by address, admin
#: users by name). Needs ``src_u`` and ``actor`` in scope as ``x``.
ALLOWED_SQL = """(
    is_scanner(x.src_u) OR is_backup_host(x.src_u) OR is_admin_host(x.src_u)
    OR EXISTS (SELECT 1 FROM allow_users w
               WHERE w.kind = 'admin_users' AND x.actor = 'user:' || w.name)
)"""

#: The suspicious new admin edges: first-seen for the actor, not routine for its peers, the
#: actor judged (old enough), not allow-listed, not an established administrator, and not a
#: VPN user's RDP to the one PC they use. One row per (actor, day, src, dst, port).
#: Uses $admin_ports, $interactive_ports, $learning_days, $peer_min_actors, $admin_min_hosts.
NEW_EDGES_SQL = (
    ADMIN_EDGES_SQL
    + """, edge_first AS (
    SELECT actor, dst, dport, min(day) AS first_day FROM admin_edges GROUP BY ALL
), cand AS (
    SELECT e.* FROM admin_edges e
    JOIN edge_first f ON e.actor = f.actor AND e.dst = f.dst AND e.dport = f.dport
                     AND e.day = f.first_day
), """
    + ACTOR_FIRST_SQL
    + """, judged AS (
    SELECT c.*, date_trunc('day', a.first_seen) AS actor_day0
    FROM cand c JOIN (SELECT actor, min(first_seen) AS first_seen FROM actor_first GROUP BY 1) a
        ON c.actor = a.actor
    WHERE c.day >= date_trunc('day', a.first_seen) + to_days(CAST($learning_days AS INTEGER))
), peer_first AS (
    SELECT e.peer, e.dst, e.dport, e.actor, min(e.day) AS first_day FROM admin_edges e
    SEMI JOIN judged j ON e.peer = j.peer AND e.dst = j.dst AND e.dport = j.dport
    GROUP BY ALL
), peered AS (
    SELECT j.*,
           (SELECT count(DISTINCT p.actor) FROM peer_first p
            WHERE p.peer = j.peer AND p.dst = j.dst AND p.dport = j.dport
              AND p.actor <> j.actor AND p.first_day < j.day) AS peers
    FROM judged j
), interactive_first AS (
    SELECT actor, dst, min(day) AS first_day FROM admin_edges
    WHERE list_contains(CAST($interactive_ports AS INTEGER[]), dport)
      AND actor IN (SELECT actor FROM peered)
    GROUP BY ALL
), rdp_pcs AS (
    SELECT actor, dst, min(day) AS first_day FROM admin_edges
    WHERE dport = 3389 AND dst_role = 'workstations' AND actor LIKE 'user:%'
      AND actor IN (SELECT actor FROM peered)
    GROUP BY ALL
), new_edges AS (
    SELECT x.*,
           (SELECT count(DISTINCT i.dst) FROM interactive_first i
            WHERE i.actor = x.actor
              AND i.first_day < greatest(x.actor_day0 + to_days(CAST($learning_days AS INTEGER)),
                                         x.day - to_days(CAST($learning_days AS INTEGER))))
               AS admin_hosts_before,
           (x.actor LIKE 'user:%' AND x.dport = 3389 AND x.dst_role = 'workstations'
            AND (SELECT count(*) FROM rdp_pcs r
                 WHERE r.actor = x.actor AND r.first_day <= x.day) = 1) AS own_pc
    FROM peered x
    WHERE x.peers < $peer_min_actors AND NOT """
    + ALLOWED_SQL
    + """
), suspicious AS (
    SELECT * FROM new_edges WHERE admin_hosts_before < $admin_min_hosts AND NOT own_pc
)"""
)

SQL = (
    "WITH "
    + NEW_EDGES_SQL
    + """, per_dst AS (
    SELECT actor, day, dst, any_value(dst_site) AS dst_site, any_value(dst_role) AS dst_role,
           bool_or(dst_crown) AS dst_crown, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           list(DISTINCT dport ORDER BY dport) AS ports, sum(conns) AS conns,
           sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
           arg_min(src, first_ts) AS src, any_value(src_site) AS src_site,
           any_value(src_role) AS src_role, any_value("user.name") AS "user.name",
           list(DISTINCT src) AS srcs,
           list(DISTINCT CASE dport WHEN 445 THEN 'SMB' WHEN 139 THEN 'SMB' WHEN 135 THEN 'RPC'
               WHEN 3389 THEN 'RDP' WHEN 22 THEN 'SSH' WHEN 5985 THEN 'WinRM'
               WHEN 5986 THEN 'WinRM' WHEN 389 THEN 'LDAP' WHEN 636 THEN 'LDAPS'
               ELSE 'tcp/' || dport END) AS services
    FROM suspicious GROUP BY actor, day, dst
), grouped AS (
    SELECT actor, day, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           arg_min(src, first_ts) AS src, any_value(src_site) AS src_site,
           any_value(src_role) AS src_role, any_value("user.name") AS "user.name",
           list_sort(list_distinct(flatten(list(srcs)))) AS srcs,
           count(*) AS new_hosts,
           count(*) FILTER (WHERE dst_crown) AS crown_hosts,
           count(*) FILTER (WHERE dst_role = 'workstations') AS workstation_hosts,
           list(DISTINCT dst_site ORDER BY dst_site)
               FILTER (WHERE dst_site IS DISTINCT FROM src_site) AS other_sites,
           list_sort(list_distinct(flatten(list(ports)))) AS ports,
           list_sort(list_distinct(flatten(list(services)))) AS services,
           sum(conns) AS conns, sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
           list(dst ORDER BY first_ts, dst) AS dsts,
           list({dst: dst, site: dst_site, role: dst_role, crown_jewel: dst_crown,
                 ports: ports, first: first_ts, bytes_in: bytes_in, bytes_out: bytes_out}
                ORDER BY first_ts, dst)[1:$max_samples] AS samples
    FROM per_dst GROUP BY actor, day
), named AS (
    SELECT g.*, h.name AS src_name FROM grouped g LEFT JOIN hosts h ON h.ip = g.src
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', actor, strftime(day, '%Y-%m-%d')) AS "alert.key",
       format('{} ({} {}{}) made first-ever {} connections to {} host(s) no peer uses{}{}{}: {}',
              src, coalesce(src_site, 'unknown site'), coalesce(src_role, 'address'),
              CASE WHEN "user.name" IS NOT NULL THEN ', VPN user ' || "user.name" ELSE '' END,
              array_to_string(services, '/'), new_hosts,
              CASE WHEN crown_hosts > 0 THEN format(', {} crown-jewel', crown_hosts) ELSE '' END,
              CASE WHEN workstation_hosts > 0
                   THEN format(', {} workstation(s)', workstation_hosts) ELSE '' END,
              CASE WHEN len(other_sites) > 0
                   THEN ', at ' || array_to_string(list_sort(other_sites), ', ') ELSE '' END,
              array_to_string(dsts[1:5], ', ') || CASE WHEN new_hosts > 5 THEN ', ...' ELSE '' END)
           AS "alert.summary",
       src AS "source.ip", dsts[1] AS "destination.ip",
       CASE WHEN len(ports) = 1 THEN ports[1] END AS "destination.port",
       "user.name", src_name AS "host.name",
       list_concat(srcs[1:3], dsts[1:$max_related_hosts]) AS "related.ip",
       CASE WHEN "user.name" IS NOT NULL THEN ["user.name"] END AS "related.user",
       CASE WHEN crown_hosts > 0 OR workstation_hosts > 0 OR new_hosts >= 3 THEN 'high'
            ELSE 'medium' END AS "alert.severity",
       (bytes_in + bytes_out)::BIGINT AS "network.bytes",
       to_json({actor: actor, day: strftime(day, '%Y-%m-%d'), new_hosts: new_hosts,
                crown_jewel_hosts: crown_hosts, workstation_hosts: workstation_hosts,
                other_sites: other_sites, ports: ports, connections: conns,
                bytes_out: bytes_out, bytes_in: bytes_in, sources: srcs,
                samples: samples})::VARCHAR AS "alert.evidence"
FROM named
ORDER BY 1, 3
"""
)

DETECTION = Detection(
    id="lateral_new_admin_connection",
    title="First-seen internal connection on administration ports",
    description=__doc__ or "",
    tactics=("TA0008",),
    techniques=("T1021.001", "T1021.002", "T1021.004", "T1021.006", "T1570"),
    severity="medium",
    datasets=("flows", "events"),
    needs=("pairs", "sessions"),
    params={
        "admin_ports": ["22", "135", "389", "445", "636", "3389", "5985", "5986"],
        "interactive_ports": ["22", "3389", "5985", "5986"],
        "peer_min_actors": 3,
        "admin_min_hosts": 5,
        "max_samples": 20,
        "max_related_hosts": 5,
    },
    sql=SQL,
    false_positives=(
        "Silent for allow-listed scanners, backup and admin hosts and admin users; for actors "
        "that reached admin_min_hosts hosts over RDP/SSH/WinRM in their learnt history "
        "(administrators); for edges peer_min_actors others of the same subnet or VPN pool "
        "already used; for a VPN user's RDP to the only office PC they use; and for actors "
        "with less than learning_days of history. A new file server or a re-addressed host "
        "shows as new edges for the first users who reach it."
    ),
)
