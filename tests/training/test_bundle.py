from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from sklearn.isotonic import IsotonicRegression

from registry.bundle import ModelBundle
from registry.calibration import IsotonicCalibrator
from registry.errors import CalibrationError, FeatureContractError
from tests.training.factories import CONTRACT, make_world
from training.baselines import IPTV_BASELINES
from training.booster import FEATURE_DTYPE, Matrix, search
from training.config import ModelConfig, SearchSpace, Task, load_config
from training.dataset import assemble, task_data
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
    frame = assemble(
        world.attempts, world.outcomes, world.reports, world.features, world.truth, baselines=IPTV_BASELINES
    )
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
    with pytest.raises(CalibrationError):
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


def test_calibration_keeps_the_ranking_it_calibrates() -> None:
    """Centred isotonic: strictly increasing wherever the probability is strictly between 0 and 1, so no
    new ties there, and still calibrated (the mean probability is the observed rate, within a few
    thousandths)."""
    rng = np.random.default_rng(4)
    scores = rng.random(5000)
    labels = (rng.random(5000) < scores**2).astype(float)
    calibrator = IsotonicCalibrator().fit(scores, labels)
    ordered = np.sort(scores)
    mapped = calibrator.transform(ordered)
    interior = (mapped > 0) & (mapped < 1) & (ordered > calibrator.x_[0]) & (ordered < calibrator.x_[-1])
    assert interior.mean() > 0.9
    assert np.all(np.diff(mapped[interior]) > 0)
    assert abs(calibrator.transform(scores).mean() - labels.mean()) < 0.005
    plain = IsotonicRegression(out_of_bounds="clip").fit(scores, labels).predict(scores)
    assert len(np.unique(calibrator.transform(scores))) > 10 * len(np.unique(plain))


def test_a_block_where_every_attempt_had_the_same_label_keeps_its_certainty() -> None:
    """A block of all negatives (all positives) is not shrunk to its centre: every score in it maps to 0
    (1), as in Oron & Flournoy's CIR, instead of an invented chance of the other outcome."""
    rng = np.random.default_rng(9)
    scores = rng.random(4000)
    labels = np.where(
        scores < 0.2, 0.0, np.where(scores > 0.8, 1.0, (rng.random(4000) < scores).astype(float))
    )
    calibrator = IsotonicCalibrator().fit(scores, labels)
    np.testing.assert_array_equal(calibrator.transform(scores[scores < 0.2]), 0.0)
    np.testing.assert_array_equal(calibrator.transform(scores[scores > 0.8]), 1.0)
    middle = np.sort(scores[(scores > 0.35) & (scores < 0.65)])
    assert np.all(np.diff(calibrator.transform(middle)) > 0)
    assert np.all(np.diff(calibrator.x_) > 0)


@given(
    scores=arrays(np.float64, st.integers(2, 200), elements=st.floats(0, 1)),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=50, deadline=None)
def test_calibration_is_a_monotone_map_into_the_unit_interval(scores: np.ndarray, seed: int) -> None:
    labels = (np.random.default_rng(seed).random(len(scores)) < 0.3).astype(float)
    calibrator = IsotonicCalibrator().fit(scores, labels)
    grid = np.sort(np.r_[scores, -1.0, 2.0])
    mapped = calibrator.transform(grid)
    assert np.all(np.diff(mapped) >= 0)
    assert np.all((mapped >= 0) & (mapped <= 1))


def _separable(rows: int, seed: int) -> tuple[Matrix, Matrix]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = (x[:, 0] + rng.normal(size=rows) > 1).astype(float)
    cut = rows * 4 // 5
    return Matrix.of(x[:cut], y[:cut]), Matrix.of(x[cut:], y[cut:])


def test_a_large_window_is_searched_on_a_subsample_then_refitted_on_every_row() -> None:
    train, valid = _separable(5000, seed=5)
    config = ModelConfig(trials=3, max_rounds=30, num_threads=1, search_rows=1500)
    booster, trials = search(
        train, valid, metric="roc_auc", config=config, seed=2, feature_names=["a", "b", "c"], categorical=[]
    )
    assert [t.rows for t in trials] == [1500, 1500, 1500, 4000]
    winner = max(trials[:-1], key=lambda t: t.score)
    assert trials[-1].params == winner.params
    assert booster.best_iteration == trials[-1].best_iteration


def test_a_window_within_the_search_rows_is_searched_whole() -> None:
    train, valid = _separable(2000, seed=6)
    config = ModelConfig(trials=2, max_rounds=20, num_threads=1, search_rows=1600)
    _, trials = search(
        train, valid, metric="roc_auc", config=config, seed=2, feature_names=["a", "b", "c"], categorical=[]
    )
    assert [t.rows for t in trials] == [1600, 1600]


def test_matrices_are_row_major_float32_and_refuse_misaligned_labels() -> None:
    matrix = Matrix.of(np.asfortranarray(np.ones((4, 3))), np.zeros(4))
    assert matrix.X.dtype == FEATURE_DTYPE
    assert matrix.X.flags.c_contiguous
    with pytest.raises(ValueError, match="labels"):
        Matrix(np.ones((4, 3), dtype=FEATURE_DTYPE), np.zeros(3))
