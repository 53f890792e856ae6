"""Staging then exfiltration: a host pulls unusually much from crown-jewel servers or from
many internal hosts, and within days sends a comparable amount to the Internet.

Why it works: an intruder collects data on one machine before sending it out (ATT&CK
T1074.001, T1039): first that machine receives far more than usual from internal servers,
then it uploads far more than usual. Either half alone is common (patch day, a big
project checkout; a video upload), the sequence on one host is not. Collection days: the
host received from internal peers more than the median of its earlier days plus
``mad_factor`` MADs, ``min_ratio`` times that median and ``min_in_bytes``, and either at
least half of it came from crown-jewel servers (inventory ``crown_jewel``) or at least
``min_peers`` peers each sent a tenth of it. Upload day: within ``window_days`` after a
collection day, the host's upload to the Internet exceeds its own baseline the same way
(floor ``min_out_bytes``) and its excess is at least ``min_share`` of the excess collected.
Both baselines need ``learning_days`` active days.

How: upload anomalies come from ``transfers`` (see ``exfil_volume_anomaly``); only
the few hosts with one are looked up in ``pairs`` for what they received internally, with
sensors merged and directions turned like the uploads (a host receives the responses of
connections it opened, and what peers send in connections they opened).

What it ignores: patch day (PCs pull hundreds of MB, but from one WSUS server, not
crown jewels, and upload nothing unusual after), the nightly backup (the backup host is on
the ``backup_hosts`` allow-list and sends nothing out), VPN gateways and ``partners``.
"""

from __future__ import annotations

from typing import Final

from vpnsentry.detect.base import Detection

