"""A new administrator account is created on a VPN gateway.

Why it works: an intruder who got into a gateway's admin interface once makes sure to get
back in, whatever happens to the password they used: they add an administrator account of
their own, often with a vendor-sounding name (``fgt-support``) and the super-admin profile.
Gateways record it in their configuration audit log; per vendor, the account and privilege:

* FortiGate: an ``Add`` on ``cfgpath="system.admin"``, the account in ``cfgobj``, its profile
  in ``cfgattr`` (``accprofile[super_admin]``).
* Cisco ASA: ``username NAME password ... privilege N`` (111008/111010).
* PAN-OS CONFIG: ``set mgt-config users NAME`` with ``permissions`` (``role-based superuser
  yes``); a password change alone (``phash``) carries no permissions and is not a creation.
* Junos: ``set system login user NAME class CLASS`` (audit or command line); a login user
  exists only with a class.
* Citrix ADC: ``add system user NAME``, its command policy from ``bind system user NAME
  POLICY`` (``superuser``) the same day.
* Ivanti/Pulse admin log: ``Added username NAME ... to authentication server S`` where S is
  the administrators' server (its name says ``admin``, as the default ``Administrators``);
  accounts added to the users' server (``System Local``) are not administrators.
* Check Point SmartConsole: ``Create Object`` of object type ``administrator`` (the
  permission profile is not in the log, so never critical).

SonicWall's log says only that a page such as ``Users > Local Users`` changed, not what: it
is not recognised here. Admin accounts are created a few times a year, so every creation is
reported; a super-admin (FortiGate ``super_admin``, ASA privilege 15, PAN-OS and Citrix
``superuser``, Junos ``super-user``, a Pulse administrators' server) created from a source
that is not an admin host or management address is critical.

What it deliberately ignores: changes to existing accounts' other settings, deleted
accounts (``no username``, FortiGate ``Delete``, ``delete mgt-config users``, ``rm system
user``, ``Delete Object``), commands the gateway refused, and every other configuration
change.
"""

from vpnsentry.detect.analytics.appliance_config_weakened import CONFIG_CHANGES_SQL
from vpnsentry.detect.base import Detection

SQL = (
    "WITH "
    + CONFIG_CHANGES_SQL
    + """, created AS (
    SELECT ts, gw, usr, src, change,
           CASE module
                WHEN 'fortinet_fortigate' THEN cfgobj
                WHEN 'cisco_asa' THEN regexp_extract(command, '^username\\s+(\\S+)', 1)
                WHEN 'panw_panos'
                THEN regexp_extract(command, '^(set|edit) mgt-config users (\\S+)', 2)
                WHEN 'juniper_srx' THEN regexp_extract(command, '^set system login user (\\S+)', 1)
                WHEN 'citrix_adc'
                THEN regexp_extract(command, '^(add|bind) system user (\\S+)', 2, 'i')
                WHEN 'pulse_connect_secure'
                THEN regexp_extract(command, 'Added username ([^,]+),', 1)
                WHEN 'checkpoint' THEN cfgobj
           END AS account,
           CASE module
                WHEN 'fortinet_fortigate'
                THEN nullif(regexp_extract(cfgattr, 'accprofile\\[([^\\]]*)\\]', 1), '')
                WHEN 'cisco_asa'
                THEN 'privilege ' || coalesce(
                    nullif(regexp_extract(command, '\\sprivilege\\s+(\\d+)', 1), ''), '2')
                WHEN 'panw_panos'
                THEN nullif(regexp_extract(command, 'role-based (\\{ )?([a-z-]+)', 2), '')
                WHEN 'juniper_srx'
                THEN 'class ' || regexp_extract(command, ' class (\\S+)', 1)
                WHEN 'citrix_adc'
                THEN nullif(regexp_extract(command, '^bind system user \\S+ (\\S+)', 1, 'i'), '')
                WHEN 'pulse_connect_secure'
                THEN 'auth server '
                    || regexp_extract(command, 'authentication server (.+?)\\.?$', 1)
           END AS profile
    FROM config_changes
    WHERE (cfgpath = 'system.admin' AND cfgaction = 'Add' AND cfgobj IS NOT NULL)
       OR regexp_matches(command, '^username\\s+\\S+\\s+(password|privilege|nopassword)')
       -- PAN-OS: an admin with a role (a password change alone has no permissions)
       OR (module = 'panw_panos'
           AND regexp_matches(command, '^(set|edit) mgt-config users \\S+ .*\\bpermissions\\b'))
       -- Junos: a login user only exists with a class
       OR (module = 'juniper_srx'
           AND regexp_matches(command, '^set system login user \\S+ class \\S+'))
       -- Citrix: the account, then its command policy (superuser, sysadmin, ...)
       OR (module = 'citrix_adc'
           AND regexp_matches(command, '^(add system user|bind system user \\S+ \\S+)', 'i'))
       -- Ivanti/Pulse: an account added to the administrators' local authentication server
       OR (module = 'pulse_connect_secure'
           AND regexp_matches(
               command, 'Added username [^,]+,.* authentication server .*admin', 'i'))
       -- Check Point: an administrator object created in SmartConsole
       OR (module = 'checkpoint' AND cfgpath = 'administrator' AND cfgaction = 'create object'
           AND cfgobj IS NOT NULL)
), judged AS (
    SELECT c.*, ip4(c.src) AS src_u,
           coalesce(profile IN ('super_admin', 'privilege 15', 'superuser', 'class super-user')
                    OR regexp_matches(profile, '^auth server .*admin', 'i'), false) AS super,
           is_admin_host(ip4(c.src))
           OR EXISTS (SELECT 1 FROM subnets s
                      WHERE s.role = 'management' AND ip4(c.src) BETWEEN s.net_lo AND s.net_hi)
               AS sanctioned
    FROM created c
), grouped AS (
    SELECT gw, account, date_trunc('day', ts) AS day, min(ts) AS first_ts, max(ts) AS last_ts,
           arg_min(usr, ts) AS usr, arg_min(src, ts) AS src,
           arg_min(profile, ts) FILTER (WHERE profile IS NOT NULL) AS profile,
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
