"""The HTML report: one self-contained file an analyst can open, mail, print or read on a phone.

Everything is inline: CSS in a ``<style>`` element, plots as SVG drawn by
:mod:`vpnsentry.report.svg`, no JavaScript, fonts or images. A Content-Security-Policy meta
tag (``default-src 'none'; style-src 'unsafe-inline'; img-src data:``) makes the browser
refuse anything else, so even a value that escaped escaping could neither run nor call out.

Every value that came from a log (user and host names, summaries, titles built from them,
evidence) enters the markup through :func:`vpnsentry.report.escape.esc`, in text and in
attributes alike. Only ATT&CK technique ids that match ``T1234`` / ``T1234.001`` become links.

Layout: summary (time span, data volume, alerts and incidents by severity, alerts per day),
the incidents ranked by severity and risk, then one section per incident (up to
``max_detailed``; the rest are in the ranking table and ``incidents.ndjson``).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from vpnsentry import __version__
from vpnsentry.correlate.model import Incident, PathEdge
from vpnsentry.enrich.sites import Inventory
from vpnsentry.report import svg
from vpnsentry.report.escape import esc

#: Severity names, least to most severe (the order of ``detect.base.SEVERITIES``).
SEVERITY_ORDER: Final = ("low", "medium", "high", "critical")
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_TECHNIQUE: Final = re.compile(r"^T(\d{4})(?:\.(\d{3}))?$")
_EXFIL_TACTIC: Final = "TA0010"

#: Caps that keep one report readable whatever the data: longer lists say how many more.
MAX_EDGES: Final = 40
MAX_LIST: Final = 12
MAX_KEYS: Final = 40
MAX_EVIDENCE_CHARS: Final = 6000
MAX_RANKED: Final = 500


@dataclass(frozen=True)
class Overview:
    """What the store holds: the report's summary section."""

    start: dt.datetime | None = None  # earliest event or flow
    end: dt.datetime | None = None  # latest
    events: int = 0
    flows: int = 0
    quarantined: int = 0
    observers: int = 0  # devices that logged (gateways, firewalls, sensors)
    users: int = 0  # distinct user names in events
    store_bytes: int = 0  # Parquet on disk
    store: str = ""
    files_read: int = 0  # this run's ingest
    lines_read: int = 0
    lines_quarantined: int = 0  # this run's ingest


@dataclass(frozen=True)
class ReportInput:
    """Everything the report shows; built by :mod:`vpnsentry.hunt` (or by hand in tests)."""

    incidents: Sequence[Incident]
    alerts: pl.DataFrame  # the store's alerts, ECS columns (vpnsentry.ecs.ALERTS)
    overview: Overview = field(default_factory=Overview)
    inventory: Inventory | None = None
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


# -- small formatting helpers -----------------------------------------------------------------


def sev_rank(severity: str) -> int:
    """0 (unknown) .. 4 (critical)."""
    return SEVERITY_ORDER.index(severity) + 1 if severity in SEVERITY_ORDER else 0


def ranked(incidents: Iterable[Incident]) -> list[Incident]:
    """Most severe first, then highest risk, then earliest evidence."""
    return sorted(
        incidents, key=lambda i: (-sev_rank(i.severity), -i.risk_score, i.first_seen, i.id)
    )


def when(t: dt.datetime | None) -> str:
    """``2025-03-05 18:43`` (UTC), or an empty string."""
    if t is None:
        return ""
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")


def fmt_bytes(n: float) -> str:
    """``209715200`` -> ``200 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            if unit == "B":
                return f"{value:.0f} B"
            return f"{value:.0f} {unit}" if abs(value) >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_duration(seconds: float) -> str:
    """``93784`` -> ``1d 2h 3m``."""
    m = max(0, int(seconds // 60))
    d, m = divmod(m, 1440)
    h, m = divmod(m, 60)
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m or not (d or h) else ""]
    return " ".join(x for x in parts if x)


def technique_url(technique: str) -> str | None:
    """``T1021.002`` -> ``https://attack.mitre.org/techniques/T1021/002/``; None if malformed."""
    m = _TECHNIQUE.match(technique)
    if m is None:
        return None
    sub = f"{m.group(2)}/" if m.group(2) else ""
    return f"https://attack.mitre.org/techniques/T{m.group(1)}/{sub}"


