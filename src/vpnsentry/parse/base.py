"""The parser seam: one class per log format, registered by its snake_case name.

A parser receives a *chunk* of lines (a Polars ``String`` Series, tens of thousands of lines)
and returns Polars DataFrames in ECS column names. It works with vectorized string kernels
over the whole chunk; a per-line Python path is only for rare message types.

Contract, checked by ``parse/run.py`` and the registry tests:

* Every input row index appears exactly once: in one of ``ParseResult.tables`` (column
  ``_row``), in ``ParseResult.rejected`` (``_row`` and ``reason``), or in ``ignored_rows``
  (header and blank lines that carry no event, e.g. Zeek's ``#fields``).
* Output tables use only columns of :mod:`vpnsentry.ecs` (plus ``_row``); ``run.py`` adds
  ``log.file.path``, ``log.offset``, ``event.module`` and ``event.ingested``.
* A row without a usable timestamp is rejected with ``Reason.BAD_TIMESTAMP``.
* A field value that fails conversion (bad IP, port 99999) is set null and counted in
  ``ParseResult.dropped_values``; the row is kept.
* Parsers never import store, detect or report, and never catch their own exceptions:
  ``parse/run.py`` is the only place that does.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import polars as pl


class Reason(StrEnum):
    """Why a line was quarantined. Stable codes: users filter on them."""

    BAD_TIMESTAMP = "bad_timestamp"  # missing, unparsable or impossible timestamp
    NO_MATCH = "no_match"  # the line is not in the format the parser expects
    TRUNCATED = "truncated"  # line cut short (collector limit, partial write)
    LINE_TOO_LONG = "line_too_long"  # over the collector's line limit; not parsed at all
    BINARY = "binary"  # NUL bytes or mostly undecodable bytes
    UNKNOWN_FORMAT = "unknown_format"  # no parser recognised the file
    PARSER_ERROR = "parser_error"  # the parser raised; a bug, reported with the exception


@dataclass
class ParseContext:
    """What a parser may know about the chunk besides its lines.

    ``state`` persists across chunks of the same file, for formats with headers (Zeek's
    ``#fields``) or multi-line context.
    """

    path: str
    tz: str = "UTC"  # zone for timestamps that carry none (``--tz``)
    year: int = field(default_factory=lambda: dt.datetime.now(dt.UTC).year)
    """Year for syslog timestamps without one (RFC 3164). Dates more than two days in the
    future of ``now`` are taken as the previous year (December logs read in January)."""
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParseResult:
    """What a parser made of one chunk. See the module docstring for the contract."""

    tables: dict[str, pl.DataFrame] = field(default_factory=dict)  # dataset -> rows
    rejected: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={"_row": pl.UInt32, "reason": pl.String, "detail": pl.String}
        )
    )
    ignored_rows: list[int] = field(default_factory=list)  # header/blank lines, no event
    dropped_values: int = 0  # field values set null because they failed conversion


class Parser(ABC):
    """Base class of every format parser. Subclasses set the class attributes and parse()."""

    name: ClassVar[str]  # snake_case; the --format value, golden folder, event.module
    title: ClassVar[str]  # human name: "Fortinet FortiGate (FortiOS key=value)"
    vendor: ClassVar[str]  # observer.vendor
    product: ClassVar[str]  # observer.product
    datasets: ClassVar[tuple[str, ...]]  # which store datasets it can produce
    sniff_literals: ClassVar[tuple[str, ...]]  # cheap pre-filter: any must occur in the head
    sample: ClassVar[str]  # one real line, shown by `vpnsentry formats`
    # Sniffing priority when two parsers claim a file: higher wins (a generic reader
    # such as CEF should lose to a vendor parser that recognises the same lines).
    priority: ClassVar[int] = 0
    # True when parse() reads or writes ``ctx.state``: what one chunk leaves there (a
    # header, open connections) governs the next, so a file's chunks are parsed one after
    # the other, in order, never two at once (ingest parses other formats' chunks in
    # parallel).
    stateful: ClassVar[bool] = False

    def sniff(self, head: list[str]) -> float:
        """Confidence 0..1 that ``head`` (the first lines of a file) is this format.

        The default counts head lines containing any sniff literal; override for formats
        whose literals are not distinctive enough.
        """
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        hits = sum(1 for ln in lines if any(lit in ln for lit in self.sniff_literals))
        return hits / len(lines)

    @abstractmethod
    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        """Parse a chunk of lines (no line terminators) into ECS tables."""


_REGISTRY: dict[str, type[Parser]] = {}


P = TypeVar("P", bound=type[Parser])


def register(cls: P) -> P:
    """Class decorator adding a parser to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"parser {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Parser]]:
    """All registered parsers by name (importing the vendor packages registers them)."""
    from vpnsentry.parse import flows, vendors  # noqa: F401  (import registers)

    return dict(sorted(_REGISTRY.items()))


def get_parser(name: str) -> Parser:
    """An instance of the parser called ``name``; KeyError if there is none."""
    return registry()[name]()
