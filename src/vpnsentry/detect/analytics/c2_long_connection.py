"""Long connection: one connection between an internal host and a rare external address
stays open for hours (an interactive C2 channel, a reverse shell or tunnel, or an inbound
session through a hole in the firewall).

Why it works: web, API and update traffic is made of short connections; the few long ones
(meetings, push channels) go to big providers that many internal hosts use. A connection
held open for ``min_hours`` or more to a network that at most ``max_sources`` internal hosts
ever talked to (by /24, since cloud and CDN services rotate addresses inside their blocks)
is unusual enough to look at, whichever side opened it. The default is strict (2 hosts): a
rented server is talked to by the one machine it serves, while a cloud /24 collects a few
hosts' long push channels within weeks; several machines held open to one network are
``c2_beaconing``'s case anyway.

How: ``flows`` is read once, for the records long enough to be a slice or a long
connection; only those to or from an address in a rare /24 are kept (the others could join
no candidate, and stitching every long record of a month cost more than reading them).
Candidate (host, address) pairs come from ``pairs`` (its ``max_duration`` per day) and from
the stitched slices below; how many internal hosts exchange traffic with the address's /24
comes from ``transfer_nets``, counted once for the pack. Only the candidates' long records
give start, end, ports and bytes.

Connections still open are seen too, which is the point for a channel held for days:

* Zeek's open-connection records (``conn_long``, ``open_conn``) carry the duration so far,
  so a connection past ``min_hours`` qualifies before it closes.
* Flow exporters cut a long connection into records of their active timeout (commonly
  1-30 minutes; softflowd ``maxlife``, Cisco ``ip flow-cache timeout active``), none of
  which is long by itself. Records of at least ``min_slice_seconds`` with the same
  5-tuple and sensor, each starting within ``max_gap_seconds`` of the previous one's end,
  are stitched back into one connection; its span so far is its duration.
A connection logged by several sensors (gateway, NetFlow in both directions, Zeek) is one
alert per pair, not per record; the service port shown is that of the record with the lower
destination port (NetFlow's reverse record has the client's ephemeral port).

What it ignores: VPN client tunnels, even sessions left connected for days, run between a
remote user's public address and the gateway's outside address: no end is internal, and
flows to or from any gateway address are skipped anyway. Partner networks (allow-list
``partners``) are skipped. Long meetings to big providers are not rare.
"""

from vpnsentry.detect.base import Detection