def anchor(incident_id: str) -> str:
    """An element id for an incident (ids are ``INC-`` + hex, but never trusted)."""
    return "inc-" + svg.safe_id(incident_id)


def _sev_badge(severity: str) -> str:
    cls = severity if severity in SEVERITY_ORDER else "unknown"
    return f'<span class="sev sev-{cls}">{esc(severity or "?", 20)}</span>'


@functools.cache
def _country_names() -> dict[str, str]:
    from vpnsentry.detect.geodata import CENTROIDS_CSV

    lines = [ln for ln in CENTROIDS_CSV.read_text("utf-8").splitlines() if not ln.startswith("#")]
    return {r["iso2"]: r["name"] for r in csv.DictReader(lines)}


def _technique_names(ids: Iterable[str]) -> dict[str, str]:
    from vpnsentry.correlate.attack import technique_name

    return {t: technique_name(t) for t in ids}


def _evidence(raw: Any) -> Any:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _cap(value: Any, depth: int = 0) -> Any:
    """Evidence with long lists, many keys, long strings and deep nesting cut short."""
    if depth > 6:
        return "…"
    if isinstance(value, dict):
        items = list(value.items())
        out = {str(k)[:120]: _cap(v, depth + 1) for k, v in items[:MAX_KEYS]}
        if len(items) > MAX_KEYS:
            out["…"] = f"{len(items) - MAX_KEYS} more keys"
        return out
    if isinstance(value, list):
        capped = [_cap(v, depth + 1) for v in value[:MAX_LIST]]
        if len(value) > MAX_LIST:
            capped.append(f"… {len(value) - MAX_LIST} more")
        return capped
    if isinstance(value, str) and len(value) > 400:
        return value[:399] + "…"
    return value


def _pretty(value: Any, indent: int = 0) -> str:
    """Indented JSON with short lists of plain values kept on one line."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and value:
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)}: {_pretty(v, indent + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and value:
        flat = json.dumps(value, ensure_ascii=False)
        if len(flat) <= 90 and not any(isinstance(v, dict | list) for v in value):
            return flat
        items = [pad + _pretty(v, indent + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value, ensure_ascii=False)


def pretty_evidence(raw: Any) -> str:
    """The evidence JSON, capped and indented (plain text: escape it before use)."""
    ev = _evidence(raw)
    text = ev if isinstance(ev, str) else _pretty(_cap(ev))
    if len(text) > MAX_EVIDENCE_CHARS:
        text = text[: MAX_EVIDENCE_CHARS - 1] + "…"
    return text


def _list(values: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(esc(v, 120) for v in values[:limit])
    if len(values) > limit:
        shown += f' <span class="muted">(+{len(values) - limit} more)</span>'
    return shown or '<span class="muted">none</span>'


# -- where a path node sits ------------------------------------------------------------------


class _Places:
    """Site and kind (gateway, internal, external) of a path node, from the inventory."""

    def __init__(self, inv: Inventory | None, gateways: Sequence[str]) -> None:
        self.by_name: dict[str, tuple[str, str]] = {g.lower(): ("", "gateway") for g in gateways}
        self.nets: list[tuple[ipaddress.IPv4Network, str]] = []
        if inv is None:
            return
        for g in inv.gateways:
            for key in (g.id, g.hostname, str(g.inside), str(g.outside), str(g.management or "")):
                if key:
                    self.by_name[key.lower()] = (g.site, "gateway")
        for s in inv.sites:
            for h in s.hosts:
                self.by_name.setdefault(str(h.ip), (s.id, "internal"))
                self.by_name.setdefault(h.name.lower(), (s.id, "internal"))
        self.nets = [(n.cidr, n.site) for n in inv.subnets]

    def place(self, node: str) -> tuple[str, str]:
        """(site or "", kind)."""
        hit = self.by_name.get(node.strip().lower())
        if hit is not None:
            return hit
        try:
            addr = ipaddress.ip_address(node.strip())
        except ValueError:
            return "", "other"
        if isinstance(addr, ipaddress.IPv4Address):
            for net, site in self.nets:
                if addr in net:
                    return site, "internal"
        if addr.is_private or addr.is_loopback or addr.is_link_local:
            return "", "internal"
        return "", "external"


def _split_label(node: str, label: str) -> tuple[str, str]:
    """``src-tyo01 10.10.33.10 (source_code, tyo-hq)`` -> (``src-tyo01 10.10.33.10``,
    ``source_code, tyo-hq``)."""
    if not label:
        return node, ""
    head, sep, rest = label.partition(" (")
    if sep and rest.endswith(")"):
        return head, rest[:-1]
    return label, ""


def path_svg(
    inc: Incident, inventory: Inventory | None, edges: Sequence[PathEdge] | None = None
) -> str:
    """The incident's attack path: first-seen movements, numbered, in one column per site."""
    edges = list(inc.path[:MAX_EDGES] if edges is None else edges)
    if not edges:
        return ""
    places = _Places(inventory, inc.gateways)
    labels: dict[str, str] = {}
    first_role: dict[str, str] = {}
    for e in edges:
        labels.setdefault(e.src, e.src_label)
        labels.setdefault(e.dst, e.dst_label)
        first_role.setdefault(e.src, "src")
        first_role.setdefault(e.dst, "dst")
    layers: list[str] = []
    nodes: list[svg.Node] = []
    inbound, outbound = "Internet", "Internet (outbound)"
    for node, label in labels.items():  # first-appearance order
        site, kind = places.place(node)
        if kind == "external":
            layer = inbound if first_role[node] == "src" else outbound
        else:
            layer = site or ("gateways" if kind == "gateway" else "internal network")
        if layer not in layers:
            layers.append(layer)
        main, sub = _split_label(node, label)
        nodes.append(
            svg.Node(id=node, label=main, layer=layer, sub=sub, kind=kind, tip=label or node)
        )
    # Sources from the Internet on the left, where it went outbound on the right.
    layers.sort(key=lambda n: 0 if n == inbound else 2 if n == outbound else 1)
    svg_edges = [
        svg.Edge(n=i, src=e.src, dst=e.dst, tip=f"{i}. {_edge_text(e)}")
        for i, e in enumerate(edges, start=1)
    ]
    return svg.path_graph(
        nodes, svg_edges, layers, uid=inc.id, title=f"Attack path of {inc.id}: {inc.title}"
    )


