"""The staged helpers of ``parse/fields.py`` give exactly what the expressions they replace
give (they exist only for speed), on real header and time shapes and on mutated ones."""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from vpnsentry.parse.base import ParseContext
from vpnsentry.parse.fields import split_header_if_any
from vpnsentry.parse.syslog import split_header
from vpnsentry.parse.timeparse import iso_to_utc, parse_iso, plausible

NOW = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)

TIMES = [
    "2021-10-19T09:10:35+02:00",
    "2021-10-19 09:10:35",
    "2024-05-06 16:10:06.123456789Z",
    "2024-05-06T16:10:06-0700",
    "2024-05-06T16:10:06 -07",
    "2024-03-31 02:30:00",  # does not exist in Europe/Berlin
    "1989-12-31 23:59:59",  # before the plausible range
    "2024-13-40 12:00:05",
    "",
]
LINES = [
    '<134>id=firewall sn=0017C5A1B2C3 time="2024-05-06 08:01:12 UTC" fw=192.0.2.1 pri=6',
    '<134>  id=firewall sn=xxx time="2022-05-06 16:10:06" fw=192.168.255.6 pri=6',
    '10.0.0.1 id=firewall sn=123456789 time="2022-02-22 18:24:30 UTC"',
    'Jan  3 13:45:36 192.168.5.1 id=firewall sn=000SERIAL time="2007-01-03 14:48:06"',
    "<135> 01/16/2026:14:17:00 GMT gw-dmz-01 0-PPE-0 : default SSLVPN LOGIN 2345680 0 : x",
    "<135>2025/03/26:09:00:00 gw 0-PPE-0 : default SSLVPN LOGIN 7951 0 : User carol",
    "<135> default UI CMD_EXECUTED 8008 0 :  User nsroot",
    "Mar 26 09:00:01 relay-01 03/26/2025:09:00:01 GMT gw-dmz-01 0-PPE-0 : default AAA x",
    "<134>1 2021-10-19T09:10:35+02:00 10.5.2.3 PulseSecure: - - - 2021-10-19 09:10:35 - n",
    "<1234>id=firewall",
    "1 2021-10-19T09:10:35Z host app - - - id=firewall",
    "",
]
PLAIN = r"id=|(?:\d{2}/\d{2}/\d{4}|\d{4}/\d{2}/\d{2}):"


def _mutations(samples: list[str]) -> st.SearchStrategy[str]:
    pieces = st.sampled_from(["<", ">", "<13>", " ", "1 ", "Jan ", "2024-", "id=", "\t", "\u00a0"])

    @st.composite
    def build(draw: st.DrawFn) -> str:
        line = draw(st.sampled_from(samples))
        i = draw(st.integers(0, len(line)))
        return line[:i] + draw(pieces) + line[i + draw(st.integers(0, 3)) :]

    return build() | st.text(max_size=40)


def _iso_expected(values: list[str], tz: str) -> pl.Series:
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    return frame.select(plausible(parse_iso(pl.col("t"), tz), NOW)).to_series()


def test_iso_to_utc_matches_parse_iso_on_real_shapes() -> None:
    for tz in ("UTC", "Europe/Berlin", "Asia/Tokyo"):
        got = iso_to_utc(pl.Series("t", TIMES, dtype=pl.String), tz, NOW)
        assert_series_equal(got, _iso_expected(TIMES, tz), check_names=False)
    assert iso_to_utc(pl.Series("t", TIMES), "UTC", NOW)[0] == dt.datetime(
        2021, 10, 19, 7, 10, 35, tzinfo=dt.UTC
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(_mutations(TIMES), min_size=1, max_size=20))
def test_iso_to_utc_matches_parse_iso_on_mutations(values: list[str]) -> None:
    got = iso_to_utc(pl.Series("t", values, dtype=pl.String), "Europe/Berlin", NOW)
    assert_series_equal(got, _iso_expected(values, "Europe/Berlin"), check_names=False)


def _headers_agree(lines: list[str]) -> None:
    ctx = ParseContext(path="x", now=NOW, year=2026)
    series = pl.Series("l", lines, dtype=pl.String)
    expected = split_header(series, ctx)
    got = split_header_if_any(series, ctx, PLAIN)
    assert_frame_equal(got.select(expected.columns), expected)


def test_split_header_if_any_matches_split_header_on_real_lines() -> None:
    _headers_agree(LINES)


@settings(max_examples=60, deadline=None)
@given(st.lists(_mutations(LINES), min_size=1, max_size=20))
def test_split_header_if_any_matches_split_header_on_mutations(lines: list[str]) -> None:
    _headers_agree(lines)
