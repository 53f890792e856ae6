"""The HTML report: every log value escaped, self-contained, the sections an analyst needs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.report import sample
from vpnsentry.report import html as report_html
from vpnsentry.report.escape import clean, esc
from vpnsentry.report.html import CSP, pretty_evidence, render, technique_url

#: Every element the report may contain. A hostile value that became markup would add one.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "main", "footer", "section",
    "article", "h1", "h2", "h3", "p", "b", "br", "small", "span", "div", "a", "ul", "ol", "li",
    "dl", "dt", "dd", "table", "thead", "tbody", "tr", "th", "td", "pre",
    # inline SVG
    "svg", "defs", "marker", "path", "rect", "line", "text", "g", "circle",
}  # fmt: skip
ALLOWED_ATTRS = {
    "lang", "charset", "http-equiv", "content", "name", "class", "id", "href", "rel",
    "xmlns", "width", "height", "viewbox", "role", "aria-label", "font-family", "font-size",
    "font-weight", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "d", "fill",
    "fill-opacity", "stroke", "stroke-width", "text-anchor", "marker-end", "refx", "refy",
    "markerwidth", "markerheight", "orient",
}  # fmt: skip


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        for k, v in attrs:
            self.attrs.add(k)
            if k == "href":
                self.hrefs.append(v or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style:
            self.text.append(data)


@pytest.fixture(scope="module")
def page() -> str:
    return render(sample.report_input())


@pytest.fixture(scope="module")
def parsed(page: str) -> _Collect:
    p = _Collect()
    p.feed(page)
    p.close()
    return p


def test_escape_helpers() -> None:
    assert esc('<b a="1">\'&') == "&lt;b a=&quot;1&quot;&gt;&#x27;&amp;"
    assert clean("\x1b[31mred\x00") == "\\x1b[31mred\\x00"
    assert clean("a\u202eb\u2066c") == "a\\u202eb\\u2066c"
    assert clean("x" * 50, 10) == "x" * 9 + "…"
    assert clean(None) == ""
    assert clean("tab\tand\nnewline") == "tab\tand\nnewline"


def test_hostile_values_never_become_markup(page: str, parsed: _Collect) -> None:
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert parsed.attrs <= ALLOWED_ATTRS, parsed.attrs - ALLOWED_ATTRS
    low = page.lower()
    assert "<script" not in low
    assert "<img" not in low
    assert 'onerror="' not in low
    assert low.count("</style>") == 1  # the report's own
    assert low.count("<style>") == 1
    # ...and they are shown, as text.
    text = "".join(parsed.text)
    assert sample.SCRIPT in text
    assert "</style></svg>\"'><img src=x onerror=" in text
    # Controls and bidi overrides show as visible escapes, never raw.
    assert "\x1b" not in page and "\u202e" not in page
    assert "\\x1b[31mEVIL-HOST\\x1b[0m" in text
    assert "abc\\u202edcba" in text
    # Very long values are cut.
    assert sample.LONG not in page
    assert "A" * 200 in page


def test_self_contained_with_strict_csp(page: str, parsed: _Collect) -> None:
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media print" in page and "@media (max-width:640px)" in page
    assert not {"script", "link", "img", "iframe", "object", "embed", "form"} & parsed.tags
    for href in parsed.hrefs:
        assert href.startswith(("#inc-", "https://attack.mitre.org/")), href
    assert "@import" not in page
    assert re.findall(r"url\((?!#arrow-)", page) == []  # only the SVG's own arrow markers
    assert "src" not in parsed.attrs


def test_sections_and_ranking(page: str, parsed: _Collect) -> None:
    text = "".join(parsed.text)
    # Ranked: the critical incident first although it was given second.
    assert text.index(sample.CRITICAL_TITLE) < text.index(sample.LOW_TITLE)
    assert "1. " + sample.CRITICAL_TITLE in text
    assert "Summary" in text and "Incidents by severity" in text
    assert "2,896,306" in text and "21,693" in text
    assert "(1 suppressed not shown)" in text
    assert "suppressed one" not in text  # suppressed alerts are not evidence
    # Per incident: the plots, the path steps, the countries, bytes, ATT&CK, hints, evidence.
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') >= 5
    assert "Attack path" in text and "Timeline" in text and "Bytes out per day" in text
    assert "Singapore" in text and "Germany" in text
    assert "215 MiB" in text
    assert "Attribution hints" in text and "Possibly consistent with" in text
    assert "not an attribution" in text
    assert "Evidence (6 of 6 alerts)" in text
    assert "… 88 more" in text  # the 100-item evidence list is capped
    assert "dwell" in text


def test_technique_links(page: str, parsed: _Collect) -> None:
    assert technique_url("T1021.002") == "https://attack.mitre.org/techniques/T1021/002/"
    assert technique_url("T1190") == "https://attack.mitre.org/techniques/T1190/"
    assert technique_url("T1190/../../x") is None
    assert technique_url(sample.BREAKOUT) is None
    assert "https://attack.mitre.org/techniques/T1021/002/" in parsed.hrefs
    assert "https://attack.mitre.org/techniques/T1190/" in parsed.hrefs
    assert "https://attack.mitre.org/groups/G0098/" in parsed.hrefs
    assert "Remote Services: SMB/Windows Admin Shares" in "".join(parsed.text)
    # 7 techniques and a group for the critical incident, T1078 again for the low one; the
    # malformed technique and group ids are shown as text, not linked.
    assert len([h for h in parsed.hrefs if "attack.mitre.org" in h]) == 9


def test_empty_report_renders() -> None:
    data = sample.report_input()
    empty = report_html.ReportInput(
        incidents=[], alerts=data.alerts.clear(), overview=report_html.Overview()
    )
    page = render(empty)
    assert "No incidents" in page
    assert "<svg" not in page


def test_detail_is_capped() -> None:
    page = render(sample.report_input(), max_detailed=1, max_alerts=2)
    assert page.count('<article class="incident') == 1
    assert "Evidence (2 of 6 alerts)" in page
    assert "4 more alerts are in alerts.ndjson" in page
    assert "every incident is in incidents.ndjson" in page


def test_pretty_evidence() -> None:
    assert pretty_evidence('{"a": [1, 2], "b": {"c": "x"}}') == (
        '{\n  "a": [1, 2],\n  "b": {\n    "c": "x"\n  }\n}'
    )
    assert pretty_evidence("not json <b>") == "not json <b>"
    assert pretty_evidence(None) == "{}"
    deep = pretty_evidence({"k": list(range(50))})
    assert "… 38 more" in deep
    assert len(pretty_evidence({"s": "x" * 100_000})) < 1000


def test_anchor_ids_are_safe() -> None:
    assert report_html.anchor('INC-1"><x') == "inc-INC-1___x"
    assert re.fullmatch(r"inc-[A-Za-z0-9_-]+", report_html.anchor(sample.SCRIPT))
