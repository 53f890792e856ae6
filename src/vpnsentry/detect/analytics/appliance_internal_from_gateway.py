"""Connections to internal hosts that a VPN gateway itself opens, from its own addresses.

Why it works: a VPN gateway forwards its users' traffic with *their* tunnel addresses as the
source; connections whose source is the gateway's own inside or management address are the
box itself talking. A healthy gateway talks to a short, fixed list of internal services
(DNS, NTP, the RADIUS/LDAP server, the syslog collector, SNMP), every day. A gateway that
has been broken into and is used as a beachhead (the Mitsubishi Electric case) scans the
networks behind it and pushes tools to PCs over SMB, RDP or WinRM from that address, with
no VPN session behind the traffic and nothing in the gateway's own logs: only NetFlow, Zeek
or a downstream firewall see it. So, per gateway address, the (destination, port) pairs it
reached on at least ``min_known_days`` earlier days are its normal services; a pair below
that is new, and reported once the gateway has ``learning_days`` of history, or at once
when the port is an administration or file-sharing port (``admin_ports``: SMB, RPC, RDP,
WinRM, SSH), which a gateway has no business opening to PCs. Findings are grouped per
gateway and UTC day; the alert's source address is the gateway's, so it correlates with the
rest of the intrusion; when it reached only a few hosts (a tool pushed to some PCs) they
are listed as related too, since they are the intruder's next foothold.

A gateway that proxies its users' traffic from its own address (web-mode portal
bookmarks, source NAT of tunnel traffic) looks like this too; those (destination, port)
pairs are learnt like any other after ``min_known_days``.

What it deliberately ignores: traffic *to* the gateway (VPN users, admins, monitoring), the
gateway's public (outside) address, its forwarded VPN traffic (pool addresses), and
destination ports in the ephemeral range (``min_ephemeral_port`` and up: the reverse
direction of connections to the gateway as unidirectional NetFlow records them), unless they
are admin ports.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH gw_addr AS (
    SELECT hostname, inside AS addr, inside_u AS addr_u, 'inside' AS side FROM gateways
    UNION ALL
    SELECT hostname, management, management_u, 'management' FROM gateways
    WHERE management_u IS NOT NULL
), conn AS (
    SELECT a.hostname, a.side, p.src, p.src_u, p.dst, p.dst_u, p.dport, p.proto, p.day,
           p.conns, p.bytes_out, p.bytes_in, p.first_ts, p.last_ts, p.dst_role, p.dst_site
    FROM pairs p JOIN gw_addr a ON p.src_u = a.addr_u
    WHERE p.dst_private AND NOT is_gateway_addr(p.dst_u)
), data_start AS (
    SELECT min(day) AS d0 FROM pairs
), hist AS (
    SELECT c.*,
           count(*) OVER (PARTITION BY c.src, c.dst, c.dport, c.proto ORDER BY c.day
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_days,
           list_contains($admin_ports, c.dport::VARCHAR) AS admin_port
    FROM conn c
), flagged AS (
    SELECT h.* FROM hist h, data_start s
    WHERE h.prior_days < $min_known_days
      AND (h.admin_port
           OR (h.dport < $min_ephemeral_port
               AND h.day >= s.d0 + to_days($learning_days::INTEGER)))
), grouped AS (
    SELECT hostname, src, day, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           -- saturating: byte counts are attacker-written and do not fit a BIGINT summed
           sum(conns)::BIGINT AS conns,
           least(sum(bytes_out), 9223372036854775807)::BIGINT AS bytes_out,
           count(DISTINCT dst) AS hosts,
           count(DISTINCT dst) FILTER (WHERE admin_port) AS admin_hosts,
           list(DISTINCT dport ORDER BY dport)[1:15] AS ports,
           list(DISTINCT dst_site ORDER BY dst_site) FILTER (WHERE dst_site IS NOT NULL)
               AS sites,
           list(DISTINCT dst ORDER BY dst)[1:20] AS sample_hosts,
           arg_max(dst, bytes_out) AS top_dst, arg_max(dport, bytes_out) AS top_port
    FROM flagged GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', hostname, src, strftime(day, '%Y-%m-%d')) AS "alert.key",
       format('Gateway {} opened {} connection(s) from its own address {} to {} internal '
              'host(s) ({} on admin/file-sharing ports) on ports {} at site(s) {}, '
              'none of them its usual services',
              hostname, conns, src, hosts, admin_hosts,
              array_to_string(ports, ','), coalesce(array_to_string(sites, ', '), '?'))
           AS "alert.summary",
       src AS "source.ip", hostname AS "observer.name",
       CASE WHEN hosts = 1 THEN top_dst END AS "destination.ip",
       CASE WHEN len(ports) = 1 THEN top_port END AS "destination.port",
       bytes_out AS "network.bytes",
       CASE WHEN hosts <= $max_related_hosts THEN list_prepend(src, sample_hosts)
            ELSE [src] END AS "related.ip",
       [hostname] AS "related.hosts",
       CASE WHEN admin_hosts > 0 THEN 'critical' ELSE 'high' END AS "alert.severity",
       to_json({connections: conns, hosts: hosts, admin_port_hosts: admin_hosts,
                ports: ports, sites: sites, sample_hosts: sample_hosts,
                bytes_out: bytes_out})::VARCHAR AS "alert.evidence"
FROM grouped
ORDER BY 1
"""

DETECTION = Detection(
    id="appliance_internal_from_gateway",
    title="VPN gateway's own address connects to internal hosts",
    description=__doc__ or "",
    tactics=("TA0007", "TA0008"),
    techniques=("T1046", "T1018", "T1021", "T1570", "T1133"),
    severity="critical",
    datasets=("flows",),
    needs=("pairs",),
    params={
        "min_known_days": 3,
        "admin_ports": ["22", "135", "139", "445", "3389", "5985", "5986"],
        "min_ephemeral_port": 32768,
        "max_related_hosts": 10,
    },
    sql=SQL,
    false_positives=(
        "A gateway's usual internal services (destination and port reached on "
        "min_known_days earlier days: DNS, NTP, RADIUS, syslog) are not reported; a new "
        "service on a non-admin port is only reported once the data holds learning_days. "
        "A gateway that backs itself up over SSH is learnt after min_known_days."
    ),
)
