"""Tuning without code: one TOML file with per-detection parameters and allow-lists.

Example (``docs/detections.md`` has the full reference)::

    [baseline]
    learning_days = 7            # history an entity needs before novelty detections fire

    [allow]
    scanners = ["10.10.40.5"]    # addresses, CIDRs allowed
    backup_hosts = ["10.10.33.50"]
    admin_hosts = ["10.10.2.0/24"]
    partners = ["203.0.113.0/24"]
    admin_users = ["netadmin"]

    [detections.auth_password_spray]
    min_users = 15

    [detections.c2_long_connection]
    enabled = false

Why strict: an unknown detection id or parameter name is an error that names it, because
a misspelt override silently keeps the default and the analyst believes the tuning applied.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from vpnsentry.detect.base import Detection, ParamValue
from vpnsentry.errors import UsageError

#: Allow-list kinds: the inventory's ``allow`` section uses the same names.
ALLOW_KINDS: Final = ("scanners", "backup_hosts", "admin_hosts", "partners", "admin_users")
#: Defaults of the global baseline settings.
BASELINE_DEFAULTS: Final[dict[str, ParamValue]] = {"learning_days": 7}


@dataclass(frozen=True)
class Config:
    """Resolved settings: parameters per detection, disabled ids, allow-lists."""

    params: Mapping[str, Mapping[str, ParamValue]] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    baseline: Mapping[str, ParamValue] = field(default_factory=lambda: dict(BASELINE_DEFAULTS))
    #: kind -> list of CIDR strings (addresses) or user names (admin_users)
    allow: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<defaults>"

    def params_for(self, det: Detection) -> dict[str, ParamValue]:
        """The detection's defaults, overridden by the file, plus the baseline settings."""
        return {**self.baseline, **det.params, **self.params.get(det.id, {})}


def load_config(path: Path | None, known: Mapping[str, Detection]) -> Config:
    """Read and validate ``path`` against the known detections; defaults when None."""
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"config {path}: not valid TOML: {exc}") from exc
    return parse_config(data, known, source=str(path))


def parse_config(data: Mapping[str, Any], known: Mapping[str, Detection], source: str) -> Config:
    """Validate a parsed TOML document; every error names the file and key."""

    def fail(key: str, msg: str) -> UsageError:
        return UsageError(f"config {source}: {key}: {msg}")

    extra = set(data) - {"baseline", "allow", "detections"}
    if extra:
        raise fail(sorted(extra)[0], "unknown section (known: baseline, allow, detections)")
    baseline = dict(BASELINE_DEFAULTS)
    for key, value in _table(data, "baseline", fail).items():
        if key not in BASELINE_DEFAULTS:
            raise fail(
                f"baseline.{key}", f"unknown setting (known: {', '.join(BASELINE_DEFAULTS)})"
            )
        baseline[key] = _typed(value, BASELINE_DEFAULTS[key], f"baseline.{key}", fail)
    allow: dict[str, tuple[str, ...]] = {}
    for kind, values in _table(data, "allow", fail).items():
        key = f"allow.{kind}"
        if kind not in ALLOW_KINDS:
            raise fail(key, f"unknown allow-list (known: {', '.join(ALLOW_KINDS)})")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise fail(key, "must be a list of strings")
        if kind != "admin_users":
            for v in values:
                try:
                    ipaddress.ip_network(v, strict=False)
                except ValueError as exc:
                    raise fail(key, f"{v!r} is not an address or CIDR") from exc
        allow[kind] = tuple(values)
    params: dict[str, dict[str, ParamValue]] = {}
    disabled: set[str] = set()
    for det_id, overrides in _table(data, "detections", fail).items():
        key = f"detections.{det_id}"
        if det_id not in known:
            raise fail(key, "no such detection (see `vpnsentry detections`)")
        if not isinstance(overrides, dict):
            raise fail(key, "must be a table")
        det = known[det_id]
        for name, value in overrides.items():
            if name == "enabled":
                if not isinstance(value, bool):
                    raise fail(f"{key}.enabled", "must be true or false")
                if not value:
                    disabled.add(det_id)
                continue
            if name not in det.params:
                names = ", ".join(sorted(det.params)) or "none"
                raise fail(f"{key}.{name}", f"unknown parameter (known: {names}, enabled)")
            params.setdefault(det_id, {})[name] = _typed(
                value, det.params[name], f"{key}.{name}", fail
            )
    return Config(params, frozenset(disabled), baseline, allow, source)


def _table(data: Mapping[str, Any], name: str, fail: Any) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise fail(name, "must be a table")
    return value


def _typed(value: Any, default: ParamValue, key: str, fail: Any) -> ParamValue:
    """Check an override has the default's type (an int where a float is expected is fine)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        raise fail(key, f"expected {type(default).__name__} like the default {default!r}")
    result: ParamValue = value
    return result
