"""A gateway's configuration is changed to stop logging or to let anything through.

Why it works: an intruder with admin access to a VPN gateway weakens it in two ways that
the gateway itself records before they take effect: logging is switched off or its syslog
destination removed (so nothing more reaches the collector), and an any-to-any allow rule
is added (so the Internet reaches inside hosts directly). Both are rare in normal operation
and unambiguous in the configuration audit log. The evidence, per vendor:

* FortiGate logs the changed path and its attributes (``cfgpath="log.syslogd.setting"
  cfgattr="status[enable->disable]"``, ``cfgpath="firewall.policy"
  cfgattr="...srcaddr[all]dstaddr[all]...service[ALL]"``).
* Cisco ASA logs each command (111008/111010: ``no logging enable``, ``no logging host ...``,
  ``access-list ... permit ip any any``).
* PAN-OS CONFIG log: ``delete`` of a ``log-settings`` path (``delete shared log-settings
  syslog siem``), a rule's ``log-setting`` or ``log-end`` set to ``no``; any other change
  under ``log-settings`` (a new syslog server) is a settings change.
* Junos ``UI_CFG_AUDIT_*``/``UI_CMDLINE_READ_LINE``: ``delete``/``deactivate`` of
  ``system syslog`` or ``security log`` (``delete system syslog host 192.0.2.50``); ``set``
  there is a settings change, ``activate`` re-enables.
* Citrix ADC ``UI CMD_EXECUTED``: ``rm``/``unbind``/``unset``/``disable audit syslog...`` or
  ``nslog...``, ``set audit syslogParams -logLevel NONE``; ``add``/``set``/``bind`` there
  (``set audit syslogParams -serverIP ...``) is a settings change.
* Ivanti/Pulse and SonicWall only name the settings page changed (``Modified settings for
  Log/Monitoring > ...``, ``note="Log > Syslog"``): a settings change, never "disabled".
* Check Point SmartConsole: a ``syslog``/log-server/log-exporter object deleted (disabled) or
  changed.

Any other change to logging settings (logging switched back on, a new syslog server) is
reported at lower severity: it says logging was tampered with or redirected, and names who
switched it back on after a silence. Changes the gateway refused (a failed outcome: PAN-OS
``Failed``, a Citrix ``ERROR`` status) changed nothing and are skipped. Changes are grouped
per gateway, account, source and day.

What it deliberately ignores: every other configuration change, such as the address objects,
routine policy edits and ``write memory`` of the network admins' daily work. Any-to-any
policies are recognised on FortiGate and ASA only: the other vendors log a rule's fields as
separate commands or not at all. Who made the change and from where is in the alert but does
not gate it: a legitimate admin disabling logging is still worth a look.
"""

from typing import Final

from vpnsentry.detect.base import Detection

#: Modules whose configuration events carry an outcome: a change the gateway refused (PAN-OS
#: ``Failed``, a Citrix command with an ``ERROR`` status, a failed Check Point operation)
#: changed nothing and is left out. FortiGate and ASA rows are taken as they always were.
_OUTCOME_MODULES: Final = (
    "'panw_panos', 'juniper_srx', 'citrix_adc', 'pulse_connect_secure', 'sonicwall_firewall', "
    "'checkpoint'"
)

