"""LightGBM training: early stopping on validation and a budgeted random hyperparameter search.

Imbalance is handled deliberately: the search tries a small set of positive-class weights
(``search_space.pos_weight``, 1 = none), early stopping watches a metric that rewards ranking the rare class
well (average precision for fraud, ROC AUC for failure), and the isotonic calibration fitted afterwards maps
the (possibly reweighted) scores back to honest probabilities. Training is deterministic for a given seed
and thread count.

Cost: feature matrices are float32 (LightGBM bins them without a float64 copy) and each window is binned
once into an :class:`lgb.Dataset` that every trial reuses. On a training window larger than
``model.search_rows`` the trials run on a seeded random subsample of that many rows (the trials only *rank*
parameter sets), and the winner is then refitted on every training row with early stopping on the same
validation window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from core.progress import NO_PROGRESS, Progress
from training.config import ModelConfig, SearchSpace

logger = logging.getLogger(__name__)

#: LightGBM's name of each primary metric used for early stopping.
LGB_METRIC = {"average_precision": "average_precision", "roc_auc": "auc"}


#: dtype of the feature matrices LightGBM trains on (half the memory of float64, binned without a copy).
FEATURE_DTYPE = np.float32


@dataclass(frozen=True)
class Matrix:
    """Features (row-major, :data:`FEATURE_DTYPE`) and labels of one window, ready for LightGBM."""

    X: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise ValueError(f"a matrix of {len(self.X)} rows cannot take {len(self.y)} labels")

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> Matrix:
        """The matrix of ``x`` as C-contiguous :data:`FEATURE_DTYPE` (copied only if it is not already)."""
        return cls(np.ascontiguousarray(x, dtype=FEATURE_DTYPE), np.asarray(y, dtype=np.float64))

    def rows(self, index: np.ndarray) -> Matrix:
        return Matrix(self.X[index], self.y[index])


@dataclass(frozen=True)
class Trial:
    """One search trial: its parameters, stopping round and validation score."""

    number: int
    params: dict[str, Any]
    best_iteration: int
    score: float
    rows: int = 0  # training rows the trial saw (a subsample on large windows)


def sample_params(space: SearchSpace, rng: np.random.Generator) -> dict[str, Any]:
    """One draw from the search space (log-uniform learning rate and L2, uniform otherwise)."""

    def log_uniform(low: float, high: float) -> float:
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))

    return {
        "learning_rate": log_uniform(*space.learning_rate),
        "num_leaves": int(rng.integers(space.num_leaves[0], space.num_leaves[1] + 1)),
        "min_child_samples": int(rng.integers(space.min_child_samples[0], space.min_child_samples[1] + 1)),
        "feature_fraction": float(rng.uniform(*space.feature_fraction)),
        "bagging_fraction": float(rng.uniform(*space.bagging_fraction)),
        "lambda_l2": log_uniform(*space.lambda_l2),
        "scale_pos_weight": float(rng.choice(np.asarray(space.pos_weight))),
    }


def default_params(space: SearchSpace) -> dict[str, Any]:
    """The first trial: middle-of-the-road values, so a budget of one is still a sensible model."""
    return {
        "learning_rate": 0.05,
        "num_leaves": int(np.clip(31, *space.num_leaves)),
        "min_child_samples": int(np.clip(100, *space.min_child_samples)),
        "feature_fraction": float(np.clip(0.8, *space.feature_fraction)),
        "bagging_fraction": float(np.clip(0.8, *space.bagging_fraction)),
        "lambda_l2": float(np.clip(1.0, *space.lambda_l2)),
        "scale_pos_weight": float(space.pos_weight[0]),
    }


def datasets(
    train: Matrix, valid: Matrix, feature_names: list[str], categorical: list[str]
) -> tuple[lgb.Dataset, lgb.Dataset]:
    """LightGBM datasets of the train and validation windows, binned once and shared by every trial.

    The binned datasets do not keep a reference to the raw matrices (``free_raw_data``): the caller's
    :class:`Matrix` stays the only copy.
    """
    # feature_pre_filter off: trials vary min_child_samples on the same binned data.
    binning = {"max_bin": 255, "verbosity": -1, "feature_pre_filter": False}

    def binned(matrix: Matrix, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        return lgb.Dataset(
            matrix.X,
            matrix.y,
            reference=reference,  # the validation window is binned with the training window's bins
            feature_name=feature_names,
            categorical_feature=categorical,
            free_raw_data=True,
            params=binning,
        ).construct()

    train_set = binned(train)
    return train_set, binned(valid, train_set)


def fit_booster(
    train_set: lgb.Dataset,
    valid_set: lgb.Dataset,
    *,
    params: dict[str, Any],
    metric: str,
    config: ModelConfig,
    seed: int,
) -> lgb.Booster:
    """Train one booster, stopping when the validation metric stops improving."""
    full = {
        "objective": "binary",
        "metric": LGB_METRIC[metric],
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": config.num_threads,
        "bagging_freq": 1,
        "verbosity": -1,
        **params,
    }
    return lgb.train(
        full,
        train_set,
        num_boost_round=config.max_rounds,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False)],
    )


def search_sample(rows: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of the training rows the search's trials use; None when they use every row."""
    if limit is None or rows <= limit:
        return None
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    return np.sort(rng.choice(rows, size=limit, replace=False))


