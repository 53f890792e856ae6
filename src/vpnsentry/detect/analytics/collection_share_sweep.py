"""Share sweep and crown-jewel pull: one actor opens SMB sessions to file servers it never used
at many sites in a day, or reads a large volume from crown-jewel servers it never used.

Why it works: people use the shares of their own site and the head office, the same ones day
after day; the backup server reads every share, but it is known (allow-list) and does it
every night. Collection and share discovery look different: an intruder with a stolen VPN
account lists and reads shares across the company (``min_servers`` new servers at
``min_sites`` sites in a day), and a staging host pulls hundreds of megabytes from the R&D
servers it never mapped (``min_crown_bytes`` from crown-jewel servers new to it).

How: SMB (``smb_ports``) from ``pairs`` to server subnets and named hosts, per actor (the VPN
user behind a tunnel address, else the address) and day. A session counts when the server
answered with at least ``min_reply_bytes`` (reply bytes seen by a bidirectional sensor, or
the reverse-direction record of a unidirectional one): a port scan's refused probes are
``lateral_fan_out``'s business, not a share read. "New" means the actor had no SMB session
with that server on any earlier day. The sweep needs the actor to have been seen on an
earlier day (the first day of the data is all "new"); the crown-jewel pull needs
``learning_days`` of history, like every novelty detection, so a new R&D hire cloning what
their team uses is not an alert.

Deliberately ignored: allow-listed backup hosts and scanners; reads from servers the actor
already used, however large (volume alone is routine for R&D: see the exfiltration
detections for data leaving); SMB to workstations (PC-to-PC SMB is lateral movement:
``lateral_new_admin_connection``).
"""

from vpnsentry.detect.analytics.lateral_new_admin_connection import USER_KEY_SQL, actor_ctes
from vpnsentry.detect.base import Detection

