from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.factories import CONTRACT, make_world
from training.bundle import ModelBundle
from training.calibration import IsotonicCalibrator
from training.config import Task, load_config
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
