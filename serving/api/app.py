"""The FastAPI application: factory, lifespan (load models, periodic reload check), middleware, error mapping.

Run it with ``riskgate serve`` (uvicorn, one process) or ``uvicorn --factory serving.api.app:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import RiskgateError
from core.settings import Settings
from serving.api.answers import declares_too_much, document_errors, error_response, too_large_response
from serving.api.fastpath import ScoreFastPath, limited
from serving.api.jsonbody import document_bodies
from serving.api.routes import (
    admin,
    dashboard,
    decisions,
    docs,
    health,
    lists,
    outcomes,
    recovery,
    review,
    rule_backtest,
    rules,
    score,
    trends,
    webhooks,
)
from serving.api.service import Service, build_service
from serving.metrics import ServiceMetrics
from serving.scoring.attributes import describe_served
from serving.scoring.recovery import RecoveryService, load_recovery_config
from serving.scoring.schemas import BatchIn, RecoveryBatchIn, RecoveryCaseIn

logger = logging.getLogger(__name__)

API_PREFIX = "/v1"

DESCRIPTION = """
riskgate scores a payment attempt **before** it reaches the gateway: the probability that it is fraud, the
probability that the gateway declines it, and the action to take (approve / review / block / defer), with the
reasons. Authenticate with an API key in the `X-API-Key` header (`score` scope for the billing system, `admin`
for reloads and erasure). Card numbers are never accepted: send the payment method's token.

Every error is answered as `{"error", "message"}` (`details` on a 422), never echoing a value. Rules the
schema cannot state are checked too (422): an amount has no more decimals than its currency's minor unit
(EUR 2, JPY 0, KWD 3); no string anywhere (field names included) may hold a card number: 13 to 19 digits in a
row passing the Luhn check, or groups in a card network's grouping (4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, 4-4-5)
joined by one space or dash; a recovery case's `first_declined_at` is not after `declined_at`, nor a decline
in the future; a trends or drift range's start is before its end.
"""


class ServiceMiddleware:
    """Refuses oversized bodies (413) and records every request's latency by route template (not by path,
    which may hold an account id)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        limit = self.service.limits.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declares_too_much(declared, limit):
            await too_large_response(limit)(scope, receive, send)
            self._observe(scope, 413, started)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, limited(receive, limit), recording_send)
        finally:
            self._observe(scope, status["code"], started)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        self.service.metrics.observe_request(
            _template(scope), scope.get("method", ""), status, time.perf_counter() - started
        )


def _template(scope: Scope) -> str:
    """The matched route's path with its parameters as ``{name}`` (never the values); unmatched paths pool.

    (FastAPI 0.165 matches included routers lazily: ``scope["route"].path`` lacks the router's prefix.)"""
    if scope.get("route") is None:
        return "unmatched"
    path = str(scope.get("path", ""))
    end = len(path)  # parameters are matched from the end: a value may repeat a segment of the prefix
    for name, value in reversed(list((scope.get("path_params") or {}).items())):
        segment = f"/{value}"
        at = path.rfind(segment, 0, end)
        while at >= 0 and at + len(segment) < len(path) and path[at + len(segment)] != "/":
            at = path.rfind(segment, 0, at)  # only a whole segment is the value
        if at >= 0:
            path = f"{path[:at]}/{{{name}}}{path[at + len(segment) :]}"
            end = at
    return path


#: The methods the API's routes answer (the candidates of a 405's ``Allow``).
_METHODS: Final = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> str:
    """Every method some route answers on this path: Starlette's 405 names only the first route matching
    the path, so a path answered by two routes (``GET`` and ``POST /v1/rules``) would lack one."""
    scope = request.scope
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL for route in request.app.router.routes
        )
    )


def _install_error_handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Errors become HTTP responses through :func:`serving.api.answers.error_response`, as on the fast
    path: riskgate's errors (each with its own status) and FastAPI's are answered inside the app, any other
    exception by Starlette's outermost handler (which then re-raises it, for the server's log)."""

    async def handle(request: Request, error: Exception) -> Response:
        if isinstance(error, StarletteHTTPException) and error.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            error = StarletteHTTPException(error.status_code, headers={"Allow": _allowed(request)})
        return error_response(error, metrics, _template(request.scope))

    app.add_exception_handler(RiskgateError, handle)
    app.add_exception_handler(RequestValidationError, handle)
    app.add_exception_handler(StarletteHTTPException, handle)
    app.add_exception_handler(Exception, handle)


def _documenting(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's OpenAPI document with every error status the service answers documented (once)."""
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not documented:
            documented.append(document_errors(build()))
        return documented[0]

    return openapi


