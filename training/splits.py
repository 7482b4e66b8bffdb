"""Time-based splits and the label-maturity rule.

The windows are laid out back from ``as_of`` (the end of the data)::

    [ train ][ gap ][ validation ][ test ][ immature ]  → as_of
                                           └ label_delay ┘

* ``immature``: the last ``label_delay`` before ``as_of``. A fraud report can still arrive for these attempts,
  so their label is not known yet; they are left out of training *and* evaluation of the fraud model (for
  the failure model the delay is zero: a gateway answer arrives within minutes).
* ``test``: held out; its labels are *matured* (every report up to ``as_of``, which is at least
  ``label_delay`` after each test attempt).
* ``validation``: early stopping, hyperparameter search, calibration and thresholds; labels matured as well.
* ``gap``: at least ``label_delay`` long; its attempts are not used.
* ``train``: labels *as known at the training cut-off* (the start of validation): a fraud report that arrives
  after the cut-off is not a training label, even about a training attempt. Because the gap is at least the
  label delay, training labels are as mature as the maturity rule promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

from training.config import LabelConfig, SplitConfig
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

    @property
    def train_label_cutoff(self) -> pd.Timestamp:
        """Training labels are the reports known at this instant (the start of validation)."""
        return self.validation.start

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
    """Lay the windows out back from ``as_of``; raise :class:`SplitError` when the data is too short.

    When reports run on after the last attempt (the data was exported once labels had matured), the test
    window ends just after ``last_attempt`` instead of ``label_delay`` before ``as_of``.
    """
    # Windows are half-open: one microsecond past the last mature instant keeps attempts made exactly then.
    last_mature = as_of - label_delay if last_attempt is None else min(as_of - label_delay, last_attempt)
    test_end = last_mature + pd.Timedelta(microseconds=1)
    test = Window(test_end - config.test_days * DAY, test_end)
    validation = Window(test.start - config.validation_days * DAY, test.start)
    gap_length = max(label_delay, config.min_gap_days * DAY)
    gap = Window(validation.start - gap_length, validation.start)
    train_start = first
    if config.max_train_days is not None:
        train_start = max(first, gap.start - config.max_train_days * DAY)
    train = Window(train_start, gap.start)
    if train.days < config.min_train_days:
        needed = (as_of - gap.start) / DAY + config.min_train_days
        raise SplitError(
            f"the data spans {(as_of - first) / DAY:.1f} days ({first} to {as_of}), but test "
            f"({config.test_days:g}d) + validation ({config.validation_days:g}d) + gap "
            f"({gap_length / DAY:g}d) + label delay ({label_delay / DAY:g}d) leave {train.days:.1f} days "
            f"of training history (minimum {config.min_train_days:g}); provide about {needed:.0f} days of "
            "data or shorten split.test_days / split.validation_days"
        )
    return SplitPlan(train, gap, validation, test, as_of, label_delay)


def fraud_labels(parts: pd.Series, reported_at: pd.Series, plan: SplitPlan) -> pd.Series:
    """Fraud labels as known where each part uses them (NaN where no label may be used).

    ``reported_at`` is the first report of each attempt (NaT when none). Training attempts count as fraud
    only if reported before the training cut-off; validation and test attempts with every report up to
    ``as_of`` (matured); other parts get NaN.
    """
    in_train = (parts == Part.TRAIN.value).to_numpy()
    matured = parts.isin([Part.VALIDATION.value, Part.TEST.value]).to_numpy()
    reported = reported_at.notna().to_numpy()
    known_in_train = reported & (reported_at < plan.train_label_cutoff).to_numpy()
    known_matured = reported & (reported_at <= plan.as_of).to_numpy()
    values = np.full(len(parts), np.nan)
    values[in_train] = known_in_train[in_train]
    values[matured] = known_matured[matured]
    labels = pd.Series(values, index=parts.index)
    return labels.rename("label")
