"""Evaluation plots (matplotlib figures) logged with every training run."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from registry.bundle import ModelBundle
from training.metrics import reliability


def _pyplot() -> Any:
    """pyplot on the Agg backend, chosen here (never at import) so no display is needed."""
    import matplotlib  # noqa: PLC0415 - the backend must be chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def evaluation_figures(
    bundle: ModelBundle, labels: np.ndarray, scores: dict[str, np.ndarray]
) -> dict[str, Any]:
    """ROC, precision–recall, reliability, feature importance and score distributions on the test window.

    ``scores`` maps a scorer's name (model, baseline, truth) to its test scores.
    """
    plt = _pyplot()
    figures: dict[str, Any] = {}
    title = f"{bundle.task} model, test window"

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, values in scores.items():
        fpr, tpr, _ = roc_curve(labels, values)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-positive rate", ylabel="recall", title=f"ROC — {title}")
    ax.legend()
    figures["roc.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, values in scores.items():
        precision, recall, _ = precision_recall_curve(labels, values)
        ax.plot(recall, precision, label=name)
    ax.set(xlabel="recall", ylabel="precision", title=f"Precision–recall — {title}")
    ax.legend()
    figures["precision_recall.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name in ("model", "truth"):
        if name in scores:
            curve = reliability(scores[name], labels, bins=15)
            ax.plot(curve.predicted, curve.observed, "o-", label=f"{name} (ECE {curve.ece:.4f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="predicted probability", ylabel="observed rate", title=f"Reliability — {title}")
    ax.legend()
    figures["calibration.png"] = fig

    gains = bundle.booster.feature_importance(importance_type="gain")
    top = np.argsort(gains)[-25:]
    fig, ax = plt.subplots(figsize=(6, max(3.0, 0.25 * len(top))))
    ax.barh([bundle.features.names[i] for i in top], gains[top])
    ax.set(xlabel="total gain", title=f"Feature importance — {bundle.task}")
    fig.tight_layout()
    figures["feature_importance.png"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    model = scores["model"]
    bins = np.linspace(0.0, 1.0, 51)
    ax.hist(model[labels == 0], bins=bins, alpha=0.6, density=True, label="negatives")
    ax.hist(model[labels == 1], bins=bins, alpha=0.6, density=True, label="positives")
    ax.set(yscale="log", xlabel="calibrated probability", ylabel="density", title=f"Scores — {title}")
    ax.legend()
    figures["score_distribution.png"] = fig
    return figures


def close(figures: dict[str, Any]) -> None:
    plt = _pyplot()
    for figure in figures.values():
        plt.close(figure)
