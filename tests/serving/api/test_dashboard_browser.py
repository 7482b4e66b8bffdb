"""The dashboard in a real browser: Debian's chromium (headless, via Debian's chromedriver and Selenium)
against ``riskgate serve`` over a state directory filled by a backtest of a small simulated world's last
month.

Checks what a user sees: the charts are drawn *with data* (the uPlot instances hold points, and the plot areas
hold coloured pixels, not just axes), the drift table has rows coloured by band, the models and the log size
are shown, a refused key and an empty log are explained, and the browser logs no error.

The screenshot of the filled page is kept as a test artifact: ``test-artifacts/dashboard-browser.png`` at the
project root (git-ignored; CI keeps that folder), or under ``$RISKGATE_TEST_ARTIFACTS`` when set.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from features.iptv import FEATURE_SET
from registry.bundle import ModelBundle
from registry.names import MODEL_NAMES
from serving.readers.backtest import run_backtest
from serving.scoring.models import ModelPair, ServingModel
from simulator import WorldConfig, simulate
from tests.serving.api.test_process import server
from tests.serving.factories import (
    ADMIN_KEY,
    ATTRIBUTE_SET_SPEC,
    SCORE,
    SCORE_KEY,
    attempt,
    seed_cache,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
CHARTS = (
    "chart-volume",
    "chart-actions",
    "chart-fraud-scores",
    "chart-failure-scores",
    "chart-fraud-rates",
    "chart-failure-rates",
    "chart-money",
)
#: Background colour of each drift band's badge (serving/api/static/dashboard.css).
BAND_COLOURS = {
    "stable": "rgb(227, 244, 234)",
    "moderate": "rgb(253, 241, 211)",
    "significant": "rgb(251, 225, 223)",
    "insufficient_data": "rgb(236, 239, 243)",
}
#: Per chart: points drawn (non-null values of the shown series) and saturated pixels inside the plot area.
#: Axes, grid and the "not mature" shading are grey, so coloured pixels there are series actually drawn.
_CHART_INK = """
const out = {};
for (const [id, chart] of Object.entries(window.riskgate.charts)) {
  const points = chart.series.map((s, i) => i === 0 || !s.show ? 0 :
    chart.data[i].filter((v) => v != null && Number.isFinite(v)).length);
  const box = chart.bbox, ctx = chart.ctx;
  const pixels = ctx.getImageData(box.left, box.top, box.width, box.height).data;
  let coloured = 0;
  for (let p = 0; p < pixels.length; p += 4) {
    const r = pixels[p], g = pixels[p + 1], b = pixels[p + 2], a = pixels[p + 3];
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured += 1;
  }
  out[id] = {series: chart.series.length - 1, points, coloured, buckets: chart.data[0].length};
}
return out;
"""
_DRIFT_ROWS = """
return [...document.querySelectorAll('#drift tbody tr')].map((tr) => {
  const badge = tr.querySelector('.band');
  return {name: tr.cells[0].textContent, psi: tr.cells[1].textContent,
          band: [...badge.classList].find((c) => c.startsWith('band-')).slice(5),
          colour: getComputedStyle(badge).backgroundColor};
});
"""


def _artifacts() -> Path:
    folder = Path(os.environ.get("RISKGATE_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make system-deps` (apt-get install chromium chromium-driver)"
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless chromium (Debian's, with its own chromedriver: no browser download), console logs kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1440,1000",
                     "--hide-scrollbars", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(_executable("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, ModelBundle]) -> Path:
    """A small simulated world whose last month was replayed by the backtest; the service's models cached."""
    root = tmp_path_factory.mktemp("dashboard-replayed")
    simulate(WorldConfig(accounts=800, months=2, seed=11, chunk_accounts=800), root / "data")
    fraud, failure = (
        ServingModel.from_bundle(bundles[task], MODEL_NAMES[task], "1", "registry")
        for task in ("fraud", "failure")
    )
    pair = ModelPair(fraud, failure)
    run_backtest(root / "data", root / "state", pair, FEATURE_SET)
    seed_cache(root / "state" / "models", bundles)
    return root


def _console_errors(driver: WebDriver, allowed: tuple[str, ...] = ()) -> list[str]:
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [
        entry["message"]
        for entry in entries
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in allowed)
    ]


def _open(driver: WebDriver, url: str, key: str) -> str:
    """Load the page in a fresh tab state, type the key, wait for the page to settle; its final state."""
    driver.get(f"{url}/dashboard")
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{url}/dashboard")
    _console_errors(driver)  # start the console log from here
    return _settled(driver, lambda: _type_key(driver, key))


def _type_key(driver: WebDriver, key: str) -> None:
    driver.find_element("id", "api-key").send_keys(key)
    driver.find_element("id", "key-use").click()


