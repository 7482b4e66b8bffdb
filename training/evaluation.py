"""Evaluation on the held-out test window: the model, the baseline rules, and the ground-truth ceiling.

Every scorer (the model, the billing team's rules, and on simulated data the simulator's true probability)
gets its own decision threshold chosen on the validation window with the same cost model, then is measured
on the test window with the same metrics, so the comparison is like for like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from registry.bundle import ModelBundle
from training.config import Task, TrainingConfig
from training.costs import best_threshold, money
from training.dataset import BASELINE_COLUMNS, TRUE_FRAUD_COLUMN, TRUTH_COLUMNS, TaskData, WindowData
from training.metrics import ranking_metrics


@dataclass(frozen=True)
class Scores:
    """One scorer's scores on the validation and test windows."""

    name: str
    validation: np.ndarray
    test: np.ndarray


def evaluate_window(
    window: WindowData,
    scores: np.ndarray,
    task: Task,
    config: TrainingConfig,
    threshold: float,
    *,
    labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Ranking, calibration and money metrics of ``scores`` on one window (against ``labels`` if given)."""
    truth = window.labels if labels is None else labels
    days = window.meta["occurred_at"].dt.floor("D")
    metrics = ranking_metrics(scores, truth, days, window.meta["account_id"], config.top_k)
    if config.money_metrics:
        stakes = window.stakes(task, config)
        metrics.update({f"money_{k}": v for k, v in money(scores, truth, stakes, threshold).items()})
    metrics["threshold"] = threshold
    return metrics


def model_scores(data: TaskData, bundle: ModelBundle) -> Scores:
    """A bundle's calibrated probabilities on the validation and test windows."""
    return Scores(
        "model", bundle.predict_proba(data.validation.matrix.X), bundle.predict_proba(data.test.matrix.X)
    )


def evaluate_bundle(
    data: TaskData, bundle: ModelBundle, config: TrainingConfig
) -> dict[str, dict[str, float]]:
    """Re-evaluate a (registered) bundle on ``data``'s test window, next to the baselines and the truth."""
    bundle.check_features(data.contract.names, data.contract.hash)
    return compare(data, model_scores(data, bundle), reference_scorers(data), config)


def reference_scorers(data: TaskData) -> list[Scores]:
    """The baseline rules (unless switched off) and, when the data has it, the ground-truth probability."""
    scorers = []
    baseline = BASELINE_COLUMNS[data.task]
    if baseline in data.test.meta.columns:
        scorers.append(Scores("baseline", data.validation.column(baseline), data.test.column(baseline)))
    if data.has_truth:
        column = TRUTH_COLUMNS[data.task]
        scorers.append(Scores("truth", data.validation.column(column), data.test.column(column)))
    return scorers


def evaluate_scores(
    data: TaskData, scorer: Scores, config: TrainingConfig, labels: np.ndarray | None = None
) -> dict[str, float]:
    """Threshold on validation (labels as known), metrics on test (against ``labels`` if given)."""
    stakes = data.validation.stakes(data.task, config)
    threshold = best_threshold(scorer.validation, data.validation.labels, stakes)
    return evaluate_window(data.test, scorer.test, data.task, config, threshold, labels=labels)


def compare(
    data: TaskData, model: Scores, references: list[Scores], config: TrainingConfig
) -> dict[str, dict[str, float]]:
    """Test metrics of the model and every reference scorer, plus the model's standing against them."""
    report = {scorer.name: evaluate_scores(data, scorer, config) for scorer in [model, *references]}
    standing: dict[str, float] = {}
    ours = report[model.name]
    for name in report:
        if name == model.name:
            continue
        for metric in ("roc_auc", "average_precision", "money_net_value"):
            if metric not in ours:  # money_* when money_metrics is off
                continue
            standing[f"{metric}_minus_{name}"] = ours[metric] - report[name][metric]
    if "truth" in report:
        standing["share_of_truth_ap"] = ours["average_precision"] / report["truth"]["average_precision"]
    if TRUE_FRAUD_COLUMN in data.test.meta.columns:
        # The simulator's p_fraud is the probability of fraud, not of a *report*: the fair ceiling
        # comparison scores both against whether the attempt really was fraud.
        true_fraud = data.test.column(TRUE_FRAUD_COLUMN)
        for scorer in (model, *[r for r in references if r.name == "truth"]):
            report[f"{scorer.name}_on_true_fraud"] = evaluate_scores(data, scorer, config, true_fraud)
        if "truth_on_true_fraud" in report:
            standing["share_of_truth_ap_on_true_fraud"] = (
                report["model_on_true_fraud"]["average_precision"]
                / report["truth_on_true_fraud"]["average_precision"]
            )
    report["standing"] = standing
    return report


def flatten(report: dict[str, dict[str, float]], prefix: str = "test") -> dict[str, float]:
    """``{"model": {"roc_auc": x}}`` → ``{"test_model_roc_auc": x}`` (MLflow metric names)."""
    flat: dict[str, float] = {}
    for scorer, metrics in report.items():
        for name, value in metrics.items():
            key = f"{prefix}_{scorer}_{name}".replace("%", "pct").replace("@", "at")
            flat[key] = float(value)
    return flat
