"""Evaluation metrics: ranking, top-k precision, calibration, and money.

All functions take plain numpy arrays (scores in [0, 1], labels 0/1) so they can be checked by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from training.errors import DatasetError

FloatArray = np.ndarray


def _check(scores: FloatArray, labels: FloatArray) -> None:
    if len(scores) != len(labels):
        raise DatasetError(f"{len(scores)} scores but {len(labels)} labels: they must be aligned per attempt")
    if len(np.unique(labels)) < 2:
        raise DatasetError(
            f"metrics need both classes, but all {len(labels)} labels are {labels[:1]}: "
            "widen the evaluation window or check the label source"
        )


def recall_at_fpr(labels: FloatArray, scores: FloatArray, max_fpr: float) -> float:
    """The largest recall reachable while flagging at most ``max_fpr`` of the negatives."""
    _check(scores, labels)
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(tpr[fpr <= max_fpr].max())


def precision_top_k(
    scores: FloatArray, labels: FloatArray, days: pd.Series, k: int, accounts: pd.Series | None = None
) -> float:
    """Precision among the ``k`` highest-scored attempts of each day (pooled over days).

    With ``accounts``, each account counts once per day: its highest score ranks it, and it is a hit if any
    of its attempts that day is positive (repeated attempts of one account are not counted k times).
    """
    frame = pd.DataFrame({"score": scores, "label": labels, "day": days.to_numpy()})
    if accounts is not None:
        frame["account"] = accounts.to_numpy()
        frame = frame.groupby(["day", "account"], sort=False, observed=True).agg(
            score=("score", "max"), label=("label", "max")
        )
        frame = frame.reset_index()
    top = frame.sort_values(["day", "score"], ascending=[True, False], kind="stable").groupby("day").head(k)
    return float(top["label"].mean())


@dataclass(frozen=True)
class Reliability:
    """Reliability curve: mean predicted vs. observed rate per bin of predicted probability."""

    predicted: FloatArray
    observed: FloatArray
    counts: FloatArray

    @property
    def ece(self) -> float:
        """Expected calibration error: count-weighted mean |observed − predicted| over the bins."""
        return float(np.sum(self.counts * np.abs(self.observed - self.predicted)) / np.sum(self.counts))


def reliability(scores: FloatArray, labels: FloatArray, bins: int = 10) -> Reliability:
    """Equal-width bins on [0, 1]; empty bins are left out."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(float)
    sums = np.bincount(index, weights=scores, minlength=bins)
    hits = np.bincount(index, weights=labels, minlength=bins)
    filled = counts > 0
    return Reliability(sums[filled] / counts[filled], hits[filled] / counts[filled], counts[filled])


def ranking_metrics(
    scores: FloatArray,
    labels: FloatArray,
    days: pd.Series,
    accounts: pd.Series,
    top_k: tuple[int, ...],
) -> dict[str, float]:
    """ROC AUC, AP, recall at 0.5%/1% FPR, top-k precision per day and per account-day, Brier and ECE."""
    _check(scores, labels)
    metrics = {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "recall_at_0.5pct_fpr": recall_at_fpr(labels, scores, 0.005),
        "recall_at_1pct_fpr": recall_at_fpr(labels, scores, 0.01),
        "brier": float(brier_score_loss(labels, np.clip(scores, 0.0, 1.0))),
        "ece": reliability(scores, labels).ece,
        "positive_rate": float(np.mean(labels)),
        "mean_score": float(np.mean(scores)),
        "attempts": float(len(labels)),
    }
    for k in top_k:
        metrics[f"precision_top{k}_per_day"] = precision_top_k(scores, labels, days, k)
        metrics[f"precision_top{k}_accounts_per_day"] = precision_top_k(scores, labels, days, k, accounts)
    return metrics