def _edge_text(e: PathEdge) -> str:
    port = f" port {e.port}" if e.port is not None else ""
    rule = f" ({e.rule_id})" if e.rule_id else ""
    return f"{when(e.first_seen)} {e.src_label or e.src} → {e.dst_label or e.dst}{port}{rule}"


# -- per-incident charts -----------------------------------------------------------------------


def timeline_svg(inc: Incident, rows: Sequence[dict[str, Any]]) -> str:
    """The incident's alerts over time, one lane per detection."""
    marks = []
    for r in rows:
        start = r.get("@timestamp")
        if start is None:
            continue
        end = r.get("event.end") or start
        marks.append(
            svg.Mark(
                start=start,
                end=end,
                lane=str(r.get("rule.id") or "?"),
                severity=str(r.get("alert.severity") or ""),
                tip=f"{when(start)} to {when(end)} UTC · {r.get('alert.severity')} · "
                f"{r.get('rule.id')}: {r.get('alert.summary') or ''}",
            )
        )
    return svg.timeline(marks, title=f"Alerts of {inc.id} over time")


def _is_exfil(row: dict[str, Any]) -> bool:
    tactics = row.get("threat.tactic.id") or []
    return _EXFIL_TACTIC in tactics or str(row.get("rule.id") or "").startswith("exfil_")


def bytes_out_bars(rows: Sequence[dict[str, Any]]) -> list[svg.Bar]:
    """Bytes out per UTC day and destination, from the incident's exfiltration alerts.

    Two detections often describe one transfer (volume and rare destination), so a
    (day, sender, destination) counts once, at its largest alert. An alert whose evidence
    lists the upload ``days`` has its bytes spread evenly over them.
    """
    best: dict[tuple[str, str, str], float] = {}
    for r in rows:
        n = r.get("network.bytes")
        if not n or not _is_exfil(r) or r.get("@timestamp") is None:
            continue
        ev = _evidence(r.get("alert.evidence"))
        days: list[str] = []
        if isinstance(ev, dict):
            listed = ev.get("days") or ev.get("upload_days")
            if isinstance(listed, list):
                days = [str(d)[:10] for d in listed if re.match(r"^\d{4}-\d{2}-\d{2}", str(d))]
        if not days:
            days = [r["@timestamp"].astimezone(dt.UTC).strftime("%Y-%m-%d")]
        share = float(n) / len(days)
        dst = str(r.get("destination.ip") or "unknown destination")
        src = str(r.get("source.ip") or r.get("host.name") or "")
        for d in days:
            key = (d, src, dst)
            best[key] = max(best.get(key, 0.0), share)
    out: dict[tuple[str, str], float] = {}
    for (d, _src, dst), v in best.items():
        out[(d, dst)] = out.get((d, dst), 0.0) + v
    return [svg.Bar(group=d, series=dst, value=v) for (d, dst), v in sorted(out.items())]


