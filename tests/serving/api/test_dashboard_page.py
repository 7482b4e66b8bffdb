"""GET /dashboard and its assets: public, self-contained (no CDN), locked down by a CSP."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from serving.api.routes.dashboard import ASSETS, STATIC_DIR


class _Resources(HTMLParser):
    """The URLs a page loads by itself: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in {"script", "img"} and values.get("src"):
            self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))


def _resources(html: str) -> list[str]:
    parser = _Resources()
    parser.feed(html)
    return parser.urls


def test_the_page_is_public_and_locked_to_its_own_origin(bare_client: TestClient) -> None:
    page = bare_client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text  # no inline script: the policy would block it


def test_every_resource_of_the_page_is_served_locally(bare_client: TestClient) -> None:
    urls = _resources(bare_client.get("/dashboard").text)
    local = [url for url in urls if url.startswith("/dashboard/assets/")]
    assert {url.rsplit("/", 1)[1] for url in local} == set(ASSETS)
    assert all(url.startswith(("/dashboard/assets/", "data:")) for url in urls), urls
    for url in local:
        response = bare_client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] in {"text/javascript", "text/css"}
        assert response.content


def test_no_asset_loads_anything_from_another_origin() -> None:
    for file, _ in ASSETS.values():
        text = (STATIC_DIR / file).read_text()
        assert not re.search(r"""(?:src|href)\s*=\s*["']https?://""", text), file
        assert not re.search(r"""(?:fetch|import)\(\s*["']https?://""", text), file
        assert not re.search(r"""@import\s+(?:url\()?["']?https?://""", text), file


def test_the_vendored_chart_library_ships_with_its_licence() -> None:
    licence = (STATIC_DIR / "vendor" / "uPlot.LICENSE").read_text()
    assert "MIT" in licence or "Permission is hereby granted" in licence
    assert (STATIC_DIR / "vendor" / "uPlot.iife.min.js").stat().st_size > 10_000


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "dashboard.html", "vendor%2FuPlot.LICENSE"])
def test_only_the_manifest_is_served(bare_client: TestClient, name: str) -> None:
    response = bare_client.get(f"/dashboard/assets/{name}")
    assert response.status_code == 404  # a name outside the manifest, or a path that matches no route
    assert "Permission is hereby granted" not in response.text
    assert "create_app" not in response.text


def test_the_page_asks_for_the_data_with_the_key_header() -> None:
    calls, script = (STATIC_DIR / "api.js").read_text(), (STATIC_DIR / "dashboard.js").read_text()
    assert '"X-API-Key"' in calls
    assert "sessionStorage" in calls
    for page_script in (calls, script, (STATIC_DIR / "queue.js").read_text()):
        assert "localStorage" not in page_script  # the key must not outlive the tab
    for endpoint in ("/v1/status", "/v1/trends", "/v1/drift"):
        assert f'"{endpoint}"' in script
