"""End-to-end: ``python -m vpnsentry audit config`` in a subprocess (table, JSON, SARIF,
exit codes, broken configs, hostile text); the ``--fail-on`` matrix and ``--list-checks``
run the same Typer app in-process (Typer's runner), to keep the suite fast."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import GOLDEN
from vpnsentry.cli import app

AUDIT = GOLDEN / "audit"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpnsentry", "audit", "config", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden folders, private (0600) so the WireGuard permission check stays quiet."""
    dest = tmp_path_factory.mktemp("cfg") / "audit"
    shutil.copytree(AUDIT, dest)
    for f in dest.rglob("*"):
        f.chmod(0o700 if f.is_dir() else 0o600)
    return dest


def test_table_and_exit_code(configs: Path) -> None:
    proc = run("fortigate/weak.conf", "cisco_asa/hardened.cfg", cwd=configs)
    assert proc.returncode == 1, proc.stderr
    assert "FGT-MGMT-WAN" in proc.stdout and "fortigate/weak.conf:17" in proc.stdout
    assert "18 findings in 2 files (1 critical, 13 high" in proc.stdout
    assert "fix FGT-MGMT-WAN:" in proc.stdout


@pytest.mark.parametrize(
    ("case", "fail_on", "code"),
    [
        ("openvpn/server-sample.conf", "critical", 0),  # high and below only
        ("openvpn/server-sample.conf", "high", 1),
        ("openvpn/server-weak.conf", "never", 0),
        ("openvpn/server-hardened.conf", "info", 0),
        ("ipsec/hardened.conf", "info", 1),  # its one finding is info
    ],
)
def test_fail_on_threshold(configs: Path, case: str, fail_on: str, code: int) -> None:
    result = CliRunner().invoke(
        app, ["audit", "config", "--fail-on", fail_on, "--json", str(configs / case)]
    )
    assert result.exit_code == code, result.output


def test_json_lines(configs: Path) -> None:
    proc = run("--json", "wireguard/wg0-server.conf", cwd=configs)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and len(rows) == 8
    assert list(rows[0]) == [
        "check",
        "severity",
        "title",
        "format",
        "file",
        "line",
        "snippet",
        "message",
        "why",
        "fix",
    ]
    assert {r["check"] for r in rows} >= {"WG-ALLOWEDIPS", "WG-DUP-KEY", "WG-PSK"}


def test_sarif_to_file(configs: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.sarif"
    proc = run("--format", "sarif", "-o", str(out), "swanctl/rw-psk-legacy.conf", cwd=configs)
    assert proc.returncode == 1 and proc.stdout == ""
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"swanctl/rw-psk-legacy.conf"}


def test_broken_config_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "client.ovpn"
    bad.write_text("client\nremote vpn.example.com\n<ca>\n-----BEGIN CERTIFICATE-----\n")
    proc = run(str(bad))
    assert proc.returncode == 3
    assert proc.stderr.strip() == f"error: {bad}:3: inline block <ca> is never closed by </ca>"
    assert "Traceback" not in proc.stderr
    proc = run(str(tmp_path / "missing.conf"))
    assert proc.returncode == 3 and "cannot read" in proc.stderr
    assert run("--type", "junos", str(bad)).returncode == 2


def test_hostile_text_is_escaped_in_the_table(tmp_path: Path) -> None:
    cfg = tmp_path / "evil.conf"
    cfg.write_text(
        "config vpn ssl settings\n"
        '    set source-interface "wan1\x1b[2J\x1b]0;pwned\x07"\n'
        "    set ssl-min-proto-ver tls1-0\nend\n"
    )
    proc = run("--type", "fortigate", str(cfg))
    assert proc.returncode == 1
    assert "\x1b" not in proc.stdout and "\\x1b[2J" in proc.stdout


def test_list_checks() -> None:
    result = CliRunner().invoke(app, ["audit", "config", "--list-checks", "--json"])
    checks = json.loads(result.stdout)
    assert result.exit_code == 0 and len(checks) >= 60
    assert {"check", "formats", "severity", "title", "why", "fix"} == set(checks[0])