SQL = """
WITH rare_ext AS (
    -- the external addresses of rare /24s: a record touching none can be in no candidate
    -- (every address that exchanges traffic with an internal host is in transfers)
    SELECT DISTINCT t.ext FROM transfers t JOIN transfer_nets n ON n.net = t.ext_u // 256
    WHERE n.net_hosts <= $max_sources
), long_recs AS MATERIALIZED (
    -- the one read of flows: every record long enough to be a slice or a long connection,
    -- to or from a rare network
    SELECT * FROM (
        SELECT "source.ip" AS src, "source.port" AS sport, "destination.ip" AS dst,
               "destination.port" AS dport, "network.transport" AS proto,
               coalesce("observer.name", "observer.ip", "event.module") AS sensor,
               "@timestamp" AS ts, coalesce("event.end", "@timestamp") AS te,
               "network.bytes" AS bytes, "user.name" AS usr, "event.duration" AS dur,
               "event.action" IS NOT DISTINCT FROM 'flow-update' AS open_rec
        FROM flows
        WHERE "event.duration" >= least($min_slice_seconds * 1e9, $min_hours * 3.6e12)
    )
    WHERE dst IN (SELECT ext FROM rare_ext) OR src IN (SELECT ext FROM rare_ext)
), slices AS (
    SELECT src, sport, dst, dport, proto, sensor, ts, te, bytes, usr FROM long_recs
    WHERE dur >= $min_slice_seconds * 1e9 AND sport IS NOT NULL AND NOT open_rec
), sliced AS (
    -- only a 5-tuple with several slices spanning min_hours can hold a stitched connection:
    -- the windows below sort those few slices, not every long record
    SELECT s.* FROM slices s
    SEMI JOIN (SELECT src, sport, dst, dport, proto, sensor FROM slices GROUP BY ALL
               HAVING count(*) > 1
                  AND (epoch_us(max(te)) - epoch_us(min(ts))) * 1000 >= $min_hours * 3.6e12) k
        ON s.src IS NOT DISTINCT FROM k.src AND s.sport = k.sport
       AND s.dst IS NOT DISTINCT FROM k.dst AND s.dport IS NOT DISTINCT FROM k.dport
       AND s.proto IS NOT DISTINCT FROM k.proto AND s.sensor IS NOT DISTINCT FROM k.sensor
), marked AS (
    SELECT *, CASE WHEN ts <= lag(te) OVER w + to_seconds($max_gap_seconds) THEN 0 ELSE 1 END
              AS starts
    FROM sliced
    WINDOW w AS (PARTITION BY src, sport, dst, dport, proto, sensor ORDER BY ts)
), islands AS (
    SELECT *, sum(starts) OVER (PARTITION BY src, sport, dst, dport, proto, sensor ORDER BY ts
                                ROWS UNBOUNDED PRECEDING) AS island
    FROM marked
), stitched AS (
    SELECT src, dst, dport, proto, sensor, max(te) AS te, sum(bytes) AS bytes, max(usr) AS usr,
           (epoch_us(max(te)) - epoch_us(min(ts))) * 1000 AS dur,
           ip4(src) AS src_u, ip4(dst) AS dst_u
    FROM islands GROUP BY src, sport, dst, dport, proto, sensor, island
    HAVING count(*) > 1 AND (epoch_us(max(te)) - epoch_us(min(ts))) * 1000 >= $min_hours * 3.6e12
), ends AS (
    SELECT CASE WHEN p.src_private THEN p.src ELSE p.dst END AS host,
           CASE WHEN p.src_private THEN p.dst ELSE p.src END AS ext,
           CASE WHEN p.src_private THEN p.dst_u ELSE p.src_u END AS ext_u,
           p.src_u, p.dst_u
    FROM pairs p
    WHERE p.src_private <> p.dst_private AND p.src_u IS NOT NULL AND p.dst_u IS NOT NULL
      AND p.max_duration >= $min_hours * 3.6e12
    UNION ALL
    SELECT CASE WHEN is_private(s.src_u) THEN s.src ELSE s.dst END,
           CASE WHEN is_private(s.src_u) THEN s.dst ELSE s.src END,
           CASE WHEN is_private(s.src_u) THEN s.dst_u ELSE s.src_u END,
           s.src_u, s.dst_u
    FROM stitched s
    WHERE is_private(s.src_u) <> is_private(s.dst_u)
), candidates AS (
    -- rare: transfer_nets counts the internal hosts that exchange traffic with each /24
    SELECT e.host, e.ext, any_value(n.net_hosts) AS net_hosts
    FROM ends e JOIN transfer_nets n ON n.net = e.ext_u // 256
    WHERE NOT is_gateway_addr(e.src_u) AND NOT is_gateway_addr(e.dst_u)
      AND NOT is_partner(e.ext_u) AND n.net_hosts <= $max_sources
    GROUP BY e.host, e.ext
), long_rows AS (
    SELECT c.host, c.ext, c.net_hosts, f.src, f.dst, f.dport, f.proto, f.dur, f.bytes,
           f.te AS end_ts, f.sensor, f.usr
    FROM long_recs f JOIN candidates c ON f.src = c.host AND f.dst = c.ext
    WHERE f.dur >= $min_hours * 3.6e12
    UNION ALL
    SELECT c.host, c.ext, c.net_hosts, f.src, f.dst, f.dport, f.proto, f.dur, f.bytes, f.te,
           f.sensor, f.usr
    FROM long_recs f JOIN candidates c ON f.src = c.ext AND f.dst = c.host
    WHERE f.dur >= $min_hours * 3.6e12
    UNION ALL
    SELECT c.host, c.ext, c.net_hosts, s.src, s.dst, s.dport, s.proto, s.dur, s.bytes, s.te,
           s.sensor, s.usr
    FROM stitched s JOIN candidates c
      ON (s.src = c.host AND s.dst = c.ext) OR (s.src = c.ext AND s.dst = c.host)
), grouped AS (
    SELECT host, ext, any_value(net_hosts) AS net_hosts,
           min(end_ts - to_microseconds((dur // 1000)::BIGINT)) AS start_ts,
           max(end_ts) AS end_ts, max(dur) / 3.6e12 AS longest_h,
           arg_min(src, dport) AS svc_src, arg_min(dst, dport) AS svc_dst,
           min(dport) AS svc_port, arg_min(proto, dport) AS proto,
           max(bytes) AS bytes, max(usr) AS usr, count(DISTINCT sensor) AS sensors,
           list(DISTINCT sensor ORDER BY sensor) AS sensor_names
    FROM long_rows GROUP BY host, ext
)
SELECT start_ts AS "@timestamp", end_ts AS "event.end",
       concat_ws('|', host, ext) AS "alert.key",
       format('{} held a {:.1f} h {} connection {} {} (port {}) {}; {} internal host(s) talk '
              'to that /24', host, longest_h, coalesce(proto, '?'),
              CASE WHEN svc_src = host THEN 'to' ELSE 'from' END, ext, svc_port,
              CASE WHEN svc_src = host THEN 'opened by the internal host'
                   ELSE 'opened from outside' END, net_hosts) AS "alert.summary",
       host AS "source.ip", ext AS "destination.ip", svc_port AS "destination.port",
       usr AS "user.name",
       bytes::BIGINT AS "network.bytes", [host, ext] AS "related.ip",
       to_json({longest_hours: round(longest_h, 2), opened_by: svc_src, service: svc_dst,
                port: svc_port, transport: proto, bytes: bytes, sensors: sensor_names,
                internal_hosts_to_network: net_hosts})::VARCHAR AS "alert.evidence"
FROM grouped
ORDER BY 1, 3
"""

DETECTION = Detection(
    id="c2_long_connection",
    title="Long-lived connection with a rare external address",
    description=__doc__ or "",
    tactics=("TA0011",),
    techniques=("T1071", "T1573"),
    severity="medium",
    datasets=("flows",),
    needs=("pairs", "transfers"),
    params={
        "min_hours": 1.0,
        "max_sources": 2,
        "min_slice_seconds": 50,
        "max_gap_seconds": 300,
    },
    sql=SQL,
    false_positives=(
        "Only networks (/24) at most max_sources internal hosts ever talked to: long "
        "meetings and push channels to big providers are not rare. VPN tunnels (client to "
        "gateway outside address, both public) and any flow of a gateway address are "
        "skipped, so sessions left connected for days do not count. Partner networks are "
        "skipped."
    ),
)
