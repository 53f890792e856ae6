"""The shared model of the configuration audit: parsed statements, checks, findings.

Every parser turns a file into a tree of :class:`Node` (one per statement, with the file,
line number and text it came from), so a check can point at the exact line a code-scanning
UI should highlight. A check is data (id, title, severity, why, fix) plus a small function
over a :class:`Config` yielding :class:`Hit`; :func:`check` registers both, and
``vpnsentry audit config --list-checks`` shows the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from vpnsentry.errors import InputError

Severity = Literal["info", "low", "medium", "high", "critical"]

#: Severities from least to most severe; ``--fail-on`` compares by this order.
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "low", "medium", "high", "critical")


class ConfigError(InputError):
    """A configuration file that cannot be read as its format: names the file and line."""

    def __init__(self, file: str | Path, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = str(file)
        self.line = line
        self.reason = message


@dataclass
class Node:
    """One statement: a directive, a ``key = value``, a section header with its children.

    ``key`` is the directive or section name (lower-cased where the format ignores case),
    ``args`` its values after unquoting, ``text`` the source line as written (for the
    snippet), ``children`` the statements nested under a section.
    """

    key: str
    args: list[str]
    file: str
    line: int
    text: str
    children: list[Node] = field(default_factory=list)

    @property
    def value(self) -> str:
        """All arguments joined by one space (most directives take one)."""
        return " ".join(self.args)

    def find(self, key: str) -> list[Node]:
        """Direct children named ``key``."""
        return [c for c in self.children if c.key == key]

    def first(self, key: str) -> Node | None:
        """The first direct child named ``key``, if any."""
        return next((c for c in self.children if c.key == key), None)

    def get(self, key: str, default: str = "") -> str:
        """The value of the last direct child named ``key`` (later settings win)."""
        found = self.find(key)
        return found[-1].value if found else default

    def walk(self) -> Iterator[Node]:
        """This node's descendants, depth first, in file order."""
        for c in self.children:
            yield c
            yield from c.walk()


@dataclass
class Config:
    """A parsed file: its format name and a root node whose children are the statements."""

    format: str
    path: str
    root: Node

    def find(self, key: str) -> list[Node]:
        return self.root.find(key)

    def first(self, key: str) -> Node | None:
        return self.root.first(key)


@dataclass(frozen=True)
class Hit:
    """What a check found: the statement to point at and what is wrong with it."""

    node: Node
    detail: str


@dataclass(frozen=True)
class Check:
    """One hardening check: what it looks for, why it matters (with its source), the fix."""

    id: str
    formats: tuple[str, ...]
    title: str
    severity: Severity
    why: str
    fix: str
    run: Callable[[Config], Iterable[Hit]]


@dataclass(frozen=True)
class Finding:
    """A check's hit in a file, in the shape every output (table, JSON, SARIF) uses."""

    check: str
    title: str
    severity: Severity
    format: str
    file: str
    line: int
    snippet: str
    message: str
    why: str
    fix: str

    def to_json(self) -> dict[str, str | int]:
        """Stable keys, in a stable order."""
        return {
            "check": self.check,
            "severity": self.severity,
            "title": self.title,
            "format": self.format,
            "file": self.file,
            "line": self.line,
            "snippet": self.snippet,
            "message": self.message,
            "why": self.why,
            "fix": self.fix,
        }


_CHECKS: dict[str, Check] = {}


def check(
    id: str, formats: tuple[str, ...], title: str, severity: Severity, why: str, fix: str
) -> Callable[[Callable[[Config], Iterable[Hit]]], Callable[[Config], Iterable[Hit]]]:
    """Register the decorated function as check ``id`` for the given formats."""

    def add(fn: Callable[[Config], Iterable[Hit]]) -> Callable[[Config], Iterable[Hit]]:
        if id in _CHECKS:
            raise ValueError(f"duplicate check id {id}")
        _CHECKS[id] = Check(id, formats, title, severity, why, fix, fn)
        return fn

    return add


def checks() -> dict[str, Check]:
    """Every registered check by id, in registration order (import the format modules first)."""
    return dict(_CHECKS)


def run_checks(cfg: Config) -> list[Finding]:
    """Every finding of every check that applies to ``cfg``'s format, sorted by file and line."""
    found: list[Finding] = []
    for c in _CHECKS.values():
        if cfg.format not in c.formats:
            continue
        for hit in c.run(cfg):
            found.append(
                Finding(
                    check=c.id,
                    title=c.title,
                    severity=c.severity,
                    format=cfg.format,
                    file=hit.node.file,
                    line=hit.node.line,
                    snippet=hit.node.text,
                    message=hit.detail,
                    why=c.why,
                    fix=c.fix,
                )
            )
    found.sort(key=lambda f: (f.file, f.line, f.check, f.message))
    return found


def at_least(severity: Severity, floor: Severity) -> bool:
    """Whether ``severity`` is at or above ``floor``."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)


@dataclass(frozen=True)
class Format:
    """A configuration format: how to recognise it and how to parse it."""

    name: str
    title: str
    parse: Callable[[Path], Config]
    #: A score for "this file is in my format", from its name and first 64 KiB (0 = no).
    sniff: Callable[[str, str], int]


_FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> None:
    _FORMATS[fmt.name] = fmt


def formats() -> dict[str, Format]:
    """Every registered format by name."""
    return dict(_FORMATS)


#: No VPN configuration is this big; a larger file is a mistake or an attack on memory.
_MAX_BYTES: Final = 64 * 2**20


def read_text(path: Path, including: Node | None = None) -> list[str]:
    """The lines of ``path`` (UTF-8, undecodable bytes replaced, BOM and CR dropped).

    ``including`` is the statement that named the file, so a missing include is reported
    at the line that asked for it.
    """
    try:
        if not path.is_file():  # never a device (`config /dev/zero`), a FIFO or a folder
            raise OSError(0, "not a regular file")
        if path.stat().st_size > _MAX_BYTES:
            raise OSError(0, f"larger than {_MAX_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except OSError as exc:
        if including is not None:
            raise ConfigError(
                including.file, including.line, f"cannot read included file {path}: {exc.strerror}"
            ) from exc
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


def anchor(cfg: Config) -> Node:
    """Where a finding about a missing statement points: the first statement, or line 1."""
    return cfg.root.children[0] if cfg.root.children else cfg.root


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` masked: findings quote lines, and must never quote keys."""
    return text.replace(secret, "********") if secret else text
