"""The backend's SQL, judged by what it matches in DuckDB (never by its text).

Every modifier of the Sigma specification we claim, Sigma's case-insensitive default, the
negation of missing fields, and rule values full of quote, escape, LIKE and regex characters
that must match literally and never change the query.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sigma.conftest import matching, rules_from

HEAD = """title: t
id: 0b0a3a0e-6d0c-4f4e-9d4f-3c1d2b1a0f00
status: test
level: low
logsource:
    category: vpn
detection:
"""


def run(
    tmp: Path, detection: str, rows: list[dict[str, Any]], dataset: str = "events"
) -> list[int]:
    return matching(rules_from(tmp, HEAD + detection), rows, dataset)


MSG = [
    {"message": "User Admin logged in"},
    {"message": "user admin LOGGED out"},
    {"message": "admin"},
    {"message": None},
    {"message": "Administrator"},
]


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("    s:\n        message: admin\n    condition: s", [2]),
        ("    s:\n        message: ADMIN\n    condition: s", [2]),
        ("    s:\n        message|contains: admin\n    condition: s", [0, 1, 2, 4]),
        ("    s:\n        message|startswith: user\n    condition: s", [0, 1]),
        ("    s:\n        message|endswith: 'in'\n    condition: s", [0, 2]),
        ("    s:\n        message|contains|all: [admin, out]\n    condition: s", [1]),
        ("    s:\n        message: 'user*in'\n    condition: s", [0]),
        ("    s:\n        message: 'adm?n'\n    condition: s", [2]),
        ("    s:\n        message|cased: admin\n    condition: s", [2]),
        ("    s:\n        message|contains|cased: Admin\n    condition: s", [0, 4]),
        ("    s:\n        message|re: '^User .* (in|out)$'\n    condition: s", [0]),
        ("    s:\n        message|re|i: '^user .* (in|out)$'\n    condition: s", [0, 1]),
        ("    s:\n        message|exists: true\n    condition: s", [0, 1, 2, 4]),
        ("    s:\n        message|exists: false\n    condition: s", [3]),
        ("    s:\n        message: null\n    condition: s", [3]),
        # Sigma negation: the row without a message matches "not s".
        ("    s:\n        message|contains: admin\n    condition: not s", [3]),
        ("    s:\n        message: [admin, administrator]\n    condition: s", [2, 4]),
    ],
)
def test_string_modifiers(tmp_path: Path, detection: str, expected: list[int]) -> None:
    assert run(tmp_path, detection, MSG) == expected


def test_keywords_search_the_raw_line(tmp_path: Path) -> None:
    rows = [{"event.original": "x no logging enable y"}, {"event.original": "logging"}]
    assert run(tmp_path, "    k:\n        - 'NO LOGGING'\n    condition: k", rows) == [0]


PORTS = [{"destination.port": p} for p in (22, 443, 3389, 8080)] + [{"destination.port": None}]


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("    s:\n        destination.port: 443\n    condition: s", [1]),
        ("    s:\n        destination.port: '3389'\n    condition: s", [2]),
        ("    s:\n        destination.port: [22, 8080]\n    condition: s", [0, 3]),
        ("    s:\n        destination.port|gt: 443\n    condition: s", [2, 3]),
        ("    s:\n        destination.port|gte: 443\n    condition: s", [1, 2, 3]),
        ("    s:\n        destination.port|lt: 443\n    condition: s", [0]),
        ("    s:\n        destination.port|lte: 443\n    condition: s", [0, 1]),
        ("    s:\n        destination.port|startswith: '33'\n    condition: s", [2]),
        ("    s:\n        destination.port|gte: 443\n    condition: not s", [0, 4]),
    ],
)
def test_numbers_and_comparisons(tmp_path: Path, detection: str, expected: list[int]) -> None:
    assert run(tmp_path, detection, PORTS) == expected


def test_compare_on_a_text_column_is_numeric(tmp_path: Path) -> None:
    rows = [{"event.code": "9"}, {"event.code": "10"}, {"event.code": "abc"}]
    assert run(tmp_path, "    s:\n        event.code|gt: 9\n    condition: s", rows) == [1]


IPS = [
    {"source.ip": "10.1.2.3"},
    {"source.ip": "192.0.2.7"},
    {"source.ip": "10.255.255.255"},
    {"source.ip": "11.0.0.0"},
    {"source.ip": "2001:db8::5"},
    {"source.ip": "not an ip"},
]


@pytest.mark.parametrize(
    ("detection", "expected"),
    [
        ("    s:\n        source.ip|cidr: 10.0.0.0/8\n    condition: s", [0, 2]),
        ("    s:\n        source.ip|cidr: [10.0.0.0/8, 192.0.2.0/24]\n    condition: s", [0, 1, 2]),
        ("    s:\n        source.ip|cidr: 2001:db8::/32\n    condition: s", [4]),
        ("    s:\n        source.ip|cidr: 10.0.0.0/8\n    condition: not s", [1, 3, 4, 5]),
    ],
)
def test_cidr(tmp_path: Path, detection: str, expected: list[int]) -> None:
    assert run(tmp_path, detection, IPS) == expected


def test_fieldref(tmp_path: Path) -> None:
    rows = [
        {"user.name": "bob", "host.hostname": "BOB"},
        {"user.name": "bob", "host.hostname": "bob-laptop"},
        {"user.name": "eve", "host.hostname": "bob"},
    ]
    assert run(
        tmp_path, "    s:\n        user.name|fieldref: host.hostname\n    condition: s", rows
    ) == [0]
    det = "    s:\n        host.hostname|fieldref|startswith: user.name\n    condition: s"
    assert run(tmp_path, det, rows) == [0, 1]


def test_base64_and_base64offset(tmp_path: Path) -> None:
    import base64

    secret = base64.b64encode(b"xxpowershell -enc").decode()
    rows = [{"message": f"GET /?q={secret}"}, {"message": "powershell"}]
    det = "    s:\n        message|base64offset|contains: powershell\n    condition: s"
    assert run(tmp_path, det, rows) == [0]
    plain = base64.b64encode(b"powershell").decode()
    rows = [{"message": plain}, {"message": "powershell"}]
    assert run(tmp_path, "    s:\n        message|base64: powershell\n    condition: s", rows) == [
        0
    ]


def test_windash(tmp_path: Path) -> None:
    rows = [{"message": "net user -add"}, {"message": "net user /add"}, {"message": "net user add"}]
    det = "    s:\n        message|windash|contains: ' -add'\n    condition: s"
    assert run(tmp_path, det, rows) == [0, 1]


def test_one_of_and_all_of_conditions(tmp_path: Path) -> None:
    rows = [{"user.name": "a", "source.ip": "192.0.2.1"}, {"user.name": "a"}, {"user.name": "b"}]
    det = (
        "    sel_user:\n        user.name: a\n    sel_ip:\n        source.ip|exists: true\n"
        "    condition: all of sel_*"
    )
    assert run(tmp_path, det, rows) == [0]
    det = det.replace("all of", "1 of")
    assert run(tmp_path, det, rows) == [0, 1]


HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash",
    "100%",
    "snake_case",
    "a.b*c?d",
    "(x|y)[z]{2}$^",
    "'; DROP TABLE events; --",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_match_literally(tmp_path: Path, value: str) -> None:
    decoys = ["its", "say hi", "backslash", "1000", "snakeXcase", "a.bxc.d", "x", "", "anything"]
    rows = [{"message": value}] + [{"message": d} for d in decoys if d != value]
    quoted = "'" + value.replace("'", "''") + "'"
    # Sigma escapes its own wildcards with a backslash: * ? and \ itself.
    sigma_value = value.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    sigma_quoted = "'" + sigma_value.replace("'", "''") + "'"
    assert run(tmp_path, f"    s:\n        message: {sigma_quoted}\n    condition: s", rows) == [0]
    det = f"    s:\n        message|contains: {sigma_quoted}\n    condition: s"
    assert run(tmp_path, det, rows) == [0]
    det = f"    s:\n        message|re: {quoted}\n    condition: s"
    rs = rules_from(tmp_path, HEAD + det)
    # A value that is not a valid RE2 pattern is skipped with the reason, never run.
    if rs.rules:
        matching(rs, rows)
    else:
        assert "does not compile" in rs.entries[0].reason


def test_hostile_regex_is_confined_to_its_literal(tmp_path: Path) -> None:
    rows = [{"message": "a'b"}, {"message": "ab"}]
    assert run(tmp_path, '    s:\n        message|re: "a\'b"\n    condition: s', rows) == [0]
