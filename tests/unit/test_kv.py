"""The compiled key=value tokenizer against a plain Python reading of the same rules."""

from __future__ import annotations

import re

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import GOLDEN
from tests.helpers import read_lines
from vpnsentry.parse import kv

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def reference(
    line: str, wanted: set[str], quotes: bytes = b'"', escapes: bool = True
) -> dict[str, str]:
    """The tokenizer's documented rules, one character at a time."""
    data = line.encode()
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    p = 0
    if m := re.match(rb"<\d{1,3}>", data[:end]):
        p = m.end()
    out: dict[str, str] = {}
    at_word = True
    while p < end:
        if data[p] in b" \t":
            p += 1
            at_word = True
            continue
        m = _KEY.match(data[p:end].decode("utf-8", "surrogateescape")) if at_word else None
        q = p + len(m.group().encode("utf-8", "surrogateescape")) if m else p
        if m and q < end and data[q] == ord("="):
            v = q + 1
            if v < end and data[v] in quotes:
                r = v + 1
                while r < end and data[r] != data[v]:
                    r += 2 if escapes and data[r] == ord("\\") else 1
                value, nxt = data[v + 1 : min(r, end)], min(r + 1, end)
            else:
                r = v
                while r < end and data[r] not in b" \t\r" + quotes:
                    r += 1
                value, nxt = data[v:r], r
            key = m.group()
            if key in wanted and len(key) <= 64:
                out.setdefault(key, value.decode())
            p, at_word = nxt, False
            continue
        while p < end and data[p] not in b" \t":
            p += 1
        at_word = False
    return out


def check(lines: list[str], keys: list[str], quotes: str = '"', escapes: bool = True) -> None:
    keyset = kv.KeySet(keys, quotes=quotes, escapes=escapes)
    got = kv.extract(pl.Series(lines, dtype=pl.String), keyset).to_dicts()
    for line, row in zip(lines, got, strict=True):
        want = reference(line, set(keys), quotes.encode(), escapes)
        assert {k: v for k, v in row.items() if v is not None} == want, line


KEYS = ["date", "time", "srcip", "user", "msg", "a", "b.c", "x-y", "_z", "tz", "k1"]


_PIECES = [*" =\"\\<>\r\t'", "date", "srcip", "user", "a", "b.c", "tz", "k1", *"xyz019._-é€"]
_PIECES += ["\U0001f600", '="', '" ']


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
        min_size=1,
        max_size=20,
    )
)
def test_matches_the_reference_on_random_lines(lines: list[str]) -> None:
    check(lines, KEYS)
    check(lines, KEYS, quotes="\"'", escapes=False)


def test_traps_quotes_and_first_occurrence() -> None:
    lines = [
        '<190>date=1 a="x srcip=1.2.3.4" srcip=5.6.7.8 msg="he \\"q\\" x" tz=1 tz=2',
        'junk srcip=9 user="unterminated srcip=7',
        'text-with-equals=1 a=b=c b.c= _z="" x-y=é€\r',
        "<1234>date=5",  # not a PRI: the word '<1234>date=5' is no key
        "",
    ]
    got = kv.extract(pl.Series(lines), kv.KeySet(KEYS)).to_dicts()
    assert got[0]["srcip"] == "5.6.7.8" and got[0]["a"] == "x srcip=1.2.3.4"
    assert got[0]["msg"] == 'he \\"q\\" x' and got[0]["tz"] == "1"
    assert got[1]["srcip"] == "9" and got[1]["user"] == "unterminated srcip=7"
    assert (got[2]["a"], got[2]["b.c"], got[2]["_z"], got[2]["x-y"]) == ("b=c", "", "", "é€")
    assert got[3]["date"] is None
    assert all(v is None for v in got[4].values())
    check(lines, KEYS)


def test_null_lines_and_long_values() -> None:
    long = "v" * 5000
    lines = pl.Series([f"user={long} srcip=1", None, "srcip=2"], dtype=pl.String)
    got = kv.extract(lines, kv.KeySet(["user", "srcip"])).to_dicts()
    assert got == [
        {"user": long, "srcip": "1"},
        {"user": None, "srcip": None},
        {"user": None, "srcip": "2"},
    ]


def test_golden_key_value_lines() -> None:
    """Every real FortiGate and SonicWall golden line, with every key it writes."""
    lines = [
        ln
        for name in ("fortinet_fortigate", "sonicwall_firewall")
        for case in sorted((GOLDEN / "parse" / name).glob("*.log"))
        for ln in read_lines(case)
    ]
    keys = sorted({m for ln in lines for m in re.findall(r"([A-Za-z_][\w.-]*)=", ln)})[:500]
    check(lines, keys)
    check(lines, keys, quotes="\"'", escapes=False)
