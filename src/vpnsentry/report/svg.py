"""The report's plots as inline SVG, drawn in Python: no JavaScript, fonts or images to load.

Each function returns one standalone ``<svg>`` element (well-formed XML, with its own
``xmlns``), sized by ``width``/``height`` and a ``viewBox`` so CSS can scale it down on a
phone. Every piece of text, including tooltips (``<title>``) and attributes, goes through
:func:`vpnsentry.report.escape.esc`: labels are log values and may be hostile.
Element ids (arrow markers) are built from the caller's ``uid``, reduced to ``[A-Za-z0-9_-]``
so two plots in one page never share an id.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from vpnsentry.report.escape import esc

SEVERITY_COLOURS: Final = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#d97706",
    "low": "#2563eb",
}
#: Series colours for stacked bars (colour-blind-friendly order, then grey for "other").
PALETTE: Final = (
    "#2563eb",
    "#d97706",
    "#059669",
    "#db2777",
    "#7c3aed",
    "#0891b2",
    "#65a30d",
    "#b91c1c",
)
OTHER_COLOUR: Final = "#94a3b8"
FONT: Final = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

_NODE_STYLE: Final = {  # kind -> (fill, stroke)
    "external": ("#fee2e2", "#b91c1c"),
    "gateway": ("#fef3c7", "#b45309"),
    "internal": ("#e0f2fe", "#0369a1"),
    "other": ("#f1f5f9", "#475569"),
}


@dataclass(frozen=True)
class Mark:
    """One alert on a timeline: a bar from ``start`` to ``end`` in its detection's lane."""

    start: dt.datetime
    end: dt.datetime
    lane: str
    severity: str
    tip: str = ""


@dataclass(frozen=True)
class Node:
    """A box of the attack-path graph, drawn in the column (``layer``) of its site."""

    id: str
    label: str
    layer: str
    sub: str = ""  # second, smaller line (role, site)
    kind: str = "internal"  # external, gateway, internal, other: the box colour
    tip: str = ""


@dataclass(frozen=True)
class Edge:
    """A numbered arrow of the attack-path graph (``n`` = order of first sight)."""

    n: int
    src: str
    dst: str
    tip: str = ""


@dataclass(frozen=True)
class Bar:
    """One stacked segment: ``value`` of ``series`` in column ``group``."""

    group: str
    series: str
    value: float


