"""The review queue's page in a real browser (the dashboard test's headless chromium) against ``riskgate
serve``: an analyst sees the open cases oldest first, opens one (its reasons, its account's history), claims
it, resolves it as fraud adding the card to a block list, and the API then says the case is closed, by whom,
and the card is listed. The browser logs no error."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from registry.bundle import ModelBundle
from tests.serving.api.test_dashboard_browser import (  # noqa: F401 (browser: a fixture)
    _artifacts,
    _console_errors,
    browser,
)
from tests.serving.api.test_process import server
from tests.serving.factories import ADMIN, ADMIN_KEY, SCORE, attempt, seed_cache

pytestmark = pytest.mark.slow

#: every scored attempt is at the elevated fraud level: the policy reviews it
REVIEW_ALL = {"RISKGATE_FRAUD_ELEVATED_THRESHOLD": "0", "RISKGATE_FRAUD_HIGHEST_THRESHOLD": "1"}


def settled(driver: WebDriver, action: Callable[[], object], timeout: float = 30.0) -> str:
    """Do ``action`` (which starts a load or an action), wait until it has finished; the page's state."""
    before = int(driver.execute_script("return window.riskgateQueue.loads"))
    action()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(driver.execute_script("return window.riskgateQueue.loads")) > before:
            return str(driver.execute_script("return document.body.dataset.state"))
        time.sleep(0.1)
    raise TimeoutError(f"the queue page did not finish in {timeout} s")


def cells(driver: WebDriver, table: str) -> list[list[str]]:
    rows: list[list[str]] = driver.execute_script(
        f"return [...document.querySelectorAll('#{table} tbody tr')].map((tr) => "
        "[...tr.cells].map((td) => td.textContent))"
    )
    return rows


def test_an_analyst_resolves_a_case_from_the_page(
    tmp_path: Path,
    bundles: dict[str, ModelBundle],
    browser: WebDriver,  # noqa: F811 (the fixture)
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with server(tmp_path, 1, **REVIEW_ALL) as (_, url):
        for n in (0, 7, 1):  # acc-0 twice: a history
            answer = httpx.post(f"{url}/v1/score", json=attempt(n), headers=SCORE, timeout=30)
            assert answer.json()["decision"]["action"] == "review"
        new_list = {"name": "stolen_cards", "field": "payment_method_id", "reason": "card testing"}
        assert httpx.post(f"{url}/v1/lists", json=new_list, headers=ADMIN, timeout=30).status_code == 201

        browser.get(f"{url}/dashboard/queue")
        browser.execute_script("sessionStorage.clear()")
        browser.get(f"{url}/dashboard/queue")
        _console_errors(browser)  # the console log from here

        def type_key() -> None:
            browser.find_element("id", "api-key").send_keys(ADMIN_KEY)
            browser.find_element("id", "key-use").click()

        assert settled(browser, type_key) == "ready"
        listed = cells(browser, "cases")
        assert [row[2] for row in listed] == ["att-000000", "att-000007", "att-000001"]  # oldest first
        assert {row[5] for row in listed} == {"fraud_elevated"}

        first = browser.find_element("css selector", "#cases tbody tr[data-case='att-000007']")
        assert settled(browser, first.click) == "ready"
        assert browser.find_element("id", "d-title").text == "Case att-000007 · open"
        assert len(cells(browser, "d-reasons")) >= 1
        assert [row[1] for row in cells(browser, "d-history")] == ["att-000007", "att-000000"]

        assert settled(browser, browser.find_element("id", "claim").click) == "ready"
        assert "Claimed by dev-admin" in browser.find_element("id", "d-claim").text

        Select(browser.find_element("id", "outcome")).select_by_value("fraud")
        deadline = time.monotonic() + 10
        while not browser.find_element("id", "block-label").is_displayed() and time.monotonic() < deadline:
            time.sleep(0.1)
        Select(browser.find_element("id", "block-list")).select_by_value("stolen_cards")
        browser.find_element("id", "note").send_keys("bank confirmed the card was stolen")
        assert settled(browser, browser.find_element("id", "resolve").click) == "ready", (
            browser.execute_script("return window.riskgateQueue.errors")
        )
        assert "Resolved fraud by dev-admin" in browser.find_element("id", "d-resolution").text
        browser.save_screenshot(str(_artifacts() / "review-queue-browser.png"))
        assert [row[2] for row in cells(browser, "cases")] == ["att-000000", "att-000001"]
        assert _console_errors(browser) == []

        case: dict[str, Any] = httpx.get(
            f"{url}/v1/review/cases/att-000007", headers=ADMIN, timeout=30
        ).json()
        made = case["case"]["resolution"]
        assert case["case"]["status"] == "closed"
        assert (made["outcome"], made["resolved_by"]) == ("fraud", "dev-admin")
        assert made["note"] == "bank confirmed the card was stolen"
        items = httpx.get(f"{url}/v1/lists/stolen_cards/items", headers=ADMIN, timeout=30).json()["items"]
        assert [item["value"] for item in items] == ["pm_tok_2"]  # attempt 7's card (n % 5)