def _day_range(groups: Iterable[str]) -> list[str]:
    days = sorted({dt.date.fromisoformat(g) for g in groups})
    if not days or (days[-1] - days[0]).days > 120:
        return [d.isoformat() for d in days]
    n = (days[-1] - days[0]).days + 1
    return [(days[0] + dt.timedelta(days=i)).isoformat() for i in range(n)]


def bytes_svg(inc: Incident, rows: Sequence[dict[str, Any]]) -> str:
    """Bytes out per day, stacked by destination."""
    bars = bytes_out_bars(rows)
    if not bars:
        return ""
    return svg.stacked_bars(
        bars,
        title=f"Bytes out per day of {inc.id}, by destination",
        fmt=fmt_bytes,
        base=1024.0,
        groups=_day_range(b.group for b in bars),
    )


def country_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per source country of the incident's alerts: alerts, users, addresses, first seen."""
    by: dict[str, dict[str, Any]] = {}
    for r in rows:
        cc = r.get("source.geo.country_iso_code")
        if not cc:
            continue
        e = by.setdefault(
            str(cc), {"country": str(cc), "alerts": 0, "users": [], "ips": [], "first": None}
        )
        e["alerts"] += 1
        for key, field_name in (("users", "user.name"), ("ips", "source.ip")):
            v = r.get(field_name)
            if v and v not in e[key]:
                e[key].append(str(v))
        t = r.get("@timestamp")
        if t is not None and (e["first"] is None or t < e["first"]):
            e["first"] = t
    return sorted(by.values(), key=lambda e: (e["first"] is None, e["first"] or 0, e["country"]))


# -- the page --------------------------------------------------------------------------------

CSS: Final = """
:root{--fg:#0f172a;--muted:#475569;--line:#e2e8f0;--card:#f8fafc;--link:#1d4ed8;
--critical:#7f1d1d;--high:#dc2626;--medium:#b45309;--low:#2563eb;--unknown:#64748b}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:#fff}
header,main,footer{max-width:1120px;margin:0 auto;padding:0 16px}
header{padding-top:12px;border-bottom:1px solid var(--line)}
h1{font-size:1.55rem;margin:.6rem 0 .2rem}
h2{font-size:1.25rem;margin:1.6rem 0 .5rem}
article h2{margin:0 0 .4rem;overflow-wrap:anywhere}
h3{font-size:1rem;margin:1.3rem 0 .4rem}
a{color:var(--link)}
.muted{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;
margin:10px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.card b{display:block;font-size:1.3rem;line-height:1.3}
.card span{color:var(--muted);font-size:.85rem}
.sev{display:inline-block;padding:0 8px;border-radius:999px;color:#fff;font-size:.75rem;
font-weight:700;text-transform:uppercase;letter-spacing:.03em;white-space:nowrap}
.sev-critical{background:var(--critical)}.sev-high{background:var(--high)}
.sev-medium{background:var(--medium)}.sev-low{background:var(--low)}
.sev-unknown{background:var(--unknown)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:4px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td{overflow-wrap:anywhere}
th{background:var(--card);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
td.time{white-space:nowrap}
article.incident{border:1px solid var(--line);border-left:6px solid var(--unknown);
border-radius:8px;padding:14px 16px;margin:20px 0}
article.b-critical{border-left-color:var(--critical)}article.b-high{border-left-color:var(--high)}
article.b-medium{border-left-color:var(--medium)}article.b-low{border-left-color:var(--low)}
.meta{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:0 0 8px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.plotbox{overflow-x:auto;margin:6px 0}
svg.plot{display:block;max-width:100%;height:auto}
ol.steps{padding-left:1.6rem;margin:6px 0;font-size:.88rem}
ol.steps li{overflow-wrap:anywhere}
.chain{font-size:.9rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--card);border:1px solid var(--line);
border-radius:4px;padding:6px 8px;font-size:.78rem;max-height:20rem;overflow:auto;margin:4px 0}
.hint{border-left:3px solid #94a3b8;padding:2px 10px;color:var(--muted);font-size:.88rem}
footer{border-top:1px solid var(--line);margin-top:28px;padding-bottom:24px;font-size:.8rem;
color:var(--muted)}
@media (max-width:640px){
body{font-size:14px}
header,main,footer{padding:0 10px}
dl.facts{grid-template-columns:1fr}
dl.facts dt{font-weight:600;margin-top:4px}
th,td{padding:3px 5px}
article.incident{padding:10px}
table.rank .opt{display:none}
.plotbox svg.plot{max-width:max(100%,600px)}
}
@media print{
@page{margin:14mm}
body{font-size:10pt}
header,main,footer{max-width:none;padding:0}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
a{color:inherit;text-decoration:none}
a.ext::after{content:" (" attr(href) ")";font-size:.8em;color:var(--muted)}
article.incident{break-before:page;border:0;border-left:4px solid;padding:0 0 0 10px}
pre{max-height:none;overflow:visible}
.scroll,.plotbox{overflow:visible}
svg.plot{break-inside:avoid}
tr,li,.card{break-inside:avoid}
h2,h3{break-after:avoid}
}
"""