def _settled(driver: WebDriver, action: Callable[[], object], timeout: float = 60.0) -> str:
    """Do ``action`` (which starts a load), wait until that load has finished; the page's state then."""
    before = int(driver.execute_script("return window.riskgate.loads"))
    action()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(driver.execute_script("return window.riskgate.loads")) > before:
            return str(driver.execute_script("return document.body.dataset.state"))
        time.sleep(0.1)
    raise TimeoutError(f"the dashboard did not finish loading in {timeout} s")


def _screenshot(driver: WebDriver, name: str) -> Path:
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1440, height + 40)
    time.sleep(0.3)  # the resize handler redraws the charts
    path = _artifacts() / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1440, 1000)
    print(f"dashboard screenshot: {path}")
    return path


def test_the_dashboard_shows_a_replayed_month(replayed: Path, browser: WebDriver) -> None:
    with server(replayed) as (_, url):
        assert _open(browser, url, SCORE_KEY) == "ready", browser.execute_script(
            "return window.riskgate.errors"
        )
        assert browser.execute_script("return window.riskgate.errors") == []

        ink = browser.execute_script(_CHART_INK)
        assert set(ink) == set(CHARTS)
        for chart, drawn in ink.items():
            assert drawn["buckets"] >= 20, (chart, drawn)  # a month by day
            assert max(drawn["points"]) >= 20, (chart, drawn)
            assert drawn["coloured"] > 200, (chart, drawn)  # series drawn, not only axes and grid
        assert browser.find_element("id", "st-fraud").text == "riskgate-fraud v1 (local copy)"
        assert int(browser.find_element("id", "st-decisions").text.replace(",", "")) > 300
        assert browser.find_element("id", "empty").is_displayed() is False

        rows = browser.execute_script(_DRIFT_ROWS)
        assert len(rows) >= 4
        assert {row["name"] for row in rows} >= {"fraud score", "failure score"}
        for row in rows:
            assert row["colour"] == BAND_COLOURS[row["band"]], row
        assert _console_errors(browser) == []
        screenshot = _screenshot(browser, "dashboard-browser.png")
        assert screenshot.stat().st_size > 50_000

        segment = Select(browser.find_element("id", "segment"))
        assert _settled(browser, lambda: segment.select_by_value("card_funding")) == "ready"
        segmented = browser.execute_script(_CHART_INK)["chart-volume"]
        assert segmented["series"] >= 2  # one line per card funding type
        assert browser.find_element("id", "segment-value").is_displayed()
        bucket = Select(browser.find_element("id", "bucket"))
        assert _settled(browser, lambda: bucket.select_by_value("week")) == "ready"
        assert browser.execute_script(_CHART_INK)["chart-actions"]["buckets"] <= 6
        assert _console_errors(browser) == []

        # a refused key is said, and the page asks for another instead of showing stale numbers
        assert _open(browser, url, "not-a-key") == "error"
        errors = browser.find_element("id", "errors").text
        assert "Key refused" in errors
        assert "invalid API key" in errors
        assert browser.find_element("id", "api-key").is_displayed()
        assert not browser.find_element("id", "main").is_displayed()
        assert _console_errors(browser, allowed=("401 (Unauthorized)",)) == []


def test_an_empty_log_without_models_is_explained(tmp_path: Path, browser: WebDriver) -> None:
    with server(tmp_path) as (_, url):
        assert _open(browser, url, ADMIN_KEY) == "ready"
        assert "No decision is logged" in browser.find_element("id", "empty").text
        assert "fallback" in browser.find_element("id", "fallback").text
        assert browser.find_element("id", "st-fraud").text == "none — fallback rules"
        assert "no model is loaded" in browser.find_element("id", "drift").text.lower()
        assert browser.execute_script("return Object.keys(window.riskgate.charts).length") == 0
        assert _console_errors(browser) == []


def test_the_segment_picker_lists_the_served_category_attributes(tmp_path: Path, browser: WebDriver) -> None:
    with server(tmp_path, RISKGATE_FEATURE_SET=ATTRIBUTE_SET_SPEC, PYTHONPATH=str(ROOT)) as (_, url):
        for n, channel in enumerate(["web", "app", "app", "web", "app"]):
            body = attempt(n, attributes={"channel": channel, "terminal_id": f"t{n}"})
            assert httpx.post(f"{url}/v1/score", json=body, headers=SCORE, timeout=30).status_code == 200
        assert _open(browser, url, SCORE_KEY) == "ready"
        group = browser.find_element("css selector", "#segment optgroup[data-attributes]")
        options = group.find_elements("tag name", "option")
        assert [(o.get_attribute("value"), o.text) for o in options] == [("channel", "channel")]
        segment = Select(browser.find_element("id", "segment"))
        assert _settled(browser, lambda: segment.select_by_value("channel")) == "ready"
        assert browser.execute_script(_CHART_INK)["chart-volume"]["series"] == 2  # web and app
        values = Select(browser.find_element("id", "segment-value")).options
        assert [o.text for o in values] == ["app (3)", "web (2)"]
        assert _console_errors(browser) == []
