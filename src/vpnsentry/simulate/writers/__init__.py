"""Writers: event frames to the exact lines each device (or collector) writes.

One module per output format, named after the parser that reads it back, so the format strings
sit next to nothing but themselves. Every writer returns a frame of ``_order`` (when the line
reaches the file: the collector's arrival time, or the end of a flow for Zeek/NetFlow),
``line`` and ``tag`` (the attack step the line evidences, -1 when benign). ``syslog.py`` holds
the framing shared by the syslog-borne formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

#: Columns every writer returns.
LINE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "_order": pl.Int64(),
    "line": pl.String(),
    "tag": pl.Int32(),
}


@dataclass(frozen=True)
class Device:
    """A log source as the writers need it: names, addresses, clock and framing.

    ``skew_us`` is how far the device's clock is off (its own timestamps are true time plus
    skew); ``tz`` is the zone of its clock for formats that print local time.
    """

    id: str
    hostname: str
    ip: str  # the address the collector sees it send from
    tz: str
    skew_us: int
    header: str = "rfc3339"
    serial: str = ""
    outside: str = ""
    management: str = ""
    vendor: str = ""
