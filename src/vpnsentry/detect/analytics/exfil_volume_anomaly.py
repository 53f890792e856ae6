"""Outbound volume anomaly: an internal host sends far more to the Internet in one day than
it ever does.

Why it works: what a workstation or server uploads per day is stable for that machine
(mail, meetings, sync clients), whatever it is for the next one, so each host is judged
against its own earlier days: the day's upload must exceed the median of the host's active
days in the ``baseline_days`` before it plus ``mad_factor`` median absolute deviations,
``min_ratio`` times that median, and a floor (``min_bytes``). The floor keeps a light
user's ordinary burst (a long video call's upload) from counting; the baseline keeps heavy
uploaders (build servers, video editors) quiet at their usual level. A host is judged only
after ``learning_days`` active days of history. The alert names the destinations that took
most of the day's upload, with how many internal hosts ever talked to their /24.

How bytes are counted (the ``transfers`` table, built once per run from ``pairs`` and
shared by the ``exfil_*`` detections): ``pairs`` rows between an internal (private) and an
external address, per internal host, external address and day, oriented so that "up" is
what the internal end sent and "down" what it received, whichever end opened the
connection. ``pairs`` already counts a conversation seen by several sensors once and folds
NetFlow's one-way answer records onto their request; sensors that log only a total without
direction (ASA teardown ``network.bytes``) count connections but no bytes, so a download is
never mistaken for an upload.

What it ignores: traffic between internal hosts (backups between sites, patch-day
downloads from WSUS), downloads (patch day's WSUS pull from Microsoft), hosts on the
``backup_hosts`` allow-list (off-site backup), flows to the company's own VPN gateways and to
``partners``.
"""

from __future__ import annotations

from typing import Final

from vpnsentry.detect.base import Detection

SQL: Final = """
WITH host_day AS (
    SELECT host, day, sum(up) AS up, sum(down) AS down, count(*) AS destinations
    FROM host_transfers GROUP BY host, day
), base AS (
    SELECT *, median(up) OVER w AS med, mad(up) OVER w AS spread, count(*) OVER w AS prior_days
    FROM host_day
    WINDOW w AS (PARTITION BY host ORDER BY day
                 RANGE BETWEEN to_days($baseline_days) PRECEDING AND INTERVAL 1 DAY PRECEDING)
), hits AS (
    SELECT *, greatest(med + $mad_factor * spread, $min_ratio * med, $min_bytes) AS threshold
    FROM base
    WHERE prior_days >= $learning_days
      AND up > greatest(med + $mad_factor * spread, $min_ratio * med, $min_bytes)
), top AS (
    -- the destinations that took at least a tenth of the day's upload
    SELECT h.host, h.day, t.ext, t.up, t.down, t.port, t.first_ts, t.last_ts, t.usr,
           p.net_hosts
    FROM hits h JOIN host_transfers t USING (host, day)
    JOIN transfer_nets p ON p.net = t.ext_u // 256
    WHERE t.up >= 0.1 * h.up
)
SELECT min(tp.first_ts) AS "@timestamp", max(tp.last_ts) AS "event.end",
       concat_ws('|', h.host, strftime(h.day, '%Y-%m-%d')) AS "alert.key",
       format('{} sent {:,} MB to the Internet on {} ({:.0f}x its median of {:,} MB over {} '
              'earlier days); {:.0f}% of it to {} ({} internal host(s) talk to that /24)',
              h.host, (h.up / 1e6)::BIGINT, strftime(h.day, '%Y-%m-%d'),
              h.up / greatest(h.med, 1), round(h.med / 1e6, 1), h.prior_days,
              100 * max(tp.up) / h.up, arg_max(tp.ext, tp.up),
              arg_max(tp.net_hosts, tp.up)) AS "alert.summary",
       h.host AS "source.ip", arg_max(tp.ext, tp.up) AS "destination.ip",
       arg_max(tp.port, tp.up) AS "destination.port", max(tp.usr) AS "user.name",
       h.up::BIGINT AS "network.bytes",
       list_concat([h.host], list(tp.ext ORDER BY tp.up DESC)[1:10]) AS "related.ip",
       to_json({bytes_up: h.up, bytes_down: h.down, destinations: h.destinations,
                baseline_median: h.med, baseline_mad: h.spread, baseline_days: h.prior_days,
                threshold: h.threshold,
                top_destinations: list({address: tp.ext, bytes_up: tp.up, bytes_down: tp.down,
                                        port: tp.port, internal_hosts_to_network: tp.net_hosts}
                                       ORDER BY tp.up DESC)[1:10]})::VARCHAR
           AS "alert.evidence",
       least(100, 50 + 20 * log10(h.up / greatest(h.threshold, 1)))::DOUBLE
           AS "event.risk_score"
FROM hits h JOIN top tp USING (host, day)
GROUP BY h.host, h.day, h.up, h.down, h.med, h.spread, h.prior_days, h.threshold,
         h.destinations
ORDER BY 1, 3
"""


DETECTION = Detection(
    id="exfil_volume_anomaly",
    title="Host uploads far more than its own baseline",
    description=__doc__ or "",
    tactics=("TA0010",),
    techniques=("T1048", "T1030"),
    severity="high",
    datasets=("flows",),
    needs=("transfers",),
    params={
        "mad_factor": 10.0,
        "min_ratio": 10.0,
        "min_bytes": 50_000_000,
        "baseline_days": 28,
    },
    sql=SQL,
    false_positives=(
        "Judged against the host's own earlier days (median + mad_factor x MAD, min_ratio x "
        "median) and never below min_bytes, after learning_days of history. Internal "
        "transfers (backups, WSUS) and downloads are not uploads; backup_hosts, VPN "
        "gateways and partners are skipped. A new habit (a user starts uploading videos) "
        "fires once; suppress by source.ip with an expiry if it is legitimate."
    ),
)
