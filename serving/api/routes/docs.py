"""GET /docs (Swagger UI) and /redoc (ReDoc) from assets shipped with riskgate, so both work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from Google): without internet
access they were blank. These pages load the vendored files in ``serving/api/static/vendor/`` (versions and
licences in its README) from a fixed manifest, like the dashboard's assets, and reference no other origin.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from serving.api.routes.dashboard import STATIC_DIR
from serving.errors import NotFoundError

DOCS_ASSETS_PATH: Final = "/docs/assets"
#: The files the pages load: name in the URL -> (file under serving/api/static/, media type).
DOCS_ASSETS: Final[dict[str, tuple[str, str]]] = {
    "swagger-ui-bundle.js": ("vendor/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("vendor/swagger-ui.css", "text/css; charset=utf-8"),
    "favicon.png": ("vendor/swagger-ui-favicon-32x32.png", "image/png"),
    "redoc.standalone.js": ("vendor/redoc.standalone.js", "text/javascript; charset=utf-8"),
}
TITLE: Final = "riskgate API"
#: The pages may load from this origin only (their inline start-up script and styles aside, and ReDoc's
#: search worker from a blob): ReDoc's footer logo, which it fetches from its makers' CDN, is not loaded.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """The prefix a reverse proxy serves the API under (``riskgate serve --root-path``), for the URLs."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the service's OpenAPI document ("Try it out" sends requests with your key)."""
    root = _root(request)
    return _local_only(
        get_swagger_ui_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{TITLE} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon.png",
        )
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over the service's OpenAPI document (reading only)."""
    root = _root(request)
    return _local_only(
        get_redoc_html(
            openapi_url=f"{root}{request.app.openapi_url}",
            title=f"{TITLE} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
    )


@router.get(DOCS_ASSETS_PATH + "/{name}")
def docs_asset(name: Annotated[str, PathParam(max_length=64)]) -> FileResponse:
    """One of the pages' scripts, stylesheets or icon (the fixed manifest :data:`DOCS_ASSETS`)."""
    if name not in DOCS_ASSETS:
        raise NotFoundError(f"no docs asset named {name!r}; the pages load only {sorted(DOCS_ASSETS)}")
    file, media_type = DOCS_ASSETS[name]
    return FileResponse(STATIC_DIR / file, media_type=media_type, headers={"Cache-Control": "no-cache"})
