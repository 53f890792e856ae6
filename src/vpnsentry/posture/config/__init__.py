"""Configuration audit: parse VPN configuration files and run hardening checks on them.

One module per format (each registers its parser, its sniffer and its checks), the shared
model in :mod:`.model`, SARIF output in :mod:`.sarif`. :func:`audit` is the entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vpnsentry.errors import UsageError
from vpnsentry.posture.config import (  # importing a module registers its format and checks
    cisco_asa,
    fortigate,
    openvpn,
    strongswan,
    wireguard,
)
from vpnsentry.posture.config.model import (
    Config,
    ConfigError,
    Finding,
    formats,
    read_text,
    run_checks,
)

__all__ = ["AuditResult", "ConfigError", "audit", "detect_format", "formats", "parse"]

_MODULES = (
    openvpn,
    strongswan,
    wireguard,
    fortigate,
    cisco_asa,
)  # importing a module registers its format and checks


@dataclass(frozen=True)
class AuditResult:
    """One file audited: the format it was read as, and its findings."""

    path: str
    format: str
    findings: list[Finding]


def detect_format(path: Path) -> str:
    """The format whose sniffer scores ``path`` highest (by file name and content)."""
    text = "\n".join(read_text(path))[:65536]
    scores = {name: f.sniff(path.name.lower(), text) for name, f in formats().items()}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] <= 0:
        raise ConfigError(
            path, 1, f"cannot tell the configuration format; force one with --type ({_names()})"
        )
    return best


def _names() -> str:
    return ", ".join(formats())


def parse(path: Path, fmt: str = "auto") -> Config:
    """Parse ``path`` as ``fmt`` (``auto``: detect it)."""
    known = formats()
    if fmt != "auto" and fmt not in known:
        raise UsageError(f"unknown configuration type {fmt!r}; known: auto, {_names()}")
    name = detect_format(path) if fmt == "auto" else fmt
    return known[name].parse(path)


def audit(paths: list[Path], fmt: str = "auto") -> list[AuditResult]:
    """Parse and check every file; the first broken file raises :class:`ConfigError`."""
    results = []
    for p in paths:
        cfg = parse(p, fmt)
        results.append(AuditResult(str(p), cfg.format, run_checks(cfg)))
    return results
