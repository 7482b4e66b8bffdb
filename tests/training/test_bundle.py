from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.factories import CONTRACT, make_world
from training.booster import Matrix, search
from training.bundle import ModelBundle
from training.calibration import IsotonicCalibrator
from training.config import ModelConfig, SearchSpace, Task, load_config
from training.dataset import assemble, task_data
from training.errors import DatasetError, FeatureContractError
from training.trainer import train_task

FAST = {
    "model.trials": 1,
    "model.max_rounds": 40,
    "model.num_threads": 1,
    "labels.fraud_label_delay_days": 20,
}


@pytest.fixture(scope="module")
def fraud_bundle() -> tuple[ModelBundle, np.ndarray]:
    world = make_world(rows=3000)
    frame = assemble(world.attempts, world.outcomes, world.reports, world.features, world.truth)
    data = task_data(frame, Task.FRAUD, CONTRACT, load_config(overrides=FAST))
    return train_task(data, load_config(overrides=FAST)).bundle, data.test.matrix.X


def test_calibrator_is_monotone_and_round_trips() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(500)
    labels = (rng.random(500) < scores**2).astype(float)
    calibrator = IsotonicCalibrator().fit(scores, labels)
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(calibrator.transform(grid)) >= 0)
    again = IsotonicCalibrator.from_dict(calibrator.to_dict())
    np.testing.assert_array_equal(again.transform(grid), calibrator.transform(grid))
    with pytest.raises(DatasetError):
        IsotonicCalibrator.from_dict({"kind": "platt"})


def test_bundle_round_trips_with_identical_predictions(
    fraud_bundle: tuple[ModelBundle, np.ndarray], tmp_path: Path
) -> None:
    bundle, x = fraud_bundle
    loaded = ModelBundle.load(bundle.save(tmp_path / "bundle"))
    np.testing.assert_array_equal(loaded.predict_proba(x), bundle.predict_proba(x))
    assert loaded.features == bundle.features
    assert loaded.thresholds == bundle.thresholds
    assert loaded.reference["score_quantiles"] == bundle.reference["score_quantiles"]


def test_levels_follow_the_thresholds(fraud_bundle: tuple[ModelBundle, np.ndarray]) -> None:
    bundle, _ = fraud_bundle
    levels = bundle.thresholds.levels
    assert levels["elevated"] <= levels["highest"] == bundle.thresholds.decision
    probabilities = np.array([0.0, levels["elevated"], levels["highest"]])
    assert bundle.level(probabilities).tolist() == ["normal", "elevated", "highest"]


def test_a_different_feature_set_is_refused(fraud_bundle: tuple[ModelBundle, np.ndarray]) -> None:
    bundle, x = fraud_bundle
    bundle.check_features(CONTRACT.names, CONTRACT.hash)
    with pytest.raises(FeatureContractError, match="retrain"):
        bundle.check_features(CONTRACT.names, "another-hash")
    with pytest.raises(FeatureContractError, match="shape"):
        bundle.predict_proba(x[:, :2])


def test_loading_a_non_bundle_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        ModelBundle.load(tmp_path)


def test_search_trials_may_lower_min_child_samples_on_shared_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = (x[:, 0] + rng.normal(size=600) > 1).astype(float)
    space = SearchSpace(min_child_samples=(5, 300))
    config = ModelConfig(trials=4, max_rounds=20, num_threads=1, search_space=space)
    _, trials = search(
        Matrix(x[:400], y[:400]),
        Matrix(x[400:], y[400:]),
        metric="roc_auc",
        config=config,
        seed=3,
        feature_names=["a", "b", "c"],
        categorical=[],
    )
    assert len(trials) == 4
    assert min(t.params["min_child_samples"] for t in trials[1:]) < trials[0].params["min_child_samples"]