async def _periodic_reload(service: Service) -> None:
    while True:
        await asyncio.sleep(service.limits.reload_seconds)
        try:
            await run_in_threadpool(service.reload)
        except Exception:  # the next check tries again; the current models keep serving
            logger.exception("periodic model check failed")


async def _periodic_rules(service: Service) -> None:
    """Serve changes of the rules store that other instances (or ``riskgate rules load``) made."""
    while True:
        await asyncio.sleep(service.limits.rules_poll_seconds)
        await run_in_threadpool(service.serve_rule_changes)


@contextlib.contextmanager
def _frozen_heap(enabled: bool) -> Iterator[None]:
    """While serving, keep the objects alive after start-up (modules, models: ~260k objects) out of the
    garbage collector's reach (:func:`gc.freeze`). A full collection is rare (none in 20,000 decisions
    in-process) but stalls every request queued behind it: it scanned them all in 175-440 ms, and now scans
    only what requests left behind (~0.01 ms). Unfrozen at shutdown."""
    if not enabled:
        yield
        return
    started = time.perf_counter()
    gc.collect()  # garbage from start-up is freed, not frozen
    gc.freeze()
    logger.info(
        "start-up heap frozen: %d objects out of the collector's reach (%.0f ms)",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
    try:
        yield
    finally:
        gc.unfreeze()


def create_app(
    settings: Settings | None = None,
    service: Service | None = None,
    *,
    fast_path: bool = True,
    freeze_heap: bool = False,
) -> FastAPI:
    """The application. Models load in the lifespan (start-up), never at import.

    ``POST /v1/score`` is answered by :class:`serving.api.fastpath.ScoreFastPath` in front of FastAPI's
    routing; ``fast_path=False`` leaves it to the FastAPI route (the same handling, slower: tests compare
    the two).
    ``freeze_heap=True`` (``riskgate serve``) freezes the start-up heap once warm (see :func:`_frozen_heap`).
    The entry point gives the settings (the app builds its service from them) or a service it built with
    :func:`serving.api.service.build_service`; the app never reads the environment itself.
    """
    if service is None:
        if settings is None:
            raise TypeError("create_app needs the settings, or a service built from them")
        service = build_service(settings)
    built = service

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(built.start)
        seconds = await run_in_threadpool(app.state.recovery.warm_up, built.engine)
        logger.info("recovery planner warmed up in %.0f ms", seconds * 1000)
        checkers = []
        if built.limits.reload_seconds > 0:
            checkers.append(asyncio.create_task(_periodic_reload(built)))
        if built.limits.rules_poll_seconds > 0 and built.operations is not None:
            checkers.append(asyncio.create_task(_periodic_rules(built)))
        try:
            with _frozen_heap(freeze_heap):
                yield
        finally:
            for checker in checkers:
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
        docs_url=None,  # served from shipped assets by serving.api.routes.docs (FastAPI's load from a CDN)
        redoc_url=None,
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
            {"name": "rules", "description": "The fraud team's rules, with every version (admin scope)."},
            {"name": "lists", "description": "Allow and block lists, read by rules as @name (admin scope)."},
            {"name": "review", "description": "The review queue: claim and resolve cases (admin scope)."},
        ],
    )
    app.state.service = built
    app.state.operations = built.operations
    app.state.recovery = RecoveryService(load_recovery_config(built.recovery_config))
    for router in (
        score.router,
        recovery.router,
        outcomes.router,
        decisions.router,
        admin.router,
        webhooks.router,
        trends.router,
        rules.router,
        rule_backtest.router,
        lists.router,
        review.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router)
    served = built.engine.fields
    document_bodies(app, (BatchIn, RecoveryCaseIn, RecoveryBatchIn), lambda s: describe_served(s, served))
    _install_error_handlers(app, built.metrics)
    app.openapi = _documenting(app.openapi)  # type: ignore[method-assign]
    app.add_middleware(ServiceMiddleware, service=built)
    if fast_path:  # added last: the outermost of the app's own middleware
        app.add_middleware(ScoreFastPath, service=built, path=API_PREFIX + score.SCORE_PATH)
    return app
