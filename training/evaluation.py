"""Evaluation on the held-out test window: the model, the baseline rules, and the ground-truth ceiling.

Every scorer (the model, the billing team's rules, and on simulated data the simulator's true probability)
gets its own decision threshold chosen on the validation window with the same cost model, then is measured
on the test window with the same metrics, so the comparison is like for like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.bundle import ModelBundle
from training.config import Task, TrainingConfig
from training.costs import best_threshold, money, stakes_for
from training.dataset import BASELINE_COLUMNS, TRUTH_COLUMNS, TaskData, WindowData
from training.metrics import ranking_metrics


@dataclass(frozen=True)
class Scores:
    """One scorer's scores on the validation and test windows."""

    name: str
    validation: np.ndarray
    test: np.ndarray


def evaluate_window(
    window: WindowData, scores: np.ndarray, task: Task, config: TrainingConfig, threshold: float
) -> dict[str, float]:
    """Ranking, calibration and money metrics of ``scores`` on one window."""
    days = window.meta["occurred_at"].dt.floor("D")
    metrics = ranking_metrics(scores, window.labels, days, window.meta["account_id"], config.top_k)
    stakes = stakes_for(task, window.column("amount"), config)
    metrics.update({f"money_{k}": v for k, v in money(scores, window.labels, stakes, threshold).items()})
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
    """The baseline rules and, when the data has it, the ground-truth probability."""
    scorers = [
        Scores(
            "baseline",
            data.validation.column(BASELINE_COLUMNS[data.task]),
            data.test.column(BASELINE_COLUMNS[data.task]),
        )
    ]
    if data.has_truth:
        column = TRUTH_COLUMNS[data.task]
        scorers.append(Scores("truth", data.validation.column(column), data.test.column(column)))
    return scorers


def evaluate_scores(data: TaskData, scorer: Scores, config: TrainingConfig) -> dict[str, float]:
    """Threshold on validation, metrics on test."""
    stakes = stakes_for(data.task, data.validation.column("amount"), config)
    threshold = best_threshold(scorer.validation, data.validation.labels, stakes)
    return evaluate_window(data.test, scorer.test, data.task, config, threshold)


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
            standing[f"{metric}_minus_{name}"] = ours[metric] - report[name][metric]
    if "truth" in report:
        standing["share_of_truth_ap"] = ours["average_precision"] / report["truth"]["average_precision"]
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
