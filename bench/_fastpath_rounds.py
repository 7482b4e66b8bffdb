"""One checkout's ``POST /v1/score`` apps measured in CPU time per request: the fast path's and the FastAPI
route's, driven with the ASGI messages uvicorn would send (see :mod:`bench.fastpath`).

Imports nothing of the bench package, so that a worker process can load this file by path and measure an
older checkout's apps (``RISKGATE_BENCH_BASELINE``: that checkout first on ``PYTHONPATH``) with the same code
that measures this one (:func:`serve_commands`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import uvloop
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.settings import Settings
from serving.api.app import create_app
from serving.scoring.engine import WARM_UP_ATTEMPT
from serving.scoring.schemas import AttemptIn

SCORE_KEY = b"rg-dev-score-key"
#: the apps compared: name -> built with the fast path
APPS = {"fast_path": True, "fastapi_route": False}


def serve_commands(state_root: str, mlruns: str) -> None:
    """A worker: start both apps over ``state_root``'s state directories, say ``ready``, then answer commands
    read from stdin, one a line: ``full APP N`` (N fresh decisions) or ``http APP N`` (N requests answered
    with a fixed answer: the HTTP layer alone), each with the CPU microseconds per request; ``fix`` fixes the
    engines' answers (after the full decisions)."""
    with ExitStack() as stack:
        apps = {
            name: stack.enter_context(started(Path(state_root), Path(mlruns), name, fast))
            for name, fast in APPS.items()
        }
        fresh, same = fresh_attempts(), same_attempt()
        print("ready", flush=True)
        for line in sys.stdin:
            command = line.split()
            if command == ["fix"]:
                for app in apps.values():
                    fix_the_answer(app)
                print("fixed", flush=True)
                continue
            kind, name, count = command
            bodies = fresh if kind == "full" else same
            print(uvloop.run(cpu_round(apps[name], int(count), bodies)), flush=True)


@contextmanager
def started(scratch: Path, mlruns: Path, name: str, fast_path: bool) -> Iterator[FastAPI]:
    """An app over its own state directory, started (lifespan, models loaded) by a TestClient."""
    settings = Settings(state_dir=scratch / f"state-{name}", mlruns_dir=mlruns, model_reload_seconds=0)
    app = create_app(settings, fast_path=fast_path)
    with TestClient(app):
        yield app


def fix_the_answer(app: FastAPI) -> None:
    """Replace the engine's decision with a logged answer: what remains is the HTTP layer."""
    engine = app.state.service.engine
    answer = engine.score(attempt_model(999_999_999), False)
    engine.score = lambda attempt, explain: answer


def attempt_model(n: int) -> AttemptIn:
    return AttemptIn.model_validate_json(body_of(n))


def body_of(n: int) -> bytes:
    minute, second = divmod(n % 3600, 60)
    attempt = {**WARM_UP_ATTEMPT, "attempt_id": f"fastpath-bench-{n}", "account_id": f"acc-{n % 997}",
               "payment_method_id": f"pm-{n % 1013}", "kind": "renewal",
               "occurred_at": f"2026-06-01T00:{minute:02d}:{second:02d}Z"}  # fmt: skip
    return json.dumps(attempt).encode()


def fresh_attempts() -> Callable[[], bytes]:
    counter = iter(range(10**9))
    return lambda: body_of(next(counter))


def same_attempt() -> Callable[[], bytes]:
    body = body_of(0)
    return lambda: body


async def cpu_round(app: FastAPI, requests: int, bodies: Callable[[], bytes]) -> float:
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
