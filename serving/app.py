"""The FastAPI application: factory, lifespan (load models, periodic reload check), middleware, error mapping.

Run it with ``riskgate serve`` (uvicorn, one process) or ``uvicorn --factory serving.app:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from riskgate.settings import Settings, get_settings
from serving.errors import PayloadTooLargeError, ServingError
from serving.metrics import ServiceMetrics
from serving.recovery import RecoveryService, load_recovery_config
from serving.routes import admin, dashboard, decisions, health, outcomes, recovery, score, trends
from serving.service import Service, build_service

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DESCRIPTION = """
riskgate scores a payment attempt **before** it reaches the gateway: the probability that it is fraud, the
probability that the gateway declines it, and the action to take (approve / review / block / defer), with the
reasons. Authenticate with an API key in the `X-API-Key` header (`score` scope for the billing system, `admin`
for reloads and erasure). Card numbers are never accepted: send the payment method's token.
"""


class ServiceMiddleware:
    """Refuses oversized bodies (413) and records every request's latency by route template (not by path,
    which may hold an account id)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: ServiceMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _too_large(self.max_body_bytes, send)
            self._observe(scope, 413, started)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise PayloadTooLargeError(f"request body larger than {self.max_body_bytes} bytes")
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, recording_send)
        finally:
            self._observe(scope, status["code"], started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        self.metrics.requests.labels(_template(scope), scope.get("method", ""), str(status)).observe(
            time.perf_counter() - started
        )


def _template(scope: Scope) -> str:
    """The matched route's path with its parameters as ``{name}`` (never the values); unmatched paths pool."""
    if scope.get("route") is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path


async def _too_large(limit: int, send: Send) -> None:
    response = JSONResponse(
        {"error": PayloadTooLargeError.code, "message": f"request body larger than {limit} bytes"}, 413
    )
    await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:  # pragma: no cover - never awaited by a JSONResponse
    return {"type": "http.disconnect"}


def _error_response(error: ServingError) -> JSONResponse:
    return JSONResponse({"error": error.code, "message": str(error)}, status_code=error.status_code)


def _install_error_handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
    """The one place errors become HTTP responses. Validation errors never echo the input."""

    async def serving_error(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, ServingError):  # pragma: no cover - registered for ServingError only
            raise error
        metrics.errors.labels(error.code).inc()
        return _error_response(error)

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, RequestValidationError):  # pragma: no cover
            raise error
        metrics.errors.labels("validation").inc()
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        message = "the request does not match the API schema: see details (values are never echoed)"
        return JSONResponse({"error": "invalid_request", "message": message, "details": details}, 422)

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        metrics.errors.labels("internal").inc()
        logger.exception("unexpected error on %s", request.scope.get("route", "unmatched"))
        return JSONResponse(
            {"error": "internal_error", "message": "unexpected error; it has been logged"}, 500
        )

    app.add_exception_handler(ServingError, serving_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)


async def _periodic_reload(service: Service) -> None:
    while True:
        await asyncio.sleep(service.limits.reload_seconds)
        try:
            await run_in_threadpool(service.reload)
        except Exception:  # the next check tries again; the current models keep serving
            logger.exception("periodic model check failed")


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """The application. Models load in the lifespan (start-up), never at import."""
    settings = settings or get_settings()
    built = service or build_service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(built.start)
        seconds = await run_in_threadpool(app.state.recovery.warm_up, built.engine)
        logger.info("recovery planner warmed up in %.0f ms", seconds * 1000)
        checker = None
        if built.limits.reload_seconds > 0:
            checker = asyncio.create_task(_periodic_reload(built))
        try:
            yield
        finally:
            if checker is not None:
                checker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await checker
            built.close()
            logger.info("riskgate service stopped")

    app = FastAPI(
        title="riskgate",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "scoring", "description": "Score attempts before they reach the gateway."},
            {"name": "outcomes", "description": "Gateway results and fraud reports."},
            {"name": "recovery", "description": "When to retry a declined renewal, and what to ask."},
            {"name": "decisions", "description": "The decision log, for support and audits."},
            {"name": "admin", "description": "Model reloads and erasure (admin scope)."},
            {
                "name": "trends",
                "description": "Risk over time and drift, from the decision log (JSON or CSV).",
            },
            {"name": "health", "description": "Liveness, readiness, Prometheus metrics."},
        ],
    )
    app.state.service = built
    app.state.recovery = RecoveryService(load_recovery_config(settings.recovery_config))
    for router in (
        score.router,
        recovery.router,
        outcomes.router,
        decisions.router,
        admin.router,
        trends.router,
    ):
        app.include_router(router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(dashboard.router)
    _install_error_handlers(app, built.metrics)
    app.add_middleware(ServiceMiddleware, max_body_bytes=built.limits.max_body_bytes, metrics=built.metrics)
    return app