def _head(title: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light">'
        f'<meta name="generator" content="vpnsentry {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n"
    )


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{value}</b><span>{label}</span></div>'


def _severity_counts(values: Iterable[str]) -> dict[str, int]:
    counts = {s: 0 for s in reversed(SEVERITY_ORDER)}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _counts_line(counts: dict[str, int]) -> str:
    parts = [f"{_sev_badge(s)} {n}" for s, n in counts.items() if n]
    return " ".join(parts) or '<span class="muted">none</span>'


def _alerts_per_day(active: pl.DataFrame) -> str:
    if active.is_empty():
        return ""
    bars: dict[tuple[str, str], float] = {}
    for t, sev in active.select("@timestamp", "alert.severity").iter_rows():
        if t is None:
            continue
        key = (t.astimezone(dt.UTC).strftime("%Y-%m-%d"), str(sev or "unknown"))
        bars[key] = bars.get(key, 0.0) + 1
    if not bars:
        return ""
    colours = {s: svg.SEVERITY_COLOURS[s] for s in reversed(SEVERITY_ORDER)}
    return svg.stacked_bars(
        [svg.Bar(d, s, v) for (d, s), v in sorted(bars.items())],
        title="Alerts per day (UTC) by severity",
        fmt=lambda v: f"{v:,.1f}".removesuffix(".0"),
        colours=colours,
        groups=_day_range(d for d, _ in bars),
    )


def _summary(data: ReportInput, active: pl.DataFrame, incidents: Sequence[Incident]) -> str:
    ov = data.overview
    span = (
        f"{esc(when(ov.start))} &#8211; {esc(when(ov.end))} UTC"
        if ov.start is not None and ov.end is not None
        else '<span class="muted">no events</span>'
    )
    days = ""
    if ov.start is not None and ov.end is not None:
        days = f" ({fmt_duration((ov.end - ov.start).total_seconds())})"
    inc_counts = _severity_counts(i.severity for i in incidents)
    alert_counts = _severity_counts(str(s) for s in active.get_column("alert.severity"))
    suppressed = data.alerts.height - active.height
    cards = [
        _card(f"{ov.events:,}", "events (logins, sessions, admin)"),
        _card(f"{ov.flows:,}", "network flows"),
        _card(f"{ov.quarantined:,}", "lines quarantined (unparsed)"),
        _card(f"{ov.observers:,}", "devices logging"),
        _card(f"{ov.users:,}", "user names seen"),
        _card(f"{active.height:,}", "active alerts"),
        _card(f"{len(incidents):,}", "incidents"),
    ]
    if ov.store_bytes:
        cards.append(_card(esc(fmt_bytes(ov.store_bytes)), "stored (Parquet)"))
    ingest = ""
    if ov.files_read:
        ingest = (
            f'<p class="muted">This run read {ov.lines_read:,} new lines from '
            f"{ov.files_read:,} files ({ov.lines_quarantined:,} quarantined).</p>"
        )
    per_day = _alerts_per_day(active)
    return (
        '<section id="summary"><h2>Summary</h2>'
        f"<p><b>Time span:</b> {span}{esc(days)}</p>"
        f'<div class="cards">{"".join(cards)}</div>{ingest}'
        f"<p><b>Incidents by severity:</b> {_counts_line(inc_counts)}</p>"
        f"<p><b>Alerts by severity:</b> {_counts_line(alert_counts)}"
        + (
            f' <span class="muted">({suppressed:,} suppressed not shown)</span>'
            if suppressed
            else ""
        )
        + "</p>"
        + (f'<div class="plotbox">{per_day}</div>' if per_day else "")
        + "</section>\n"
    )


