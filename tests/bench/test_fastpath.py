"""The HTTP-layer benchmark's driver: uvicorn-shaped ASGI requests, paired rounds, refusal of non-200s, and
the before/after comparison with another checkout in worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench import fastpath
from bench._fastpath_rounds import fresh_attempts, same_attempt
from core.settings import ApiKey
from serving.api.app import create_app
from tests.serving.factories import service_for


def test_both_apps_are_driven_alike_and_compared_round_by_round(tmp_path: Path) -> None:
    fast = create_app(service=service_for(tmp_path / "fast"))
    route = create_app(service=service_for(tmp_path / "route"), fast_path=False)
    with TestClient(fast), TestClient(route):
        result = fastpath._compare({"fast_path": fast, "fastapi_route": route}, 2, 5, fresh_attempts())
        assert fast.state.service.engine.decision("fastpath-bench-0").attempt_id == "fastpath-bench-0"
    assert result["rounds"] == 2
    assert all(len(values) == 2 for values in result["samples"].values())
    assert all(value > 0 for value in result["cpu_us_per_request"].values())
    assert result["route_over_fast_path"] > 0


def test_a_request_that_is_not_answered_200_stops_the_benchmark(tmp_path: Path) -> None:
    other = (ApiKey(name="other", sha256="0" * 64, scopes=frozenset({"score"})),)
    app = create_app(service=service_for(tmp_path, api_keys=other))
    with TestClient(app), pytest.raises(RuntimeError, match="answered 401"):
        fastpath._compare({"fast_path": app, "fastapi_route": app}, 1, 1, same_attempt())


def test_before_and_after_are_measured_in_workers_round_by_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("FULL_ROUNDS", 2), ("FULL_REQUESTS", 3), ("HTTP_ROUNDS", 1), ("HTTP_REQUESTS", 3)):
        monkeypatch.setattr(fastpath, name, value)
    monkeypatch.setenv("RISKGATE_ENVIRONMENT", "development")  # the workers' default development key
    result = fastpath._before_after(tmp_path, tmp_path / "mlruns", fastpath.HERE)  # no models: fallbacks
    assert result["baseline_source"] == str(fastpath.HERE)
    for stage, rounds in (("full_decision", 2), ("http_layer", 1)):
        for app in ("fast_path", "fastapi_route"):
            figures = result[stage][app]
            assert [len(figures["samples"][which]) for which in ("before", "after")] == [rounds, rounds]
            assert figures["before_cpu_us_per_request"] > 0
            assert figures["after_over_before"] > 0
