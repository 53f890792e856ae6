"""Detect a file's format from its first lines.

Each parser scores the head (see ``Parser.sniff``); the best score wins if it reaches
``MIN_CONFIDENCE``, ties broken by ``Parser.priority`` then name, so the choice is stable.
Why content and not file names: collectors name files after hosts or dates, not vendors.
"""

from __future__ import annotations

from dataclasses import dataclass

from vpnsentry.parse.base import Parser, registry

#: Head lines looked at. Enough to get past Zeek's header block and a few unrelated lines.
HEAD_LINES = 64
#: Below this share of recognised head lines a file is "unknown" rather than guessed.
MIN_CONFIDENCE = 0.3


@dataclass(frozen=True)
class Sniffed:
    """The chosen parser (None if unknown) and the scores that led to it."""

    parser: Parser | None
    confidence: float
    scores: dict[str, float]


def head_lines(head: bytes) -> list[str]:
    """Decoded complete lines of a file's head (the last, possibly cut, line dropped)."""
    text = head.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if len(lines) > 1:
        lines = lines[:-1]
    return [ln.removesuffix("\r") for ln in lines[:HEAD_LINES]]


def sniff(head: bytes) -> Sniffed:
    """Pick the parser for a file whose first bytes are ``head``."""
    lines = head_lines(head)
    scores: dict[str, float] = {}
    parsers = {name: cls() for name, cls in registry().items()}
    text = "\n".join(lines)
    for name, parser in parsers.items():
        if parser.sniff_literals and not any(lit in text for lit in parser.sniff_literals):
            continue
        score = parser.sniff(lines)
        if score > 0:
            scores[name] = score
    if not scores:
        return Sniffed(None, 0.0, {})
    best = max(scores, key=lambda n: (scores[n], parsers[n].priority, n))
    if scores[best] < MIN_CONFIDENCE:
        return Sniffed(None, scores[best], scores)
    return Sniffed(parsers[best], scores[best], scores)
