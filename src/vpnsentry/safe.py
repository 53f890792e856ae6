"""Make attacker-controlled text harmless for the terminal.

Log fields carry text chosen by whoever sent the packet or typed the user name. Printed
raw, an ANSI escape could recolour, hide or rewrite what the analyst sees, or (in some
terminals) do worse. Every value we print goes through :func:`term`, and is then printed
with Rich as plain ``Text`` (never as markup), so ``[red]`` in a user name stays literal.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def term(value: Any, limit: int = 400) -> str:
    """``value`` as one printable line: controls escaped, newlines and tabs shown, capped."""
    if value is None:
        return ""
    s = str(value)
    s = s.replace("\n", "\\n").replace("\t", " ")
    s = _CONTROL.sub(_escape, s)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s
