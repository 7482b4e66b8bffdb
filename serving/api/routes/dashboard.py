"""GET /dashboard (the risk-trends page), its assets, and GET /v1/status (what the page shows beside trends).

The page and its assets are public: they hold no data. Every number on the page comes from the API with the
caller's key (``X-API-Key``, ``score`` or ``admin`` scope), which the page keeps in the tab's sessionStorage
(forgotten when the tab closes, never sent anywhere but this service's own API). The assets are a fixed
manifest of files shipped in ``serving/api/static/`` (no directory listing, no path from the request reaches
the
file system). A Content-Security-Policy allows scripts, styles and requests only from this origin.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Final, Literal

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from events.schema import FieldType
from recovery.learned import RETRY_DESIGN_HASH
from serving.api.routes.deps import ScoreKey, ServiceDep
from serving.errors import NotFoundError
from serving.readers.status import LatencySummary, latency_of, models_of, route_latencies
from serving.scoring.recovery import planner_model
from serving.scoring.schemas import ErrorOut

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
#: The files the page loads: name in the URL -> (file under serving/api/static/, media type).
ASSETS: Final[dict[str, tuple[str, str]]] = {
    "api.js": ("api.js", "text/javascript; charset=utf-8"),  # the API calls and the key, both pages'
    "dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "uPlot.iife.min.js": ("vendor/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "uPlot.min.css": ("vendor/uPlot.min.css", "text/css; charset=utf-8"),
}
#: The review queue page's own files (it loads dashboard.css and api.js too).
QUEUE_ASSETS: Final[dict[str, tuple[str, str]]] = {
    "queue.js": ("queue.js", "text/javascript; charset=utf-8"),
    "queue.css": ("queue.css", "text/css; charset=utf-8"),
}
#: Routes whose latency the status reports (the billing system's scoring calls).
SCORING_ROUTES: Final = ("/v1/score", "/v1/score/batch")
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"])


class ModelStatus(BaseModel):
    task: str
    name: str | None = Field(description="Registered model name; null when the task answers with a fallback.")
    version: str | None
    source: str | None = Field(description="'registry', or 'cache' when the tracking store was unreachable.")
    feature_hash: str | None = Field(description="Feature-set hash the model was trained on.")


class LatencyOut(BaseModel):
    count: int = Field(description="Observations since the process started.")
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None


class RouteLatencyOut(LatencyOut):
    route: str


class AttributeSegmentOut(BaseModel):
    name: str = Field(description="The attribute's name: the value of GET /v1/trends?segment=.")
    doc: str = Field(description="What the attribute is (the feature set's declaration).")
    values: list[str] = Field(description="Its declared values.")


class StatusOut(BaseModel):
    """The models served, the decision log's size and serving latency (this process, since it started)."""

    models: list[ModelStatus]
    fallback: bool = Field(
        description="True when a model is missing: its decisions follow the fallback rules."
    )
    models_loaded_at: datetime
    feature_hash: str = Field(description="The feature set's hash in the code being served.")
    decisions_logged: int
    scoring_latency: LatencyOut = Field(description="Server-side time to score one attempt (engine).")
    route_latency: list[RouteLatencyOut] = Field(description="HTTP time of successful scoring requests.")
    latency_note: str
    recovery_planner: Literal["retry_model", "failure_model", "fixed_schedule"] = Field(
        description="What scores the candidate retry times of POST /v1/recovery-plan after a decline."
    )
    retry_model: ModelStatus | None = Field(
        description="The recovery planner's retry model (riskgate-retry), null when none is served; its "
        "feature_hash is the design of its retry columns."
    )
    attribute_segments: list[AttributeSegmentOut] = Field(
        default_factory=list,
        description="The served feature set's category attributes, which trends may be segmented by.",
    )


def _milliseconds(summary: LatencySummary) -> dict[str, float | int | None]:
    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 3)

    return {
        "count": summary.count,
        "p50_ms": ms(summary.p50),
        "p90_ms": ms(summary.p90),
        "p99_ms": ms(summary.p99),
    }


@router.get("/dashboard", include_in_schema=False)
def dashboard_page() -> FileResponse:
    """The risk-trends page (public shell; its data needs a key)."""
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/dashboard/queue", include_in_schema=False)
def queue_page() -> FileResponse:
    """The review queue's page (public shell; its cases need an admin key)."""
    return FileResponse(STATIC_DIR / "queue.html", media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/dashboard/assets/{name}", include_in_schema=False, responses={404: {"model": ErrorOut}})
def dashboard_asset(name: Annotated[str, PathParam(max_length=64)]) -> FileResponse:
    """One of the pages' scripts or stylesheets (the fixed manifests :data:`ASSETS`, :data:`QUEUE_ASSETS`)."""
    served = {**ASSETS, **QUEUE_ASSETS}
    if name not in served:
        raise NotFoundError(f"no dashboard asset named {name!r}; the pages load only {sorted(served)}")
    file, media_type = served[name]
    return FileResponse(STATIC_DIR / file, media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/v1/status", response_model=StatusOut, responses={401: {"model": ErrorOut}})
def status(service: ServiceDep, _: ScoreKey) -> StatusOut:
    """Models served (versions, feature-set hash), decisions logged, and serving latency percentiles."""
    pair = service.engine.holder.current
    models = [ModelStatus(**vars(summary)) for summary in models_of(pair)]
    routes = route_latencies(service.metrics.requests, SCORING_ROUTES)
    return StatusOut(
        models=models,
        fallback=not pair.complete,
        models_loaded_at=pair.loaded_at,
        feature_hash=service.loader.feature_hash,
        decisions_logged=service.engine.log.count(),
        scoring_latency=LatencyOut(**_milliseconds(latency_of(service.metrics.scoring))),
        route_latency=[
            RouteLatencyOut(route=route, **_milliseconds(summary)) for route, summary in routes.items()
        ],
        latency_note="estimated from this process's Prometheus histograms since it started "
        "(linear interpolation inside buckets, as histogram_quantile does)",
        recovery_planner=planner_model(pair),
        retry_model=None
        if pair.retry is None
        else ModelStatus(task="retry", **pair.retry.ref, feature_hash=RETRY_DESIGN_HASH),
        attribute_segments=[
            AttributeSegmentOut(name=field.name, doc=field.doc, values=list(field.values or ()))
            for field in service.engine.fields
            if field.type is FieldType.CATEGORY
        ],
    )
