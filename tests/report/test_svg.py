"""The plots: well-formed standalone SVG (XML), hostile labels kept as text, sane sizes."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

import pytest

from tests.report import sample
from vpnsentry.report import svg
from vpnsentry.report.html import bytes_out_bars, path_svg, render

NS = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)


def _all_text(root: ET.Element) -> str:
    return "".join(root.itertext())


def test_every_plot_in_the_report_is_well_formed_xml() -> None:
    page = render(sample.report_input())
    plots = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(plots) >= 5  # alerts per day; timeline, path and bytes; a timeline
    ids: list[str] = []
    for p in plots:
        root = ET.fromstring(p)
        assert root.tag == NS + "svg"
        assert float(root.attrib["width"]) > 0 and float(root.attrib["height"]) > 0
        assert root.attrib["viewBox"].startswith("0 0 ")
        ids += [e.attrib["id"] for e in root.iter() if "id" in e.attrib]
    assert len(ids) == len(set(ids))  # marker ids unique in the page
    joined = " ".join(_all_text(ET.fromstring(p)) for p in plots)
    assert sample.SCRIPT in joined  # the hostile name is in a tooltip or label, as text


def test_timeline_lanes_and_hostile_labels() -> None:
    marks = [
        svg.Mark(T0, T0 + dt.timedelta(hours=3), "rule_a", "high", tip=sample.SCRIPT),
        svg.Mark(T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=2), sample.BREAKOUT, "low"),
        svg.Mark(T0 + dt.timedelta(days=5), T0 + dt.timedelta(days=9), "rule_a", "critical"),
    ]
    root = ET.fromstring(svg.timeline(marks, title=f"t {sample.ANSI_HOST}"))
    rects = [r for r in root.iter(NS + "rect") if r.attrib.get("class") == "mark"]
    assert len(rects) == 3
    assert {r.attrib["fill"] for r in rects} == {
        svg.SEVERITY_COLOURS["high"],
        svg.SEVERITY_COLOURS["low"],
        svg.SEVERITY_COLOURS["critical"],
    }
    assert all(float(r.attrib["width"]) >= 4 for r in rects)
    text = _all_text(root)
    assert sample.SCRIPT in text and "\\x1b[31m" in text and "\x1b" not in text
    assert "03-03" in text or "03-04" in text  # day ticks
    # One lane per detection: two lanes.
    assert len({r.attrib["y"] for r in rects}) == 2


def test_timeline_many_lanes_are_folded() -> None:
    marks = [svg.Mark(T0 + dt.timedelta(hours=i), T0, f"r{i}", "low") for i in range(30)]
    root = ET.fromstring(svg.timeline(marks, title="x", max_lanes=5))
    assert "(other detections)" in _all_text(root)
    assert svg.timeline([], title="x") == ""


def test_path_graph_layers_numbers_and_arrows() -> None:
    inc = sample.incidents()[1]
    out = path_svg(inc, None)
    root = ET.fromstring(out)
    edges = [p for p in root.iter(NS + "path") if p.attrib.get("class") == "edge"]
    assert len(edges) == len(inc.path)
    assert all(p.attrib["marker-end"].startswith("url(#arrow-INC-") for p in edges)
    steps = [g for g in root.iter(NS + "g") if g.attrib.get("class") == "step"]
    numbers = [g.find(NS + "text") for g in steps]
    assert [n.text for n in numbers if n is not None] == ["1", "2", "3", "4", "5", "6"]
    text = _all_text(root)
    # Without an inventory: Internet sources left, internal network, outbound Internet right.
    assert "Internet" in text and "Internet (outbound)" in text and "gateways" in text
    assert sample.SCRIPT in text  # a label part, as text
    nodes = [g for g in root.iter(NS + "g") if g.attrib.get("class") == "node"]
    assert len(nodes) == 7


def test_path_graph_with_inventory_uses_sites() -> None:
    from vpnsentry.enrich.sites import parse_inventory
    from vpnsentry.simulate import default_estate_text

    inv = parse_inventory(default_estate_text(), source="default_estate.yaml")
    root = ET.fromstring(path_svg(sample.incidents()[1], inv))
    headers = [
        (t.text or "").strip()
        for t in root.iter(NS + "text")
        if t.attrib.get("font-weight") == "600" and t.attrib.get("y") == "18"
    ]
    assert headers[0] == "Internet" and headers[-1] == "Internet (outbound)"
    assert {"sha-dc", "sha-br", "tyo-hq"} <= set(headers)


def test_stacked_bars_and_bytes_dedup() -> None:
    rows = sample.alerts_frame().to_dicts()
    bars = bytes_out_bars(rows)
    # The two alerts about one upload count once, at the larger; the alert listing its
    # upload days puts its bytes on that day.
    by_day = {b.group: b.value for b in bars}
    assert by_day == {"2025-03-25": 225745588.0}
    out = svg.stacked_bars(
        [*bars, svg.Bar("2025-03-26", sample.SCRIPT, 5.0)],
        title="b",
        fmt=str,
        base=1024.0,
        groups=["2025-03-25", "2025-03-26"],
    )
    root = ET.fromstring(out)
    assert len([r for r in root.iter(NS + "rect") if r.attrib.get("class") == "bar"]) == 2
    assert sample.SCRIPT in _all_text(root)
    assert svg.stacked_bars([], title="x", fmt=str) == ""


@pytest.mark.parametrize(
    ("value", "base", "expected"),
    [(10, 10.0, 10), (7.5, 10.0, 8), (215 * 2**20, 1024.0, 240 * 2**20), (0, 10.0, 1)],
)
def test_nice_axis_maximum(value: float, base: float, expected: float) -> None:
    assert svg._nice_max(value, base) == expected


def test_safe_id() -> None:
    assert svg.safe_id('a"><b') == "a___b"
    assert svg.safe_id("") == "x"