SQL: Final = """
WITH out_day AS (
    SELECT host, day, sum(up) AS up FROM host_transfers GROUP BY host, day
), out_base AS (
    SELECT *, median(up) OVER w AS med, mad(up) OVER w AS spread, count(*) OVER w AS prior_days
    FROM out_day
    WINDOW w AS (PARTITION BY host ORDER BY day
                 RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING)
), out_hits AS (
    SELECT host, day, up, med, up - med AS excess FROM out_base
    WHERE prior_days >= $learning_days
      AND up > greatest(med + $mad_factor * spread, $min_ratio * med, $min_out_bytes)
), cand AS (
    SELECT DISTINCT host FROM out_hits
), recv_rows AS (
    -- what a candidate received: the bytes its peers sent in connections they opened, and
    -- the responses in connections it opened (pairs: sensors merged, NetFlow answers turned)
    SELECT dst AS host, src AS peer, src_u AS peer_u, day, bytes_out AS got, first_ts, last_ts
    FROM pairs WHERE dst IN (SELECT host FROM cand)
    UNION ALL
    SELECT src, dst, dst_u, day, bytes_in, first_ts, last_ts
    FROM pairs WHERE src IN (SELECT host FROM cand)
), recv_peer AS (
    SELECT host, peer, any_value(peer_u) AS peer_u, day, sum(got) AS got,
           min(first_ts) AS first_ts, max(last_ts) AS last_ts
    FROM recv_rows GROUP BY host, peer, day
), internal_peer AS (
    SELECT r.*, coalesce(h.crown_jewel, false)
               OR coalesce(CASE WHEN r.peer_u <= s.net_hi THEN s.crown_jewel END, false)
               AS crown
    FROM recv_peer r
    LEFT JOIN hosts h ON h.ip = r.peer
    ASOF LEFT JOIN subnets s ON r.peer_u >= s.net_lo
    WHERE coalesce(is_private(r.peer_u), false) AND r.got > 0
), in_day AS (
    SELECT host, day, sum(got) AS got, sum(got) FILTER (WHERE crown) AS crown_got,
           count(*) AS peers
    FROM internal_peer GROUP BY host, day
), in_base AS (
    SELECT *, median(got) OVER w AS med, mad(got) OVER w AS spread,
           count(*) OVER w AS prior_days
    FROM in_day
    WINDOW w AS (PARTITION BY host ORDER BY day
                 RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING)
), in_hits AS (
    SELECT b.host, b.day, b.got, b.med, b.got - b.med AS excess,
           coalesce(b.crown_got, 0) AS crown_got,
           (SELECT count(*) FROM internal_peer p
            WHERE p.host = b.host AND p.day = b.day AND p.got >= 0.1 * b.got) AS big_peers
    FROM in_base b
    WHERE b.prior_days >= $learning_days
      AND b.got > greatest(b.med + $mad_factor * b.spread, $min_ratio * b.med, $min_in_bytes)
), collect AS (
    SELECT * FROM in_hits WHERE crown_got >= 0.5 * got OR big_peers >= $min_peers
), linked AS (
    -- each upload day with the collection days in the window before it
    SELECT o.host, o.day AS out_day, o.up, o.med AS out_med, o.excess AS out_excess,
           min(c.day) AS first_collect, sum(c.excess) AS collected, sum(c.got) AS got,
           sum(c.crown_got) AS crown_got, count(*) AS collect_days
    FROM out_hits o JOIN collect c
      ON c.host = o.host AND c.day <= o.day AND c.day >= o.day - to_days($window_days)
    GROUP BY o.host, o.day, o.up, o.med, o.excess
    HAVING o.excess >= $min_share * sum(c.excess)
), episode AS (
    SELECT host, first_collect, max(out_day) AS last_out, sum(up) AS up,
           max(collected) AS collected, max(got) AS got, max(crown_got) AS crown_got,
           max(collect_days) AS collect_days, list(strftime(out_day, '%Y-%m-%d')) AS out_days
    FROM linked GROUP BY host, first_collect
), sources AS (
    SELECT e.host, e.first_collect,
           min(p.first_ts) FILTER (WHERE p.crown OR p.got >= 0.1 * c.got) AS first_ts,
           list(DISTINCT p.peer ORDER BY p.peer) FILTER (WHERE p.crown) AS crown_peers,
           count(DISTINCT p.peer) AS peers
    FROM episode e JOIN internal_peer p
      ON p.host = e.host AND p.day BETWEEN e.first_collect AND e.last_out
    JOIN collect c ON c.host = p.host AND c.day = p.day
    GROUP BY e.host, e.first_collect
), sinks AS (
    SELECT e.host, e.first_collect, max(x.last_ts) AS last_ts,
           list(x.ext ORDER BY x.up DESC)[1:5] AS top_ext, arg_max(x.ext, x.up) AS ext,
           max(x.usr) AS usr,
           arg_max(x.port, x.up) AS port
    FROM episode e JOIN linked l
      ON l.host = e.host AND l.first_collect = e.first_collect
    JOIN transfers x ON x.host = l.host AND x.day = l.out_day AND x.up >= 0.1 * l.up
    GROUP BY e.host, e.first_collect
)
SELECT s.first_ts AS "@timestamp", k.last_ts AS "event.end",
       concat_ws('|', e.host, strftime(e.first_collect, '%Y-%m-%d')) AS "alert.key",
       format('{} received {:,} MB from {} internal host(s) ({:,} MB from crown-jewel servers) '
              'on {} unusual day(s) from {}, then sent {:,} MB to the Internet (mostly to {}) '
              'on {}', e.host, (e.got / 1e6)::BIGINT, s.peers,
              (coalesce(e.crown_got, 0) / 1e6)::BIGINT, e.collect_days,
              strftime(e.first_collect, '%Y-%m-%d'), (e.up / 1e6)::BIGINT, k.ext,
              array_to_string(e.out_days, ', ')) AS "alert.summary",
       e.host AS "source.ip", k.ext AS "destination.ip", k.port AS "destination.port",
       k.usr AS "user.name",
       e.up::BIGINT AS "network.bytes",
       list_concat([e.host], k.top_ext, coalesce(s.crown_peers, [])) AS "related.ip",
       to_json({bytes_received: e.got, excess_received: e.collected,
                bytes_from_crown_jewels: e.crown_got, collection_days: e.collect_days,
                crown_jewel_servers: s.crown_peers, internal_peers: s.peers,
                bytes_up: e.up, upload_days: e.out_days, top_destinations: k.top_ext})::VARCHAR
           AS "alert.evidence"
FROM episode e JOIN sources s USING (host, first_collect) JOIN sinks k USING (host, first_collect)
ORDER BY 1, 3
"""


DETECTION = Detection(
    id="exfil_staging",
    title="Data staged from internal servers, then sent out",
    description=__doc__ or "",
    tactics=("TA0009", "TA0010"),
    techniques=("T1074.001", "T1039", "T1048"),
    severity="critical",
    datasets=("flows",),
    needs=("pairs", "transfers"),
    params={
        "mad_factor": 10.0,
        "min_ratio": 10.0,
        "min_in_bytes": 100_000_000,
        "min_out_bytes": 20_000_000,
        "min_peers": 3,
        "min_share": 0.1,
        "window_days": 7,
        "baseline_days": 28,
    },
    sql=SQL,
    false_positives=(
        "Needs both halves on one host: an unusual internal pull (mostly from crown-jewel "
        "servers, or spread over min_peers peers) and, within window_days, an unusual "
        "upload of at least min_share of it. Patch-day pulls come from one WSUS server and "
        "are followed by no upload; the backup host is allow-listed and sends nothing out."
    ),
)
