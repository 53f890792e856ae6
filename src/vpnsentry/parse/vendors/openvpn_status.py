"""OpenVPN 2.x server status file (``--status FILE N --status-version 1|2|3``).

The status file is OpenVPN's own list of the clients connected right now. Versions, all as
a real 2.6 server writes them (see ``tests/fixtures/openvpn/capture.sh``):

* 1 (the default): ``OpenVPN CLIENT LIST`` / ``Updated,<time>`` / ``Common Name,Real
  Address,Bytes Received,Bytes Sent,Connected Since`` / one row per client / ``ROUTING
  TABLE`` / ``Virtual Address,Common Name,Real Address,Last Ref`` / rows / ``GLOBAL STATS`` /
  ``Max bcast/mcast queue length,N`` / ``END``. Times are local wall time without a zone
  (``2026-11-30 04:53:52``; OpenVPN 2.4 and older wrote ``Mon Nov 30 04:53:52 2026``).
* 2: every row tagged: ``TITLE,<version>``, ``TIME,<local time>,<epoch>``,
  ``HEADER,CLIENT_LIST,<column names>``, ``CLIENT_LIST,...``, ``HEADER,ROUTING_TABLE,...``,
  ``ROUTING_TABLE,...``, ``GLOBAL_STATS,...``, ``END``.
* 3: version 2 with TAB instead of comma (so a comma inside a name cannot shift columns).

What becomes of each row:

* A client row (``CLIENT_LIST`` or a version-1 client row) is one event: ``event.kind``
  ``state`` and ``event.action`` ``session-status``, one per connected client per snapshot.
  ``@timestamp`` is the snapshot's ``TIME``/``Updated`` time (kept in ``ctx.state`` across
  chunks), ``event.start`` the client's ``Connected Since``. ``user.name`` is the
  ``Username`` column when the client authenticated with one, else the certificate
  ``Common Name`` (``UNDEF`` means a client still in its TLS handshake: no name).
  ``source.ip``/``source.port`` the client's real address, ``vpn.tunnel_ip`` its ``Virtual
  Address`` (IPv4, else ``Virtual IPv6 Address``), ``vpn.session_id`` the ``Client ID``.
* Bytes: OpenVPN counts them at the server's socket for that client (``link_read_bytes`` and
  ``link_write_bytes`` in ``multi.c``; encrypted, with protocol overhead). ``Bytes
  Received`` is what the server read from the client, so it is the client-to-server
  direction: ``source.bytes`` (the client is the ECS source). ``Bytes Sent`` is
  ``destination.bytes``; ``network.bytes`` their sum.
* Routing rows are ignored: what a detection needs from them, which tunnel address belongs to
  which client, is folded into the client events (version 1 has no ``Virtual Address``
  column, so its client rows take the address from the routing rows of the same snapshot
  in the same chunk; status files are a few hundred lines, one chunk). Lost on purpose:
  ``--iroute`` subnets behind site-to-site clients and ``Last Ref``.
* Titles, headers, ``TIME``/``Updated``, section markers, ``GLOBAL_STATS`` and ``END`` are
  ignored rows; a ``TIME``/``Updated`` row whose time is unreadable is quarantined
  (``bad_timestamp``), and so are the client rows of that snapshot. A client row with fewer
  fields than its header is ``truncated``.
* Times: versions 2 and 3 give Unix seconds beside each local time, and those are used;
  version 1 has only local wall time, read in ``ctx.tz`` (``event.timezone`` says so).

Idempotent ingestion: OpenVPN rewrites this file in place every N seconds (seek to 0,
write, truncate). The same path and byte offsets therefore hold a different snapshot each
time, and every snapshot is a new observation, not a duplicate of the last. A reader that
keys "already ingested" on path plus byte range would drop all later snapshots; the natural
identity of a row is (observer, snapshot ``TIME``, client). A read racing a rewrite can see
a torn file (end of the old snapshot after a shorter new one); such rows still carry the
snapshot time of the header they follow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import polars as pl

from vpnsentry.ecs import UTC_TS
from vpnsentry.parse.base import ParseContext, Parser, ParseResult, Reason, register
from vpnsentry.parse.fields import canonical_ip
from vpnsentry.parse.timeparse import parse_naive, plausible

_V23: Final = (
    "Common Name",
    "Real Address",
    "Virtual Address",
    "Bytes Received",
    "Bytes Sent",
    "Connected Since",
    "Connected Since (time_t)",
    "Username",
)
_V24: Final = (
    *_V23[:3],
    "Virtual IPv6 Address",
    *_V23[3:],
    "Client ID",
    "Peer ID",
)
#: Column names of a CLIENT_LIST row after its tag, by field count, for rows met without
#: their ``HEADER`` row. 2.3 and 2.6 are the releases' own format strings; 2.4 is 2.6
#: without the cipher column (added in 2.5).
CLIENT_LAYOUTS: Final[dict[int, tuple[str, ...]]] = {
    len(cols): cols for cols in (_V23, _V24, (*_V24, "Data Channel Cipher"))
}
#: The layout of the newest release, for rows matching no known count.
LATEST: Final = max(CLIENT_LAYOUTS)

#: Client row fields we use: our short name -> OpenVPN's column name.
CLIENT_FIELDS: Final = {
    "cn": "Common Name",
    "real": "Real Address",
    "vaddr": "Virtual Address",
    "vaddr6": "Virtual IPv6 Address",
    "brecv": "Bytes Received",
    "bsent": "Bytes Sent",
    "since": "Connected Since",
    "since_epoch": "Connected Since (time_t)",
    "username": "Username",
    "client_id": "Client ID",
}


def addresses(values: pl.Series) -> tuple[pl.Series, pl.Series, int]:
    """Canonical IP, port (Int32) and the count of values dropped as invalid, for addresses as
    OpenVPN prints them.

    ``[AF_INET]198.51.100.7:1194`` and ``[AF_INET6]2001:db8::7:1194`` (a socket address:
    the port follows the last colon), or the client form of status files and log prefixes
    (``198.51.100.7:1194``; an IPv6 client is printed without port, ``2001:db8::7``, because
    "v6addr:port" would be ambiguous, as ``mroute.c`` says). Like :func:`canonical_ip`, works
    on the distinct values.
    """
    text = values.cast(pl.String).alias("a")
    a = pl.col("a")
    distinct = (
        pl.DataFrame({"a": text.unique().drop_nulls()})
        .with_columns(
            a.str.strip_prefix("[AF_INET]").str.strip_prefix("[AF_INET6]").alias("bare"),
            (a.str.starts_with("[AF_INET") | a.str.contains(".", literal=True)).alias("with_port"),
        )
        .with_columns(
            pl.when("with_port").then(pl.col("bare").str.extract(r":(\d{1,5})$", 1)).alias("p")
        )
        .with_columns(
            pl.when(pl.col("p").is_not_null())
            .then(pl.col("bare").str.head(-(pl.col("p").str.len_chars().cast(pl.Int64) + 1)))
            .otherwise(pl.col("bare"))
            .alias("ip_text"),
            pl.col("p").cast(pl.Int32, strict=False).alias("port"),
        )
    )
    ip, _ = canonical_ip(distinct["ip_text"])
    port = pl.col("port")
    distinct = distinct.with_columns(
        ip.alias("ip"),
        pl.when(port <= 65535).then(port).alias("port"),
        (ip.is_null().cast(pl.Int32) + (port > 65535).fill_null(False).cast(pl.Int32)).alias("bad"),
    )
    out = pl.DataFrame({"a": text}).join(distinct, on="a", how="left", maintain_order="left")
    return out["ip"].rename(values.name), out["port"], int(out["bad"].sum())


def ctime_or_iso(text: pl.Expr, tz: str) -> pl.Expr:
    """Local wall time as OpenVPN writes it: ``2026-11-30 04:53:52`` (2.5+) or the ``ctime``
    form ``Mon Nov  3 04:53:52 2026`` of 2.4 and older, read in ``tz`` (it carries none). The
    weekday is skipped, not checked."""
    return pl.coalesce(
        parse_naive(text, "%Y-%m-%d %H:%M:%S", tz),
        parse_naive(text.str.slice(4), "%b %e %H:%M:%S %Y", tz),
    )


def epoch_seconds(text: pl.Expr) -> pl.Expr:
    """UTC time from whole Unix seconds (the ``(time_t)`` columns); null if not a number."""
    secs = text.cast(pl.Int64, strict=False)
    return (secs * 1_000_000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(UTC_TS)


def client_columns(fields: pl.Expr, names: tuple[str, ...] | None) -> dict[str, pl.Expr]:
    """Our client fields (see :data:`CLIENT_FIELDS`) from a list column of row fields.

    ``fields`` starts after any ``CLIENT_LIST`` tag. ``names`` are the columns of the row's
    header; None means a version-1 row (five fields). When a row has more fields than its
    header, the extra separators are taken to be inside the common name (the first column,
    and the only free text OpenVPN prints before the numbers).
    """
    n = fields.list.len().cast(pl.Int64)
    if names is None:
        extra = n - 5
        idx = {"real": 1, "brecv": 2, "bsent": 3, "since": 4}
    else:
        extra = n - len(names)
        idx = {k: names.index(col) for k, col in CLIENT_FIELDS.items() if col in names}
        idx.pop("cn", None)
    extra = pl.when(extra > 0).then(extra).otherwise(0)
    out = {
        "cn": fields.list.slice(0, extra + 1).list.join(","),
    }
    for key in CLIENT_FIELDS:
        if key == "cn":
            continue
        out[key] = (
            fields.list.get(extra + idx[key], null_on_oob=True)
            if key in idx
            else pl.lit(None, pl.String)
        )
    return out


#: ECS columns of a session-status event (besides ``@timestamp`` and the constants).
SESSION_COLUMNS: Final = (
    "user.name",
    "source.ip",
    "source.port",
    "source.bytes",
    "destination.bytes",
    "network.bytes",
    "vpn.tunnel_ip",
    "vpn.session_id",
    "event.start",
    "event.kind",
    "event.category",
    "event.type",
    "event.action",
)


def session_status(rows: pl.DataFrame, tz: str, now: dt.datetime) -> tuple[pl.DataFrame, int]:
    """``rows`` (client fields by our short names) plus :data:`SESSION_COLUMNS`.

    Shared by the status-file parser and the log parser (a server writes the same list into
    its log on SIGUSR2). Also returns the number of values dropped as invalid.
    """
    unnamed = ["", "UNDEF"]
    df = rows.with_columns(
        pl.when(~pl.col("username").is_in(unnamed))
        .then(pl.col("username"))
        .when(~pl.col("cn").is_in(unnamed))
        .then(pl.col("cn"))
        .alias("user.name"),
        pl.col("brecv").cast(pl.Int64, strict=False).alias("source.bytes"),
        pl.col("bsent").cast(pl.Int64, strict=False).alias("destination.bytes"),
        plausible(
            pl.coalesce(epoch_seconds(pl.col("since_epoch")), ctime_or_iso(pl.col("since"), tz)),
            now,
        ).alias("event.start"),
        pl.when(pl.col("client_id") != "").then(pl.col("client_id")).alias("vpn.session_id"),
    )
    src, port, bad_src = addresses(df["real"])
    tun4, bad4 = canonical_ip(df["vaddr"])
    tun6, bad6 = canonical_ip(df["vaddr6"])
    df = df.with_columns(
        src.alias("source.ip"),
        port.alias("source.port"),
        pl.coalesce(tun4, tun6).alias("vpn.tunnel_ip"),
        (pl.col("source.bytes") + pl.col("destination.bytes")).alias("network.bytes"),
        pl.lit("state").alias("event.kind"),
        pl.lit("session").alias("event.category"),
        pl.lit("info").alias("event.type"),
        pl.lit("session-status").alias("event.action"),
    )
    dropped = bad_src + bad4 + bad6
    for raw, conv in (
        ("brecv", "source.bytes"),
        ("bsent", "destination.bytes"),
        ("since", "event.start"),
    ):
        dropped += df.filter(
            pl.col(raw).is_not_null() & (pl.col(raw) != "") & pl.col(conv).is_null()
        ).height
    return df, dropped


#: Record kinds by the first field of a row.
_KINDS: Final = {
    "TITLE": "ignore",
    "HEADER": "header",
    "TIME": "time",
    "Updated": "time",
    "CLIENT_LIST": "client",
    "ROUTING_TABLE": "ignore",
    "GLOBAL_STATS": "ignore",
    "END": "ignore",
}
#: Version-1 section lines -> the section they open.
_V1_SECTIONS: Final = {
    "OpenVPN CLIENT LIST": "clients",
    "ROUTING TABLE": "routes",
    "GLOBAL STATS": "stats",
}
_V1_HEADERS: Final = [
    "Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since",
    "Virtual Address,Common Name,Real Address,Last Ref",
]
#: Column separator in the chunk-local layout key (a header's column names joined).
_SEP: Final = "\x1f"


@register
class OpenVPNStatus(Parser):
    """Status files of OpenVPN 2.x servers, versions 1, 2 and 3; see the module docstring."""

    name = "openvpn_status"
    stateful = True
    title = "OpenVPN 2.x server status file (--status, versions 1-3)"
    vendor = "OpenVPN"
    product = "OpenVPN"
    datasets = ("events",)
    sniff_literals = ("OpenVPN CLIENT LIST", "CLIENT_LIST", "ROUTING TABLE", "ROUTING_TABLE")
    sample = (
        "CLIENT_LIST,alice,203.0.113.11:38422,10.9.0.2,,2461,2369,2026-11-30 04:53:52,"
        "1796014432,alice,0,0,AES-256-GCM"
    )

    def sniff(self, head: list[str]) -> float:
        """Share of lines that are status records. Anchored at the line start: an OpenVPN log
        holding a SIGUSR2 status dump has a timestamp before each of these lines."""
        lines = [ln for ln in head if ln.strip()]
        if not lines:
            return 0.0
        series = pl.Series(lines, dtype=pl.String)
        hits = (series.str.contains(_SNIFF) & ~series.str.contains(_LOG_STAMP)).sum()
        return float(hits) / len(lines)

    def parse(self, lines: pl.Series, ctx: ParseContext) -> ParseResult:
        state: dict[str, Any] = ctx.state.setdefault(self.name, {})
        line = pl.col("_line")
        fields = (
            pl.when(line.str.contains("\t", literal=True))
            .then(line.str.split("\t"))
            .otherwise(line.str.split(","))
        )
        df = pl.DataFrame({"_line": lines}).with_row_index("_row").with_columns(fields.alias("_f"))
        first = pl.col("_f").list.first()
        df = df.with_columns(
            first.replace_strict(_KINDS, default=None, return_dtype=pl.String).alias("_kind"),
            line.replace_strict(_V1_SECTIONS, default=None, return_dtype=pl.String).alias("_open"),
            ((line == "OpenVPN CLIENT LIST") | (first == "TITLE")).cum_sum().alias("_snap"),
            pl.col("_f").list.len().alias("_n"),
        ).with_columns(
            pl.col("_open")
            .forward_fill()
            .fill_null(pl.lit(state.get("section"), pl.String))
            .alias("_section"),
        )
        section = pl.col("_section")
        df = df.with_columns(
            pl.when(pl.col("_open").is_not_null() | line.is_in(_V1_HEADERS))
            .then(pl.lit("ignore"))
            .when(pl.col("_kind").is_not_null())
            .then(pl.col("_kind"))
            .when(section == "clients")
            .then(pl.lit("v1client"))
            .when(section == "routes")
            .then(pl.lit("v1route"))
            .when(section == "stats")
            .then(pl.lit("ignore"))
            .alias("_kind")
        )
        df = _snapshot_times(df, ctx, state)
        is_header = (pl.col("_kind") == "header") & (
            pl.col("_f").list.get(1, null_on_oob=True) == "CLIENT_LIST"
        )
        df = df.with_columns(
            pl.when(is_header)
            .then(pl.col("_f").list.slice(2).list.join(_SEP))
            .forward_fill()
            .fill_null(pl.lit(state.get("layout"), pl.String))
            .alias("_layout")
        )

        kind = pl.col("_kind")
        time_ok = pl.col("_t").is_not_null()
        res = ParseResult()
        res.ignored_rows = df.filter(
            kind.is_in(["ignore", "header", "v1route"]) | ((kind == "time") & time_ok)
        )["_row"].to_list()
        events, truncated, dropped = _clients(df, ctx)
        res.dropped_values = dropped
        res.rejected = pl.concat(
            [
                _reject(df.filter(kind.is_null()), Reason.NO_MATCH, "not a status record"),
                _reject(
                    df.filter((kind == "time") & ~time_ok),
                    Reason.BAD_TIMESTAMP,
                    "unreadable snapshot time",
                ),
                _reject(truncated, Reason.TRUNCATED, "fewer fields than the header"),
                _reject(
                    events.filter(pl.col("@timestamp").is_null()),
                    Reason.BAD_TIMESTAMP,
                    "client row without a readable snapshot time",
                ),
            ]
        )
        good = events.filter(pl.col("@timestamp").is_not_null())
        if good.height:
            res.tables["events"] = good
        if df.height:
            last = df.row(-1, named=True)
            state.update(
                section=last["_section"],
                layout=last["_layout"],
                time=last["_time"],
                zone=last["_zone"],
            )
        return res


_WHEN = r"(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d)"
_ADDR = r"(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?|[0-9A-Fa-f:]+)"
#: A log timestamp at the line start: an OpenVPN log line, even when its message is a status
#: row (the SIGUSR2 dump), whose first field would otherwise swallow the timestamp.
_LOG_STAMP: Final = (
    r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} |[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d )"
)
_SNIFF: Final = (
    r"^(?:(?:TITLE|TIME|HEADER|CLIENT_LIST|ROUTING_TABLE|GLOBAL_STATS)[,\t]"
    r"|OpenVPN CLIENT LIST$|ROUTING TABLE$|GLOBAL STATS$|END$|Updated,"
    r"|Common Name,Real Address,|Virtual Address,Common Name,|Max bcast/mcast queue length,"
    rf"|[^,]+,{_ADDR},\d+,\d+,{_WHEN}|[0-9A-Fa-f.:/]+C?,[^,]+,{_ADDR},{_WHEN})"
)


def _reject(rows: pl.DataFrame, reason: Reason, detail: str) -> pl.DataFrame:
    """``rows`` in the shape of :attr:`ParseResult.rejected`."""
    return rows.select(
        pl.col("_row").cast(pl.UInt32),
        pl.lit(reason.value).alias("reason"),
        pl.lit(detail).alias("detail"),
    )


def _snapshot_times(df: pl.DataFrame, ctx: ParseContext, state: dict[str, Any]) -> pl.DataFrame:
    """``_time``: each row's snapshot time, and ``_zone``: ``ctx.tz`` if that time was read
    as local wall time ("" if it came from the Unix ``time_t`` beside it). A snapshot starts
    at its title line; rows before the first title in this chunk belong to the previous
    chunk's snapshot (``state``)."""
    f = pl.col("_f")
    epoch = epoch_seconds(f.list.get(2, null_on_oob=True))
    stamp = pl.coalesce(epoch, ctime_or_iso(f.list.get(1, null_on_oob=True), ctx.tz))
    is_time = pl.col("_kind") == "time"
    df = df.with_columns(
        pl.when(is_time).then(plausible(stamp, ctx.now)).alias("_t"),
        pl.when(is_time)
        .then(pl.when(epoch.is_null()).then(pl.lit(ctx.tz)).otherwise(pl.lit("")))
        .alias("_z"),
    )
    first = pl.col("_snap") == 0
    return df.with_columns(
        pl.when(first)
        .then(pl.col("_t").forward_fill().fill_null(pl.lit(state.get("time"), UTC_TS)))
        .otherwise(pl.col("_t").forward_fill().over("_snap"))
        .alias("_time"),
        pl.when(first)
        .then(pl.col("_z").forward_fill().fill_null(pl.lit(state.get("zone"), pl.String)))
        .otherwise(pl.col("_z").forward_fill().over("_snap"))
        .alias("_zone"),
    )


