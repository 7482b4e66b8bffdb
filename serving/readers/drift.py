"""Drift: the population stability index (PSI) of the scores and top features against the model's reference.

Training saves, with each model, the quantiles of its calibrated score and of its most important features on
the validation window, plus each feature's missing share (:func:`training.trainer.reference_distributions`).
Those quantiles are the bins: for a recent period, PSI compares the share of decisions in each bin (and the
missing share, as a bin of its own) with the reference's.

* :func:`psi` is the one definition: ``sum((a - e) * ln(a / e))`` over bins, with shares below
  :data:`EPSILON` raised to it (an empty bin on either side then counts as a large but finite difference,
  rather than an infinite or undefined one). Every term is >= 0, so PSI >= 0; identical shares give 0.
* Bands: below 0.1 ``stable``, 0.1 to 0.25 ``moderate``, from 0.25 ``significant``; fewer than
  :data:`MIN_ROWS` decisions give ``insufficient_data`` (and PSI null).
* Only the decisions a model version scored are compared with that version's reference: its scores, and the
  feature vectors it saw. Scores: every decision of the range. Features: at most about 50,000 decisions,
  evenly spread over the range (:data:`serving.store.decisions.VECTOR_SAMPLE`); ``n`` says how many.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from serving.scoring.models import ServingModel
from serving.store.base import DecisionRanges, epoch_us

logger = logging.getLogger(__name__)

EPSILON: Final = 1e-4
STABLE_BELOW: Final = 0.1
SIGNIFICANT_FROM: Final = 0.25
MIN_ROWS: Final = 100

Band = Literal["stable", "moderate", "significant", "insufficient_data"]
F64 = npt.NDArray[np.float64]


def psi(expected: Sequence[float] | F64, actual: Sequence[float] | F64, epsilon: float = EPSILON) -> float:
    """Population stability index of ``actual`` bin shares against ``expected`` ones (same bins, same order).

    Shares are used as given (each side should sum to 1); a share below ``epsilon`` counts as ``epsilon``.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    if e.shape != a.shape:
        raise ValueError(f"PSI needs the same bins on both sides: {e.shape[0]} expected, {a.shape[0]} actual")
    return float(np.sum((a - e) * np.log(a / e)))


def band(value: float | None) -> Band:
    """The usual reading of a PSI value (None: not enough data to compute one)."""
    if value is None or math.isnan(value):
        return "insufficient_data"
    if value < STABLE_BELOW:
        return "stable"
    return "moderate" if value < SIGNIFICANT_FROM else "significant"


@dataclass(frozen=True)
class Bins:
    """Right-closed bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` and a last bin for missing values."""

    edges: F64
    expected: F64  # one share per bin, the missing bin last; sums to 1

    @classmethod
    def from_reference(
        cls, quantiles: Sequence[float], levels: Sequence[float], missing_share: float = 0.0
    ) -> Bins:
        """Bins from reference quantiles at ``levels`` (0 to 1, the minimum and maximum included).

        Tied quantiles (a value many rows share) make one edge; the share below an edge is the highest level
        whose quantile does not exceed it, so a point mass lands in one bin with its whole weight.
        """
        q = np.asarray(quantiles, dtype=np.float64)
        present = 1.0 - float(missing_share)
        if len(q) == 0:  # no value was present in the reference: one bin for any value, one for missing
            return cls(np.empty(0), np.array([present, float(missing_share)]))
        if len(q) != len(levels):
            raise ValueError(f"{len(q)} reference quantiles for {len(levels)} levels")
        lv = np.asarray(levels, dtype=np.float64)
        edges = np.unique(q[1:-1])
        below = np.array([lv[q <= edge].max() for edge in edges])
        cumulative = np.concatenate([below, [1.0]])
        shares = np.diff(np.concatenate([[0.0], cumulative]))
        return cls(edges, np.concatenate([shares * present, [float(missing_share)]]))

    def shares(self, values: F64 | npt.NDArray[np.float32]) -> F64:
        """The share of ``values`` in each bin (NaN: the missing bin)."""
        x = np.asarray(values, dtype=np.float64)
        finite = x[~np.isnan(x)]
        counts = np.bincount(np.searchsorted(self.edges, finite, side="left"), minlength=len(self.edges) + 1)
        missing = len(x) - len(finite)
        return np.concatenate([counts, [missing]]).astype(np.float64) / max(len(x), 1)


def drift_row(
    name: str, kind: Literal["score", "feature"], bins: Bins, values: F64 | npt.NDArray[np.float32]
) -> dict[str, Any]:
    """One row of the drift table: PSI of ``values`` against ``bins``, its band and how many values."""
    n = len(values)
    value = None if n < MIN_ROWS else round(psi(bins.expected, bins.shares(values)), 6)
    return {"name": name, "kind": kind, "psi": value, "band": band(value), "n": n}


@dataclass(frozen=True)
class DriftModel:
    """A served model version and what drift needs of its bundle."""

    task: str
    ref: str  # "riskgate-fraud/3", as the decision log names it
    reference: Mapping[str, Any]  # the bundle's reference distributions (may be empty)
    feature_names: tuple[str, ...]

    @classmethod
    def of(cls, model: ServingModel | None) -> DriftModel | None:
        """What drift needs of a served model (None: no model)."""
        if model is None:
            return None
        bundle = model.bundle
        return cls(bundle.task, f"{model.name}/{model.version}", bundle.reference, bundle.features.names)


def model_drift(reader: DecisionRanges, start: datetime, end: datetime, model: DriftModel) -> dict[str, Any]:
    """The drift table of one model version over ``[start, end)``."""
    reference = model.reference
    out: dict[str, Any] = {
        "task": model.task,
        "model": model.ref,
        "reference_window": reference.get("window"),
        "status": "ok",
        "rows": [],
    }
    if not reference.get("score_quantiles"):
        out["status"] = "no_reference"  # a bundle trained before references were saved
        return out
    levels = reference["quantile_levels"]
    scores, vectors = reader.scored_by(
        epoch_us(start), epoch_us(end), model.task, model.ref, len(model.feature_names)
    )
    rows = [drift_row("score", "score", Bins.from_reference(reference["score_quantiles"], levels), scores)]
    index = {name: i for i, name in enumerate(model.feature_names)}
    for name, saved in reference.get("features", {}).items():
        if name not in index:
            logger.warning("drift: %s's reference names feature %s, unknown to the model", model.ref, name)
            continue
        bins = Bins.from_reference(saved["quantiles"], levels, saved["missing_share"])
        rows.append(drift_row(name, "feature", bins, vectors[:, index[name]]))
    out["rows"] = rows
    return out


def drift(
    reader: DecisionRanges,
    start: datetime,
    end: datetime,
    models: Mapping[str, DriftModel | None],
) -> dict[str, Any]:
    """``GET /v1/drift``: per task, the served version's drift table (``status: no_model`` without one)."""
    tables: list[dict[str, Any]] = []
    for task, model in models.items():
        if model is None:
            tables.append(
                {"task": task, "model": None, "reference_window": None, "status": "no_model", "rows": []}
            )
        else:
            tables.append(model_drift(reader, start, end, model))
    return {"start": start.isoformat(), "end": end.isoformat(), "models": tables}