def _ranking(incidents: Sequence[Incident], detailed: set[str]) -> str:
    if not incidents:
        return (
            '<section id="incidents"><h2>Incidents</h2>'
            "<p>No incidents: the detections raised no active alerts over this data.</p>"
            "</section>\n"
        )
    rows = []
    for n, inc in enumerate(incidents[:MAX_RANKED], start=1):
        title = esc(inc.title, 300)
        if inc.id in detailed:
            title = f'<a href="#{anchor(inc.id)}">{title}</a>'
        rows.append(
            f'<tr><td class="num">{n}</td><td>{_sev_badge(inc.severity)}</td>'
            f'<td class="num">{inc.risk_score:.0f}</td>'
            f'<td class="num opt">{inc.confidence:.2f}</td>'
            f'<td class="time opt">{esc(when(inc.first_seen))}</td>'
            f'<td class="num opt">{len(inc.alert_ids)}</td>'
            f'<td>{title}<br><small class="muted">{esc(inc.id, 40)}</small></td></tr>'
        )
    more = ""
    if len(incidents) > MAX_RANKED:
        left = len(incidents) - MAX_RANKED
        more += f'<p class="muted">{left:,} less severe incidents not listed.</p>'
    if len(detailed) < len(incidents):
        more += (
            f'<p class="muted">The {len(detailed)} most severe incidents are shown in full below; '
            "every incident is in incidents.ndjson (and `vpnsentry incident ID`).</p>"
        )
    return (
        '<section id="incidents"><h2>Incidents, most severe first</h2>'
        '<div class="scroll"><table class="rank"><thead><tr><th class="num">#</th>'
        '<th>severity</th><th class="num">risk</th><th class="num opt">confidence</th>'
        '<th class="opt">first seen (UTC)</th><th class="num opt">alerts</th><th>title</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{more}</section>\n"
    )


def _facts(inc: Incident) -> str:
    span = (inc.last_seen - inc.first_seen).total_seconds()
    facts = [
        ("first evidence", f"{esc(when(inc.first_seen))} UTC"),
        ("last evidence", f"{esc(when(inc.last_seen))} UTC ({esc(fmt_duration(span))} later)"),
        ("first detected", f"{esc(when(inc.detected_at))} UTC"),
        (
            "dwell time",
            f"{esc(fmt_duration(inc.dwell_seconds))} "
            '<span class="muted">(from the first evidence to the first detection; on logs '
            "ingested after the fact it includes the time before vpnsentry ran)</span>",
        ),
        ("users", _list(inc.users)),
        ("internal hosts", _list(inc.hosts)),
        ("external addresses", _list(inc.external)),
        ("gateways", _list(inc.gateways)),
        ("sites", _list(inc.sites)),
    ]
    if inc.bytes_out or inc.destinations:
        facts.append(("data out", f"{esc(fmt_bytes(inc.bytes_out))} to {_list(inc.destinations)}"))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return f'<dl class="facts">{body}</dl>'


