"""SARIF 2.1.0 output, so CI systems and code-scanning UIs show findings on the config lines.

One run, one tool (vpnsentry), one rule per check that fired (with its why and fix as help
text and a GitHub ``security-severity``), one result per finding pointing at the file, line
and snippet. Relative paths stay relative URIs (resolved against the checkout by the
consumer); absolute paths become ``file://`` URIs.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import quote

from vpnsentry import __version__
from vpnsentry.posture.config.model import Check, Finding, Severity, checks

SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"

#: SARIF ``level`` per severity (SARIF has error/warning/note).
LEVEL: Final[dict[Severity, str]] = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "info": "note",
}
#: GitHub code scanning reads ``security-severity`` (0-10) to rank security alerts.
SECURITY_SEVERITY: Final[dict[Severity, str]] = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "3.0",
    "info": "0.0",
}


def uri(path: str) -> str:
    """A URI reference for ``path``: ``file://`` if absolute, else a relative POSIX path."""
    p = Path(path)
    if p.is_absolute():
        return p.as_uri()
    return quote(str(PurePosixPath(*p.parts)), safe="/")


def _rule(c: Check) -> dict[str, Any]:
    name = "".join(part.capitalize() for part in c.id.split("-"))
    return {
        "id": c.id,
        "name": name,
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": c.why},
        "help": {
            "text": f"{c.why}\nFix: {c.fix}",
            "markdown": f"{c.why}\n\n**Fix:** {c.fix}",
        },
        "defaultConfiguration": {"level": LEVEL[c.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[c.severity],
            "severity": c.severity,
            "formats": list(c.formats),
            "tags": ["security", "configuration", *c.formats],
        },
    }


def to_sarif(findings: list[Finding], files: list[str]) -> dict[str, Any]:
    """A SARIF log for ``findings`` over the audited ``files`` (listed as artifacts)."""
    registry = checks()
    fired = sorted({f.check for f in findings})
    index = {cid: i for i, cid in enumerate(fired)}
    artifacts = sorted({*files, *(f.file for f in findings)})
    art_index = {a: i for i, a in enumerate(artifacts)}
    results = [
        {
            "ruleId": f.check,
            "ruleIndex": index[f.check],
            "level": LEVEL[f.severity],
            "message": {"text": f"{f.title}: {f.message}. Fix: {f.fix}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(f.file), "index": art_index[f.file]},
                        "region": {"startLine": f.line, "snippet": {"text": f.snippet}},
                    }
                }
            ],
            "partialFingerprints": {"vpnsentry/v1": f"{f.check}:{f.message}"},
            "properties": {"severity": f.severity, "format": f.format},
        }
        for f in findings
    ]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "vpnsentry",
                        "version": __version__,
                        "rules": [_rule(registry[cid]) for cid in fired],
                    }
                },
                "artifacts": [{"location": {"uri": uri(a)}} for a in artifacts],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
