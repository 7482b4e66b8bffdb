"""Isotonic calibration kept as plain breakpoints, applied with ``numpy.interp``.

The calibrator is fit on the validation window (the booster never trained on it) and travels inside the
model bundle as two lists of numbers, so serving needs neither scikit-learn nor pickles to apply it.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.isotonic import IsotonicRegression

from training.errors import DatasetError

FloatArray = np.ndarray


class IsotonicCalibrator:
    """Monotone map from raw model scores to probabilities (scikit-learn estimator contract)."""

    def __init__(self, min_bin_size: int = 0) -> None:
        self.min_bin_size = min_bin_size

    def fit(self, scores: FloatArray, labels: FloatArray) -> Self:
        if len(scores) != len(labels) or len(scores) == 0:
            raise DatasetError(
                "calibration needs aligned, non-empty scores and labels "
                f"(got {len(scores)} and {len(labels)})"
            )
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        self.x_ = np.asarray(iso.X_thresholds_, dtype=float)
        self.y_ = np.asarray(iso.y_thresholds_, dtype=float)
        return self

    def transform(self, scores: FloatArray) -> FloatArray:
        result: FloatArray = np.interp(scores, self.x_, self.y_)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IsotonicCalibrator:
        if data.get("kind") != "isotonic":
            raise DatasetError(f"unknown calibration kind {data.get('kind')!r}: this code applies 'isotonic'")
        calibrator = cls()
        calibrator.x_ = np.asarray(data["x"], dtype=float)
        calibrator.y_ = np.asarray(data["y"], dtype=float)
        return calibrator
