"""GET /healthz, /readyz and /metrics (no authentication: they reveal no personal data)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from serving.api.routes.deps import ServiceDep

router = APIRouter(tags=["health"])


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, bool]


@router.get("/healthz")
async def alive() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "alive"}


@router.get(
    "/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut, "description": "Not ready."}}
)
def ready(service: ServiceDep) -> JSONResponse:
    """Both models loaded and both stores reachable (503 otherwise; scoring still answers with a fallback)."""
    checks = service.ready()
    return JSONResponse(
        {"ready": all(checks.values()), "checks": checks}, 200 if all(checks.values()) else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(service: ServiceDep) -> Response:
    """Prometheus metrics: latency histograms, decisions by action, scores, model versions, errors."""
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