def search(
    train: Matrix,
    valid: Matrix,
    *,
    metric: str,
    config: ModelConfig,
    seed: int,
    feature_names: list[str],
    categorical: list[str],
    progress: Progress = NO_PROGRESS,
) -> tuple[lgb.Booster, list[Trial]]:
    """Run ``config.trials`` trials (the first with default parameters); ``progress`` hears each trial.

    Returns the booster of the best trial (by validation score), refitted on every training row when the
    trials ran on a subsample, and every trial.
    """
    sample = None if config.trials == 1 else search_sample(len(train.y), config.search_rows, seed)
    searched = train if sample is None else train.rows(sample)
    if sample is not None:
        logger.info("search on %d of %d training rows, then a refit on all", len(sample), len(train.y))
    progress.stage("bin the training data")
    train_set, valid_set = datasets(searched, valid, feature_names, categorical)
    progress.stage("search trials", config.trials)
    best, trials = _trials(train_set, valid_set, metric=metric, config=config, seed=seed, progress=progress)
    if sample is None:
        return best, trials
    progress.stage("refit on all rows")
    del train_set
    winner = max(trials, key=lambda trial: trial.score)
    full_set, valid_set = datasets(train, valid, feature_names, categorical)
    booster = fit_booster(full_set, valid_set, params=winner.params, metric=metric, config=config, seed=seed)
    score = float(booster.best_score["validation"][LGB_METRIC[metric]])
    logger.info(
        "refit of trial %d on all rows: %s %.4f at %d rounds",
        winner.number,
        metric,
        score,
        booster.best_iteration,
    )
    refit = Trial(len(trials), winner.params, int(booster.best_iteration), score, len(train.y))
    return booster, [*trials, refit]


def _trials(
    train_set: lgb.Dataset,
    valid_set: lgb.Dataset,
    *,
    metric: str,
    config: ModelConfig,
    seed: int,
    progress: Progress,
) -> tuple[lgb.Booster, list[Trial]]:
    rng = np.random.default_rng(seed)
    best: lgb.Booster | None = None
    trials: list[Trial] = []
    for number in range(config.trials):
        params = (
            default_params(config.search_space) if number == 0 else sample_params(config.search_space, rng)
        )
        booster = fit_booster(train_set, valid_set, params=params, metric=metric, config=config, seed=seed)
        score = float(booster.best_score["validation"][LGB_METRIC[metric]])
        trials.append(Trial(number, params, int(booster.best_iteration), score, train_set.num_data()))
        logger.info("trial %d: %s %.4f at %d rounds", number, metric, score, booster.best_iteration)
        if best is None or score > max(trial.score for trial in trials[:-1]):
            best = booster
        progress.advance()
    if best is None:  # config.trials >= 1 is validated; this keeps the type checker honest
        raise ValueError("the search ran no trial")
    return best, trials
