"""The two configuration detections over every vendor's admin/config log, parser included.

Each case writes real-format lines (the layouts of the vendors' documentation, as the parsers'
golden files do), runs them through the vendor's parser the way ingest does and hands the
resulting ECS rows to the detection: a passing test proves parser and detection agree on
where the account, the privilege and the logging target are. Per vendor: the attack
(administrator created with its privilege, logging removed or redirected) and its
look-alikes (an ordinary change, a deleted account, a refused command, logging switched on).
FortiGate and ASA stay covered by ``test_appliance.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.helpers import run_lines

from vpnsentry.enrich.sites import Inventory

Run = Callable[..., pl.DataFrame]
NEW_ADMIN = "appliance_new_admin_account"
WEAK = "appliance_config_weakened"


def events(fmt: str, lines: list[str]) -> list[dict[str, Any]]:
    """ECS event rows of ``lines`` parsed by ``fmt``; every line must parse."""
    out = run_lines(fmt, lines)
    assert "quarantine" not in out.tables or out.tables["quarantine"].is_empty()
    rows = out.tables["events"].to_dicts()
    assert len(rows) == len(lines)
    return rows


def alerts(run: Run, det: str, fmt: str, lines: list[str], inv: Inventory) -> list[dict[str, Any]]:
    """The detection's alerts over the parsed lines, as dicts with the evidence decoded."""
    out = run(det, events=events(fmt, lines), inventory=inv).sort("@timestamp")
    return [{**r, "evidence": json.loads(r["alert.evidence"])} for r in out.iter_rows(named=True)]


# -- Palo Alto PAN-OS (CONFIG log, syslog CSV) ----------------------------------------------


def panos(t: str, src: str, cmd: str, admin: str, result: str, path: str, after: str = "") -> str:
    """A PAN-OS CONFIG log line: command, admin, client, result, path, before, after."""
    return (
        f"<14>Nov  2 {t} PA-3220-edge 1,2026/11/02 {t},012801096514,CONFIG,0,0,2026/11/02 {t},"
        f'{src},vsys1,{cmd},{admin},CLI,{result},"{path}",,"{after}",1234570,0x0,0,0,0,0,,'
        "PA-3220-edge"
    )


def test_panos_superuser_admin_created(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        # CLI: set mgt-config users evil permissions role-based superuser yes
        panos("09:07:00", "203.0.113.9", "set", "netadmin", "Submitted",
              " mgt-config users  evil permissions role-based superuser", "yes"),
        # Web UI: the whole new object, a read-only administrator
        panos("09:08:00", "203.0.113.9", "set", "netadmin", "Submitted",
              " mgt-config users  auditor",
              " permissions {   role-based {    superreader yes;   } } phash *****"),
    ]  # fmt: skip
    got = alerts(run_detection, NEW_ADMIN, "panw_panos", lines, bundled_inventory)
    assert [(a["evidence"]["new_account"], a["evidence"]["profile"]) for a in got] == [
        ("evil", "superuser"),
        ("auditor", "superreader"),
    ]
    assert [a["alert.severity"] for a in got] == ["critical", "high"]
    assert got[0]["user.name"] == "netadmin" and got[0]["source.ip"] == "203.0.113.9"
    assert got[0]["observer.name"] == "PA-3220-edge"


def test_panos_account_lookalikes(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        panos("09:07:00", "192.0.2.10", "delete", "netadmin", "Submitted",
              " mgt-config users  evil"),
        panos("09:07:10", "192.0.2.10", "set", "netadmin", "Submitted",
              " mgt-config users  netadmin phash", "*****"),
        panos("09:07:20", "203.0.113.9", "set", "eviladmin", "Failed",
              " mgt-config users  backdoor permissions role-based superuser", "yes"),
        panos("09:07:30", "192.0.2.10", "set", "netadmin", "Submitted",
              " vsys  vsys1 rulebase security rules  allow-web", "action: allow"),
    ]  # fmt: skip
    assert not alerts(run_detection, NEW_ADMIN, "panw_panos", lines, bundled_inventory)