#: One row per configuration change, vendor fields parsed out of the logged line, in one
#: place for every vendor. Shared with appliance_new_admin_account. What each vendor gives:
#:
#: * FortiGate: ``cfgpath``/``cfgobj``/``cfgattr``/``action`` of the audit line.
#: * ASA: the executed ``command`` (111008/111010, written twice: merged here).
#: * PAN-OS CONFIG: ``command`` is the logged command, path and after-change detail, spaces
#:   collapsed (``set mgt-config users evil -> permissions { role-based { superuser yes; }``).
#: * Junos: ``UI_CFG_AUDIT_SET``/``UI_CFG_AUDIT_OTHER`` become ``set system login user evil
#:   class super-user`` (verb, ``[path]``, new value), ``UI_CMDLINE_READ_LINE`` its command;
#:   the account comes from ``User 'name'`` where the parser leaves ``user.name`` empty.
#: * Citrix ADC ``UI CMD_EXECUTED``: the ``Command "..."`` text.
#: * Ivanti/Pulse admin log: the message (``Added username x ... to authentication server y``,
#:   ``Modified settings for Log/Monitoring > ...``).
#: * SonicWall: the settings page in ``cfgpath`` (``event.reason``: ``Log > Syslog``).
#: * Check Point SmartConsole audit: ``objecttype``/``objectname`` (read from the original
#:   line, syslog ``key:"value"`` or ``key=value|`` form) in ``cfgpath``/``cfgobj``, the
#:   operation (``create object``, ``delete object``) in ``cfgaction``.
CONFIG_CHANGES_SQL: Final = (
    """
config_raw AS (
    SELECT "@timestamp" AS ts, "observer.name" AS gw,
           coalesce("user.name", CASE WHEN "event.module" = 'juniper_srx'
               THEN nullif(regexp_extract("message", 'User ''([^'']*)''', 1), '') END) AS usr,
           "source.ip" AS src, "event.module" AS module,
           CASE "event.module"
                WHEN 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", 'cfgpath="([^"]*)"', 1), '')
                WHEN 'sonicwall_firewall' THEN "event.reason"
                WHEN 'checkpoint' THEN nullif(regexp_extract(
                    "event.original", '[\\[; |]objecttype[:=]"?([^";|\\]]*)', 1), '')
           END AS cfgpath,
           CASE "event.module"
                WHEN 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", 'cfgobj="([^"]*)"', 1), '')
                WHEN 'checkpoint' THEN nullif(regexp_extract(
                    "event.original", '[\\[; |]objectname[:=]"?([^";|\\]]*)', 1), '')
           END AS cfgobj,
           CASE WHEN "event.module" = 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", 'cfgattr="([^"]*)"', 1), '')
           END AS cfgattr,
           CASE "event.module"
                WHEN 'fortinet_fortigate'
                THEN nullif(regexp_extract("event.original", ' action="([^"]*)"', 1), '')
                WHEN 'sonicwall_firewall' THEN "message"
                WHEN 'checkpoint' THEN "event.action"
           END AS cfgaction,
           CASE "event.module"
                WHEN 'cisco_asa'
                THEN nullif(trim(regexp_extract(
                    "message", 'executed (the )?''(.*)''( command)?', 2)), '')
                WHEN 'panw_panos' THEN regexp_replace(trim("message"), '\\s+', ' ', 'g')
                WHEN 'juniper_srx' THEN CASE
                    WHEN "event.code" = 'UI_CMDLINE_READ_LINE'
                    THEN nullif(trim(regexp_extract("message", 'command ''(.*)''$', 1)), '')
                    WHEN "event.code" LIKE 'UI_CFG_AUDIT%'
                    THEN nullif(concat_ws(' ',
                        nullif(regexp_extract("message", 'User ''[^'']*'' ([a-z-]+): \\[', 1), ''),
                        nullif(regexp_extract("message", ': \\[([^\\]]*)\\]', 1), ''),
                        nullif(regexp_extract("message", '\\] .*-> "?([^"]*)"?$', 1), '')), '')
                    ELSE "message" END
                WHEN 'citrix_adc'
                THEN nullif(trim(regexp_extract("message", 'Command "(.*)" - Status', 1)), '')
                WHEN 'pulse_connect_secure' THEN "message"
           END AS command
    FROM events
    WHERE "observer.name" IS NOT NULL
      AND ("event.category" = 'configuration'
           OR ("event.module" = 'juniper_srx'
               AND ("event.code" = 'UI_CMDLINE_READ_LINE' OR "event.code" LIKE 'UI_CFG_AUDIT%')))
      AND ("event.module" NOT IN ("""
    + _OUTCOME_MODULES
    + """)
           OR "event.outcome" IS DISTINCT FROM 'failure')
), config_changes AS (
    SELECT ts, gw, usr, max(src) AS src, module, cfgpath, cfgobj, cfgattr, cfgaction, command,
           coalesce(command, concat_ws(' ', cfgaction, cfgpath, cfgobj, cfgattr)) AS change
    FROM config_raw
    GROUP BY ts, gw, usr, module, cfgpath, cfgobj, cfgattr, cfgaction, command
)"""
)

SQL = (
    "WITH "
    + CONFIG_CHANGES_SQL
    + """, classified AS (
    SELECT *,
        CASE
            -- PAN-OS: log forwarding (log-settings, a rule's log-setting or log-end) removed
            WHEN module = 'panw_panos'
                AND (regexp_matches(command, '^delete .*\\blog-settings?\\b')
                     OR regexp_matches(command, '\\blog-end (-> )?no\\b'))
                THEN 'logging disabled'
            WHEN module = 'panw_panos' AND regexp_matches(command, '\\blog-settings?\\b')
                THEN 'logging settings changed'
            -- Junos: syslog host/file or security log stream deleted, deactivated, disabled
            WHEN module = 'juniper_srx'
                AND (regexp_matches(command, '^(delete|deactivate) (system syslog|security log)')
                     OR regexp_matches(command, '^set (system syslog|security log)\\b.* disable$'))
                THEN 'logging disabled'
            WHEN module = 'juniper_srx'
                AND regexp_matches(command, '^activate (system syslog|security log)')
                THEN 'logging re-enabled'
            WHEN module = 'juniper_srx'
                AND regexp_matches(
                    command, '^(set|rename|insert|copy) (system syslog|security log)')
                THEN 'logging settings changed'
            -- Citrix ADC: syslog/nslog actions, policies or parameters removed or set to NONE
            WHEN module = 'citrix_adc'
                AND (regexp_matches(command, '^(rm|unbind|unset|disable) audit (syslog|nslog)', 'i')
                     OR regexp_matches(
                         command, '^set audit (syslog|nslog)\\S*\\s.*-loglevel\\s+none', 'i'))
                THEN 'logging disabled'
            WHEN module = 'citrix_adc'
                AND regexp_matches(command, '^(add|set|bind|enable) audit (syslog|nslog)', 'i')
                THEN 'logging settings changed'
            -- Ivanti/Pulse and SonicWall say only which logging page was changed
            WHEN module = 'pulse_connect_secure' AND command LIKE '%Log/Monitoring%'
                THEN 'logging settings changed'
            WHEN module = 'sonicwall_firewall' AND regexp_matches(cfgpath, '^Log\\b')
                THEN 'logging settings changed'
            -- Check Point: a syslog/log server or log exporter object deleted or changed
            WHEN module = 'checkpoint'
                AND regexp_matches(cfgpath, 'syslog|log.?server|log.?exporter', 'i')
                THEN CASE WHEN cfgaction = 'delete object' THEN 'logging disabled'
                          ELSE 'logging settings changed' END
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
