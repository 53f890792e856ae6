"""Low-and-slow exfiltration: a host uploads to one rare external address a little on many
days; no day stands out, the sum does.

Why it works: an intruder who knows about volume alerts spreads the theft out (a few MB a
day in small HTTPS posts). Per day nothing is anomalous, but per (host, address) over the
whole history the pattern is plain: uploads on at least ``min_days`` distinct days (each at
least ``min_daily_bytes``), one-sided (``min_ratio`` times more bytes up than down, which
rules out a C2 check-in's request/response and any browsing), to a network that at most
``max_sources`` internal hosts ever talked to (by /24), adding up to at least
``min_total_bytes`` and to ``baseline_factor`` times what the host uploads on a median day
to everything else. The host needs ``learning_days`` active days for that baseline.

What it ignores: sanctioned sync and backup services (popular networks, or allow-listed
``backup_hosts``/``partners``), VPN gateways, and days whose upload to the address is below
``min_daily_bytes`` (background noise). One alert per (host, address). A single big day is
``exfil_volume_anomaly``'s and ``exfil_rare_destination_upload``'s business; this one fires
on the accumulation whatever the daily sizes. Bytes are counted per direction as in
``exfil_volume_anomaly``.
"""

from __future__ import annotations

from typing import Final

from vpnsentry.detect.base import Detection

SQL: Final = """
WITH heavy AS (
    -- only a (host, address) with min_days upload days can qualify: the full aggregates
    -- (the ordered list of days above all) are computed for those few alone
    SELECT host, ext FROM host_transfers WHERE up >= $min_daily_bytes
    GROUP BY host, ext HAVING count(*) >= $min_days
), pair AS (
    SELECT host, ext, any_value(ext_u) AS ext_u,
           count(*) FILTER (WHERE up >= $min_daily_bytes) AS upload_days,
           sum(up) AS up, sum(down) AS down, sum(conns) AS conns, max(up) AS max_day_up,
           min(first_ts) FILTER (WHERE up >= $min_daily_bytes) AS first_ts,
           max(last_ts) FILTER (WHERE up >= $min_daily_bytes) AS last_ts, min(port) AS port,
           max(usr) AS usr,
           list(strftime(day, '%Y-%m-%d') ORDER BY day) FILTER (WHERE up >= $min_daily_bytes)
               AS days
    FROM host_transfers SEMI JOIN heavy USING (host, ext) GROUP BY host, ext
), candidates AS (
    SELECT p.*, n.net_hosts FROM pair p JOIN transfer_nets n ON n.net = p.ext_u // 256
    WHERE p.upload_days >= $min_days AND n.net_hosts <= $max_sources
      AND p.up >= $min_ratio * greatest(p.down, 1) AND p.up >= $min_total_bytes
), host_day AS (
    SELECT host, day, sum(up) AS up FROM host_transfers SEMI JOIN candidates c USING (host)
    GROUP BY host, day
), other AS (
    -- what the host uploads per day to everything but the candidate address
    SELECT c.host, c.ext, median(h.up - coalesce(x.up, 0)) AS med, count(*) AS active_days
    FROM candidates c JOIN host_day h USING (host)
    LEFT JOIN host_transfers x ON x.host = c.host AND x.ext = c.ext AND x.day = h.day
    GROUP BY c.host, c.ext
)
SELECT c.first_ts AS "@timestamp", c.last_ts AS "event.end",
       concat_ws('|', c.host, c.ext) AS "alert.key",
       format('{} uploaded {:,} MB to {}:{} on {} days (at most {:,} MB a day, {:,} '
              'connections), receiving {:,} KB: {:.0f}x what it uploads to everything else on '
              'a median day; {} internal host(s) talk to that /24', c.host,
              round(c.up / 1e6, 1), c.ext, c.port, c.upload_days, round(c.max_day_up / 1e6, 1),
              c.conns, (c.down / 1e3)::BIGINT, c.up / greatest(o.med, 1), c.net_hosts)
           AS "alert.summary",
       c.host AS "source.ip", c.ext AS "destination.ip", c.port AS "destination.port",
       c.usr AS "user.name",
       c.up::BIGINT AS "network.bytes", [c.host, c.ext] AS "related.ip",
       to_json({bytes_up: c.up, bytes_down: c.down, upload_days: c.upload_days,
                days: c.days, max_day_bytes_up: c.max_day_up, connections: c.conns,
                host_median_daily_upload_elsewhere: o.med, host_active_days: o.active_days,
                internal_hosts_to_network: c.net_hosts})::VARCHAR AS "alert.evidence"
FROM candidates c JOIN other o USING (host, ext)
WHERE o.active_days >= $learning_days AND c.up >= $baseline_factor * o.med
ORDER BY 1, 3
"""


DETECTION = Detection(
    id="exfil_low_and_slow",
    title="Low-and-slow upload to a rare external network over many days",
    description=__doc__ or "",
    tactics=("TA0010",),
    techniques=("T1048.002", "T1030"),
    severity="high",
    datasets=("flows",),
    needs=("transfers",),
    params={
        "min_days": 5,
        "min_daily_bytes": 1_000_000,
        "min_total_bytes": 20_000_000,
        "min_ratio": 5.0,
        "baseline_factor": 10.0,
        "max_sources": 5,
    },
    sql=SQL,
    false_positives=(
        "Only networks (/24) at most max_sources internal hosts ever talked to, one-sided "
        "transfers (min_ratio up:down, so C2 check-ins and browsing do not count) on "
        "min_days days adding up to min_total_bytes and baseline_factor x the host's median "
        "daily upload elsewhere. Backup hosts, VPN gateways and partners are skipped."
    ),
)