def test_panos_log_forwarding_removed_and_redirected(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    deleted = [panos("09:05:30", "192.0.2.10", "delete", "netadmin", "Submitted",
                     " shared log-settings syslog  siem")]  # fmt: skip
    (a,) = alerts(run_detection, WEAK, "panw_panos", deleted, bundled_inventory)
    assert a["alert.severity"] == "high" and a["evidence"]["kinds"] == ["logging disabled"]
    assert a["evidence"]["changes"] == ["delete shared log-settings syslog siem"]
    path = " shared log-settings syslog  siem server  s1 server"
    moved = [panos("09:05:30", "192.0.2.10", "set", "netadmin", "Submitted", path, "203.0.113.50")]
    (a,) = alerts(run_detection, WEAK, "panw_panos", moved, bundled_inventory)
    assert a["alert.severity"] == "medium"
    assert a["evidence"]["kinds"] == ["logging settings changed"]


def test_panos_ordinary_change_and_logging_on(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    lines = [
        panos("09:05:00", "192.0.2.10", "set", "netadmin", "Submitted",
              " vsys  vsys1 rulebase security rules  allow-any", "action: allow"),
        panos("09:05:10", "192.0.2.10", "set", "netadmin", "Submitted",
              " vsys  vsys1 rulebase security rules  allow-web log-end", "yes"),
        panos("09:06:00", "192.0.2.10", "commit", "netadmin", "Succeeded", ""),
        panos("09:06:30", "203.0.113.9", "delete", "eviladmin", "Failed",
              " shared log-settings syslog  siem"),
    ]  # fmt: skip
    assert not alerts(run_detection, WEAK, "panw_panos", lines, bundled_inventory)


# -- Juniper SRX / Junos (mgd configuration audit) ------------------------------------------


def junos(t: str, tag: str, text: str) -> str:
    """A BSD-syslog Junos mgd line."""
    return f"Mar 10 {t} srx-edge-1 mgd[4302]: {tag}: {text}"


def test_junos_super_user_created(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        junos("13:11:00", "UI_CMDLINE_READ_LINE",
              "User 'admin', command 'set system login user evil class super-user '"),
        junos("13:11:00", "UI_CFG_AUDIT_SET",
              "User 'admin' set: [system login user evil class] <unconfigured> -> \"super-user\""),
        junos("13:11:10", "UI_CFG_AUDIT_SET_SECRET",
              "User 'admin' set: [system login user evil authentication encrypted-password]"),
        junos("13:12:00", "UI_CFG_AUDIT_SET",
              "User 'admin' set: [system login user ops class] <unconfigured> -> \"operator\""),
    ]  # fmt: skip
    got = alerts(run_detection, NEW_ADMIN, "juniper_srx", lines, bundled_inventory)
    assert [(a["evidence"]["new_account"], a["evidence"]["profile"]) for a in got] == [
        ("evil", "class super-user"),
        ("ops", "class operator"),
    ]
    assert [a["alert.severity"] for a in got] == ["critical", "high"]
    assert got[0]["user.name"] == "admin" and got[0]["related.user"] == ["admin", "evil"]


def test_junos_account_lookalikes(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        junos("13:11:00", "UI_CFG_AUDIT_OTHER", "User 'admin' delete: [system login user olduser]"),
        junos("13:11:05", "UI_CMDLINE_READ_LINE",
              "User 'admin', command 'show configuration system login '"),
        junos("13:11:10", "UI_CFG_AUDIT_SET",
              "User 'admin' set: [interfaces ge-0/0/1 description] <unconfigured> -> \"uplink\""),
        junos("13:11:30", "UI_COMMIT", "User 'admin' requested 'commit' operation (comment: none)"),
    ]  # fmt: skip
    assert not alerts(run_detection, NEW_ADMIN, "juniper_srx", lines, bundled_inventory)
    assert not alerts(run_detection, WEAK, "juniper_srx", lines, bundled_inventory)


def test_junos_syslog_host_deleted(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        junos("13:11:05", "UI_CFG_AUDIT_OTHER",
              "User 'admin' delete: [system syslog host 192.0.2.50]"),
        junos("13:11:06", "UI_CFG_AUDIT_OTHER",
              "User 'admin' deactivate: [security log stream siem]"),
    ]  # fmt: skip
    (a,) = alerts(run_detection, WEAK, "juniper_srx", lines, bundled_inventory)
    assert a["alert.severity"] == "high" and a["evidence"]["kinds"] == ["logging disabled"]
    assert a["evidence"]["changes"] == [
        "delete system syslog host 192.0.2.50",
        "deactivate security log stream siem",
    ]
    assert a["user.name"] == "admin" and a["observer.name"] == "srx-edge-1"


def test_junos_syslog_switched_on_or_added_is_medium(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    lines = [
        junos("13:11:05", "UI_CFG_AUDIT_OTHER",
              "User 'admin' activate: [system syslog host 192.0.2.50]"),
        junos("13:11:06", "UI_CFG_AUDIT_SET",
              "User 'admin' set: [system syslog host 203.0.113.50 any] <unconfigured> -> \"any\""),
    ]  # fmt: skip
    (a,) = alerts(run_detection, WEAK, "juniper_srx", lines, bundled_inventory)
    assert a["alert.severity"] == "medium"
    assert a["evidence"]["kinds"] == ["logging re-enabled", "logging settings changed"]


# -- Citrix ADC / NetScaler (UI CMD_EXECUTED) -----------------------------------------------


def citrix(t: str, cmd: str, status: str = "Success", src: str = "203.0.113.9") -> str:
    """A NetScaler ``UI CMD_EXECUTED`` audit line."""
    return (
        f"<134> 10/03/2025:{t} GMT gw-dmz-01 0-PPE-0 : default UI CMD_EXECUTED 7900 0 :  "
        f'User nsroot - ADM_User NONE - Remote_ip {src} - Command "{cmd}" - Status "{status}"'
    )


def test_citrix_superuser_created(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        citrix("16:02:15", "add system user svc_backup ****"),
        citrix("16:02:20", "bind system user svc_backup superuser 100"),
        citrix("16:03:00", "add system user reporter ****"),
        citrix("16:03:05", "bind system user reporter read-only 100"),
    ]
    got = alerts(run_detection, NEW_ADMIN, "citrix_adc", lines, bundled_inventory)
    assert [(a["evidence"]["new_account"], a["evidence"]["profile"]) for a in got] == [
        ("svc_backup", "superuser"),
        ("reporter", "read-only"),
    ]
    assert [a["alert.severity"] for a in got] == ["critical", "high"]
    assert len(got[0]["evidence"]["changes"]) == 2 and got[0]["source.ip"] == "203.0.113.9"
    # the same creation from the admin jump host is not critical
    jump = "10.10.40.10"  # the bundled estate's admin jump host
    lines = [citrix("16:02:15", "add system user svc_backup ****", src=jump),
             citrix("16:02:20", "bind system user svc_backup superuser 100", src=jump)]  # fmt: skip
    (a,) = alerts(run_detection, NEW_ADMIN, "citrix_adc", lines, bundled_inventory)
    assert a["alert.severity"] == "high" and a["evidence"]["from_admin_host"]


def test_citrix_account_lookalikes(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        citrix("16:02:15", "rm system user olduser"),
        citrix("16:02:20", "set system user nsroot -timeout 900"),
        citrix("16:02:25", "show system user"),
        citrix("16:02:30", "add system user evil ****", "ERROR: Resource already exists"),
        citrix("16:02:35", "add lb vserver vs_web HTTP 10.0.0.10 80"),
    ]
    assert not alerts(run_detection, NEW_ADMIN, "citrix_adc", lines, bundled_inventory)


def test_citrix_syslog_removed_and_redirected(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    lines = [
        citrix("16:05:00", "rm audit syslogAction sa_siem"),
        citrix("16:05:10", "set audit syslogParams -serverIP 203.0.113.50"),
    ]
    (a,) = alerts(run_detection, WEAK, "citrix_adc", lines, bundled_inventory)
    assert a["alert.severity"] == "high"
    assert a["evidence"]["kinds"] == ["logging disabled", "logging settings changed"]
    assert a["evidence"]["changes"][0] == "rm audit syslogAction sa_siem"
    lines = [citrix("16:05:00", "set audit nslogParams -logLevel NONE")]
    (a,) = alerts(run_detection, WEAK, "citrix_adc", lines, bundled_inventory)
    assert a["evidence"]["kinds"] == ["logging disabled"]


def test_citrix_refused_ordinary_and_logging_on(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    refused = "ERROR: Invalid argument [logLevel, NONE]"
    lines = [
        citrix("16:03:05", "set audit syslogParams -logLevel NONE", refused),
        citrix("16:03:10", "show audit syslogAction"),
        citrix("16:03:15", "add lb vserver vs_web HTTP 10.0.0.10 80"),
    ]
    assert not alerts(run_detection, WEAK, "citrix_adc", lines, bundled_inventory)
    lines = [citrix("16:03:20", "set audit syslogParams -logLevel ALL")]
    (a,) = alerts(run_detection, WEAK, "citrix_adc", lines, bundled_inventory)
    assert a["alert.severity"] == "medium"


# -- Ivanti Connect Secure / Pulse (admin log, WELF) ----------------------------------------


def pulse(t: str, msg: str) -> str:
    """An Ivanti Connect Secure admin-log line in WELF."""
    return (
        f'id=firewall time="2024-02-05 {t}" pri=6 fw=192.0.2.1 vpn=ics-edge-01 user=admin '
        'realm="Admin Users" roles=".Administrators" proto= src=198.51.100.9 dst= dstname= '
        f'type=vpn op= arg="" result= sent= rcvd= agent="" duration= msg="{msg}"'
    )


def test_pulse_administrator_added(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        pulse("13:01:40", "ADM20716: User Accounts modified. Added username svc-admin, "
              "fullname svc-admin to authentication server Administrators."),
    ]  # fmt: skip
    (a,) = alerts(run_detection, NEW_ADMIN, "pulse_connect_secure", lines, bundled_inventory)
    assert a["evidence"]["new_account"] == "svc-admin"
    assert a["evidence"]["profile"] == "auth server Administrators"
    assert a["alert.severity"] == "critical" and a["source.ip"] == "198.51.100.9"


def test_pulse_user_account_and_other_changes_ignored(
    run_detection: Run, bundled_inventory: Inventory
) -> None:
    lines = [
        pulse("13:01:40", "ADM20716: User Accounts modified. Added username svc-backup, "
              "fullname svc-backup to authentication server System Local."),
        pulse("13:01:50", "ADM20716: User Accounts modified. Removed username svc-admin "
              "from authentication server Administrators."),
        pulse("13:02:10", "ADM23421: Modified settings for Authentication > Auth. Servers"),
    ]  # fmt: skip
    assert not alerts(run_detection, NEW_ADMIN, "pulse_connect_secure", lines, bundled_inventory)
    assert not alerts(run_detection, WEAK, "pulse_connect_secure", lines, bundled_inventory)


def test_pulse_log_settings_changed(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        pulse("13:02:10", "ADM23421: Modified settings for Log/Monitoring > Events > Settings")
    ]
    (a,) = alerts(run_detection, WEAK, "pulse_connect_secure", lines, bundled_inventory)
    assert a["alert.severity"] == "medium"
    assert a["evidence"]["kinds"] == ["logging settings changed"]


# -- SonicWall (SonicOS "Configuration changed") --------------------------------------------


def sonicwall(note: str) -> str:
    """A SonicOS configuration-change line naming the settings page."""
    return (
        '<134>id=firewall sn=0017C5A1B2C3 time="2024-05-06 10:25:30 UTC" fw=192.0.2.1 pri=5 '
        'c=32 m=1382 msg="Configuration changed" n=3 usr="admin" src=198.51.100.9:61020:X0 '
        f'dst=192.0.2.1:443:X0 note="{note}"'
    )


@pytest.mark.parametrize(("note", "alerted"), [("Log > Syslog", True),
                                               ("Firewall > Access Rules", False)])  # fmt: skip
def test_sonicwall_log_page_changed(
    run_detection: Run, bundled_inventory: Inventory, note: str, alerted: bool
) -> None:
    got = alerts(run_detection, WEAK, "sonicwall_firewall", [sonicwall(note)], bundled_inventory)
    assert [a["evidence"]["kinds"] for a in got] == (
        [["logging settings changed"]] if alerted else []
    )
    assert not alerts(run_detection, NEW_ADMIN, "sonicwall_firewall", [sonicwall(note)],
                      bundled_inventory)  # fmt: skip


# -- Check Point (SmartConsole audit) -------------------------------------------------------


def checkpoint(t: str, op: str, otype: str, name: str, status: str = "Success") -> str:
    """A SmartConsole audit record exported as syslog (RFC 5424 structured data)."""
    return (
        f'<134>1 2026-11-30T{t}Z mgmt-hq CheckPoint 3100 - [loguid:"{{0x6560b030,0x0,0x6401a8c0,'
        f'0x0}}"; origin:"192.0.2.5"; administrator:"admin"; client_ip:"203.0.113.9"; '
        f'objectname:"{name}"; objecttype:"{otype}"; operation:"{op}"; product:"SmartConsole"; '
        f'status:"{status}"; subject:"Object Manipulation"]'
    )


def test_checkpoint_administrator_created(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [checkpoint("09:03:00", "Create Object", "administrator", "svc-backdoor")]
    (a,) = alerts(run_detection, NEW_ADMIN, "checkpoint", lines, bundled_inventory)
    assert a["evidence"]["new_account"] == "svc-backdoor" and a["evidence"]["profile"] is None
    assert a["alert.severity"] == "high" and a["user.name"] == "admin"


def test_checkpoint_lookalikes(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [
        checkpoint("09:03:00", "Delete Object", "administrator", "olduser"),
        checkpoint("09:03:10", "Modify Object", "administrator", "admin"),
        checkpoint("09:03:20", "Create Object", "administrator", "evil", "Failure"),
        checkpoint("09:03:30", "Create Object", "host", "srv-app01"),
    ]
    assert not alerts(run_detection, NEW_ADMIN, "checkpoint", lines, bundled_inventory)
    assert not alerts(run_detection, WEAK, "checkpoint", lines, bundled_inventory)


def test_checkpoint_syslog_server_deleted(run_detection: Run, bundled_inventory: Inventory) -> None:
    lines = [checkpoint("09:04:00", "Delete Object", "syslog-server", "siem")]
    (a,) = alerts(run_detection, WEAK, "checkpoint", lines, bundled_inventory)
    assert a["alert.severity"] == "high" and a["evidence"]["kinds"] == ["logging disabled"]
    lines = [checkpoint("09:04:00", "Modify Object", "syslog-server", "siem")]
    (a,) = alerts(run_detection, WEAK, "checkpoint", lines, bundled_inventory)
    assert a["alert.severity"] == "medium"


def test_junos_structured_data_audit_line(run_detection: Run, bundled_inventory: Inventory) -> None:
    """RFC 5424 with Junos structured data: the readable text after it is what is read."""
    line = (
        "<13>1 2026-03-10T13:11:00.000+01:00 srx-edge-1 mgd 4302 UI_CFG_AUDIT_SET "
        '[junos@2636.1.1.1.2.129 username="admin" path="[system login user evil class]" '
        'old-value="<unconfigured>" new-value="super-user"] '
        "User 'admin' set: [system login user evil class] <unconfigured> -> \"super-user\""
    )
    (a,) = alerts(run_detection, NEW_ADMIN, "juniper_srx", [line], bundled_inventory)
    assert a["evidence"]["new_account"] == "evil" and a["user.name"] == "admin"
    assert a["evidence"]["changes"] == ["set system login user evil class super-user"]


def test_hostile_account_name_is_data(run_detection: Run, bundled_inventory: Inventory) -> None:
    """Quotes, SQL and escape codes in a logged command stay text in the alert."""
    name = "x');DROP_TABLE_events;--\x1b[31m"
    lines = [citrix("16:02:15", f"add system user {name} ****")]
    (a,) = alerts(run_detection, NEW_ADMIN, "citrix_adc", lines, bundled_inventory)
    assert a["evidence"]["new_account"] == name and name in a["alert.summary"]


# -- end to end through the CLI -------------------------------------------------------------


def test_cli_ingest_detect_alerts_across_vendors(tmp_path: Path) -> None:
    """Mixed PAN-OS and NetScaler files: ingest sniffs each, detect and alerts report both."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "pa.log").write_text(
        panos("09:07:00", "203.0.113.9", "set", "netadmin", "Submitted",
              " mgt-config users  evil permissions role-based superuser", "yes") + "\n"
        + panos("09:08:00", "203.0.113.9", "delete", "netadmin", "Submitted",
                " shared log-settings syslog  siem") + "\n"
    )  # fmt: skip
    (logs / "netscaler.log").write_text(citrix("16:05:00", "rm audit syslogAction sa_siem") + "\n")
    store = str(tmp_path / "store")

    def cli(*args: str) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "vpnsentry", *args, "--store", store, "--json"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    ingested = json.loads(cli("ingest", str(logs)))
    assert ingested["totals"]["parsed"] == 3 and ingested["totals"]["quarantined"] == 0
    cli("detect", "--only", NEW_ADMIN, "--only", WEAK)
    got = sorted(
        (a["rule.id"], a["observer.name"], a["alert.severity"])
        for a in map(json.loads, cli("alerts").splitlines())
    )
    assert got == [
        (WEAK, "PA-3220-edge", "high"),
        (WEAK, "gw-dmz-01", "high"),
        (NEW_ADMIN, "PA-3220-edge", "critical"),
    ]