SQL = (
    """
WITH smb_pairs AS (
    SELECT p.src, p.dst, p.dport, p.day, p.first_ts, p.last_ts, p.conns, p.bytes_in,
           p.bytes_out, p.src_u, p.src_site, p.src_role, p.dst_site, p.dst_role, p.dst_crown
    FROM pairs p
    WHERE p.src_private AND p.dst_private AND p.src <> p.dst
      AND list_contains(CAST($smb_ports AS INTEGER[]), p.dport)
      AND (p.dst_role = 'servers' OR p.dst_u IN (SELECT ip_u FROM hosts))
), reverse AS (
    -- Reply bytes of a unidirectional sensor: the server -> client record of the same day.
    SELECT r.src AS server, r.dst AS client, r.day, max(r.bytes_out) AS bytes
    FROM pairs r SEMI JOIN smb_pairs s ON r.src = s.dst AND r.dst = s.src AND r.day = s.day
    GROUP BY ALL
), sessions_smb AS (
    SELECT s.* FROM smb_pairs s
    LEFT JOIN reverse r ON r.server = s.dst AND r.client = s.src AND r.day = s.day
    WHERE greatest(s.bytes_in, coalesce(r.bytes, 0)) >= $min_reply_bytes
), """
    + actor_ctes("sessions_smb", "smb")
    + """
    WHERE NOT is_backup_host(a.src_u) AND NOT is_scanner(a.src_u)
), server_first AS (
    SELECT actor, dst, min(day) AS first_day FROM smb GROUP BY ALL
), new_reads AS (
    SELECT s.actor, s.day, s.dst, any_value(s.dst_site) AS dst_site,
           bool_or(s.dst_crown) AS dst_crown, sum(s.bytes_in) AS bytes_in,
           sum(s.conns) AS conns, min(s.first_ts) AS first_ts, max(s.last_ts) AS last_ts,
           arg_min(s.src, s.first_ts) AS src, any_value(s.src_site) AS src_site,
           any_value(s.src_role) AS src_role, any_value(s."user.name") AS "user.name"
    FROM smb s JOIN server_first f ON f.actor = s.actor AND f.dst = s.dst AND f.first_day = s.day
    GROUP BY s.actor, s.day, s.dst
), reply_bytes AS (
    -- Bytes read per new server: the larger of the two directions' views.
    SELECT n.*, greatest(n.bytes_in, coalesce(r.bytes, 0)) AS read_bytes
    FROM new_reads n
    LEFT JOIN reverse r ON r.server = n.dst AND r.client = n.src AND r.day = n.day
), """
    + """actor_seen AS (
    SELECT 'user:' || """
    + USER_KEY_SQL.format(col='"user.name"')
    + """ AS actor, min("session.start") AS first_seen
    FROM sessions WHERE "user.name" IS NOT NULL AND "session.start" IS NOT NULL
    GROUP BY 1
    UNION ALL
    SELECT 'ip:' || src, min(first_ts) FROM pairs
    WHERE src IN (SELECT substr(actor, 4) FROM new_reads WHERE actor LIKE 'ip:%')
    GROUP BY src
), grouped AS (
    SELECT r.actor, r.day, min(r.first_ts) AS first_ts, max(r.last_ts) AS last_ts,
           arg_min(r.src, r.first_ts) AS src, any_value(r.src_site) AS src_site,
           any_value(r.src_role) AS src_role, any_value(r."user.name") AS "user.name",
           count(*) AS servers, count(DISTINCT r.dst_site) AS sites,
           list(DISTINCT r.dst_site ORDER BY r.dst_site) FILTER (WHERE r.dst_site IS NOT NULL)
               AS site_list,
           count(*) FILTER (WHERE r.dst_crown) AS crown_servers,
           coalesce(sum(r.read_bytes) FILTER (WHERE r.dst_crown), 0) AS crown_bytes,
           sum(r.read_bytes) AS read_bytes, sum(r.conns) AS conns,
           list(r.dst ORDER BY r.first_ts, r.dst) AS dsts,
           list({server: r.dst, site: r.dst_site, crown_jewel: r.dst_crown,
                 bytes_read: r.read_bytes, first: r.first_ts}
                ORDER BY r.first_ts, r.dst)[1:$max_samples] AS samples
    FROM reply_bytes r GROUP BY r.actor, r.day
), judged AS (
    SELECT g.*, date_trunc('day', a.first_seen) AS day0
    FROM grouped g
    JOIN (SELECT actor, min(first_seen) AS first_seen FROM actor_seen GROUP BY 1) a
        ON a.actor = g.actor
), hits AS (
    SELECT *,
           servers >= $min_servers AND sites >= $min_sites
               AND day0 + to_days(CAST($sweep_history_days AS INTEGER)) <= day AS sweep,
           crown_bytes >= $min_crown_bytes
               AND day0 + to_days(CAST($learning_days AS INTEGER)) <= day AS crown_pull
    FROM judged
)
SELECT h.first_ts AS "@timestamp", h.last_ts AS "event.end",
       concat_ws('|', h.actor, strftime(h.day, '%Y-%m-%d')) AS "alert.key",
       format('{} ({} {}{}) opened SMB sessions to {} file server(s) it never used before, at '
              '{} site(s){}, reading {} MB{}: {}',
              h.src, coalesce(h.src_site, 'unknown site'), coalesce(h.src_role, 'address'),
              CASE WHEN h."user.name" IS NOT NULL THEN ', VPN user ' || h."user.name"
                   ELSE '' END,
              h.servers, h.sites,
              CASE WHEN h.sites > 1 THEN ' (' || array_to_string(list_sort(h.site_list), ', ')
                   || ')' ELSE '' END,
              round(h.read_bytes / 1e6, 1),
              CASE WHEN h.crown_servers > 0
                   THEN format(', {} MB of it from {} crown-jewel server(s)',
                               round(h.crown_bytes / 1e6, 1), h.crown_servers)
                   ELSE '' END,
              array_to_string(h.dsts[1:5], ', ')
                  || CASE WHEN h.servers > 5 THEN ', ...' ELSE '' END) AS "alert.summary",
       h.src AS "source.ip", h."user.name",
       CASE WHEN h.servers = 1 THEN h.dsts[1] END AS "destination.ip",
       list_concat([h.src], h.dsts[1:$max_related_hosts]) AS "related.ip",
       CASE WHEN h."user.name" IS NOT NULL THEN [h."user.name"] END AS "related.user",
       CASE WHEN h.crown_pull OR h.sites >= $high_sites THEN 'high' ELSE 'medium' END
           AS "alert.severity",
       h.read_bytes::BIGINT AS "network.bytes",
       to_json({actor: h.actor, day: strftime(h.day, '%Y-%m-%d'), new_servers: h.servers,
                sites: h.site_list, crown_jewel_servers: h.crown_servers,
                crown_jewel_bytes: h.crown_bytes, bytes_read: h.read_bytes,
                connections: h.conns, sweep: h.sweep, crown_pull: h.crown_pull,
                samples: h.samples})::VARCHAR AS "alert.evidence"
FROM hits h
WHERE h.sweep OR h.crown_pull
ORDER BY 1, 3
"""
)

DETECTION = Detection(
    id="collection_share_sweep",
    title="Share sweep or crown-jewel pull from file servers never used before",
    description=__doc__ or "",
    tactics=("TA0009", "TA0007"),
    techniques=("T1039", "T1135"),
    severity="medium",
    datasets=("flows", "events"),
    needs=("pairs", "sessions"),
    params={
        "smb_ports": ["139", "445"],
        "min_reply_bytes": 4096,
        "min_servers": 4,
        "min_sites": 3,
        "high_sites": 5,
        "sweep_history_days": 1,
        "min_crown_bytes": 50_000_000,
        "max_samples": 20,
        "max_related_hosts": 5,
    },
    sql=SQL,
    false_positives=(
        "Allow-listed backup hosts and scanners are exempt; only servers the actor never had "
        "an SMB session with count, so a nightly job learns its servers on its first day. A "
        "migration that moves many users to new file servers at once, or a travelling user "
        "mapping several sites' shares in a day, can fire."
    ),
)
