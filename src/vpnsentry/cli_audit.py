"""Commands of the posture audit: ``vpnsentry audit config`` (and the firmware/segmentation
commands that cli_audit_posture attaches to the same group).

Exit codes of ``audit config``: 0 no finding at or above ``--fail-on``, 1 at least one
(the CI gate), 2 usage error, 3 a file is missing or broken (the message names the file and
line). Text from configuration files goes through ``safe.term`` before it is printed.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from vpnsentry.posture.config.model import SEVERITIES, Finding
from vpnsentry.safe import term
from vpnsentry.ui import JsonOpt, out, print_json, print_table

#: ``audit config`` exits with this when a finding is at or above ``--fail-on``.
EXIT_FINDINGS = 1

audit = typer.Typer(
    help="Posture audit: VPN configuration hardening (and known-exploited firmware, segmentation).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` group to ``app``."""
    app.add_typer(audit, name="audit")


class Output(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"


class FailOn(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"
    never = "never"


@audit.command("config")
def config(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Configuration files (OpenVPN, strongSwan, WireGuard, FortiGate, ASA)."
        ),
    ] = None,
    config_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="auto (detect from name and content) or one of: openvpn, swanctl, ipsec, "
            "wireguard, fortigate, cisco_asa.",
        ),
    ] = "auto",
    output: Annotated[
        Output, typer.Option("--format", help="table, json (one object per finding) or sarif.")
    ] = Output.table,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to FILE, not stdout.")
    ] = None,
    fail_on: Annotated[
        FailOn,
        typer.Option(help="Exit 1 when a finding is at or above this severity (never: exit 0)."),
    ] = FailOn.high,
    list_checks: Annotated[
        bool, typer.Option("--list-checks", help="Describe every check and exit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check VPN configuration files against public hardening guidance (exit 1 on findings)."""
    from vpnsentry.errors import UsageError
    from vpnsentry.posture.config import audit as run_audit
    from vpnsentry.posture.config.model import checks

    fmt = Output.json if as_json else output
    if list_checks:
        rows = [
            {
                "check": c.id,
                "formats": list(c.formats),
                "severity": c.severity,
                "title": c.title,
                "why": c.why,
                "fix": c.fix,
            }
            for c in checks().values()
        ]
        if fmt is Output.json:
            print_json(rows)
        else:
            print_table(
                ["check", "formats", "severity", "title"],
                [(r["check"], ",".join(r["formats"]), r["severity"], r["title"]) for r in rows],
            )
        return
    if not files:
        raise UsageError("give at least one configuration file (or --list-checks)")
    results = run_audit(files, config_type)
    findings = [f for r in results for f in r.findings]
    if fmt is Output.sarif:
        from vpnsentry.posture.config.sarif import to_sarif

        _emit(json.dumps(to_sarif(findings, [r.path for r in results]), indent=2), output_file)
    elif fmt is Output.json:
        _emit(
            "".join(json.dumps(f.to_json(), ensure_ascii=False) + "\n" for f in findings),
            output_file,
            end="",
        )
    else:
        _table(findings, len(results))
    if fail_on is not FailOn.never and any(
        SEVERITIES.index(f.severity) >= SEVERITIES.index(fail_on.value) for f in findings
    ):
        raise typer.Exit(EXIT_FINDINGS)


def _emit(text: str, path: Path | None, end: str = "\n") -> None:
    if path is None:
        out.file.write(text + end)
    else:
        path.write_text(text + end, encoding="utf-8")


def _table(findings: list[Finding], nfiles: int) -> None:
    order = sorted(findings, key=lambda f: (-SEVERITIES.index(f.severity), f.file, f.line))
    print_table(
        ["severity", "check", "where", "finding", "line"],
        [
            (f.severity, f.check, f"{f.file}:{f.line}", f.message, term(f.snippet, 60))
            for f in order
        ],
    )
    counts = {s: sum(f.severity == s for f in findings) for s in reversed(SEVERITIES)}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out.print(
        Text(f"{len(findings)} findings in {nfiles} files" + (f" ({summary})" if summary else ""))
    )
    seen: dict[str, str] = {}
    for f in order:
        seen.setdefault(f.check, f.fix)
    for check_id, fix in seen.items():
        out.print(Text(f"  fix {check_id}: {term(fix)}"))


# The firmware and segmentation commands live in their own module (it reuses FailOn above).
from vpnsentry import cli_audit_posture  # noqa: E402

cli_audit_posture.register(audit)