def _techniques(inc: Incident) -> str:
    if not inc.techniques and not inc.tactics:
        return ""
    names = _technique_names(inc.techniques)
    chain = " → ".join(f'{esc(n)} <small class="muted">{esc(t)}</small>' for t, n in inc.tactics)
    items = []
    for t in inc.techniques:
        url = technique_url(t)
        name = esc(names.get(t) or "name not in the shipped ATT&CK data")
        if url is None:
            items.append(f"<li>{esc(t, 40)} {name}</li>")
        else:
            items.append(
                f'<li><a class="ext" href="{esc(url)}" rel="noopener noreferrer">{esc(t)}</a> '
                f"{name}</li>"
            )
    return (
        "<h3>MITRE ATT&amp;CK</h3>"
        + (f'<p class="chain">{chain}</p>' if chain else "")
        + (f"<ul>{''.join(items)}</ul>" if items else "")
    )


def _attribution(inc: Incident) -> str:
    if not inc.attribution:
        return ""
    from vpnsentry.correlate.attack import CAVEAT

    names = _technique_names(t for a in inc.attribution for t in a.shared)
    items = []
    for a in inc.attribution:
        shared = ", ".join(f"{esc(t)} {esc(names.get(t, ''))}".strip() for t in a.shared)
        gid = esc(a.group_id, 20)
        link = gid
        if re.fullmatch(r"G\d{4}", a.group_id):
            link = (
                f'<a class="ext" href="https://attack.mitre.org/groups/{gid}/" '
                f'rel="noopener noreferrer">{gid}</a>'
            )
        items.append(
            f"<li>Possibly consistent with {link} {esc(a.name, 80)}: {len(a.shared)} of its "
            f"{a.group_techniques} known techniques are seen here (overlap {a.score:.2f}): "
            f"{shared}</li>"
        )
    return (
        "<h3>Attribution hints</h3>"
        f'<p class="hint">{esc(CAVEAT, None)}</p><ul>{"".join(items)}</ul>'
    )


def _path(inc: Incident, inventory: Inventory | None) -> str:
    if not inc.path:
        return ""
    edges = inc.path[:MAX_EDGES]
    graph = path_svg(inc, inventory, edges)
    steps = "".join(f"<li>{esc(_edge_text(e), 400)}</li>" for e in edges)
    more = ""
    if len(inc.path) > MAX_EDGES:
        more = (
            f'<p class="muted">{len(inc.path) - MAX_EDGES} later movements not drawn '
            "(all are in incidents.ndjson, incident.path).</p>"
        )
    return (
        "<h3>Attack path (first-seen connections, in order)</h3>"
        f'<div class="plotbox">{graph}</div><ol class="steps">{steps}</ol>{more}'
    )


def _countries(rows: Sequence[dict[str, Any]]) -> str:
    data = country_rows(rows)
    if not data:
        return ""
    names = _country_names()
    body = "".join(
        f"<tr><td>{esc(e['country'], 8)}</td><td>{esc(names.get(e['country'], ''))}</td>"
        f'<td class="num">{e["alerts"]}</td><td>{_list(e["users"], 6)}</td>'
        f'<td>{_list(e["ips"], 6)}</td><td class="time">{esc(when(e["first"]))}</td></tr>'
        for e in data
    )
    return (
        "<h3>Where it came from: source countries of the logins and probes</h3>"
        '<div class="scroll"><table><thead><tr><th>code</th><th>country</th>'
        '<th class="num">alerts</th><th>users</th><th>source addresses</th>'
        f"<th>first (UTC)</th></tr></thead><tbody>{body}</tbody></table></div>"
    )


def _evidence_table(inc: Incident, rows: Sequence[dict[str, Any]], limit: int) -> str:
    body = []
    for r in rows[:limit]:
        body.append(
            f'<tr><td class="time">{esc(when(r.get("@timestamp")))}</td>'
            f"<td>{_sev_badge(str(r.get('alert.severity') or ''))}</td>"
            f'<td>{esc(r.get("rule.id"), 80)}<br><small class="muted">'
            f"{esc(r.get('rule.name'), 160)}</small></td>"
            f"<td>{esc(r.get('alert.summary'), 1000)}"
            f"<pre>{esc(pretty_evidence(r.get('alert.evidence')), None)}</pre></td></tr>"
        )
    notes = []
    if len(rows) > limit:
        notes.append(f"{len(rows) - limit} more alerts are in alerts.ndjson")
    missing = len(inc.alert_ids) - len(rows)
    if missing > 0:
        notes.append(f"{missing} alerts are no longer in the store")
    note = f'<p class="muted">{"; ".join(notes)}.</p>' if notes else ""
    return (
        f"<h3>Evidence ({min(len(rows), limit)} of {len(inc.alert_ids)} alerts)</h3>"
        '<div class="scroll"><table class="evidence"><thead><tr><th>time (UTC)</th>'
        "<th>severity</th><th>detection</th><th>summary and evidence</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>{note}"
    )


