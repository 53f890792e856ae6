"""Vectorized syslog header splitting shared by every syslog-borne format.

Gateways reach us through many relays, so the same vendor message arrives with different
headers. We accept, with or without a leading ``<PRI>``:

* RFC 5424: ``<134>1 2021-10-19T09:16:53+02:00 host app procid msgid [sd] message``
* RFC 3164: ``Oct 10 12:34:56 host tag[pid]: message`` and its variants: year after the day
  (``Oct 10 2018 12:34:56``, Cisco's ``logging timestamp``), no host, ``host : message``
  (Cisco), fractional seconds, a trailing zone name (``UTC``/``JST``) ignored.
* rsyslog's RFC 3339 template: ``2026-04-03T00:31:09.97+00:00 host message``.
* No header at all (messages written straight to a file); then ``ts`` is null and the
  vendor parser takes the time from the message body.
"""

from __future__ import annotations

import polars as pl

from vpnsentry.parse.base import ParseContext
from vpnsentry.parse.timeparse import iso_to_utc, parse_bsd, plausible

_PRI = r"^(?:<(?P<pri>\d{1,3})>)?"
_RFC5424 = (
    r"1 (?P<ts5424>\S+) (?P<host5424>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) ?\ufeff?"
)
_BSD = (
    r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(?P<day>\d{1,2}) "
    r"(?:(?P<year>\d{4}) )?(?P<clock>\d{1,2}:\d{2}:\d{2}(?:\.\d{1,6})?)(?: [A-Z]{3,4})?:? "
)
_ISO = r"(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?) "
_HOST_TAG = (
    r"(?:(?P<host>[\w.\-:]*[\w.\-]) )?"
    r"(?:(?P<tag>[\w\-./]+)(?:\[(?P<pid>[^\]\s]*)\])?: |: )?"
)
#: The header only, anchored at the start: the regex engine stops where the header ends
#: instead of carrying capture state across the whole message (several times faster).
HEADER_RE = f"(?P<hdr>{_PRI}(?:{_RFC5424}|(?:{_BSD}|{_ISO}){_HOST_TAG})?)"

#: Columns produced by :func:`split_header`.
HEADER_COLUMNS = ("_sys_ts", "_sys_host", "_sys_app", "_sys_pid", "_sys_pri", "_body")


def split_header(lines: pl.Series, ctx: ParseContext) -> pl.DataFrame:
    """Split every line into syslog header fields and the message body.

    Returns a frame of ``len(lines)`` rows: ``_sys_ts`` (UTC, null when there is no header
    timestamp or it is impossible), ``_sys_host``, ``_sys_app``, ``_sys_pid``, ``_sys_pri``
    (Int32) and ``_body``. Lines that match no header keep their whole text as ``_body``.
    """
    # Extract once into columns: referencing struct fields of an extract_groups expression
    # would re-run the regex for every reference.
    h = (
        pl.DataFrame({"_line": lines})
        .with_columns(pl.col("_line").str.extract_groups(HEADER_RE).alias("_h"))
        .unnest("_h")
    )
    f = pl.col
    year = f("year").fill_null(pl.lit(str(ctx.year)))
    # In stages, each materialised once: as one expression, every reference to a part of
    # the ISO parse re-ran its regex (about 30 times per line with ``plausible``), which
    # was most of the header split's time. The header's ISO and BSD forms exclude each
    # other, so at most one of the two is set per line.
    iso = iso_to_utc(h.select(pl.coalesce(f("ts5424"), f("iso"))).to_series(), ctx.tz, ctx.now)
    h = h.with_columns(
        _iso_ts=iso,
        _bsd_ts=parse_bsd(f("mon"), f("day"), year, f("clock"), ctx.tz, ctx.now),
    )
    ts = pl.coalesce(f("_iso_ts"), plausible(f("_bsd_ts"), ctx.now))

    def nil_dash(e: pl.Expr) -> pl.Expr:  # RFC 5424 writes "-" for an absent field
        return pl.when(e != "-").then(e)

    return h.select(
        ts.alias("_sys_ts"),
        nil_dash(pl.coalesce(f("host5424"), f("host"))).alias("_sys_host"),
        nil_dash(pl.coalesce(f("app"), f("tag"))).alias("_sys_app"),
        nil_dash(pl.coalesce(f("procid"), f("pid"))).alias("_sys_pid"),
        f("pri").cast(pl.Int32, strict=False).alias("_sys_pri"),
        pl.col("_line").str.slice(pl.col("hdr").str.len_chars().fill_null(0)).alias("_body"),
    )
