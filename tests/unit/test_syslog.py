"""The shared syslog header splitter, over the header variants seen in the wild."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from tests.conftest import make_ctx
from vpnsentry.parse.syslog import split_header

UTC = dt.UTC


@pytest.mark.parametrize(
    ("line", "ts", "host", "app", "body"),
    [
        (
            "Oct 10 2018 12:34:56 localhost CiscoASA[999]: %ASA-4-113029: x",
            dt.datetime(2018, 10, 10, 12, 34, 56, tzinfo=UTC),
            "localhost",
            "CiscoASA",
            "%ASA-4-113029: x",
        ),
        (
            "Oct 10 12:34:56 %ASA-6-302013: Built",
            dt.datetime(2026, 10, 10, 12, 34, 56, tzinfo=UTC),
            None,
            None,
            "%ASA-6-302013: Built",
        ),
        (
            "Jun  5 10:00:00 asa01 : %ASA-6-302013: Built",
            dt.datetime(2026, 6, 5, 10, 0, 0, tzinfo=UTC),
            "asa01",
            None,
            "%ASA-6-302013: Built",
        ),
        (
            "<134>1 2021-10-19T09:16:53+02:00 10.5.2.3 PulseSecure - - - msg",
            dt.datetime(2021, 10, 19, 7, 16, 53, tzinfo=UTC),
            "10.5.2.3",
            "PulseSecure",
            "msg",
        ),
        (
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
            '[exampleSDID@32473 iut="3" eventSource="App"] \ufeffAn application event',
            dt.datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC),
            "mymachine.example.com",
            "evntslog",
            "An application event",
        ),
        (
            "2026-04-03T00:31:09.976660+00:00 192.168.2.1 date=2026-04-02 time=17:31:09",
            dt.datetime(2026, 4, 3, 0, 31, 9, 976660, tzinfo=UTC),
            "192.168.2.1",
            None,
            "date=2026-04-02 time=17:31:09",
        ),
        (
            "date=2019-05-10 time=11:50:48 logver=56",
            None,
            None,
            None,
            "date=2019-05-10 time=11:50:48 logver=56",
        ),
        (
            "<190>Oct 10 2018 12:34:56 host %FTD-6-113019: x",
            dt.datetime(2018, 10, 10, 12, 34, 56, tzinfo=UTC),
            "host",
            None,
            "%FTD-6-113019: x",
        ),
    ],
)
def test_header_variants(
    line: str, ts: dt.datetime | None, host: str | None, app: str | None, body: str
) -> None:
    row = split_header(pl.Series([line]), make_ctx()).row(0, named=True)
    assert row["_sys_ts"] == ts
    assert row["_sys_host"] == host
    assert row["_sys_app"] == app
    assert row["_body"] == body


def test_year_rollover_and_impossible_dates() -> None:
    # The test clock is 2026-11-30: a December line without a year is last December.
    rows = split_header(
        pl.Series(
            ["Dec 31 23:59:59 gw x: a", "Feb 30 10:00:00 gw x: b", "Nov 30 10:00:00 gw x: c"]
        ),
        make_ctx(),
    )["_sys_ts"].to_list()
    assert rows[0] == dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert rows[1] is None
    assert rows[2] == dt.datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_zone_less_times_use_tz() -> None:
    row = split_header(pl.Series(["Jul  1 09:00:00 gw x: a"]), make_ctx(tz="Asia/Tokyo"))
    assert row["_sys_ts"][0] == dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
