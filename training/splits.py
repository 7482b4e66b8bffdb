"""Time-based splits and the label-maturity rule.

The test window is given by date (``split.test_start`` / ``split.test_end``, exact to the instant) or laid
back from ``as_of`` (the end of the data) by its length; the other windows are laid back from the test window
by their lengths. Two placements of the validation window (``split.validation``)::

    before_test:               [ train ][ gap ][ validation ][ test ][ immature ]  → as_of
    labels_cut_at_test_start:  [ train ][ validation ][ gap ][ test ][ immature ]  → as_of
                                                                      └ label_delay ┘

* ``immature``: attempts after the test window. By default the test window ends ``label_delay`` before
  ``as_of``: a fraud report can still arrive for later attempts, so their label is not known yet; they are
  left out of training *and* evaluation of the fraud model (for the failure model the delay is zero: a
  gateway answer arrives within minutes). A test window given by date that ends later than that is refused.
* ``test``: held out; its labels are *matured* (every report up to ``as_of``, at least ``label_delay`` after
  each test attempt).
* ``gap``: at least ``label_delay`` long; its attempts are not used.

``before_test`` (the default): validation (early stopping, search, calibration, thresholds) right before the
test window, with labels matured to ``as_of``; training labels are the reports known at the start of
validation. The model is tuned on the most recent behaviour, but on fraud labels that arrive only during (and
after) the test window: a model deployed at the test start could not have been tuned so. Its figures are
slightly optimistic about calibration and thresholds, never about the test labels themselves.

``labels_cut_at_test_start``: every label training and validation use is a report that arrived before the
test start, the model a data scientist could really have trained at that instant. The gap moves between
validation and test, so validation attempts are at least ``label_delay`` old at the test start (mature by
the rule) and the train→validation gap shrinks to nothing (training labels are cut at the test start too,
and train attempts are older still). The price: validation is ``label_delay`` older than with
``before_test``, so thresholds and calibration are tuned on older behaviour.

``before_test`` stays the default: it keeps the default world's figures and the test windows registered
champions were evaluated on (the promotion gate compares like with like); choose the other for an honest
backtest of what a deployed model would have done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from training.config import LabelConfig, SplitConfig, ValidationPlacement
from training.errors import SplitError

DAY = pd.Timedelta(days=1)


class Part(StrEnum):
    """Which window an attempt falls in."""

    BEFORE = "before"
    TRAIN = "train"
    GAP = "gap"
    VALIDATION = "validation"
    TEST = "test"
    IMMATURE = "immature"


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)``."""

    start: pd.Timestamp
    end: pd.Timestamp

    def contains(self, times: pd.Series) -> pd.Series:
        return (times >= self.start) & (times < self.end)

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


@dataclass(frozen=True)
class SplitPlan:
    """The windows of one task's dataset, and the cut-off training labels are known at."""

    train: Window
    gap: Window
    validation: Window
    test: Window
    as_of: pd.Timestamp
    label_delay: pd.Timedelta
    placement: ValidationPlacement = ValidationPlacement.BEFORE_TEST

    @property
    def train_label_cutoff(self) -> pd.Timestamp:
        """Training labels are the reports known at this instant (before_test: the start of validation;
        labels_cut_at_test_start: the test start)."""
        if self.placement is ValidationPlacement.LABELS_CUT_AT_TEST_START:
            return self.test.start
        return self.validation.start

    def known_for_validation(self, reported_at: pd.Series) -> np.ndarray:
        """Whether each report is a validation label: reported by ``as_of`` (before_test, matured), or
        before the test start (labels_cut_at_test_start)."""
        if self.placement is ValidationPlacement.LABELS_CUT_AT_TEST_START:
            return (reported_at < self.test.start).to_numpy(dtype=bool)
        return (reported_at <= self.as_of).to_numpy(dtype=bool)

    def assign(self, occurred_at: pd.Series) -> pd.Series:
        """The :class:`Part` of each attempt, as strings."""
        parts = np.full(len(occurred_at), Part.BEFORE.value, dtype=object)
        for part, window in (
            (Part.TRAIN, self.train),
            (Part.GAP, self.gap),
            (Part.VALIDATION, self.validation),
            (Part.TEST, self.test),
        ):
            parts[window.contains(occurred_at).to_numpy()] = part.value
        parts[(occurred_at >= self.test.end).to_numpy()] = Part.IMMATURE.value
        return pd.Series(parts, index=occurred_at.index, name="part")

    def to_params(self, prefix: str = "") -> dict[str, str]:
        """Flat description of the windows, for MLflow params and for comparing test windows."""
        params: dict[str, str] = {}
        for name in ("train", "gap", "validation", "test"):
            window: Window = getattr(self, name)
            params[f"{prefix}{name}_start"] = window.start.isoformat()
            params[f"{prefix}{name}_end"] = window.end.isoformat()
        params[f"{prefix}label_delay_days"] = f"{self.label_delay / DAY:g}"
        params[f"{prefix}as_of"] = self.as_of.isoformat()
        params[f"{prefix}validation_placement"] = self.placement.value
        return params


