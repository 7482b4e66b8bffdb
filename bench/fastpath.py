"""Benchmark of the HTTP layer of ``POST /v1/score``: the fast path (:mod:`serving.api.fastpath`) against the
FastAPI route, in one process, side by side.

Two apps are built from the same models over state directories of their own, one with the fast path and one
without (``create_app(fast_path=False)``), and driven alternately with the ASGI messages uvicorn would send
(no sockets, no load generator: CPU time per request, robust on a machine shared with other jobs, where
latencies over loopback are not):

* ``http_layer``: the engine's answer is fixed (``ScoringEngine.score`` replaced by a function returning a
  logged answer), so the CPU per request is the HTTP layer alone: ASGI app, routing or the fast path, API key,
  body validation (``parse_body``), answer rendering, metrics;
* ``full_decision``: the whole decision for a fresh attempt each time (features, both models, reasons,
  policy, decision log).

Each holds the median over rounds of each app's CPU microseconds per request and the median of the per-round
ratios (FastAPI route over fast path). The models are synthetic, of production size (fraud: 500 trees of 63
leaves; failure: 300 of 63), registered in a scratch MLflow store.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench._models import register_production_size
from core.settings import Settings
from serving.api.app import create_app
from serving.scoring.engine import WARM_UP_ATTEMPT
from serving.scoring.schemas import AttemptIn

logger = logging.getLogger(__name__)

SCORE_KEY = b"rg-dev-score-key"
HTTP_ROUNDS, HTTP_REQUESTS = 9, 3_000
FULL_ROUNDS, FULL_REQUESTS = 9, 400


def run(scratch: Path) -> dict[str, Any]:
    mlruns = scratch / "mlruns"
    register_production_size(mlruns)
    with (
        _started(scratch, mlruns, "fast_path", True) as fast,
        _started(scratch, mlruns, "route", False) as route,
    ):
        apps = {"fast_path": fast, "fastapi_route": route}
        full = _compare(apps, FULL_ROUNDS, FULL_REQUESTS, _fresh_attempts())
        for app in apps.values():
            _fix_the_answer(app)
        http_layer = _compare(apps, HTTP_ROUNDS, HTTP_REQUESTS, _same_attempt())
    return {"http_layer": http_layer, "full_decision": full}


@contextmanager
def _started(scratch: Path, mlruns: Path, name: str, fast_path: bool) -> Iterator[FastAPI]:
    """An app over its own state directory, started (lifespan, models loaded) by a TestClient."""
    settings = Settings(state_dir=scratch / f"state-{name}", mlruns_dir=mlruns, model_reload_seconds=0)
    app = create_app(settings, fast_path=fast_path)
    with TestClient(app):
        yield app


def _fix_the_answer(app: FastAPI) -> None:
    """Replace the engine's decision with a logged answer: what remains is the HTTP layer."""
    engine = app.state.service.engine
    answer = engine.score(_attempt_model(999_999_999), False)
    engine.score = lambda attempt, explain: answer


def _attempt_model(n: int) -> AttemptIn:
    return AttemptIn.model_validate_json(_body(n))


def _body(n: int) -> bytes:
    minute, second = divmod(n % 3600, 60)
    attempt = {**WARM_UP_ATTEMPT, "attempt_id": f"fastpath-bench-{n}", "account_id": f"acc-{n % 997}",
               "payment_method_id": f"pm-{n % 1013}", "kind": "renewal",
               "occurred_at": f"2026-06-01T00:{minute:02d}:{second:02d}Z"}  # fmt: skip
    return json.dumps(attempt).encode()


def _fresh_attempts() -> Callable[[], bytes]:
    counter = iter(range(10**9))
    return lambda: _body(next(counter))


def _same_attempt() -> Callable[[], bytes]:
    body = _body(0)
    return lambda: body


def _compare(
    apps: dict[str, FastAPI], rounds: int, requests: int, bodies: Callable[[], bytes]
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in apps}
    order = list(apps)
    for k in range(rounds):
        for name in order if k % 2 == 0 else order[::-1]:
            samples[name].append(uvloop.run(_round(apps[name], requests, bodies)))
    ratios = [r / f for r, f in zip(samples["fastapi_route"], samples["fast_path"], strict=True)]
    result = {
        "rounds": rounds,
        "requests_per_round": requests,
        "cpu_us_per_request": {name: round(statistics.median(values), 1) for name, values in samples.items()},
        "route_over_fast_path": round(statistics.median(ratios), 2),
        "samples": {name: [round(v, 1) for v in values] for name, values in samples.items()},
    }
    logger.info("%s", result)
    return result


async def _round(app: FastAPI, requests: int, bodies: Callable[[], bytes]) -> float:
    """CPU microseconds per request over ``requests`` requests answered 200 (anything else is an error)."""
    started = time.process_time()
    for _ in range(requests):
        status = await _request(app, bodies())
        if status != 200:
            raise RuntimeError(f"POST /v1/score answered {status} in the benchmark: see the app's log")
    return (time.process_time() - started) / requests * 1e6


async def _request(app: FastAPI, body: bytes) -> int:
    """One ``POST /v1/score`` with the scope and messages uvicorn's httptools protocol gives an app."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "scheme": "http", "method": "POST",
        "root_path": "", "path": "/v1/score", "raw_path": b"/v1/score", "query_string": b"", "state": {},
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"x-api-key", SCORE_KEY), (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    messages = _messages(body)
    status = 0

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _messages(body: bytes) -> Iterator[dict[str, Any]]:
    yield {"type": "http.request", "body": body, "more_body": False}
    while True:
        yield {"type": "http.disconnect"}
