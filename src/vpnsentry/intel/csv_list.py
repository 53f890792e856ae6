"""CSV indicator lists, as SOCs keep them in a spreadsheet or export them from a TIP.

A header names the columns, in any order and case: ``value`` and ``type`` are required;
``source``, ``confidence``, ``valid_from``, ``valid_until``, ``description`` are optional
(other columns are ignored). Types: ``ip`` (an address), ``cidr``, ``domain``, ``url``,
``hash`` (MD5, SHA-1 or SHA-256 by length), or the exact names ``ipv4``, ``ipv6``, ``md5``,
``sha1``, ``sha256``. Lines starting with ``#`` (before or after the header) and blank lines
are ignored; a UTF-8 byte order mark is dropped; fields are quoted as RFC 4180 says (a value
with a comma is in double quotes, ``""`` is a quote). A row with the wrong number of fields
is skipped with its line number.
"""

from __future__ import annotations

import csv
import io
from typing import Final

from vpnsentry.intel.model import Feed, Indicator, Skipped, confidence, parse_time

REQUIRED: Final = ("value", "type")
OPTIONAL: Final = ("source", "confidence", "valid_from", "valid_until", "description")


def looks_like(text: str) -> bool:
    """The first line that is not a comment is a header naming ``value`` and ``type``."""
    for line in text.lstrip("\ufeff").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            names = {c.strip().lower() for c in next(csv.reader([line]), [])}
            return set(REQUIRED) <= names
    return False


def read(text: str, default_source: str, feed_name: str) -> Feed:
    """Every row of the list: an indicator, or skipped with its line number and why."""
    feed = Feed("csv")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=False)
    header: list[str] | None = None
    try:
        for row in reader:
            line = f"line {reader.line_num}"
            if not any(c.strip() for c in row):
                feed.ignore("blank line")
                continue
            if row[0].lstrip().startswith("#"):
                feed.ignore("comment")
                continue
            if header is None:
                header = [c.strip().lower() for c in row]
                missing = [c for c in REQUIRED if c not in header]
                if missing:
                    raise ValueError(f"{line}: header lacks {', '.join(missing)}")
                continue
            if len(row) != len(header):
                reason = f"{len(row)} fields, the header has {len(header)}"
                feed.skipped.append(Skipped(line, ",".join(row)[:200], reason))
                continue
            _row(dict(zip(header, row, strict=True)), line, default_source, feed_name, feed)
    except csv.Error as exc:
        feed.skipped.append(Skipped(f"line {reader.line_num}", "", f"CSV error: {exc}"))
    if header is None:
        raise ValueError("no header line naming the value and type columns")
    return feed


def _row(r: dict[str, str], line: str, default: str, feed_name: str, feed: Feed) -> None:
    value = r["value"].strip()
    try:
        ind = Indicator(
            type=r["type"].strip().lower(),
            value=value,
            source=r.get("source", "").strip() or default,
            feed=feed_name,
            confidence=confidence(r.get("confidence")),
            valid_from=parse_time(r.get("valid_from")),
            valid_until=parse_time(r.get("valid_until")),
            description=r.get("description", "").strip() or None,
            ref=line,
        )
    except ValueError as exc:
        feed.skipped.append(Skipped(line, value, str(exc)))
        return
    feed.indicators.append(ind)