def safe_id(uid: str) -> str:
    """``uid`` reduced to characters that are safe in an id and a ``url(#...)``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", uid)[:60] or "x"


def _open(width: float, height: float, title: str) -> str:
    w, h = round(width), round(height)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}" '
        f'font-family="{FONT}" font-size="11"><title>{esc(title)}</title>'
    )


def _n(v: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    return f"{v:.1f}".rstrip("0").rstrip(".")


# -- timeline ------------------------------------------------------------------------------

_STEPS: Final = (
    60,
    300,
    900,
    1800,
    3600,
    2 * 3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
    91 * 86400,
    365 * 86400,
)


def _time_ticks(t0: dt.datetime, t1: dt.datetime, most: int = 7) -> list[dt.datetime]:
    span = max((t1 - t0).total_seconds(), 1.0)
    step = next((s for s in _STEPS if span / s <= most), _STEPS[-1])
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    first = math.ceil((t0 - epoch).total_seconds() / step) * step
    out: list[dt.datetime] = []
    t = epoch + dt.timedelta(seconds=first)
    while t <= t1 and len(out) < 50:
        out.append(t)
        t += dt.timedelta(seconds=step)
    return out


def _tick_label(t: dt.datetime, with_time: bool) -> str:
    return t.strftime("%m-%d %H:%M") if with_time else t.strftime("%m-%d")


def timeline(marks: Sequence[Mark], *, title: str, max_lanes: int = 16) -> str:
    """Alerts over time: one lane per detection, a bar per alert coloured by severity."""
    if not marks:
        return ""
    marks = sorted(marks, key=lambda m: m.start)
    lanes: list[str] = []
    for m in marks:
        if m.lane not in lanes:
            lanes.append(m.lane)
    other = "(other detections)"
    if len(lanes) > max_lanes:
        lanes = [*lanes[: max_lanes - 1], other]
    lane_of = {name: i for i, name in enumerate(lanes)}
    t0 = min(m.start for m in marks)
    t1 = max(max(m.end, m.start) for m in marks)
    if (t1 - t0) < dt.timedelta(hours=1):
        mid = t0 + (t1 - t0) / 2
        t0, t1 = mid - dt.timedelta(minutes=30), mid + dt.timedelta(minutes=30)
    pad = (t1 - t0) * 0.02
    t0, t1 = t0 - pad, t1 + pad
    left, right, top, lane_h = 210.0, 16.0, 8.0, 22.0
    width = 900.0
    plot_w = width - left - right
    height = top + lane_h * len(lanes) + 34.0
    span = (t1 - t0).total_seconds()

    def x(t: dt.datetime) -> float:
        return left + (t - t0).total_seconds() / span * plot_w

    parts = [_open(width, height, title)]
    bottom = top + lane_h * len(lanes)
    for i, name in enumerate(lanes):
        y = top + i * lane_h
        if i % 2 == 0:
            parts.append(
                f'<rect x="{_n(left)}" y="{_n(y)}" width="{_n(plot_w)}" height="{_n(lane_h)}" '
                'fill="#f8fafc"/>'
            )
        parts.append(
            f'<text x="{_n(left - 6)}" y="{_n(y + lane_h / 2 + 4)}" text-anchor="end" '
            f'fill="#334155">{esc(name, 34)}<title>{esc(name)}</title></text>'
        )
    ticks = _time_ticks(t0, t1)
    with_time = len(ticks) > 1 and (ticks[1] - ticks[0]) < dt.timedelta(days=1)
    for t in ticks:
        tx = x(t)
        parts.append(
            f'<line x1="{_n(tx)}" y1="{_n(top)}" x2="{_n(tx)}" y2="{_n(bottom)}" '
            'stroke="#cbd5e1" stroke-width="0.6"/>'
            f'<text x="{_n(tx)}" y="{_n(bottom + 14)}" text-anchor="middle" '
            f'fill="#475569">{esc(_tick_label(t, with_time))}</text>'
        )
    parts.append(
        f'<text x="{_n(width - right)}" y="{_n(bottom + 28)}" text-anchor="end" '
        f'fill="#64748b">{esc(t0.strftime("%Y-%m-%d %H:%M"))} &#8211; '
        f"{esc(t1.strftime('%Y-%m-%d %H:%M'))} UTC</text>"
    )
    for m in marks:
        lane = lane_of.get(m.lane, lane_of.get(other, 0))
        x0 = x(m.start)
        w = max(4.0, x(max(m.end, m.start)) - x0)
        y = top + lane * lane_h + 4
        colour = SEVERITY_COLOURS.get(m.severity, OTHER_COLOUR)
        parts.append(
            f'<rect class="mark" x="{_n(x0)}" y="{_n(y)}" width="{_n(w)}" '
            f'height="{_n(lane_h - 8)}" rx="2" fill="{colour}" fill-opacity="0.85">'
            f"<title>{esc(m.tip, 600)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


# -- attack path -----------------------------------------------------------------------------


def path_graph(
    nodes: Sequence[Node], edges: Sequence[Edge], layers: Sequence[str], *, uid: str, title: str
) -> str:
    """Numbered first-seen movements between boxes laid out in one column per site."""
    if not edges:
        return ""
    sid = safe_id(uid)
    cols: dict[str, list[Node]] = {name: [] for name in layers}
    for nd in nodes:
        cols.setdefault(nd.layer, []).append(nd)
    order = [name for name in cols if cols[name]]
    col_of = {nd.id: order.index(nd.layer) for nd in nodes}
    row_of: dict[str, int] = {}
    for name in order:
        for r, nd in enumerate(cols[name]):
            row_of[nd.id] = r
    box_w, box_h, col_gap, row_gap, top, margin = 176.0, 36.0, 64.0, 22.0, 30.0, 12.0
    rows = max(len(cols[name]) for name in order)
    width = margin * 2 + len(order) * box_w + (len(order) - 1) * col_gap + 30.0
    height = top + rows * (box_h + row_gap) + margin

    def pos(node_id: str) -> tuple[float, float]:
        c, r = col_of[node_id], row_of[node_id]
        return margin + c * (box_w + col_gap), top + r * (box_h + row_gap)

    arrow = f"arrow-{sid}"
    parts = [
        _open(width, height, title),
        f'<defs><marker id="{arrow}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#475569"/></marker></defs>',
    ]
    for c, name in enumerate(order):
        cx = margin + c * (box_w + col_gap) + box_w / 2
        parts.append(
            f'<text x="{_n(cx)}" y="18" text-anchor="middle" font-weight="600" '
            f'fill="#1e293b">{esc(name, 30)}<title>{esc(name)}</title></text>'
        )
    # Edges first, boxes on top, numbers on top of everything.
    badges: list[str] = []
    seen_from: dict[str, int] = {}
    for e in edges:
        if e.src not in col_of or e.dst not in col_of:
            continue
        (sx, sy), (dx, dy) = pos(e.src), pos(e.dst)
        sy, dy = sy + box_h / 2, dy + box_h / 2
        cs, cd = col_of[e.src], col_of[e.dst]
        if cd > cs:
            x1, x2 = sx + box_w, dx
            c1, c2 = (x1 + (x2 - x1) * 0.5, sy), (x1 + (x2 - x1) * 0.5, dy)
        elif cd < cs:
            x1, x2 = sx, dx + box_w
            c1, c2 = (x1 - 40, sy), (x2 + 40, dy)
        else:  # same site: an arc out to the right of the column
            x1 = x2 = sx + box_w
            bulge = 28 + 10 * (abs(row_of[e.src] - row_of[e.dst]) ** 0.5)
            c1, c2 = (x1 + bulge, sy), (x2 + bulge, dy)
        if e.src == e.dst:
            c1, c2, dy = (x1 + 36, sy - 26), (x2 + 36, sy + 26), sy + 6
        parts.append(
            f'<path class="edge" d="M{_n(x1)},{_n(sy)} C{_n(c1[0])},{_n(c1[1])} '
            f'{_n(c2[0])},{_n(c2[1])} {_n(x2)},{_n(dy)}" fill="none" stroke="#475569" '
            f'stroke-width="1.3" marker-end="url(#{arrow})"><title>{esc(e.tip, 600)}</title>'
            "</path>"
        )
        # The number sits in the gap next to the source, staggered between the edges that
        # leave the same box, so it is not hidden behind a box the edge passes.
        if cs == cd or e.src == e.dst:
            t = 0.5
        else:
            k = seen_from.get(e.src, 0)
            seen_from[e.src] = k + 1
            step = col_gap * (0.3 + 0.2 * (k % 3))
            t = _solve_t(x1, c1[0], c2[0], x2, x1 + step if cd > cs else x1 - step)
        bx = _bezier(x1, c1[0], c2[0], x2, t)
        by = _bezier(sy, c1[1], c2[1], dy, t)
        badges.append(
            f'<g class="step"><circle cx="{_n(bx)}" cy="{_n(by)}" r="9" fill="#1e293b"/>'
            f'<text x="{_n(bx)}" y="{_n(by + 3.5)}" text-anchor="middle" fill="#fff" '
            f'font-size="10" font-weight="700">{e.n}</text><title>{esc(e.tip, 600)}</title></g>'
        )
    for nd in nodes:
        x, y = pos(nd.id)
        fill, stroke = _NODE_STYLE.get(nd.kind, _NODE_STYLE["other"])
        parts.append(
            f'<g class="node"><rect x="{_n(x)}" y="{_n(y)}" width="{_n(box_w)}" '
            f'height="{_n(box_h)}" rx="5" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{_n(x + 8)}" y="{_n(y + 15)}" fill="#0f172a" font-weight="600">'
            f"{esc(nd.label, 27)}</text>"
            f'<text x="{_n(x + 8)}" y="{_n(y + 29)}" fill="#475569" font-size="10">'
            f"{esc(nd.sub, 32)}</text><title>{esc(nd.tip or nd.label, 600)}</title></g>"
        )
    parts.extend(badges)
    parts.append("</svg>")
    return "".join(parts)


def _bezier(p0: float, p1: float, p2: float, p3: float, t: float) -> float:
    u = 1 - t
    return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3


def _solve_t(p0: float, p1: float, p2: float, p3: float, target: float) -> float:
    """The ``t`` where a cubic that runs from ``p0`` to ``p3`` (monotonically) reaches
    ``target`` (bisection; clamped to the curve)."""
    lo, hi = 0.0, 1.0
    rising = p3 >= p0
    for _ in range(30):
        mid = (lo + hi) / 2
        if (_bezier(p0, p1, p2, p3, mid) < target) == rising:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# -- stacked bars ----------------------------------------------------------------------------


def _short(group: str) -> str:
    """``2025-03-05`` -> ``03-05`` (axis labels); anything else unchanged."""
    return group[5:] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", group) else group


def _nice_max(v: float, base: float = 10.0) -> float:
    """A round axis maximum at or above ``v`` whose quarters are round too. ``base`` 1024
    rounds in KiB/MiB/GiB steps (for bytes)."""
    if v <= 0:
        return 1.0
    unit = 1.0
    if base > 10:
        while v / unit >= base:
            unit *= base
    x = v / unit
    mag = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 1.2, 1.6, 2.0, 2.4, 3.0, 4.0, 6.0, 8.0, 10.0):
        if x <= m * mag:
            return m * mag * unit
    return 10.0 * mag * unit  # pragma: no cover


def stacked_bars(
    bars: Sequence[Bar],
    *,
    title: str,
    fmt: Callable[[float], str],
    colours: dict[str, str] | None = None,
    groups: Sequence[str] | None = None,
    max_series: int = 8,
    base: float = 10.0,
) -> str:
    """One column per group (a day) with its series (destinations, severities) stacked.

    ``groups`` fixes the columns and their order (days without data stay empty); otherwise
    the groups of ``bars`` in sorted order. Series beyond ``max_series`` share "other".
    ``base`` 1024 puts the axis ticks on round KiB/MiB/GiB values.
    """
    bars = [b for b in bars if b.value > 0]
    if not bars:
        return ""
    totals_by_series: dict[str, float] = {}
    for b in bars:
        totals_by_series[b.series] = totals_by_series.get(b.series, 0.0) + b.value
    if colours is not None:
        series = [s for s in colours if s in totals_by_series]
        series += [s for s in totals_by_series if s not in colours]
    else:
        series = sorted(totals_by_series, key=lambda s: -totals_by_series[s])
    other = "other"
    if len(series) > max_series:
        series = [*series[: max_series - 1], other]
    known = set(series)
    colour = {
        s: (colours or {}).get(s) or (OTHER_COLOUR if s == other else PALETTE[i % len(PALETTE)])
        for i, s in enumerate(series)
    }
    cols = list(groups) if groups is not None else sorted({b.group for b in bars})
    stack: dict[str, dict[str, float]] = {g: {} for g in cols}
    for b in bars:
        s = b.series if b.series in known else other
        if b.group in stack:
            stack[b.group][s] = stack[b.group].get(s, 0.0) + b.value
    top_v = _nice_max(max((sum(v.values()) for v in stack.values()), default=0.0), base)
    left, right, top, plot_h = 74.0, 14.0, 10.0, 170.0
    bw = min(56.0, max(10.0, 720.0 / max(1, len(cols))))
    width = max(380.0, left + right + bw * len(cols))
    bw = (width - left - right) / max(1, len(cols))
    inner = min(bw * 0.76, 48.0)
    legend_rows = math.ceil(len(series) / 3)
    height = top + plot_h + 26 + legend_rows * 18 + 6

    def y(v: float) -> float:
        return top + plot_h - v / top_v * plot_h

    parts = [_open(width, height, title)]
    for i in range(5):
        v = top_v * i / 4
        parts.append(
            f'<line x1="{_n(left)}" y1="{_n(y(v))}" x2="{_n(width - right)}" y2="{_n(y(v))}" '
            'stroke="#e2e8f0"/>'
            f'<text x="{_n(left - 6)}" y="{_n(y(v) + 4)}" text-anchor="end" '
            f'fill="#475569">{esc(fmt(v))}</text>'
        )
    every = max(1, math.ceil(len(cols) * 44 / (width - left - right)))
    for i, g in enumerate(cols):
        x = left + i * bw
        base = 0.0
        for s in series:
            v = stack[g].get(s, 0.0)
            if v <= 0:
                continue
            y1, y0 = y(base + v), y(base)
            parts.append(
                f'<rect class="bar" x="{_n(x + (bw - inner) / 2)}" y="{_n(y1)}" '
                f'width="{_n(inner)}" '
                f'height="{_n(max(0.8, y0 - y1))}" fill="{colour[s]}">'
                f"<title>{esc(g)} · {esc(s)}: {esc(fmt(v))}</title></rect>"
            )
            base += v
        if i % every == 0:
            parts.append(
                f'<text x="{_n(x + bw / 2)}" y="{_n(top + plot_h + 14)}" text-anchor="middle" '
                f'fill="#475569">{esc(_short(g), 12)}</text>'
            )
    ly = top + plot_h + 30
    col_w = (width - left) / 3
    for i, s in enumerate(series):
        lx = left + (i % 3) * col_w
        yy = ly + (i // 3) * 18
        parts.append(
            f'<rect x="{_n(lx)}" y="{_n(yy - 9)}" width="10" height="10" fill="{colour[s]}"/>'
            f'<text x="{_n(lx + 14)}" y="{_n(yy)}" fill="#334155">{esc(s, 34)}'
            f"<title>{esc(s)}</title></text>"
        )
    parts.append("</svg>")
    return "".join(parts)
