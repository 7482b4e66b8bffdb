"""The retry model as a registered model: trained on the failure split, logged to a real MLflow store,
registered as riskgate-retry, gated like the other two, and loadable as a pyfunc."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from recovery.learned import RETRY_COLUMNS, RETRY_DESIGN_HASH, RetryModel
from registry.errors import FeatureContractError
from registry.names import FEATURE_HASH_TAG, RETRY_MODEL_NAME, TEST_WINDOW_TAG, TRAINED_UNTIL_TAG
from registry.store import load_retry_model, tracking_store
from tests.training.conftest import SMALL_WORLD_OVERRIDES
from training.config import TrainingConfig, load_config
from training.errors import DatasetError, SplitError
from training.retry import (
    PRIMARY_METRIC,
    RetryTrainResult,
    promote_retry_model,
    retry_data,
    retry_split,
    train_retry_model,
)


@pytest.fixture(scope="module")
def config() -> TrainingConfig:
    return load_config(overrides=SMALL_WORLD_OVERRIDES)


def train(small_world: Path, store: tuple[str, Path], config: TrainingConfig) -> RetryTrainResult:
    uri, artifacts = store
    return train_retry_model(small_world, config, tracking_uri=uri, artifact_root=artifacts)


def test_the_retry_model_learns_before_the_failure_models_test_window(
    small_world: Path, config: TrainingConfig
) -> None:
    data = retry_data(small_world, config)
    assert (data.train["occurred_at"] < data.plan.test.start).all()
    assert (data.test["occurred_at"] >= data.plan.test.start).all()
    assert data.plan.test.days == pytest.approx(config.retry.test_days)
    assert data.truth is not None
    assert len(data.truth) == len(data.test)
    assert data.window_key.startswith(data.plan.test.start.isoformat())


def test_train_logs_registers_and_promotes_the_retry_model(
    small_world: Path, store: tuple[str, Path], config: TrainingConfig
) -> None:
    uri, _ = store
    first = train(small_world, store, config)
    report = first.report
    assert set(report) == {"model", "baseline", "truth"}
    assert report["model"][PRIMARY_METRIC] == pytest.approx(-report["model"]["log_loss"])
    assert report["model"]["roc_auc"] > report["baseline"]["roc_auc"]  # timing matters: it beats timing-blind
    assert report["truth"]["log_loss"] < report["model"]["log_loss"]  # and the truth knows more
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version(RETRY_MODEL_NAME, first.logged.version)
    assert version.tags[FEATURE_HASH_TAG] == RETRY_DESIGN_HASH
    assert version.tags[TRAINED_UNTIL_TAG] == first.trained_until.isoformat()
    assert version.tags[TEST_WINDOW_TAG].startswith(first.trained_until.isoformat())
    run = client.get_run(first.logged.run_id)
    assert run.data.metrics["test_model_log_loss"] == pytest.approx(report["model"]["log_loss"])
    assert run.data.params["rows_train"] == str(len(retry_data(small_world, config).train))
    logged = {item.path for item in client.list_artifacts(first.logged.run_id, "plots")}
    assert logged == {"plots/calibration.png", "plots/failure_by_days_since_decline.png"}
    coefficients = client.download_artifacts(first.logged.run_id, "model_coefficients/coefficients.csv")
    table = pd.read_csv(coefficients)
    assert list(table["column"]) == list(RETRY_COLUMNS)
    np.testing.assert_allclose(table["coefficient"], load_model(uri, f"models:/{RETRY_MODEL_NAME}/1").coef_)

    decision = promote_retry_model(config, tracking_uri=uri, data_dir=small_world)
    assert decision.promoted
    assert "no champion yet" in decision.reason
    second = train(small_world, store, config)  # same data, same seed: the same model
    assert second.report["model"] == pytest.approx(report["model"])
    decision = promote_retry_model(config, tracking_uri=uri, data_dir=small_world)
    assert not decision.promoted
    assert "does not beat the champion" in decision.reason
    assert "logged at training" in decision.reason

    client.set_model_version_tag(RETRY_MODEL_NAME, second.logged.version, TEST_WINDOW_TAG, "another window")
    decision = promote_retry_model(config, tracking_uri=uri, data_dir=small_world)
    assert "both re-scored" in decision.reason
    with pytest.raises(FeatureContractError, match="re-score"):
        promote_retry_model(config, tracking_uri=uri, data_dir=None)


def load_model(uri: str, model_uri: str) -> RetryModel:
    with tracking_store(uri) as client:
        return load_retry_model(client, model_uri)


def test_the_registered_model_is_a_pyfunc_with_a_signature(
    small_world: Path, store: tuple[str, Path], config: TrainingConfig
) -> None:
    uri, _ = store
    result = train(small_world, store, config)
    model_uri = f"models:/{RETRY_MODEL_NAME}/{result.logged.version}"
    direct = load_model(uri, model_uri)
    assert direct.info_[TRAINED_UNTIL_TAG] == result.trained_until.isoformat()
    rows = retry_data(small_world, config).test.head(20)
    with tracking_store(uri):
        pyfunc = mlflow.pyfunc.load_model(model_uri)
    inputs = {name for name in pyfunc.metadata.get_input_schema().input_names()}
    assert inputs == {
        "occurred_at",
        "method_type",
        "card_funding",
        "amount",
        "retry_number",
        "last_decline_code",
        "last_declined_at",
    }
    frame = rows[sorted(inputs)].copy()
    for column in ("occurred_at", "last_declined_at"):
        frame[column] = frame[column].dt.tz_convert(None)
    predicted = pyfunc.predict(frame)["probability"].to_numpy()
    np.testing.assert_allclose(predicted, direct(rows), atol=1e-12)


def test_too_little_history_is_a_clear_error(small_world: Path) -> None:
    tight = load_config(overrides={**SMALL_WORLD_OVERRIDES, "retry.test_days": 0.01})
    with pytest.raises(DatasetError, match="needs both outcomes"):
        retry_data(small_world, tight)


def test_the_split_is_the_failure_models(config: TrainingConfig) -> None:
    occurred = pd.Series(pd.date_range("2025-01-01", "2025-06-30", freq="h", tz="UTC"))
    reported = pd.Series(pd.to_datetime(["2025-07-20"], utc=True))
    plan = retry_split(occurred, reported, config)
    assert plan.test.end > occurred.max() >= plan.test.start
    assert plan.label_delay == pd.Timedelta(0)
    assert plan.as_of == reported.max()


def test_the_retry_model_holds_out_its_own_window_ending_where_the_failure_models_does() -> None:
    occurred = pd.Series(pd.date_range("2025-01-01", "2025-06-30", freq="h", tz="UTC"))
    reported = pd.Series(pd.to_datetime(["2025-06-01"], utc=True))
    config = load_config(overrides={**SMALL_WORLD_OVERRIDES, "retry.test_days": 60})
    plan = retry_split(occurred, reported, config)
    shorter = retry_split(occurred, reported, load_config(overrides=SMALL_WORLD_OVERRIDES))
    assert plan.test.end == shorter.test.end
    assert plan.test.days == pytest.approx(60)
    assert shorter.test.days == pytest.approx(28)
    assert plan.test.start < shorter.test.start


def test_the_gate_refuses_to_judge_a_champion_on_retries_it_learned_from(
    small_world: Path, tmp_path: Path, config: TrainingConfig
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    train_retry_model(small_world, config, tracking_uri=uri, artifact_root=tmp_path / "artifacts")
    assert promote_retry_model(config, tracking_uri=uri, data_dir=small_world).promoted
    longer = load_config(overrides={**SMALL_WORLD_OVERRIDES, "retry.test_days": 56})
    train_retry_model(small_world, longer, tracking_uri=uri, artifact_root=tmp_path / "artifacts")
    with pytest.raises(SplitError, match="no honest comparison exists"):
        promote_retry_model(longer, tracking_uri=uri, data_dir=small_world)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias(RETRY_MODEL_NAME, "champion").version) == "1"
