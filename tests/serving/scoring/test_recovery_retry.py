"""The recovery planner on the served retry model (riskgate-retry@champion): loaded with the pair from the
registry or the local copy, refused when of another design, used for declines, and visible in every answer."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import recovery.learned
from events.schema import DeclineCode
from features.iptv import FEATURE_SET
from recovery.learned import RetryModel
from recovery.planner import candidate_frame
from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.scoring.models import ModelLoader, ModelPair
from serving.scoring.schemas import RecoveryPlanOut
from tests.recovery.factories import fitted_retry_model
from tests.serving.documented import DocumentedClient
from tests.serving.factories import (
    ADMIN,
    SCORE,
    attempt,
    register_retry,
    seed_cache,
    seed_retry_cache,
    service_for,
)


@pytest.fixture(scope="module")
def retry_model() -> RetryModel:
    return fitted_retry_model()


@pytest.fixture
def retry_client(
    tmp_path: Path, bundles: dict[str, ModelBundle], retry_model: RetryModel
) -> Iterator[TestClient]:
    """The app whose local model copy holds both LightGBM models and a retry model (no tracking store)."""
    seed_cache(tmp_path / "state" / "models", bundles)
    seed_retry_cache(tmp_path / "state" / "models", retry_model, version="3")
    with DocumentedClient(create_app(service=service_for(tmp_path))) as test_client:
        yield test_client


def plan(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/recovery-plan", json=body, headers=SCORE)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    RecoveryPlanOut.model_validate(answer)
    return answer


def declined_case(n: int, hours_ago: float = 2.0) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(microsecond=0)
    return {
        "attempt": attempt(n, occurred_at=at.isoformat(), retry_number=0),
        "decline_code": "insufficient_funds",
    }


def test_declines_are_planned_with_the_served_retry_model(
    retry_client: TestClient, retry_model: RetryModel
) -> None:
    body = declined_case(1)
    answer = plan(retry_client, body)
    assert answer["planned_with"] == "retry_model"
    assert answer["model"] == {"name": "riskgate-retry", "version": "3", "source": "cache"}
    first = next(step for step in answer["steps"] if step["kind"] == "retry")
    declined_at = datetime.fromisoformat(body["attempt"]["occurred_at"])
    at = datetime.fromisoformat(first["at"])
    event = {**body["attempt"], "occurred_at": declined_at}
    frame = candidate_frame(
        event,
        [at],
        code=DeclineCode.INSUFFICIENT_FUNDS,
        last_declined=declined_at,
        first_declined_at=declined_at,
    )
    assert first["success_probability"] == pytest.approx(1.0 - retry_model(frame)[0], abs=1e-9)


def test_a_renewal_before_its_charge_is_still_forecast_by_the_failure_model(retry_client: TestClient) -> None:
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    answer = plan(retry_client, {"attempt": attempt(2, occurred_at=soon)})
    assert answer["planned_with"] == "failure_model"
    assert answer["model"]["name"] == "riskgate-failure"


def test_status_shows_which_model_plans(retry_client: TestClient) -> None:
    status = retry_client.get("/v1/status", headers=SCORE).json()
    assert status["recovery_planner"] == "retry_model"
    assert status["retry_model"]["name"] == "riskgate-retry"
    assert status["retry_model"]["feature_hash"] == recovery.learned.RETRY_DESIGN_HASH


def test_status_without_a_retry_model(client: TestClient) -> None:
    status = client.get("/v1/status", headers=SCORE).json()
    assert status["recovery_planner"] == "failure_model"
    assert status["retry_model"] is None


def test_status_without_any_model(bare_client: TestClient) -> None:
    assert bare_client.get("/v1/status", headers=SCORE).json()["recovery_planner"] == "fixed_schedule"


def test_without_a_retry_model_declines_are_planned_with_the_failure_model(client: TestClient) -> None:
    answer = plan(client, declined_case(3))
    assert answer["planned_with"] == "failure_model"
    assert answer["model"]["name"] == "riskgate-failure"
    assert answer["fallback"] is False


def test_the_retry_champion_loads_from_the_registry_and_follows_the_alias(
    tmp_path: Path, retry_model: RetryModel, caplog: pytest.LogCaptureFixture
) -> None:
    uri, artifacts = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts"
    register_retry(uri, artifacts, retry_model)
    loader = ModelLoader(uri, tmp_path / "state" / "models", FEATURE_SET.names, FEATURE_SET.hash)
    pair, results = loader.load_pair(ModelPair(None, None))
    assert pair.retry is not None
    assert (pair.retry.version, pair.retry.source) == ("1", "registry")
    assert pair.retry.trained_until == retry_model.info_["trained_until"]
    assert [r.task for r in results] == ["fraud", "failure", "retry"]
    assert (tmp_path / "state" / "models" / "retry" / "retry_model.json").exists()
    same, _ = loader.load_pair(pair)
    assert same is pair

    refit = fitted_retry_model(seed=5)
    register_retry(uri, artifacts, refit)
    newer, _ = loader.load_pair(pair)
    assert newer.retry is not None
    assert newer.retry.version == "2"
    frame = candidate_frame(
        attempt(0, occurred_at=datetime(2025, 3, 1, tzinfo=UTC))
        | {"occurred_at": datetime(2025, 3, 1, tzinfo=UTC)},
        [datetime(2025, 3, 4, 12, tzinfo=UTC)],
        code=DeclineCode.INSUFFICIENT_FUNDS,
        last_declined=datetime(2025, 3, 1, tzinfo=UTC),
        first_declined_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    np.testing.assert_array_equal(newer.retry.model(frame), refit(frame))

    # the registry gone: a fresh service starts from the local copy of the last good version
    gone = ModelLoader(
        "sqlite:////nonexistent/mlflow.db", tmp_path / "state" / "models", FEATURE_SET.names, FEATURE_SET.hash
    )
    cached, _ = gone.load_pair(ModelPair(None, None))
    assert cached.retry is not None
    assert (cached.retry.version, cached.retry.source) == ("2", "cache")


def test_a_retry_model_of_another_design_is_refused_with_a_clear_log(
    tmp_path: Path, retry_model: RetryModel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    uri, artifacts = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts"
    register_retry(uri, artifacts, retry_model)
    loader = ModelLoader(uri, tmp_path / "state" / "models", FEATURE_SET.names, FEATURE_SET.hash)
    monkeypatch.setattr(recovery.learned, "RETRY_DESIGN_HASH", "0123456789abcdef")  # the code changed since
    with caplog.at_level(logging.ERROR, logger="registry.loader"):
        pair, results = loader.load_pair(ModelPair(None, None))
    assert pair.retry is None
    assert "REFUSED riskgate-retry version 1" in caplog.text
    assert "retrain it" in caplog.text
    (retry,) = [r for r in results if r.task == "retry"]
    assert "refused" in str(retry.error)


def test_admin_reload_reports_the_retry_model(retry_client: TestClient) -> None:
    models = retry_client.post("/v1/admin/reload", headers=ADMIN).json()["models"]
    retry = next(m for m in models if m["task"] == "retry")
    assert retry["model"] == {"name": "riskgate-retry", "version": "3", "source": "cache"}
