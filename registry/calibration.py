"""Centred isotonic calibration, kept as plain breakpoints and applied with ``numpy.interp``.

The calibrator is fit on the validation window (the booster never trained on it) and travels inside the
model bundle as two lists of numbers, so serving needs neither scikit-learn nor pickles to apply it.

Plain isotonic regression is a step function: every raw score inside one of its blocks gets the same
probability, so attempts the booster ranked apart become ties, and the calibrated scores rank worse than the
raw ones (on the default world's failure model, test ROC AUC drops by several thousandths). The *centred*
variant (Oron & Flournoy 2017, centred isotonic regression) shrinks each block to one breakpoint at the
block's mean raw score with the block's observed rate, and interpolates linearly between them: the map is
strictly increasing between those centres (ranks are kept), monotone, and passes through each block's
observed rate at its centre.

As in CIR, a block whose observed rate is on the boundary of the unit interval (every attempt in it was
negative, or every one positive) is *not* shrunk: it keeps both ends, and every score from its lowest to its
highest raw score maps to that 0 or 1. Shrinking it would invent a chance the data never showed (a raw score
inside a block where every validation attempt failed would get, say, a 2% chance of success). Scores beyond
the outer breakpoints take the outer blocks' rates.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.isotonic import IsotonicRegression

from registry.errors import CalibrationError

FloatArray = np.ndarray


def breakpoints(scores: FloatArray, labels: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The centred isotonic map of ``labels`` on ``scores`` as increasing breakpoints ``(x, y)``.

    One point per isotonic block at (mean score, block rate); a block whose rate is 0 or 1 gives two points,
    at its lowest and highest score.
    """
    order = np.argsort(scores, kind="stable")
    x = np.asarray(scores, dtype=float)[order]
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, np.asarray(labels)[order])
    fitted = iso.predict(x)
    starts = np.flatnonzero(np.r_[True, fitted[1:] != fitted[:-1]])
    ends = np.r_[starts[1:], len(x)] - 1
    centres = np.add.reduceat(x, starts) / (ends - starts + 1)
    rates = fitted[starts]
    bounded = (rates <= 0.0) | (rates >= 1.0)
    first = np.where(bounded, x[starts], centres)
    second = np.where(bounded, x[ends], np.nan)
    points_x = np.column_stack([first, second]).ravel()
    points_y = np.repeat(rates, 2)
    present = ~np.isnan(points_x)
    points_x, points_y = points_x[present], points_y[present]
    # np.interp needs increasing breakpoints: drop a repeated one (a block of a single distinct score).
    keep = np.r_[True, np.diff(points_x) > 0]
    return points_x[keep], points_y[keep]


class IsotonicCalibrator:
    """Monotone map from raw model scores to probabilities (scikit-learn estimator contract)."""

    def __init__(self, min_bin_size: int = 0) -> None:
        self.min_bin_size = min_bin_size

    def fit(self, scores: FloatArray, labels: FloatArray) -> Self:
        if len(scores) != len(labels) or len(scores) == 0:
            raise CalibrationError(
                "calibration needs aligned, non-empty scores and labels "
                f"(got {len(scores)} and {len(labels)})"
            )
        x, y = breakpoints(scores, labels)
        self.x_ = np.asarray(x, dtype=float)
        self.y_ = np.asarray(y, dtype=float)
        return self

    def transform(self, scores: FloatArray) -> FloatArray:
        result: FloatArray = np.interp(scores, self.x_, self.y_)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "isotonic", "fit": "centred", "x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IsotonicCalibrator:
        if data.get("kind") != "isotonic":
            raise CalibrationError(
                f"unknown calibration kind {data.get('kind')!r}: this code applies 'isotonic'"
            )
        calibrator = cls()
        calibrator.x_ = np.asarray(data["x"], dtype=float)
        calibrator.y_ = np.asarray(data["y"], dtype=float)
        return calibrator
