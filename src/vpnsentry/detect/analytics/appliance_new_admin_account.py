"""A new administrator account is created on a VPN gateway.

Why it works: an intruder who got into a gateway's admin interface once makes sure to get
back in, whatever happens to the password they used: they add an administrator account of
their own, often with a vendor-sounding name (``fgt-support``) and the super-admin profile.
Gateways record it in their configuration audit log: FortiGate as an ``Add`` on
``cfgpath="system.admin"`` with the new account in ``cfgobj`` and its profile in
``cfgattr`` (``accprofile[super_admin]``), Cisco ASA as the ``username NAME password ...
privilege N`` command (111008/111010). Admin accounts are created a few times a year, so
every creation is reported; a super-admin (FortiGate ``super_admin``, ASA privilege 15)
created from a source that is not an admin host or management address is critical.

What it deliberately ignores: changes to existing accounts' other settings, deleted
accounts (``no username``, FortiGate ``Delete``), and every other configuration change.
"""

from vpnsentry.detect.analytics.appliance_config_weakened import CONFIG_CHANGES_SQL
from vpnsentry.detect.base import Detection

SQL = (
    "WITH "
    + CONFIG_CHANGES_SQL
    + """, created AS (
    SELECT ts, gw, usr, src, change,
           CASE WHEN module = 'fortinet_fortigate' THEN cfgobj
                ELSE regexp_extract(command, '^username\\s+(\\S+)', 1) END AS account,
           CASE WHEN module = 'fortinet_fortigate'
                THEN nullif(regexp_extract(cfgattr, 'accprofile\\[([^\\]]*)\\]', 1), '')
                ELSE 'privilege ' || coalesce(
                    nullif(regexp_extract(command, '\\sprivilege\\s+(\\d+)', 1), ''), '2')
           END AS profile
    FROM config_changes
    WHERE (cfgpath = 'system.admin' AND cfgaction = 'Add' AND cfgobj IS NOT NULL)
       OR regexp_matches(command, '^username\\s+\\S+\\s+(password|privilege|nopassword)')
), judged AS (
    SELECT c.*, ip4(c.src) AS src_u,
           coalesce(profile IN ('super_admin', 'privilege 15'), false) AS super,
           EXISTS (SELECT 1 FROM allow_nets n
                   WHERE n.kind = 'admin_hosts' AND ip4(c.src) BETWEEN n.lo AND n.hi)
           OR EXISTS (SELECT 1 FROM subnets s
                      WHERE s.role = 'management' AND ip4(c.src) BETWEEN s.net_lo AND s.net_hi)
               AS sanctioned
    FROM created c
), grouped AS (
    SELECT gw, account, date_trunc('day', ts) AS day, min(ts) AS first_ts, max(ts) AS last_ts,
           arg_min(usr, ts) AS usr, arg_min(src, ts) AS src, arg_min(profile, ts) AS profile,
           bool_or(super) AS super, bool_and(sanctioned) AS sanctioned,
           list(change ORDER BY ts)[1:5] AS changes
    FROM judged GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', gw, account, strftime(day, '%Y-%m-%d')) AS "alert.key",
       format('New administrator account {} ({}) created on gateway {} by {} from {}',
              account, coalesce(profile, 'profile unknown'), gw,
              coalesce(usr, 'an unknown account'), coalesce(src, 'an unknown source'))
           AS "alert.summary",
       gw AS "observer.name", usr AS "user.name", src AS "source.ip",
       [gw] AS "related.hosts",
       list_filter([usr, account], lambda x: x IS NOT NULL) AS "related.user",
       CASE WHEN src IS NOT NULL THEN [src] ELSE [] END AS "related.ip",
       CASE WHEN super AND NOT coalesce(sanctioned, false) THEN 'critical'
            ELSE 'high' END AS "alert.severity",
       to_json({new_account: account, profile: profile, created_by: usr, source: src,
                from_admin_host: coalesce(sanctioned, false), changes: changes})::VARCHAR
           AS "alert.evidence"
FROM grouped
ORDER BY 1
"""
)

DETECTION = Detection(
    id="appliance_new_admin_account",
    title="New administrator account on a VPN gateway",
    description=__doc__ or "",
    tactics=("TA0003",),
    techniques=("T1136.001", "T1098"),
    severity="high",
    datasets=("events",),
    sql=SQL,
    false_positives=(
        "Every admin account creation is reported, since they are rare; creations from "
        "admin hosts or management subnets, or of accounts without super-admin rights, "
        "are high rather than critical."
    ),
)