def _incident(
    inc: Incident,
    rank: int,
    rows: Sequence[dict[str, Any]],
    inventory: Inventory | None,
    max_alerts: int,
) -> str:
    sev = inc.severity if inc.severity in SEVERITY_ORDER else "unknown"
    tl = timeline_svg(inc, rows)
    by = bytes_svg(inc, rows)
    parts = [
        f'<article class="incident b-{sev}" id="{anchor(inc.id)}">',
        f"<h2>{rank}. {esc(inc.title, 600)}</h2>",
        f'<p class="meta">{_sev_badge(inc.severity)}<span>risk {inc.risk_score:.0f}/100</span>'
        f"<span>confidence {inc.confidence:.2f}</span>"
        f"<span>dwell {esc(fmt_duration(inc.dwell_seconds))}</span>"
        f"<span>{len(inc.alert_ids)} alerts</span>"
        f'<span class="muted">{esc(inc.id, 40)}</span></p>',
    ]
    if inc.summary:
        parts.append(f"<p>{esc(inc.summary, 4000)}</p>")
    parts.append(_facts(inc))
    if tl:
        parts.append(f'<h3>Timeline</h3><div class="plotbox">{tl}</div>')
    parts.append(_path(inc, inventory))
    parts.append(_countries(rows))
    if by:
        parts.append(f'<h3>Bytes out per day</h3><div class="plotbox">{by}</div>')
    parts.append(_techniques(inc))
    parts.append(_attribution(inc))
    parts.append(_evidence_table(inc, rows, max_alerts))
    parts.append("</article>\n")
    return "".join(parts)


def _footer(data: ReportInput) -> str:
    from vpnsentry.correlate.attack import metadata

    meta = metadata()
    return (
        "<footer><p>Generated by vpnsentry "
        f"{esc(__version__)} on {esc(when(data.generated_at))} UTC"
        + (f" from store {esc(data.overview.store, 300)}" if data.overview.store else "")
        + ". Times are UTC. Machine-readable: alerts.ndjson, incidents.ndjson, "
        "stix-bundle.json (same folder).</p>"
        f"<p>Technique and group data: MITRE ATT&amp;CK® {esc(meta.get('attack_version', ''))}. "
        f"{esc(meta.get('copyright', ''), None)} {esc(meta.get('license', ''), None)} "
        f"{esc(meta.get('trademark', ''), None)}</p></footer>\n"
    )


def render(data: ReportInput, *, max_detailed: int = 25, max_alerts: int = 60) -> str:
    """The whole report as one HTML document."""
    alerts = data.alerts
    if "alert.suppressed" in alerts.columns:
        active = alerts.filter(~pl.col("alert.suppressed").fill_null(False))
    else:
        active = alerts
    by_id: dict[str, dict[str, Any]] = {}
    if "alert.id" in active.columns:
        for row in active.iter_rows(named=True):
            by_id[str(row["alert.id"])] = row
    incidents = ranked(data.incidents)
    shown = incidents[:max_detailed]
    title = f"vpnsentry report: {len(incidents)} incidents"
    if incidents:
        title += f", top {incidents[0].severity}"
    parts = [
        _head(title),
        "<header><h1>vpnsentry report</h1>"
        f'<p class="muted">Intrusions through the VPN found in the logs of '
        f"{esc(when(data.overview.start))} &#8211; {esc(when(data.overview.end))} UTC. "
        f"Generated {esc(when(data.generated_at))} UTC.</p></header>\n<main>\n",
        _summary(data, active, incidents),
        _ranking(incidents, {i.id for i in shown}),
    ]
    for n, inc in enumerate(shown, start=1):
        rows = [by_id[a] for a in inc.alert_ids if a in by_id]
        rows.sort(key=lambda r: (r.get("@timestamp") is None, r.get("@timestamp") or 0))
        parts.append(_incident(inc, n, rows, data.inventory, max_alerts))
    parts.append("</main>\n")
    parts.append(_footer(data))
    parts.append("</body></html>\n")
    return "".join(parts)
