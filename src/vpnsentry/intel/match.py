"""Match the stored indicators against every address (and name) in events and flows.

At store scale this is joins, never a loop over rows or indicators:

1. **Distinct addresses.** One column scan per address column collects the distinct
   addresses of ``source.ip``, ``destination.ip``, ``source.nat.ip`` and ``destination.nat.ip``
   in events and flows (a month of flows has millions of rows but far fewer addresses).
2. **Address hits.** Those addresses join the indicators: an equality (hash) join on the
   IPv4 integer (``ip4()``, as enrich/geo.py uses) for single addresses, an interval join
   (``BETWEEN lo AND hi``) for CIDR ranges, and an interval join on 32-hex-digit strings for
   IPv6 (converted from the few distinct IPv6 addresses in Python, as DuckDB has no IPv6
   type without an extension). Overlapping ranges from several feeds all match.
3. **Rows.** Rows whose address is a hit are joined back (a hash join against that small
   set), kept when their time is inside the indicator's validity window
   ``[valid_from, valid_until)``, and grouped per (rule, indicator, internal entity, UTC
   day): a beacon every minute is one alert a day, not 1,440.

``vpn.tunnel_ip`` is not matched: it is an address of our own VPN pool (private, refused as
an indicator), and the traffic of a tunnel address is already in ``flows.source.ip``.
Domain, URL and hash indicators match the ECS columns that hold them (``destination.domain``,
``url.domain``, ``dns.question.name``, ``url.original``, ``url.full``, ``file.hash.*``) when
a dataset has them; the store's current schema has none, so they are kept for when a parser
produces such a column.

Direction decides the rule, and so the ATT&CK mapping:

* ``intel_match_outbound``: an internal host reached the indicator (it is the destination of
  the host's traffic, or our own NAT egress address is listed): Command and Control, T1071.
* ``intel_match_vpn``: the indicator is the source of gateway events (VPN logins, portal
  requests, admin logins): Initial Access through External Remote Services, T1133.
* ``intel_match_inbound``: the indicator opened connections to us (flows): Initial Access,
  Exploit Public-Facing Application, T1190.

NetFlow answers (nfdump records from a service port to a higher port) are turned around
first, as the detections' ``pairs`` table does, so the C2 server's answers are not read as
the C2 server connecting in.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import duckdb
import polars as pl

from vpnsentry.detect.base import Detection, ParamValue, RunFn
from vpnsentry.enrich.geo import IP4_MACRO
from vpnsentry.intel import catalog

if TYPE_CHECKING:
    import datetime as dt

    from vpnsentry.detect.engine import RuleRun
    from vpnsentry.store.store import Store

ADDRESS_COLUMNS: Final = ("source.ip", "destination.ip", "source.nat.ip", "destination.nat.ip")

#: Columns that carry names, URLs or hashes, per indicator type, and how a value is put in
#: the indicator's canonical form for comparison.
NAME_COLUMNS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "domain": (
        ("destination.domain", "url.domain", "dns.question.name"),
        "lower(rtrim({}, '.'))",
    ),
    "url": (("url.original", "url.full"), "{}"),
    "md5": (("file.hash.md5",), "lower({})"),
    "sha1": (("file.hash.sha1",), "lower({})"),
    "sha256": (("file.hash.sha256",), "lower({})"),
}

_SEVERITY_SQL: Final = (
    "CASE WHEN confidence IS NULL THEN 'medium' WHEN confidence >= 75 THEN 'high' "
    "WHEN confidence >= 40 THEN 'medium' ELSE 'low' END"
)


def _rows(rule: str) -> RunFn:
    """The rule's alert rows from ``_intel_hits`` (built once by :func:`prepare`)."""

    def run(con: duckdb.DuckDBPyConnection, params: Mapping[str, ParamValue]) -> pl.DataFrame:
        frame = pl.from_arrow(con.sql(_ALERT_ROWS_SQL, params={"rule": rule}).to_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        return frame

    return run


def _detection(rule: str, title: str, tactic: str, technique: str, description: str) -> Detection:
    return Detection(
        id=rule,
        title=title,
        description=description,
        tactics=(tactic,),
        techniques=(technique,),
        severity="medium",  # per alert from the indicator's confidence
        datasets=("events", "flows"),
        run=_rows(rule),
        status="test",
        false_positives="Feeds list shared hosting and CDN addresses; check the indicator's "
        "source and confidence in the evidence, and suppress by destination.ip.",
    )


RULES: Final = (
    _detection(
        "intel_match_outbound",
        "Internal host contacted a threat-intelligence indicator",
        "TA0011",
        "T1071",
        "A host of ours sent traffic to an address (or name) a threat-intelligence feed lists "
        "as malicious, while the indicator was valid: command and control or a download.",
    ),
    _detection(
        "intel_match_vpn",
        "Threat-intelligence indicator used the VPN gateway",
        "TA0001",
        "T1133",
        "An address a feed lists as malicious appears as the client of VPN gateway events "
        "(login attempts, portal requests, admin logins): access through external remote "
        "services.",
    ),
    _detection(
        "intel_match_inbound",
        "Threat-intelligence indicator connected in",
        "TA0001",
        "T1190",
        "An address a feed lists as malicious opened connections to our addresses: scanning "
        "or exploitation of a public-facing service.",
    ),
)


def run_matching(
    store: Store,
    con: duckdb.DuckDBPyConnection,
    created: dt.datetime,
    *,
    strict: bool = False,
) -> tuple[list[RuleRun], pl.DataFrame | None]:
    """Match the store's active indicators in ``con``; ([], None) when there are none.

    ``con`` is a connection with the ``events`` and ``flows`` views (``Store.reader``). The
    alerts are returned, not stored: the caller replaces the rules' alerts for its window.
    A database error becomes the rules' ``RuleRun.error`` unless ``strict``.
    """
    from vpnsentry.detect.engine import RuleRun, run_one, to_alerts

    ind = catalog.indicators(store).filter(~pl.col("revoked"))
    if ind.is_empty():
        return [], None
    t0 = time.perf_counter()
    frames: list[pl.DataFrame] = []
    runs: list[RuleRun] = []
    try:
        prepare(con, ind)
        for det in RULES:  # the first rule's time includes the shared preparation
            alerts = to_alerts(det, run_one(det, con, {}), created)
            frames.append(alerts)
            runs.append(RuleRun(det.id, alerts.height, time.perf_counter() - t0))
            t0 = time.perf_counter()
    except duckdb.Error as exc:
        if strict:
            raise
        error = f"{type(exc).__name__}: {exc}"
        return [RuleRun(d.id, 0, time.perf_counter() - t0, error) for d in RULES], None
    return runs, pl.concat(frames, how="vertical")


def prepare(con: duckdb.DuckDBPyConnection, indicators: pl.DataFrame) -> None:
    """Build ``_intel_hits``: one row per matched row, indicator and direction."""
    con.execute(IP4_MACRO)
    ind = indicators.with_row_index("iid").drop("first_added", "updated")
    con.register("_intel_ind_df", ind.to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE _intel_ind AS SELECT * FROM _intel_ind_df")
    con.unregister("_intel_ind_df")
    columns = {
        ds: {r[0] for r in con.execute(f"DESCRIBE {ds}").fetchall()} for ds in ("events", "flows")
    }
    addr = [(ds, c) for ds in columns for c in ADDRESS_COLUMNS if c in columns[ds]]
    distinct = " UNION ".join(f'SELECT DISTINCT "{c}" AS ip FROM {ds}' for ds, c in addr)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _intel_ips AS SELECT ip, ip4(ip) AS u "
        f"FROM ({distinct}) WHERE ip IS NOT NULL"
    )
    v6 = [r[0] for r in con.execute("SELECT ip FROM _intel_ips WHERE contains(ip, ':')").fetchall()]
    con.register("_intel_ip6_df", pl.DataFrame({"ip": v6, "h": _hex6(v6)}).to_arrow())
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE _intel_ip_hits AS
        SELECT p.ip, i.iid FROM _intel_ips p JOIN _intel_ind i
          ON i.type = 'ipv4' AND i.lo4 = i.hi4 AND p.u = i.lo4
        UNION ALL
        SELECT p.ip, i.iid FROM _intel_ips p JOIN _intel_ind i
          ON i.type = 'ipv4' AND i.lo4 < i.hi4 AND p.u BETWEEN i.lo4 AND i.hi4
        UNION ALL
        SELECT p.ip, i.iid FROM _intel_ip6_df p JOIN _intel_ind i
          ON i.type = 'ipv6' AND p.h BETWEEN i.lo6 AND i.hi6
        """
    )
    con.unregister("_intel_ip6_df")
    selects = [_address_rows(ds, c, columns[ds]) for ds, c in addr]
    for kind, (cols, expr) in NAME_COLUMNS.items():
        for ds, present in columns.items():
            selects.extend(_name_rows(ds, c, kind, expr, present) for c in cols if c in present)
    con.execute("CREATE OR REPLACE TEMP TABLE _intel_hits AS " + " UNION ALL ".join(selects))


def _hex6(ips: list[str]) -> list[str | None]:
    """IPv6 addresses as 32 hex digits (text order = numeric order); None if not IPv6.

    Per distinct address, not per row: a store has few distinct IPv6 addresses.
    """
    out: list[str | None] = []
    for ip in ips:
        try:
            out.append(f"{int(ipaddress.IPv6Address(ip)):032x}")
        except ValueError:
            out.append(None)
    return out


def _col(name: str, present: set[str], cast: str = "VARCHAR") -> str:
    """``x."name"``, or a typed NULL when the dataset has no such column."""
    return f'x."{name}"' if name in present else f"NULL::{cast}"


def _common(ds: str, present: set[str]) -> str:
    """The columns every hit row carries, from row ``x`` of dataset ``ds``."""
    nbytes = (
        f"coalesce({_col('network.bytes', present, 'BIGINT')}, "
        f"{_col('source.bytes', present, 'BIGINT')} + "
        f"{_col('destination.bytes', present, 'BIGINT')})"
    )
    return (
        f"'{ds}' AS dataset, x.\"@timestamp\" AS ts, "
        f"{_col('user.name', present)} AS usr, {_col('observer.name', present)} AS observer, "
        f"{_col('event.action', present)} AS action, {nbytes} AS nbytes"
    )


def _valid(alias: str = "i") -> str:
    return (
        f"x.\"@timestamp\" >= coalesce({alias}.valid_from, '-infinity'::TIMESTAMPTZ) "
        f'AND (x."@timestamp" < {alias}.valid_until OR {alias}.valid_until IS NULL)'
    )


def _address_rows(ds: str, col: str, present: set[str]) -> str:
    """Rows of ``ds`` whose ``col`` is an address hit, oriented on our end."""
    src, dst = _col("source.ip", present), _col("destination.ip", present)
    reply = (
        f"coalesce({_col('event.module', present)} = 'nfdump' "
        f"AND {_col('source.port', present, 'INTEGER')}"
        f" < {_col('destination.port', present, 'INTEGER')}, false)"
    )
    ioc_initiated = f"(({col.startswith('source.') and col != 'source.nat.ip'}) <> {reply})"
    # Our end: the other address of the row, or the gateway that logged it; for a listed
    # NAT egress address, the host behind it.
    other = dst if col == "source.ip" else src
    port = (
        f"CASE WHEN {reply} THEN {_col('source.port', present, 'INTEGER')} "
        f"ELSE {_col('destination.port', present, 'INTEGER')} END"
    )
    inbound = "intel_match_vpn" if ds == "events" else "intel_match_inbound"
    return f"""
        SELECT CASE WHEN {ioc_initiated} THEN '{inbound}' ELSE 'intel_match_outbound' END
                   AS rule,
               h.iid, '{col}' AS field, x."{col}" AS matched,
               coalesce({other}, {_col("observer.name", present)}) AS entity,
               {other} AS entity_ip, {port} AS port, {_common(ds, present)}
        FROM {ds} x JOIN _intel_ip_hits h ON x."{col}" = h.ip
        JOIN _intel_ind i ON i.iid = h.iid
        WHERE {_valid()}"""


def _name_rows(ds: str, col: str, kind: str, expr: str, present: set[str]) -> str:
    """Rows of ``ds`` whose ``col`` holds a listed name, URL or hash: always outbound."""
    value = expr.format(f'x."{col}"')
    src = _col("source.ip", present)
    return f"""
        SELECT 'intel_match_outbound' AS rule, i.iid, '{col}' AS field, x."{col}" AS matched,
               coalesce({src}, {_col("host.hostname", present)},
                        {_col("observer.name", present)}) AS entity,
               {src} AS entity_ip, {_col("destination.port", present, "INTEGER")} AS port,
               {_common(ds, present)}
        FROM {ds} x JOIN _intel_ind i ON i.type = '{kind}' AND {value} = i.norm
        WHERE {_valid()}"""


#: One alert row per (rule, indicator, our entity, UTC day) from ``_intel_hits``.
_ALERT_ROWS_SQL: Final = f"""
WITH g AS (
    SELECT h.rule, h.iid, h.entity, date_trunc('day', h.ts AT TIME ZONE 'UTC') AS day,
           min(h.ts) AS first_ts, max(h.ts) AS last_ts, count(*) AS hits,
           list(DISTINCT h.matched ORDER BY h.matched)[1:10] AS matched,
           list(DISTINCT h.field ORDER BY h.field) AS fields,
           list(DISTINCT h.dataset ORDER BY h.dataset) AS datasets,
           list(DISTINCT h.port ORDER BY h.port) FILTER (WHERE h.port IS NOT NULL) AS ports,
           mode(h.port) AS top_port,
           list(DISTINCT h.action ORDER BY h.action) FILTER (WHERE h.action IS NOT NULL)
               AS actions,
           any_value(h.entity_ip) AS entity_ip, max(h.usr) AS usr,
           list(DISTINCT h.usr ORDER BY h.usr) FILTER (WHERE h.usr IS NOT NULL) AS users,
           max(h.observer) AS observer, sum(h.nbytes) AS nbytes
    FROM _intel_hits h WHERE h.rule = $rule
    GROUP BY ALL
)
SELECT g.first_ts AS "@timestamp", g.last_ts AS "event.end",
       concat_ws('|', i.source, i.type, i.norm, g.entity, strftime(g.day, '%Y-%m-%d'))
           AS "alert.key",
       CASE WHEN g.rule = 'intel_match_outbound'
            THEN g.entity || ' contacted ' || array_to_string(g.matched, ', ')
            ELSE array_to_string(g.matched, ', ') || ' reached ' || g.entity END
       || ' (' || i.type || ' indicator ' || i.norm || ' from ' || i.source
       || coalesce(', confidence ' || i.confidence, '') || '): '
       || g.hits || CASE WHEN g.hits = 1 THEN ' event' ELSE ' events' END AS "alert.summary",
       to_json({{
           'indicator': {{
               'source': i.source, 'type': i.type, 'value': i.value, 'norm': i.norm,
               'confidence': i.confidence, 'valid_from': i.valid_from,
               'valid_until': i.valid_until, 'labels': i.labels, 'kill_chain': i.kill_chain,
               'description': i.description, 'feed': i.feed, 'ref': i.ref
           }},
           'matched': g.matched, 'fields': g.fields, 'datasets': g.datasets, 'hits': g.hits,
           'ports': g.ports[1:20], 'actions': g.actions[1:10], 'users': g.users[1:10]
       }})::VARCHAR AS "alert.evidence",
       {_SEVERITY_SQL.replace("confidence", "i.confidence")} AS "alert.severity",
       g.usr AS "user.name",
       CASE WHEN g.rule = 'intel_match_outbound' THEN g.entity_ip ELSE g.matched[1] END
           AS "source.ip",
       CASE WHEN g.rule = 'intel_match_outbound' THEN g.matched[1] ELSE g.entity_ip END
           AS "destination.ip",
       g.top_port AS "destination.port", g.observer AS "observer.name",
       g.nbytes AS "network.bytes",
       list_concat(g.matched, [g.entity_ip]) AS "related.ip", g.users AS "related.user"
FROM g JOIN _intel_ind i ON i.iid = g.iid
ORDER BY 1, 3
"""