def measure_label_delay(occurred_at: pd.Series, reported_at: pd.Series, config: LabelConfig) -> pd.Timedelta:
    """The fraud label delay: configured, or the configured quantile of observed report delays (whole days).

    ``occurred_at`` and ``reported_at`` are aligned per report (the attempt's time and the report's time).
    """
    if config.fraud_label_delay_days is not None:
        return pd.Timedelta(days=config.fraud_label_delay_days)
    delays = (reported_at - occurred_at).dt.total_seconds().to_numpy(dtype=float) / 86400.0
    delays = delays[np.isfinite(delays)]
    if len(delays) == 0:
        raise SplitError(
            "cannot measure the fraud label delay: there are no fraud reports in the data; "
            "set labels.fraud_label_delay_days in the training config"
        )
    if (delays < 0).any():
        raise SplitError(
            f"{int((delays < 0).sum())} fraud reports are dated before the attempt they report; "
            "fix the fraud_reports table (reported_at must be after the attempt's occurred_at)"
        )
    return pd.Timedelta(days=math.ceil(float(np.quantile(delays, config.fraud_delay_quantile))))


def plan_split(
    first: pd.Timestamp,
    as_of: pd.Timestamp,
    label_delay: pd.Timedelta,
    config: SplitConfig,
    last_attempt: pd.Timestamp | None = None,
) -> SplitPlan:
    """Place the test window, lay the others back from it; raise :class:`SplitError` when the data is too
    short or a test window given by date has labels that are not mature by ``as_of``.

    By length: when reports run on after the last attempt (the data was exported once labels had matured),
    the test window ends just after ``last_attempt`` instead of ``label_delay`` before ``as_of``.
    """
    # Windows are half-open: one microsecond past the last mature instant keeps attempts made exactly then.
    last_mature = as_of - label_delay if last_attempt is None else min(as_of - label_delay, last_attempt)
    test = test_window(config, last_mature + pd.Timedelta(microseconds=1))
    if test.end - pd.Timedelta(microseconds=1) > as_of - label_delay:
        raise SplitError(
            f"the test window {test.start} to {test.end} is not mature: the data ends at {as_of} and fraud "
            f"labels take {label_delay / DAY:g} days, so labels are known only for attempts up to "
            f"{as_of - label_delay} ({(test.end - (as_of - label_delay)) / DAY:.2f} days of the window are "
            "immature); end the test window by then (split.test_end / --test-end), or import later reports"
        )
    gap_length = max(label_delay, config.min_gap_days * DAY)
    validation_length = config.validation_days * DAY
    if config.validation is ValidationPlacement.LABELS_CUT_AT_TEST_START:
        gap = Window(test.start - gap_length, test.start)
        validation = Window(gap.start - validation_length, gap.start)
        train_end = validation.start
    else:
        validation = Window(test.start - validation_length, test.start)
        gap = Window(validation.start - gap_length, validation.start)
        train_end = gap.start
    train_start = first
    if config.max_train_days is not None:
        train_start = max(first, train_end - config.max_train_days * DAY)
    train = Window(train_start, train_end)
    if train.days < config.min_train_days:
        needed = (as_of - train_end) / DAY + config.min_train_days
        raise SplitError(
            f"the data spans {(as_of - first) / DAY:.1f} days ({first} to {as_of}), but the test window "
            f"({test.start} to {test.end}), validation ({config.validation_days:g}d) and gap "
            f"({gap_length / DAY:g}d) leave {train.days:.1f} days of training history before them "
            f"(minimum {config.min_train_days:g}); provide about {needed:.0f} days of data, move the test "
            "window later or shorten split.test_days / split.validation_days"
        )
    return SplitPlan(train, gap, validation, test, as_of, label_delay, config.validation)


def test_window(config: SplitConfig, default_end: pd.Timestamp) -> Window:
    """The test window: ``[test_start, test_end)`` as given, completed by ``test_days``; by length it ends
    at ``default_end``."""
    length = config.test_days * DAY
    start = None if config.test_start is None else pd.Timestamp(config.test_start)
    end = None if config.test_end is None else pd.Timestamp(config.test_end)
    if start is not None and end is not None:
        return Window(start, end)
    if start is not None:
        return Window(start, start + length)
    end = default_end if end is None else end
    return Window(end - length, end)


def fraud_labels(parts: pd.Series, reported_at: pd.Series, plan: SplitPlan) -> pd.Series:
    """Fraud labels as known where each part uses them (NaN where no label may be used).

    ``reported_at`` is the first report of each attempt (NaT when none). Training attempts count as fraud
    only if reported before the training cut-off, validation attempts as
    :meth:`SplitPlan.known_for_validation` says; test attempts with every report up to ``as_of`` (matured);
    other parts get NaN.
    """
    reported = reported_at.notna().to_numpy()
    values = np.full(len(parts), np.nan)
    for part, known in (
        (Part.TRAIN, reported & (reported_at < plan.train_label_cutoff).to_numpy()),
        (Part.VALIDATION, reported & plan.known_for_validation(reported_at)),
        (Part.TEST, reported & (reported_at <= plan.as_of).to_numpy()),
    ):
        rows = (parts == part.value).to_numpy()
        values[rows] = known[rows]
    labels = pd.Series(values, index=parts.index)
    return labels.rename("label")
