"""The report in a real browser: headless Chromium (Debian's chromium + chromium-driver).

Loads report.html from file:// and checks what the analyst would see: the incident titles
and the SVG plots are there and visible, the hostile user name is shown as text and did not
run, nothing was fetched from anywhere but the file itself (the DevTools network log), it
prints, and it fits a phone's width.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.report import sample
from vpnsentry.report import export
from vpnsentry.report.html import render

CHROMEDRIVER = "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()),
        reason="chromium/chromium-driver not installed (scripts/install-system-deps.sh)",
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = sample.report_input()
    out = tmp_path_factory.mktemp("chromium") / "rep"
    files = export.write_report(out, render(data), data.incidents, data.alerts, now=sample.NOW)
    return files.html


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--window-size=1280,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def loaded(driver: Any, report: Path) -> Any:
    driver.get_log("performance")  # drop anything logged before our page
    driver.get(report.as_uri())
    return driver


def test_titles_and_plots_are_visible(loaded: Any) -> None:
    from selenium.webdriver.common.by import By

    heads = loaded.find_elements(By.CSS_SELECTOR, "article.incident h2")
    assert [h.is_displayed() for h in heads] == [True, True]
    assert heads[0].text == "1. " + sample.CRITICAL_TITLE  # escaped markup shows as text
    assert heads[1].text == "2. " + sample.LOW_TITLE
    plots = loaded.find_elements(By.CSS_SELECTOR, "svg.plot")
    assert len(plots) >= 5
    for p in plots:
        loaded.execute_script("arguments[0].scrollIntoView()", p)
        assert p.is_displayed()
        assert p.size["width"] > 100 and p.size["height"] > 40
    # The attack path's boxes and numbered steps are drawn.
    assert len(loaded.find_elements(By.CSS_SELECTOR, "svg.plot g.node")) == 7 + 0
    assert len(loaded.find_elements(By.CSS_SELECTOR, "svg.plot g.step")) == 6


def test_hostile_payload_is_text_and_did_not_run(loaded: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    with pytest.raises(NoAlertPresentException):
        loaded.switch_to.alert.text  # noqa: B018
    assert loaded.execute_script("return typeof window.__pwned") == "undefined"
    assert loaded.find_elements(By.TAG_NAME, "script") == []
    assert loaded.find_elements(By.TAG_NAME, "img") == []
    body = loaded.find_element(By.TAG_NAME, "body").text
    assert sample.SCRIPT in body
    assert "\\x1b[31mEVIL-HOST\\x1b[0m" in body
    # The browser saw no CSP violation either (nothing even tried to load or run).
    console = [e["message"] for e in loaded.get_log("browser")]
    assert not [m for m in console if "Content Security Policy" in m], console


def test_no_request_leaves_the_file(loaded: Any, report: Path) -> None:
    urls = []
    for entry in loaded.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert report.as_uri() in urls
    assert all(u.startswith(("file://", "data:")) for u in urls), urls


def test_prints_and_fits_a_phone(loaded: Any, report: Path) -> None:
    pdf = loaded.print_page()
    assert len(pdf) > 10_000  # base64 PDF of several pages
    loaded.set_window_size(390, 844)
    loaded.get(report.as_uri())
    overflow = loaded.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"page is {overflow}px wider than a phone screen"
    loaded.set_window_size(1280, 1000)
