"""Vendor version schemes: tricky orderings as the vendors define them, and ordering laws."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpnsentry.posture.versions import SCHEMES, Version, parse


def v(scheme: str, text: str) -> Version:
    parsed = parse(scheme, text)
    assert parsed is not None, f"{text!r} should parse as {scheme}"
    return parsed


# Each row: scheme, older, newer (strictly).
ORDERED = [
    ("fortios", "7.0.9", "7.0.12"),  # numeric, not text: 9 < 12
    ("fortios", "7.0.12", "7.2.0"),
    ("fortios", "v7.2.3", "v7.2.4,build1396,230131 (GA.F)"),
    ("fortios", "6.4.15", "FortiGate-60F v7.0.1,build0157"),
    ("panos", "10.2.9", "10.2.9-h1"),  # a hotfix orders after its base release
    ("panos", "10.2.9-h1", "10.2.9-h3"),
    ("panos", "10.2.9-h3", "10.2.10"),  # ... and before the next maintenance release
    ("panos", "10.2.9-h16", "10.2.10"),
    ("asa", "9.16(4)", "9.16(4)48"),  # interim builds after the maintenance release
    ("asa", "9.16(4)9", "9.16(4)48"),
    ("asa", "9.16.4.48", "9.18(1)"),
    ("asa", "9.8(4)", "9.16(1)"),  # train 16 > 8 numerically
    ("dotted", "7.0.6", "7.0.6.1"),  # FTD patch release
    ("dotted", "7.0.6.1", "7.2.0"),
    ("ivanti", "22.7R2", "22.7R2.3"),
    ("ivanti", "22.7R2.3", "22.7R2.4"),
    ("ivanti", "9.1R18", "9.1R18.2"),
    ("ivanti", "9.1R9", "9.1R18"),  # R9 < R18 numerically
    ("ivanti", "9.1R18.2", "22.7R1"),
    ("ivanti", "9.1", "9.1R1"),  # a bare train sorts before its first release
    ("citrix", "13.1-49.13", "13.1-49.15"),
    ("citrix", "13.1-9.60", "13.1-49.13"),  # build 9 < 49
    ("citrix", "13.0-92.19", "13.1-4.43"),
    ("citrix", "NS13.1 49.13", "13.1 Build 58.32"),
    ("sonicwall", "7.0.1-5035", "7.0.1-5038"),
    ("sonicwall", "7.0.1-5035", "7.1.1-7040"),
    ("sonicwall", "6.5.4.14-109n", "6.5.4.15-116n"),
    ("sonicwall", "10.2.1.2-24sv", "10.2.1.9-57sv"),
    ("sonicwall", "10.2.1.9-57sv", "10.2.1.10-62sv"),
    ("sonicwall", "12.4.3-02804 (platform-hotfix)", "12.4.3-02854"),
    ("checkpoint", "R80.40", "R81"),
    ("checkpoint", "R81", "R81.10"),
    ("checkpoint", "R81.10", "R81.20"),
    ("checkpoint", "R81.20", "R81.20 Take 54"),
    ("checkpoint", "R81.20 JHF Take 54", "R81.20 Jumbo Hotfix Take 92"),
]


@pytest.mark.parametrize(("scheme", "older", "newer"), ORDERED)
def test_vendor_ordering(scheme: str, older: str, newer: str) -> None:
    a, b = v(scheme, older), v(scheme, newer)
    assert a < b and b > a and a <= b and not b <= a and a != b


@pytest.mark.parametrize(
    ("scheme", "one", "other"),
    [
        ("asa", "9.16(4)48", "9.16.4.48"),  # show version vs advisory spelling
        ("asa", "9.16(4.48)", "9.16.4.48"),  # interim written in the parentheses
        ("fortios", "v7.2.4,build1396", "7.2.4"),  # the build is not part of the order
        ("panos", "10.2.9-h0", "10.2.9"),
        ("checkpoint", "R81", "R81.00"),
        ("citrix", "NS13.1: Build 49.15.nc", "13.1-49.15"),
    ],
)
def test_same_release_spelt_differently(scheme: str, one: str, other: str) -> None:
    assert v(scheme, one) == v(scheme, other)


@pytest.mark.parametrize(
    ("scheme", "text"),
    [
        ("fortios", "seven"),
        ("fortios", ""),
        ("fortios", "7"),
        ("panos", "10.2.9-hotfix"),
        ("asa", "9.16(4"),
        ("ivanti", "22.7R"),
        ("citrix", "13.1-49.15-extra"),
        ("checkpoint", "81.20"),
        ("sonicwall", "7.0.1-"),
        ("fortios", "7.0.12\x1b[31m"),
    ],
)
def test_not_understood(scheme: str, text: str) -> None:
    assert parse(scheme, text) is None


def test_incomplete_versions_are_flagged() -> None:
    assert not v("fortios", "7.0").complete
    assert v("fortios", "7.0.12").complete
    assert not v("ivanti", "22.7").complete
    assert v("ivanti", "22.7R2").complete
    assert v("checkpoint", "R81").complete


def test_train_and_cross_scheme_compare() -> None:
    assert v("fortios", "7.0.12").train == (7, 0)
    assert v("sonicwall", "7.1.1-7058").train == (7, 1, 1)
    with pytest.raises(TypeError):
        _ = v("fortios", "7.0.12") < v("panos", "7.0.12")


# -- properties: parse(render(key)) orders exactly as the key, so the laws hold ------------

n = st.integers(min_value=0, max_value=120)


def render(scheme: str, parts: tuple[int, ...]) -> str:
    a, b, c, d, e = parts
    return {
        "fortios": f"{a}.{b}.{c}",
        "panos": f"{a}.{b}.{c}-h{d}" if d else f"{a}.{b}.{c}",
        "asa": f"{a}.{b}({c}){d}" if e % 2 else f"{a}.{b}.{c}.{d}",
        "dotted": f"{a}.{b}.{c}.{d}",
        "ivanti": f"{a}.{b}R{c}.{d}",
        "citrix": f"{a}.{b}-{c}.{d}",
        "sonicwall": f"{a}.{b}.{c}.{d}-{e}sv",
        "checkpoint": f"R{a}.{b} Take {c}",
    }[scheme]


versions = st.tuples(st.sampled_from(sorted(SCHEMES)), st.tuples(n, n, n, n, n))


def _pair(x: tuple[str, tuple[int, ...]]) -> Version:
    return v(x[0], render(*x))


@settings(max_examples=60)
@given(st.sampled_from(sorted(SCHEMES)), st.lists(st.tuples(n, n, n, n, n), min_size=3, max_size=3))
def test_ordering_laws(scheme: str, raw: list[tuple[int, ...]]) -> None:
    a, b, c = (v(scheme, render(scheme, p)) for p in raw)
    # antisymmetry
    if a <= b and b <= a:
        assert a == b
    # transitivity
    if a <= b and b <= c:
        assert a <= c
    # totality and consistency of the operators
    assert (a < b) + (a == b) + (a > b) == 1
    assert (a <= b) == (not a > b)


@settings(max_examples=60)
@given(versions)
def test_round_trip(x: tuple[str, tuple[int, ...]]) -> None:
    ver = _pair(x)
    assert parse(ver.scheme, ver.text) == ver
    assert ver.complete


@settings(max_examples=60)
@given(st.sampled_from(sorted(SCHEMES)), st.text(max_size=40))
def test_arbitrary_text_never_crashes(scheme: str, text: str) -> None:
    got = parse(scheme, text)
    assert got is None or got.scheme == scheme
