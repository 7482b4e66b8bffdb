"""LightGBM training: early stopping on validation and a budgeted random hyperparameter search.

Imbalance is handled deliberately: the search tries a small set of positive-class weights
(``search_space.pos_weight``, 1 = none), early stopping watches a metric that rewards ranking the rare class
well (average precision for fraud, ROC AUC for failure), and the isotonic calibration fitted afterwards maps
the (possibly reweighted) scores back to honest probabilities. Training is deterministic for a given seed
and thread count.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from training.config import ModelConfig, SearchSpace

logger = logging.getLogger(__name__)

#: LightGBM's name of each primary metric used for early stopping.
LGB_METRIC = {"average_precision": "average_precision", "roc_auc": "auc"}


@dataclass(frozen=True)
class Matrix:
    """Features and labels of one window, ready for LightGBM."""

    X: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Trial:
    """One search trial: its parameters, stopping round and validation score."""

    number: int
    params: dict[str, Any]
    best_iteration: int
    score: float


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
    """LightGBM datasets of the train and validation windows, binned once and shared by every trial."""
    # feature_pre_filter off: trials vary min_child_samples on the same binned data.
    binning = {"max_bin": 255, "verbosity": -1, "feature_pre_filter": False}
    train_set = lgb.Dataset(
        train.X,
        train.y,
        feature_name=feature_names,
        categorical_feature=categorical,
        free_raw_data=False,
        params=binning,
    )
    valid_set = lgb.Dataset(valid.X, valid.y, reference=train_set, free_raw_data=False, params=binning)
    return train_set, valid_set


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


def search(
    train: Matrix,
    valid: Matrix,
    *,
    metric: str,
    config: ModelConfig,
    seed: int,
    feature_names: list[str],
    categorical: list[str],
) -> tuple[lgb.Booster, list[Trial]]:
    """Run ``config.trials`` trials (the first with default parameters).

    Returns the booster of the best trial (by validation score) and every trial.
    """
    rng = np.random.default_rng(seed)
    train_set, valid_set = datasets(train, valid, feature_names, categorical)
    best: lgb.Booster | None = None
    trials: list[Trial] = []
    for number in range(config.trials):
        params = (
            default_params(config.search_space) if number == 0 else sample_params(config.search_space, rng)
        )
        booster = fit_booster(train_set, valid_set, params=params, metric=metric, config=config, seed=seed)
        score = float(booster.best_score["validation"][LGB_METRIC[metric]])
        trials.append(Trial(number, params, int(booster.best_iteration), score))
        logger.info("trial %d: %s %.4f at %d rounds", number, metric, score, booster.best_iteration)
        if best is None or score > max(trial.score for trial in trials[:-1]):
            best = booster
    if best is None:  # config.trials >= 1 is validated; this keeps the type checker honest
        raise ValueError("the search ran no trial")
    return best, trials
