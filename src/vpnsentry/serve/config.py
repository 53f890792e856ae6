"""Serve settings: a TOML file with the same names as the command-line flags.

Flags override the file; a list flag given on the command line replaces the file's list.
Unknown keys are an error, so a typo does not silently leave a port closed.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vpnsentry.errors import UsageError

LISTS = ("syslog_udp", "syslog_tcp", "syslog_tls", "netflow")


@dataclass(frozen=True)
class Listen:
    """An address and port to bind; port 0 lets the kernel choose (tests)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str) -> Listen:
    """``ADDR:PORT`` (IPv6 as ``[::1]:514``) to a :class:`Listen`; UsageError when malformed."""
    host, sep, port = str(text).rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise UsageError(f"listen address {text!r} is not ADDR:PORT (e.g. 0.0.0.0:514, [::]:514)")
    return Listen(host, number)


@dataclass
class ServeConfig:
    """Everything ``vpnsentry serve`` needs; see deploy/serve.toml for each setting."""

    store: Path = Path("vpnsentry-data")
    spool: Path | None = None  # default: <store>/.spool
    syslog_udp: list[Listen] = field(default_factory=list)
    syslog_tcp: list[Listen] = field(default_factory=list)
    syslog_tls: list[Listen] = field(default_factory=list)
    netflow: list[Listen] = field(default_factory=list)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    metrics: Listen | None = None
    batch_seconds: float = 1.0
    fsync_seconds: float = 0.1
    spool_max_bytes: int = 256 * 1024 * 1024
    segment_bytes: int = 64 * 1024 * 1024
    udp_rcvbuf: int = 32 * 1024 * 1024
    tz: str = "UTC"
    # Streaming detection and alert outputs (serve/alerting.py, docs/serve.md).
    detect: bool = True
    sites: Path | None = None
    detect_config: Path | None = None
    lookback_hours: float = 24.0
    full_every_minutes: float = 15.0  # 0: only the live tier
    alerts_stdout: bool = False
    webhook: str | None = None
    webhook_header: list[str] = field(default_factory=list)  # "Name: value"
    cef: Listen | None = None  # a SIEM's syslog address
    cef_protocol: str = "udp"
    dead_letter: Path | None = None  # default <store>/alerts-dead-letter.ndjson

    @property
    def spool_dir(self) -> Path:
        return self.spool if self.spool is not None else self.store / ".spool"

    def check(self) -> None:
        """Refuse settings that cannot work, before any port is opened."""
        if not any(getattr(self, name) for name in LISTS):
            raise UsageError(
                "nothing to listen on: give --syslog-udp, --syslog-tcp, "
                "--syslog-tls or --netflow (or set them in --config)"
            )
        if self.syslog_tls and not (self.tls_cert and self.tls_key):
            raise UsageError("--syslog-tls needs --tls-cert and --tls-key")
        if self.batch_seconds <= 0 or self.fsync_seconds <= 0 or self.spool_max_bytes <= 0:
            raise UsageError("batch_seconds, fsync_seconds and spool_max_bytes must be > 0")
        if self.lookback_hours <= 0 or self.full_every_minutes < 0:
            raise UsageError("lookback_hours must be > 0 and full_every_minutes >= 0")
        if self.cef_protocol not in ("udp", "tcp"):
            raise UsageError(f"cef_protocol must be udp or tcp, not {self.cef_protocol!r}")
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            raise UsageError(f"webhook {self.webhook!r} is not an http:// or https:// URL")
        for header in self.webhook_header:
            name, sep, _ = header.partition(":")
            if not sep or not name.strip() or any(c in header for c in "\r\n"):
                raise UsageError(f"webhook_header {header!r} is not 'Name: value'")


def load(path: Path | None, overrides: dict[str, Any]) -> ServeConfig:
    """Settings from the TOML file at ``path`` (if any), then ``overrides`` (flags, non-None)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read config {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"config {path} is not valid TOML: {exc}") from exc
    known = {f.name for f in fields(ServeConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    raw.update({k: v for k, v in overrides.items() if v is not None and v != []})
    cfg = ServeConfig()
    for name, value in raw.items():
        setattr(cfg, name, _convert(name, value))
    cfg.check()
    return cfg


def _convert(name: str, value: Any) -> Any:
    if name in LISTS:
        items = value if isinstance(value, list) else [value]
        return [v if isinstance(v, Listen) else parse_listen(v) for v in items]
    if name in ("metrics", "cef"):
        return value if isinstance(value, Listen) else parse_listen(value)
    if name in ("store", "spool", "tls_cert", "tls_key", "sites", "detect_config", "dead_letter"):
        return Path(value)
    if name == "webhook_header":
        return [str(v) for v in (value if isinstance(value, list) else [value])]
    kind = {f.name: f.type for f in fields(ServeConfig)}[name]
    if kind == "bool":
        if not isinstance(value, bool):
            raise UsageError(f"setting {name} = {value!r} is not true or false")
        return value
    try:
        return float(value) if kind == "float" else int(value) if kind == "int" else str(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"setting {name} = {value!r} is not a {kind}") from exc
