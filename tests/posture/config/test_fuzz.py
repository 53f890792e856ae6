"""Property test: no text crashes a parser or a check. Every input either parses (and every
check runs over it) or raises ConfigError naming a line of the file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsentry.posture.config import ConfigError, formats, parse
from vpnsentry.posture.config.model import run_checks

#: Fragments of every format, so random text often gets deep into the parsers.
FRAGMENTS = [
    "config ",
    "edit ",
    "next",
    "end",
    "set ",
    "unset ",
    '"',
    "'",
    "\\",
    "{",
    "}",
    "=",
    "#",
    ";",
    "\n",
    "\n ",
    "\t",
    "<ca>",
    "</ca>",
    "<key>",
    "</key>",
    "[Interface]",
    "[Peer]",
    "conn ",
    "also=",
    "include ",
    "config setup",
    "crypto ikev1 policy 10",
    " group 2",
    "tunnel-group X ipsec-attributes",
    " ikev1 pre-shared-key k",
    "AllowedIPs = ",
    "0.0.0.0/0",
    "management ",
    "0.0.0.0 7505",
    "server 10.8.0.0 255.255.255.0",
    "connections",
    "secrets",
    "secret = ",
    "version = 1",
    "\x1b[31m",
    "\u202e",
    "\x00",
    "http 0 0 outside",
    "remote ",
    "children",
    "esp_proposals = ",
    "dh ",
    "verb 0",
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map(
    "".join
)


@settings(max_examples=150, deadline=None)
@given(text=texts, fmt=st.sampled_from(sorted(formats())))
def test_no_text_crashes_a_parser(text: str, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.conf"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            cfg = parse(path, fmt)
        except ConfigError as exc:
            assert exc.line >= 1
            return
        for f in run_checks(cfg):
            assert f.line >= 1 and f.check
