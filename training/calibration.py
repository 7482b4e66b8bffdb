"""Centred isotonic calibration, kept as plain breakpoints and applied with ``numpy.interp``.

The calibrator is fit on the validation window (the booster never trained on it) and travels inside the
model bundle as two lists of numbers, so serving needs neither scikit-learn nor pickles to apply it.

Plain isotonic regression is a step function: every raw score inside one of its blocks gets the same
probability, so attempts the booster ranked apart become ties, and the calibrated scores rank worse than the
raw ones (on the default world's failure model, test ROC AUC drops by several thousandths). The *centred*
variant (Oron & Flournoy's centred isotonic regression) keeps one breakpoint per block, at the block's mean
raw score with the block's observed rate, and interpolates linearly between them: the map is strictly
increasing between the first and the last block centre (ranks are kept), still monotone, and passes through
each block's observed rate at the block's centre. Scores beyond the outer centres take the outer blocks'
rates (the only ties left).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.isotonic import IsotonicRegression

from training.errors import DatasetError

FloatArray = np.ndarray


def block_centres(scores: FloatArray, labels: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Isotonic regression of ``labels`` on ``scores``, one point per block: (mean score, block rate)."""
    order = np.argsort(scores, kind="stable")
    x = np.asarray(scores, dtype=float)[order]
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, np.asarray(labels)[order])
    fitted = iso.predict(x)
    starts = np.flatnonzero(np.r_[True, fitted[1:] != fitted[:-1]])
    sizes = np.diff(np.r_[starts, len(x)])
    centres = np.add.reduceat(x, starts) / sizes
    return centres, fitted[starts]


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
        centres, rates = block_centres(scores, labels)
        # np.interp needs increasing breakpoints: drop a (degenerate) repeated centre.
        keep = np.r_[True, np.diff(centres) > 0]
        self.x_ = np.asarray(centres[keep], dtype=float)
        self.y_ = np.asarray(rates[keep], dtype=float)
        return self

    def transform(self, scores: FloatArray) -> FloatArray:
        result: FloatArray = np.interp(scores, self.x_, self.y_)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "isotonic", "fit": "centred", "x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IsotonicCalibrator:
        if data.get("kind") != "isotonic":
            raise DatasetError(f"unknown calibration kind {data.get('kind')!r}: this code applies 'isotonic'")
        calibrator = cls()
        calibrator.x_ = np.asarray(data["x"], dtype=float)
        calibrator.y_ = np.asarray(data["y"], dtype=float)
        return calibrator
