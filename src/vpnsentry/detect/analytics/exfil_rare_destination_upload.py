"""Large upload to a rare destination: an internal host sends much more than it receives to
an external network that (almost) nobody else in the company talks to.

Why it works: legitimate large uploads go to the company's sanctioned services (mail,
SharePoint/OneDrive, meeting relays, partner SFTP), which many internal hosts use. Data
theft goes to an address the attacker rents: no other host talks to its network, and the
transfer is one-sided (``min_ratio`` times more bytes up than down; browsing, downloads and
meetings are not). "Rare" is judged by /24, over the whole history, at most
``max_sources`` internal hosts: cloud and CDN services rotate addresses inside their
blocks, a rented server does not. "Large" is at least ``min_bytes`` in a day to that
address and at least ``median_factor`` times what the host uploads to everything else on a
median day of the ``baseline_days`` before (when it has such days).

What it ignores: an established pattern. Once a host has uploaded ``min_bytes`` or more to
the address on ``learning_days`` earlier days (a nightly off-site copy to a rented server),
further days do not alert. Backup hosts (allow-list ``backup_hosts``), VPN gateways and
``partners`` are skipped. One alert per (host, address), spanning every qualifying day.
Bytes are counted per direction as in ``exfil_volume_anomaly``.
"""

from __future__ import annotations

from typing import Final

from vpnsentry.detect.base import Detection

SQL: Final = """
WITH history AS (
    -- big days only: a candidate is one, and only they count as earlier big days, so the
    -- window sorts those few rows instead of every (host, address, day)
    SELECT t.*,
           count(*) OVER (
               PARTITION BY t.host, t.ext ORDER BY t.day
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_big_days
    FROM host_transfers t WHERE t.up >= $min_bytes
), cand AS (
    SELECT h.*, p.net_hosts
    FROM history h JOIN transfer_nets p ON p.net = h.ext_u // 256
    WHERE p.net_hosts <= $max_sources AND h.up >= $min_bytes
      AND h.up >= $min_ratio * greatest(h.down, 1) AND h.earlier_big_days < $learning_days
), host_day AS (
    SELECT host, day, sum(up) AS up FROM host_transfers SEMI JOIN cand USING (host)
    GROUP BY host, day
), base AS (
    -- what the host uploaded per day to everything else over the baseline period
    SELECT c.host, c.ext, c.day, median(h.up - coalesce(x.up, 0)) AS med, count(*) AS prior_days
    FROM cand c
    JOIN host_day h
      ON h.host = c.host AND h.day < c.day AND h.day >= c.day - to_days($baseline_days)
    LEFT JOIN host_transfers x ON x.host = c.host AND x.ext = c.ext AND x.day = h.day
    GROUP BY c.host, c.ext, c.day
), hits AS (
    SELECT c.*, b.med, coalesce(b.prior_days, 0) AS prior_days
    FROM cand c LEFT JOIN base b USING (host, ext, day)
    WHERE c.up >= $median_factor * coalesce(b.med, 0)
), grouped AS (
    SELECT host, ext, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           sum(up) AS up, sum(down) AS down, sum(conns) AS conns, count(*) AS n_days,
           min(port) AS port, any_value(net_hosts) AS net_hosts, max(usr) AS usr,
           arg_min(med, day) AS med, arg_min(prior_days, day) AS prior_days,
           list(strftime(day, '%Y-%m-%d') ORDER BY day) AS days
    FROM hits GROUP BY host, ext
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', host, ext) AS "alert.key",
       format('{} uploaded {:,} MB to {}:{} in {:,} connection(s) on {} day(s), receiving '
              '{:,} KB; {} internal host(s) talk to that /24; the host usually uploads {:,} MB '
              'a day elsewhere', host, (up / 1e6)::BIGINT, ext, port, conns, n_days,
              (down / 1e3)::BIGINT, net_hosts, round(coalesce(med, 0) / 1e6, 1))
           AS "alert.summary",
       host AS "source.ip", ext AS "destination.ip", port AS "destination.port",
       usr AS "user.name",
       up::BIGINT AS "network.bytes", [host, ext] AS "related.ip",
       to_json({bytes_up: up, bytes_down: down, connections: conns, days: days,
                internal_hosts_to_network: net_hosts, host_median_daily_upload_elsewhere: med,
                host_baseline_days: prior_days})::VARCHAR AS "alert.evidence"
FROM grouped
ORDER BY 1, 3
"""


DETECTION = Detection(
    id="exfil_rare_destination_upload",
    title="Large one-sided upload to a rare external network",
    description=__doc__ or "",
    tactics=("TA0010",),
    techniques=("T1048.002", "T1567"),
    severity="high",
    datasets=("flows",),
    needs=("transfers",),
    params={
        "max_sources": 5,
        "min_bytes": 20_000_000,
        "min_ratio": 10.0,
        "median_factor": 5.0,
        "baseline_days": 28,
    },
    sql=SQL,
    false_positives=(
        "Only networks (/24) at most max_sources internal hosts ever talked to, uploads at "
        "least min_ratio times the bytes received, at least min_bytes and median_factor x the "
        "host's usual daily upload. A pattern seen on learning_days earlier days stops "
        "alerting. Backup hosts, VPN gateways and partners are skipped."
    ),
)
