"""From events and features to one task's train / validation / test matrices.

:func:`assemble` joins, per attempt, the feature vector (built by the batch engine), the raw label sources
(the gateway's answer, the first fraud report's time), the baselines' scores and, on simulated data, the
ground-truth probabilities. :func:`task_data` then splits that frame in time for one task and applies the
label rules of :mod:`training.splits`.

Scope, decided here:

* **Failure** = the gateway declined or errored. Every attempt that has a gateway answer is in scope, card or
  not (a wallet or SEPA debit fails too, and the billing system needs to know). Attempts without an answer
  (blocked before the gateway, or answered after the end of the data) have no failure label and are
  excluded, and counted in the run's ``excluded_*`` metrics.
* **Fraud** = a fraud report (chargeback or confirmed fraud) on the attempt, usable from its ``reported_at``.
  Every attempt is in scope, including declined ones (a declined card-testing attempt is still fraud that the
  model should recognise) and non-card methods.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from registry.bundle import FeatureContract
from training.baselines import (
    DECLINED_LAST_TIME_COLUMN,
    FRAUD_RULES_COLUMN,
    Baselines,
    declined_last_time,
    fraud_rules,
    rules_fired,
)
from training.booster import FEATURE_DTYPE, Matrix
from training.config import Task, TrainingConfig
from training.costs import Stakes, stakes_for
from training.errors import DatasetError
from training.splits import Part, SplitPlan, fraud_labels, measure_label_delay, plan_split

logger = logging.getLogger(__name__)

#: The attempt's amount, kept under its own name (a feature may be called ``amount`` too).
AMOUNT_COLUMN = "attempt_amount"
META_COLUMNS = ("attempt_id", "occurred_at", "account_id", AMOUNT_COLUMN)
FAILED_COLUMN = "failed"
REPORTED_AT_COLUMN = "fraud_reported_at"
#: Ground-truth probability column per task (present on simulated data only).
TRUTH_COLUMNS = {Task.FRAUD: "p_fraud", Task.FAILURE: "p_fail"}
#: Whether the attempt really was fraud, reported or not (simulated data only).
TRUE_FRAUD_COLUMN = "is_fraud"
TRUTH_EXTRA = {
    Task.FRAUD: (TRUTH_COLUMNS[Task.FRAUD], TRUE_FRAUD_COLUMN),
    Task.FAILURE: (TRUTH_COLUMNS[Task.FAILURE],),
}
BASELINE_COLUMNS = {Task.FRAUD: FRAUD_RULES_COLUMN, Task.FAILURE: DECLINED_LAST_TIME_COLUMN}
RESERVED_COLUMNS = (
    *META_COLUMNS[1:],
    FAILED_COLUMN,
    REPORTED_AT_COLUMN,
    *TRUTH_COLUMNS.values(),
    TRUE_FRAUD_COLUMN,
    *BASELINE_COLUMNS.values(),
)


def attempt_columns(baselines: Baselines) -> tuple[str, ...]:
    """The attempt columns :func:`assemble` reads (with the baselines' own)."""
    return (*baselines.attempt_columns(), "amount")


def assemble(
    attempts: pd.DataFrame,
    outcomes: pd.DataFrame,
    reports: pd.DataFrame,
    features: pd.DataFrame,
    truth: pd.DataFrame | None = None,
    *,
    baselines: Baselines,
) -> pd.DataFrame:
    """One row per attempt (in ``attempts`` order): meta, features, label sources, ``baselines``, truth.

    Reads only :func:`attempt_columns` of ``attempts``; the features are kept as float32 (one copy, none
    when they already are), outcomes and truth are looked up by ``attempt_id`` (each at most once).
    """
    # Ids compared and kept as they are (Arrow strings): never as millions of Python objects.
    attempt_ids = attempts["attempt_id"].reset_index(drop=True)
    if (
        len(features) != len(attempts)
        or not (features["attempt_id"].reset_index(drop=True) == attempt_ids).all()
    ):
        raise DatasetError(
            f"the feature table has {len(features)} rows but there are {len(attempts)} attempts, or its rows "
            "are not in attempt order: rebuild the features for this data directory"
        )
    clashes = sorted(set(features.columns) & set(RESERVED_COLUMNS))
    if clashes:
        raise DatasetError(
            f"feature names {clashes} clash with columns training reserves ({list(RESERVED_COLUMNS)}): "
            "rename those features in the feature-set definition"
        )
    ids = pd.Index(attempt_ids)
    # Features as float32, as LightGBM trains on them: half the memory of the batch engine's float64. The
    # frame is built around their block (columns inserted beside it), so it is never copied: at 10M
    # attempts a concat copied its 2.4 GB.
    frame = features.drop(columns="attempt_id").reset_index(drop=True).astype(FEATURE_DTYPE)
    meta: dict[str, pd.Series | np.ndarray] = {
        "attempt_id": attempt_ids,
        "occurred_at": attempts["occurred_at"].reset_index(drop=True),
        "account_id": attempts["account_id"].reset_index(drop=True),
        AMOUNT_COLUMN: attempts["amount"].to_numpy(dtype=float),
    }
    for position, (name, meta_column) in enumerate(meta.items()):
        frame.insert(position, name, meta_column)
    status = outcomes["status"]
    answered_failed = np.where(status.isna(), np.nan, (status != "approved").to_numpy(dtype=float))
    frame[FAILED_COLUMN] = _lookup(outcomes["attempt_id"], answered_failed, ids, "outcomes")
    first_report = reports.groupby("attempt_id")["reported_at"].min()
    frame[REPORTED_AT_COLUMN] = attempts["attempt_id"].map(first_report).to_numpy()
    if baselines.fraud == "iptv_rules":
        frame[FRAUD_RULES_COLUMN] = fraud_rules(attempts).to_numpy()
    elif baselines.fraud is not None:
        frame[FRAUD_RULES_COLUMN] = rules_fired(frame, baselines.fraud)
    if baselines.failure:
        frame[DECLINED_LAST_TIME_COLUMN] = declined_last_time(attempts, outcomes).to_numpy()
    if truth is not None:
        for column in (*TRUTH_COLUMNS.values(), TRUE_FRAUD_COLUMN):
            known = truth[column].to_numpy(dtype=float)
            frame[column] = _lookup(truth["attempt_id"], known, ids, "truth")
    return frame


def _lookup(keys: pd.Series, values: np.ndarray, ids: pd.Index, table: str) -> np.ndarray:
    """``values`` (aligned with ``keys``, a table's attempt ids) of each id in ``ids``; NaN where absent."""
    index = pd.Index(keys)
    if not index.is_unique:
        duplicated = index[index.duplicated()][:3].tolist()
        raise DatasetError(
            f"attempts {duplicated} appear more than once in the {table} table, which holds one row per "
            "attempt: fix the events (riskgate import refuses duplicates)"
        )
    rows = index.get_indexer(ids)
    found = np.full(len(ids), np.nan)
    present = rows >= 0
    found[present] = values[rows[present]]
    return found


@dataclass(frozen=True)
class WindowData:
    """One window of one task: the matrix for LightGBM and the per-attempt columns metrics need."""

    matrix: Matrix
    meta: pd.DataFrame

    @property
    def labels(self) -> np.ndarray:
        return self.matrix.y

    def column(self, name: str) -> np.ndarray:
        return self.meta[name].to_numpy(dtype=float)

    def stakes(self, task: Task, config: TrainingConfig) -> Stakes:
        """Per-attempt money of flagging (see :mod:`training.costs`); no answer counts as approved."""
        approved = self.column(FAILED_COLUMN) != 1.0
        return stakes_for(task, self.column(AMOUNT_COLUMN), approved, config)


@dataclass(frozen=True)
class TaskData:
    """The train, validation and test windows of one task, with the plan that cut them."""

    task: Task
    plan: SplitPlan
    contract: FeatureContract
    train: WindowData
    validation: WindowData
    test: WindowData
    counts: dict[str, float] = field(default_factory=dict)

    @property
    def has_truth(self) -> bool:
        return TRUTH_COLUMNS[self.task] in self.test.meta.columns


def label_delay(frame: pd.DataFrame, task: Task, config: TrainingConfig) -> pd.Timedelta:
    """Fraud: the maturity rule's delay; failure: none (the gateway answers within minutes)."""
    if task is Task.FAILURE:
        return pd.Timedelta(0)
    reported = frame[frame[REPORTED_AT_COLUMN].notna()]
    return measure_label_delay(reported["occurred_at"], reported[REPORTED_AT_COLUMN], config.labels)


def data_end(frame: pd.DataFrame) -> pd.Timestamp:
    """The end of the data: the latest attempt or fraud report."""
    latest = frame["occurred_at"].max()
    reported = frame[REPORTED_AT_COLUMN].max()
    end = latest if pd.isna(reported) else max(latest, reported)
    return pd.Timestamp(end)


def plan_for(frame: pd.DataFrame, task: Task, config: TrainingConfig) -> SplitPlan:
    """The split of ``frame`` (from :func:`assemble`) for ``task`` as ``config.split`` places it."""
    return plan_split(
        frame["occurred_at"].min(),
        data_end(frame),
        label_delay(frame, task, config),
        config.split,
        last_attempt=frame["occurred_at"].max(),
    )


def task_data(frame: pd.DataFrame, task: Task, contract: FeatureContract, config: TrainingConfig) -> TaskData:
    """Split ``frame`` (from :func:`assemble`) for ``task`` and attach labels as the split rules allow."""
    missing = [name for name in contract.names if name not in frame.columns]
    if missing:
        raise DatasetError(f"the assembled frame lacks features {missing[:5]} of the feature contract")
    plan = plan_for(frame, task, config)
    parts = plan.assign(frame["occurred_at"])
    if task is Task.FRAUD:
        labels = fraud_labels(parts, frame[REPORTED_AT_COLUMN], plan)
    else:
        labels = frame[FAILED_COLUMN].where(parts != Part.BEFORE.value)
    counts = {f"attempts_{part.value}": float((parts == part.value).sum()) for part in Part}
    used = parts.isin([Part.TRAIN.value, Part.VALIDATION.value, Part.TEST.value])
    counts["excluded_unlabelled"] = float((used & labels.isna()).sum())
    windows = {}
    for part in (Part.TRAIN, Part.VALIDATION, Part.TEST):
        rows = (parts == part.value).to_numpy() & labels.notna().to_numpy()
        windows[part] = _window(frame, rows, labels[rows].to_numpy(), contract=contract, task=task, part=part)
        counts[f"positives_{part.value}"] = float(windows[part].labels.sum())
    prior = float(windows[Part.TRAIN].labels.mean())
    if task is Task.FAILURE and DECLINED_LAST_TIME_COLUMN in frame.columns:
        for window in windows.values():
            window.meta[DECLINED_LAST_TIME_COLUMN] = window.meta[DECLINED_LAST_TIME_COLUMN].fillna(prior)
    logger.info("%s dataset: %s", task.value, {key: int(value) for key, value in counts.items()})
    return TaskData(
        task, plan, contract, windows[Part.TRAIN], windows[Part.VALIDATION], windows[Part.TEST], counts
    )


def _window(
    frame: pd.DataFrame,
    rows: np.ndarray,
    labels: np.ndarray,
    *,
    contract: FeatureContract,
    task: Task,
    part: Part,
) -> WindowData:
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise DatasetError(
            f"the {task.value} {part.value} window has {len(labels)} labelled attempts and "
            f"{positives} positives: "
            "a model cannot be trained or evaluated on one class; provide more history or widen the window "
            "(split.* in the training config)"
        )
    extra = [FAILED_COLUMN, *[c for c in (BASELINE_COLUMNS[task], *TRUTH_EXTRA[task]) if c in frame.columns]]
    # Per-attempt columns the metrics read (not the id: a window never needs it, and it is the widest).
    meta = frame.loc[rows, [*META_COLUMNS[1:], *extra]].reset_index(drop=True)
    return WindowData(Matrix(feature_rows(frame, rows, contract.names), np.asarray(labels, float)), meta)


def feature_rows(frame: pd.DataFrame, rows: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The ``rows`` (a boolean mask) of the feature columns ``names`` as one row-major float32 matrix.

    Filled column by column: one copy of the window, never a second one of the whole frame.
    """
    matrix = np.empty((int(np.count_nonzero(rows)), len(names)), dtype=FEATURE_DTYPE)
    for column, name in enumerate(names):
        matrix[:, column] = frame[name].to_numpy()[rows]
    return matrix
