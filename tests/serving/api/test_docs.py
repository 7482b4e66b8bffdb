"""/docs and /redoc work offline (issue 16, item 7): the pages load only assets the service ships."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.serving.documented import DocumentedClient

#: Every URL a page loads: src=, href= and spec-url= attributes, and the OpenAPI document's url.
_URLS = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: ?["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_local_assets(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    urls = [a or b for a, b in _URLS.findall(response.text)]
    assert urls, response.text
    assert "/openapi.json" in urls or any(u.endswith("/openapi.json") for u in urls)
    for url in urls:
        assert url.startswith("/"), url  # same origin: no CDN, no fonts from elsewhere
        assert client.get(url).status_code == 200, url
    assert "cdn" not in response.text.lower()
    assert "fonts.googleapis" not in response.text


def test_the_pages_follow_the_root_path(client: TestClient) -> None:
    """Behind a proxy (``riskgate serve --root-path /risk``) the pages load their assets under the prefix."""
    behind_proxy = DocumentedClient(client.app, root_path="/risk")
    for page in ("/docs", "/redoc"):
        text = behind_proxy.get(page).text
        assert "/risk/openapi.json" in text
        assert "/risk/docs/assets/" in text


def test_an_unknown_docs_asset_is_404(client: TestClient) -> None:
    response = client.get("/docs/assets/4111111111111111")
    assert response.status_code == 404
    assert "4111" not in response.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_may_load_from_their_origin_only(client: TestClient, page: str) -> None:
    policy = client.get(page).headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "img-src 'self' data:" in policy  # ReDoc's footer logo from a CDN is blocked
    assert "connect-src 'self'" in policy
