"""/docs and /redoc in headless chromium (issue 16, item 7): both render the API from shipped assets only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from registry.bundle import ModelBundle
from tests.serving.api.test_dashboard_browser import browser
from tests.serving.api.test_process import server
from tests.serving.factories import seed_cache

pytestmark = pytest.mark.slow
__all__ = ["browser"]  # the dashboard test's headless chromium fixture

#: What each page shows once it has drawn the API: Swagger UI's operation blocks, ReDoc's operations.
RENDERED = {
    "/docs": "return document.querySelectorAll('.swagger-ui .opblock').length",
    "/redoc": "return document.querySelectorAll('[data-section-id^=\"operation/\"]').length",
}
#: Every resource the page asked for but images (the Resource Timing API): scripts, styles, the document.
#: (ReDoc asks its makers' CDN for a footer logo: the page's Content-Security-Policy blocks it, see
#: tests/serving/api/test_docs.py, and ReDoc hides the image when it fails.)
LOADED = """return performance.getEntriesByType('resource')
  .filter((entry) => entry.initiatorType !== 'img').map((entry) => entry.name)"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, ModelBundle]) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("docs-browser")
    seed_cache(tmp / "state" / "models", bundles)
    with server(Path(tmp)) as (_, address):
        yield address


@pytest.mark.parametrize("page", sorted(RENDERED))
def test_the_docs_render_every_operation_offline(browser: WebDriver, url: str, page: str) -> None:
    browser.get(url + page)
    deadline = time.monotonic() + 60
    shown = 0
    while time.monotonic() < deadline and shown < 10:
        shown = int(browser.execute_script(RENDERED[page]))
        time.sleep(0.2)
    assert shown >= 10, f"{page} drew {shown} operations"
    loaded = browser.execute_script(LOADED)
    assert loaded
    assert all(resource.startswith(url) for resource in loaded), loaded
