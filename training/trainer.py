"""Train one task end to end: search + early stopping → calibration → thresholds → bundle → evaluation."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from core.progress import NO_PROGRESS, Progress
from registry.bundle import ModelBundle, Thresholds
from registry.calibration import IsotonicCalibrator
from training.booster import Trial, search
from training.config import Task, TrainingConfig
from training.costs import NEVER, best_threshold
from training.dataset import TaskData
from training.evaluation import Scores, compare, reference_scorers

logger = logging.getLogger(__name__)

REFERENCE_QUANTILES = tuple(np.linspace(0.0, 1.0, 11).round(2).tolist())
REFERENCE_TOP_FEATURES = 10


@dataclass(frozen=True)
class TrainedModel:
    """A trained bundle with its search history and its test report."""

    bundle: ModelBundle
    trials: list[Trial]
    scores: Scores
    references: list[Scores]
    report: dict[str, dict[str, float]]


def fraud_levels(
    probabilities: np.ndarray, labels: np.ndarray, block: float, elevated_fpr: float
) -> dict[str, float]:
    """``highest``: the cost-optimal block cut-off; ``elevated``: flags ``elevated_fpr`` of good attempts."""
    negatives = np.sort(probabilities[labels == 0])
    elevated = float(negatives[int(np.floor((1.0 - elevated_fpr) * (len(negatives) - 1)))])
    elevated = float(np.nextafter(elevated, np.inf))
    return {"elevated": min(elevated, block), "highest": block}


def reference_distributions(
    bundle: ModelBundle, x: np.ndarray, probabilities: np.ndarray
) -> dict[str, object]:
    """Quantiles of the score and of the most important features on validation, for drift monitoring."""
    gains = bundle.booster.feature_importance(importance_type="gain")
    top = np.argsort(-gains)[:REFERENCE_TOP_FEATURES]
    features: dict[str, object] = {}
    for index in top:
        column = x[:, index]
        finite = column[np.isfinite(column)]
        features[bundle.features.names[index]] = {
            "quantiles": np.quantile(finite, REFERENCE_QUANTILES).tolist() if len(finite) else [],
            "missing_share": float(1.0 - len(finite) / len(column)),
        }
    return {
        "window": "validation",
        "quantile_levels": list(REFERENCE_QUANTILES),
        "score_quantiles": np.quantile(probabilities, REFERENCE_QUANTILES).tolist(),
        "features": features,
    }


def train_task(data: TaskData, config: TrainingConfig, *, progress: Progress = NO_PROGRESS) -> TrainedModel:
    """Fit, calibrate, set thresholds and evaluate one task's model; ``progress`` hears each step."""
    task = data.task
    metric = config.primary_metric(task)
    booster, trials = search(
        data.train.matrix,
        data.validation.matrix,
        metric=metric,
        config=config.model,
        seed=config.seed,
        feature_names=list(data.contract.names),
        categorical=list(data.contract.categorical),
        progress=progress,
    )
    progress.stage("calibrate, set thresholds and evaluate")
    raw_validation = np.asarray(
        booster.predict(data.validation.matrix.X, num_threads=config.model.num_threads), dtype=float
    )
    calibrator = IsotonicCalibrator().fit(raw_validation, data.validation.labels)
    validation = calibrator.transform(raw_validation)
    stakes = data.validation.stakes(task, config)
    decision = best_threshold(validation, data.validation.labels, stakes)
    levels = (
        fraud_levels(validation, data.validation.labels, decision, config.fraud_costs.elevated_fpr)
        if task is Task.FRAUD
        else {}
    )
    if decision >= NEVER:
        logger.warning(
            "%s: no threshold pays off on validation under the cost model; nothing is flagged", task
        )
    costs = (config.fraud_costs if task is Task.FRAUD else config.failure_costs).model_dump()
    bundle = ModelBundle(
        task=task.value,
        booster=booster,
        calibrator=calibrator,
        features=data.contract,
        thresholds=Thresholds(decision, levels),
        costs=costs,
        info={"best_iteration": int(booster.best_iteration), "seed": config.seed, **data.plan.to_params()},
    )
    bundle.reference = reference_distributions(bundle, data.validation.matrix.X, validation)
    scores = Scores("model", validation, bundle.predict_proba(data.test.matrix.X))
    references = reference_scorers(data)
    report = compare(data, scores, references, config)
    logger.info(
        "%s test: AUC %.4f AP %.4f ECE %.4f (baseline AP %s)",
        task.value,
        report["model"]["roc_auc"],
        report["model"]["average_precision"],
        report["model"]["ece"],
        f"{report['baseline']['average_precision']:.4f}" if "baseline" in report else "not computed",
    )
    return TrainedModel(bundle, trials, scores, references, report)
