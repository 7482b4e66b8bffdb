"""Logging, registry, the promotion gate and reproducibility, against a real MLflow SQLite store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from registry.bundle import FeatureContract
from registry.names import CHAMPION, MODEL_NAMES
from registry.store import tracking_store
from tests.training.factories import FEATURES
from training.config import Task, TrainingConfig, load_config
from training.data import Inputs
from training.pipeline import evaluate_model, promote_models, score_file, train_models

Store = tuple[str, Path]
FAST = {
    "model.trials": 2,
    "model.max_rounds": 40,
    "model.num_threads": 1,
    "labels.fraud_label_delay_days": 20,
}


def champion_version(uri: str, task: Task) -> str:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return str(client.get_model_version_by_alias(MODEL_NAMES[task], CHAMPION).version)


def test_training_logs_registers_and_first_promotion_sets_champions(
    inputs: Inputs, fast_config: TrainingConfig, store: Store
) -> None:
    uri, artifacts = store
    results = train_models(inputs, fast_config, tracking_uri=uri, artifact_root=artifacts)
    assert [r.logged.name for r in results] == ["riskgate-fraud", "riskgate-failure"]
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(results[0].logged.run_id)
    assert run.data.params["feature_set_hash"] == inputs.contract.hash
    assert "test_start" in run.data.params
    assert "test_model_average_precision" in run.data.metrics
    assert "test_baseline_average_precision" in run.data.metrics
    assert "test_standing_share_of_truth_ap" in run.data.metrics
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/feature_importance.png"} <= logged
    assert run.info.artifact_uri.startswith(artifacts.resolve().as_uri())
    # the fluent API is not left pointing at the test store
    assert not (mlflow.is_tracking_uri_set() and mlflow.get_tracking_uri() == uri)  # type: ignore[no-untyped-call]

    decisions = promote_models(None, fast_config, tracking_uri=uri)
    assert all(d.promoted and "no champion" in d.reason for d in decisions)
    assert champion_version(uri, Task.FRAUD) == "1"
    again = promote_models(None, fast_config, tracking_uri=uri)
    assert not any(d.promoted for d in again)
    assert all("already the champion" in d.reason for d in again)


def test_same_data_config_and_seed_give_the_same_metrics_and_no_promotion(
    inputs: Inputs, fast_config: TrainingConfig, store: Store
) -> None:
    uri, artifacts = store
    first = train_models(inputs, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FRAUD,))
    promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FRAUD,))
    second = train_models(inputs, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FRAUD,))
    assert first[0].report == second[0].report
    (decision,) = promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FRAUD,))
    assert not decision.promoted
    assert "does not beat" in decision.reason
    assert "logged at training" in decision.reason
    assert champion_version(uri, Task.FRAUD) == "1"


def test_a_better_candidate_is_promoted_and_a_worse_one_is_not(
    inputs: Inputs, fast_config: TrainingConfig, store: Store
) -> None:
    uri, artifacts = store
    weak = load_config(overrides={**FAST, "model.trials": 1, "model.max_rounds": 1})
    train_models(inputs, weak, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FAILURE,))
    promote_models(None, weak, tracking_uri=uri, tasks=(Task.FAILURE,))
    train_models(inputs, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FAILURE,))
    (better,) = promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FAILURE,))
    assert better.promoted, better.reason
    assert "beats the champion" in better.reason
    assert champion_version(uri, Task.FAILURE) == "2"
    train_models(inputs, weak, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FAILURE,))
    (worse,) = promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FAILURE,))
    assert not worse.promoted
    assert champion_version(uri, Task.FAILURE) == "2"


def test_different_test_windows_are_compared_by_rescoring_on_the_current_one(
    inputs: Inputs, fast_config: TrainingConfig, store: Store
) -> None:
    uri, artifacts = store
    older = Inputs(
        inputs.frame[inputs.frame["occurred_at"] < inputs.frame["occurred_at"].max() - pd.Timedelta(days=10)],
        inputs.contract,
    )
    train_models(older, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FAILURE,))
    promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FAILURE,))
    train_models(inputs, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FAILURE,))
    with pytest.raises(Exception, match="different test windows"):
        promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FAILURE,))
    (decision,) = promote_models(inputs, fast_config, tracking_uri=uri, tasks=(Task.FAILURE,))
    assert "both re-scored" in decision.reason


def test_a_champion_on_an_outdated_feature_set_is_replaced(
    inputs: Inputs, fast_config: TrainingConfig, store: Store
) -> None:
    uri, artifacts = store
    train_models(inputs, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FRAUD,))
    promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FRAUD,))
    changed = Inputs(inputs.frame, FeatureContract(FEATURES, "new-hash", ("f_tier",)))
    train_models(changed, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FRAUD,))
    (decision,) = promote_models(changed, fast_config, tracking_uri=uri, tasks=(Task.FRAUD,))
    assert decision.promoted
    assert "cannot be served" in decision.reason


def test_registered_models_evaluate_and_batch_score(
    inputs: Inputs, fast_config: TrainingConfig, store: Store, tmp_path: Path
) -> None:
    uri, artifacts = store
    (trained,) = train_models(
        inputs, fast_config, tracking_uri=uri, artifact_root=artifacts, tasks=(Task.FRAUD,)
    )
    promote_models(None, fast_config, tracking_uri=uri, tasks=(Task.FRAUD,))
    task, _, report = evaluate_model(
        inputs, fast_config, tracking_uri=uri, model_uri="models:/riskgate-fraud@champion"
    )
    assert task is Task.FRAUD
    assert report["model"] == trained.report["model"]

    features = inputs.frame[["attempt_id", *FEATURES]].iloc[::-1]
    source = tmp_path / "features.parquet"
    features.to_parquet(source)
    out = tmp_path / "scores.parquet"
    assert score_file("models:/riskgate-fraud/1", source, out, tracking_uri=uri) == len(features)
    scored = pd.read_parquet(out)
    assert scored["attempt_id"].tolist() == features["attempt_id"].tolist()
    assert scored["p_fraud"].between(0, 1).all()
    assert set(scored["fraud_level"]) <= {"normal", "elevated", "highest"}

    with tracking_store(uri):
        pyfunc = mlflow.pyfunc.load_model("models:/riskgate-fraud@champion")
    np.testing.assert_allclose(
        pyfunc.predict(features[list(FEATURES)].head(50))["probability"].to_numpy(),
        scored["p_fraud"].head(50).to_numpy(),
    )
