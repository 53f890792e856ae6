"""A gateway's configuration is changed to stop logging or to let anything through.

Why it works: an intruder with admin access to a VPN gateway weakens it in two ways that
the gateway itself records before they take effect: logging is switched off or its syslog
destination removed (so nothing more reaches the collector), and an any-to-any allow rule
is added (so the Internet reaches inside hosts directly). Both are rare in normal operation
and unambiguous in the configuration audit log: FortiGate logs the changed path and its
attributes (``cfgpath="log.syslogd.setting" cfgattr="status[enable->disable]"``,
``cfgpath="firewall.policy" cfgattr="...srcaddr[all]dstaddr[all]...service[ALL]"``), Cisco
ASA logs each command (111008/111010: ``no logging enable``, ``no logging host ...``,
``access-list ... permit ip any any``). Any other change to logging settings (logging
switched back on, a new syslog server) is reported at lower severity: it says logging was
tampered with or redirected, and names who switched it back on after a silence. Changes
are grouped per gateway, account, source and day.

What it deliberately ignores: every other configuration change, such as the address objects,
routine policy edits and ``write memory`` of the network admins' daily work. Who made the
change and from where is in the alert but does not gate it: a legitimate admin disabling
logging is still worth a look.
"""

from typing import Final

from vpnsentry.detect.base import Detection

#: One row per configuration change, vendor fields parsed out of the logged line. Shared with
#: appliance_new_admin_account. ASA writes each command twice (111008 and 111010, only the
#: latter with the source address): they are merged.
CONFIG_CHANGES_SQL: Final = """
config_raw AS (
    SELECT "@timestamp" AS ts, "observer.name" AS gw, "user.name" AS usr,
           "source.ip" AS src, "event.module" AS module,
           CASE WHEN "event.module" = 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", 'cfgpath="([^"]*)"', 1), '')
           END AS cfgpath,
           CASE WHEN "event.module" = 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", 'cfgobj="([^"]*)"', 1), '')
           END AS cfgobj,
           CASE WHEN "event.module" = 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", 'cfgattr="([^"]*)"', 1), '')
           END AS cfgattr,
           CASE WHEN "event.module" = 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", ' action="([^"]*)"', 1), '')
           END AS cfgaction,
           CASE WHEN "event.module" = 'cisco_asa'
                THEN nullif(trim(regexp_extract(
                    "message", 'executed (the )?''(.*)''( command)?', 2)), '')
           END AS command
    FROM events
    WHERE "event.category" = 'configuration' AND "observer.name" IS NOT NULL
), config_changes AS (
    SELECT ts, gw, usr, max(src) AS src, module, cfgpath, cfgobj, cfgattr, cfgaction, command,
           coalesce(command, concat_ws(' ', cfgaction, cfgpath, cfgobj, cfgattr)) AS change
    FROM config_raw
    GROUP BY ts, gw, usr, module, cfgpath, cfgobj, cfgattr, cfgaction, command
)"""

SQL = (
    "WITH "
    + CONFIG_CHANGES_SQL
    + """, classified AS (
    SELECT *,
        CASE
            WHEN cfgpath LIKE 'log.%' AND (cfgattr LIKE '%->disable]%' OR cfgaction = 'Delete')
                THEN 'logging disabled'
            WHEN regexp_matches(command, '^no\\s+logging\\s+(enable|host|trap|buffered)')
                THEN 'logging disabled'
            WHEN cfgpath = 'firewall.policy' AND coalesce(cfgaction, '') <> 'Delete'
                AND cfgattr NOT LIKE '%action[deny]%'
                AND (cfgattr LIKE '%srcaddr[all]%')::INT + (cfgattr LIKE '%dstaddr[all]%')::INT
                    + (cfgattr LIKE '%service[ALL]%')::INT >= 2
                THEN 'any-to-any allow policy'
            WHEN regexp_matches(command,
                '^access-list\\s+\\S+\\s+(line\\s+\\d+\\s+)?(extended\\s+)?permit\\s+'
                || '(ip|tcp|udp)\\s+any[46]?\\s+any[46]?')
                THEN 'any-to-any allow policy'
            WHEN cfgpath LIKE 'log.%' AND cfgattr LIKE '%->enable]%' THEN 'logging re-enabled'
            WHEN regexp_matches(command, '^logging\\s+enable') THEN 'logging re-enabled'
            WHEN cfgpath LIKE 'log.%' THEN 'logging settings changed'
            WHEN regexp_matches(command, '^(no\\s+)?logging\\s') THEN 'logging settings changed'
        END AS weakening
    FROM config_changes
), grouped AS (
    SELECT gw, usr, src, date_trunc('day', ts) AS day,
           min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS n_changes,
           list(DISTINCT weakening ORDER BY weakening) AS kinds,
           list(change ORDER BY ts)[1:10] AS changes,
           bool_or(weakening IN ('logging disabled', 'any-to-any allow policy')) AS severe
    FROM classified
    WHERE weakening IS NOT NULL
    GROUP BY ALL
)
SELECT first_ts AS "@timestamp", last_ts AS "event.end",
       concat_ws('|', gw, coalesce(usr, '?'), coalesce(src, '?'), strftime(day, '%Y-%m-%d'))
           AS "alert.key",
       format('Gateway {} logging or policy changed by {} from {}: {} ({} change(s), first: {})',
              gw, coalesce(usr, 'an unknown account'), coalesce(src, 'an unknown source'),
              array_to_string(kinds, ', '), n_changes, changes[1]) AS "alert.summary",
       gw AS "observer.name", usr AS "user.name", src AS "source.ip",
       [gw] AS "related.hosts", CASE WHEN usr IS NOT NULL THEN [usr] ELSE [] END
           AS "related.user",
       CASE WHEN src IS NOT NULL THEN [src] ELSE [] END AS "related.ip",
       CASE WHEN severe THEN 'high' ELSE 'medium' END AS "alert.severity",
       to_json({kinds: kinds, changes: changes, n_changes: n_changes})::VARCHAR
           AS "alert.evidence"
FROM grouped
ORDER BY 1
"""
)

DETECTION = Detection(
    id="appliance_config_weakened",
    title="Gateway logging disabled or any-to-any policy added",
    description=__doc__ or "",
    tactics=("TA0005",),
    techniques=("T1562.004", "T1562.006"),
    severity="high",
    datasets=("events",),
    sql=SQL,
    live=True,
    false_positives=(
        "Only logging changes and allow rules with two or more of source, destination and "
        "service set to all are reported; address objects, ordinary policy edits and saves "
        "are not. Re-enabling logging or moving the syslog server is reported as medium."
    ),
)