def _clients(df: pl.DataFrame, ctx: ParseContext) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Session-status events of the chunk's client rows, the truncated client rows, and the
    count of dropped values."""
    parts: list[pl.DataFrame] = []
    truncated: list[pl.DataFrame] = []
    tagged = df.filter(pl.col("_kind") == "client")
    for (layout, n), group in tagged.group_by(["_layout", "_n"], maintain_order=True):
        width = int(n) - 1
        if layout is not None:
            names = tuple(str(layout).split(_SEP))
        else:
            names = CLIENT_LAYOUTS.get(width, CLIENT_LAYOUTS[LATEST])
        if width < len(names):
            truncated.append(group)
            continue
        cols = client_columns(pl.col("_f").list.slice(1), names)
        parts.append(group.select("_row", "_time", "_zone", **cols))
    v1 = df.filter(pl.col("_kind") == "v1client")
    truncated.append(v1.filter(pl.col("_n") < 5))
    v1 = v1.filter(pl.col("_n") >= 5)
    if v1.height:
        cols = client_columns(pl.col("_f"), None)
        rows = v1.select("_row", "_time", "_zone", "_snap", **cols).drop("vaddr", "vaddr6")
        rows = rows.join(_v1_tunnel_ips(df), on=["_snap", "cn", "real"], how="left")
        parts.append(rows.drop("_snap"))
    cut = pl.concat([t.select("_row") for t in truncated])
    if not parts:
        return pl.DataFrame(schema={"_row": pl.UInt32, "@timestamp": UTC_TS}), cut, 0
    rows = pl.concat(parts, how="diagonal_relaxed").sort("_row")
    events, dropped = session_status(rows, ctx.tz, ctx.now)
    events = events.select(
        "_row",
        pl.col("_time").alias("@timestamp"),
        pl.when(pl.col("_zone") != "").then(pl.col("_zone")).alias("event.timezone"),
        *SESSION_COLUMNS,
        pl.lit("openvpn.status").alias("event.dataset"),
        pl.lit("vpn").alias("observer.type"),
        pl.lit("openvpn").alias("vpn.tunnel_type"),
    )
    return events, cut, dropped


def _v1_tunnel_ips(df: pl.DataFrame) -> pl.DataFrame:
    """Per (snapshot, common name, real address): the client's tunnel addresses from the
    version-1 routing rows (``Virtual Address,Common Name,Real Address,Last Ref``). Skipped:
    ``--iroute`` subnets (they contain ``/``), cached routes (a ``C`` after the address) and
    TAP-mode MAC addresses."""
    f = pl.col("_f")
    routes = df.filter((pl.col("_kind") == "v1route") & (pl.col("_n") >= 4)).select(
        "_snap",
        f.list.first().alias("vaddr"),
        f.list.slice(1, f.list.len() - 3).list.join(",").alias("cn"),
        f.list.get(-2, null_on_oob=True).alias("real"),
    )
    v4 = pl.col("vaddr").str.contains(r"^\d{1,3}(?:\.\d{1,3}){3}$")
    mac = pl.col("vaddr").str.contains(r"^(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}(?:@\d+)?$")
    v6 = (
        pl.col("vaddr").str.contains(":", literal=True)
        & ~mac
        & ~pl.col("vaddr").str.contains("/", literal=True)
        & ~pl.col("vaddr").str.ends_with("C")
    )
    return (
        routes.filter(v4 | v6)
        .group_by(["_snap", "cn", "real"], maintain_order=True)
        .agg(
            pl.col("vaddr").filter(v4).first().alias("vaddr"),
            pl.col("vaddr").filter(~v4).first().alias("vaddr6"),
        )
    )
