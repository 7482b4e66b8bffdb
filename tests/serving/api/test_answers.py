"""The API's one error mapping (serving.api.answers.error_response): any riskgate error, whatever package
raises it, is answered with its own status and code; one whose status is 500 is internal and answered without
its message. Both the fast path (POST /v1/score) and FastAPI's routes (GET /v1/decisions/...) are checked."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.errors import InputError, RiskgateError
from events.cardnumbers import MASK
from features.stores.base import StoreError
from recovery.planner import PlanInputError
from registry.bundle import ModelBundle
from serving.api.answers import INTERNAL_MESSAGE
from serving.api.app import create_app
from serving.api.service import Service
from tests.serving.factories import SCORE, attempt, seed_cache, service_for

CARD = "4111 1111 1111 1111"
SECRET = "s3cret"
#: (method, path, the engine's method the route calls): the fast path's route and a FastAPI route
ROUTES = [("POST", "/v1/score", "score"), ("GET", "/v1/decisions/att-000001", "decision")]


class TeapotError(RiskgateError):
    """An error with a status of its own, defined outside the service's error module."""

    http_status = 418
    code = "teapot"


@pytest.fixture
def service(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Service:
    seed_cache(tmp_path / "state" / "models", bundles)
    return service_for(tmp_path)


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    """The app, raising server exceptions to the test: an error answered outside the app would fail it."""
    with TestClient(create_app(service=service)) as test_client:
        yield test_client


def _raising(error: Exception) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    return fail


def _call(client: TestClient, method: str, path: str) -> Any:
    return client.request(method, path, json=attempt(1) if method == "POST" else None, headers=SCORE)


@pytest.mark.parametrize(("method", "path", "engine_call"), ROUTES)
@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            PlanInputError("the attempt misses 'occurred_at', which the recovery planner needs"),
            422,
            "invalid_input",
        ),
        (InputError(f"attribute 'x' is a key: got {CARD}"), 422, "invalid_input"),
        (TeapotError("no coffee here"), 418, "teapot"),
    ],
    ids=["recovery's input error", "card number in the message", "a status of its own"],
)
def test_a_riskgate_error_from_any_package_answers_its_status_and_code(
    client: TestClient,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    engine_call: str,
    error: RiskgateError,
    status: int,
    code: str,
) -> None:
    monkeypatch.setattr(service.engine, engine_call, _raising(error))
    answer = _call(client, method, path)
    assert answer.status_code == status
    assert answer.json() == {"error": code, "message": str(error).replace(CARD, MASK)}
    assert CARD not in answer.text
    assert f'riskgate_errors_total{{kind="{code}"}} 1.0' in client.get("/metrics").text


@pytest.mark.parametrize(("method", "path", "engine_call"), ROUTES)
def test_an_internal_riskgate_error_answers_500_without_its_message(
    client: TestClient,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    engine_call: str,
) -> None:
    error = StoreError(f"cannot reach the Redis online store at redis://:{SECRET}@cache:6379/0: refused")
    monkeypatch.setattr(service.engine, engine_call, _raising(error))
    with caplog.at_level(logging.ERROR, logger="serving.api.answers"):
        answer = _call(client, method, path)
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal_error", "message": INTERNAL_MESSAGE}
    assert SECRET not in answer.text
    assert [record.exc_info[1] for record in caplog.records if record.exc_info] == [
        error
    ]  # logged, traceback
    assert 'riskgate_errors_total{kind="internal"} 1.0' in client.get("/metrics").text
