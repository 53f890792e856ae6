"""The registry: every format is registered, documented, and recognised by content only.

Each parser must win sniffing on its own golden files and lose on every other format's,
so that `--format auto` never hands a file to the wrong parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import GOLDEN
from vpnsentry.parse.base import registry
from vpnsentry.parse.sniff import sniff

CASES = sorted((GOLDEN / "parse").glob("*/*.log"))


def test_parsers_declare_what_the_cli_shows() -> None:
    for name, cls in registry().items():
        assert cls.name == name
        assert name.isidentifier() and name == name.lower()
        assert cls.title and cls.vendor and cls.product and cls.sample
        assert set(cls.datasets) <= {"events", "flows"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_sniff_picks_the_owner(case: Path) -> None:
    if case.stem.startswith("bad") or "sniff-skip" in case.stem:
        pytest.skip("deliberately broken file")
    got = sniff(case.read_bytes()[:65536])
    assert got.parser is not None, f"nothing recognised {case}"
    assert got.parser.name == case.parent.name, got.scores


def test_sniff_gives_up_on_text_that_is_no_log() -> None:
    prose = b"It was a bright cold day in April, and the clocks were striking thirteen.\n" * 5
    assert sniff(prose).parser is None
    assert sniff(bytes(range(256)) * 8).parser is None
