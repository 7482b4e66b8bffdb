"""The HTTP-layer benchmark's driver: uvicorn-shaped ASGI requests, paired rounds, refusal of non-200s."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench import fastpath
from core.settings import ApiKey
from serving.api.app import create_app
from tests.serving.factories import service_for


def test_both_apps_are_driven_alike_and_compared_round_by_round(tmp_path: Path) -> None:
    fast = create_app(service=service_for(tmp_path / "fast"))
    route = create_app(service=service_for(tmp_path / "route"), fast_path=False)
    with TestClient(fast), TestClient(route):
        result = fastpath._compare(
            {"fast_path": fast, "fastapi_route": route}, 2, 5, fastpath._fresh_attempts()
        )
        assert fast.state.service.engine.decision("fastpath-bench-0").attempt_id == "fastpath-bench-0"
    assert result["rounds"] == 2
    assert all(len(values) == 2 for values in result["samples"].values())
    assert all(value > 0 for value in result["cpu_us_per_request"].values())
    assert result["route_over_fast_path"] > 0


def test_a_request_that_is_not_answered_200_stops_the_benchmark(tmp_path: Path) -> None:
    other = (ApiKey(name="other", sha256="0" * 64, scopes=frozenset({"score"})),)
    app = create_app(service=service_for(tmp_path, api_keys=other))
    with TestClient(app), pytest.raises(RuntimeError, match="answered 401"):
        fastpath._compare({"fast_path": app, "fastapi_route": app}, 1, 1, fastpath._same_attempt())
