"""Attacker-controlled text made safe for HTML and SVG.

Every value the report shows (user names, host names, alert summaries, evidence) may have
been chosen by whoever typed a user name or sent a packet. :func:`esc` is the one way such
a value enters markup: control characters (ANSI escapes, NUL, bidirectional overrides that
could reorder what the analyst reads) become visible ``\\x1b``-style escapes, long values
are cut, and ``< > & " '`` become character references, so the value is text in an element
or a quoted attribute, in HTML and in (XML) SVG alike.
"""

from __future__ import annotations

import html
import re
from typing import Any, Final

#: Characters that are invalid in XML 1.0, move the cursor in a terminal, or reorder text
#: (tab and newline are kept: they are harmless in markup).
_CONTROL: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff"
    "\ud800-\udfff]"
)


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def clean(value: Any, limit: int | None = 300) -> str:
    """``value`` as plain text: controls shown as escapes, at most ``limit`` characters."""
    if value is None:
        return ""
    s = _CONTROL.sub(_visible, str(value))
    if limit is not None and len(s) > limit:
        s = s[: max(1, limit - 1)] + "…"
    return s


def esc(value: Any, limit: int | None = 300) -> str:
    """``value`` as text for an HTML/SVG element or a quoted attribute."""
    return html.escape(clean(value, limit), quote=True)
