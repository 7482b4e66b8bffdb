"""The steps behind ``riskgate train | evaluate | promote | score``, as functions a test can call.

Each function takes the assembled inputs (or a data directory), the config and the tracking URI, and reads
as a list of named steps; the CLI is a thin layer over them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.progress import NO_PROGRESS, Prefixed, Progress
from registry.bundle import FeatureContract
from registry.pyfunc import feature_matrix
from registry.store import ensure_experiment, load_bundle, tracking_store
from training.config import Task, TrainingConfig
from training.dataset import TaskData, task_data
from training.errors import DatasetError
from training.evaluation import evaluate_bundle
from training.promotion import PromotionDecision, Rescorer, promote
from training.tracking import INPUT_EXAMPLE_ROWS, LoggedModel, log_training_run, test_window_key
from training.trainer import train_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """Everything training needs from the data: the assembled frame and the feature contract."""

    frame: pd.DataFrame
    contract: FeatureContract
    #: Where the inputs come from, logged with every run (the feature set's spec, the baselines computed).
    provenance: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short hash of the attempts, label sources and features the models are trained on."""
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(self.frame, index=False).to_numpy().tobytes())
        digest.update(self.contract.hash.encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TrainResult:
    """One trained, logged and registered model, with its headline test metrics."""

    task: Task
    logged: LoggedModel
    report: dict[str, dict[str, float]]
    seconds: float


def train_models(
    inputs: Inputs,
    config: TrainingConfig,
    *,
    tracking_uri: str,
    artifact_root: Path,
    tasks: tuple[Task, ...] = (Task.FRAUD, Task.FAILURE),
    progress: Progress = NO_PROGRESS,
) -> list[TrainResult]:
    """Train, evaluate, log and register each task's model; ``progress`` hears each model's steps (prefixed
    with its task) and its search trials."""
    results = []
    with tracking_store(tracking_uri) as client:
        experiment_id = ensure_experiment(client, config.experiment, artifact_root)
        for task in tasks:
            started = time.perf_counter()
            steps = Prefixed(progress, f"{task.value}: ")
            steps.stage("windows")
            data = task_data(inputs.frame, task, inputs.contract, config)
            model = train_task(data, config, progress=steps)
            steps.stage("log and register")
            logged = log_training_run(
                model,
                config=config,
                test_labels=data.test.labels,
                input_example=_input_example(data),
                window_key=window_key_of(data),
                extra_params={"data_fingerprint": inputs.fingerprint, **inputs.provenance},
                extra_metrics={f"data_{key}": value for key, value in data.counts.items()},
                experiment_id=experiment_id,
            )
            results.append(TrainResult(task, logged, model.report, time.perf_counter() - started))
            del data, model  # one task's windows at a time: the next task_data would otherwise overlap them
    return results


def window_key_of(data: TaskData) -> str:
    return test_window_key(data.plan.to_params(), float(data.test.labels.sum()), len(data.test.labels))


def _input_example(data: TaskData) -> pd.DataFrame:
    # float64, as feature rows arrive from both engines (the signature must not demand float32).
    rows = data.validation.matrix.X[:INPUT_EXAMPLE_ROWS].astype(np.float64)
    return pd.DataFrame(rows, columns=list(data.contract.names))


def evaluate_model(
    inputs: Inputs, config: TrainingConfig, *, tracking_uri: str, model_uri: str
) -> tuple[Task, str, dict[str, dict[str, float]]]:
    """Re-evaluate a registered model on the current data's test window (with baselines and truth)."""
    with tracking_store(tracking_uri) as client:
        bundle = load_bundle(client, model_uri)
    task = Task(bundle.task)
    data = task_data(inputs.frame, task, inputs.contract, config)
    return task, window_key_of(data), evaluate_bundle(data, bundle, config)


def promote_models(
    inputs: Inputs | Callable[[], Inputs] | None,
    config: TrainingConfig,
    *,
    tracking_uri: str,
    tasks: tuple[Task, ...] = (Task.FRAUD, Task.FAILURE),
    feature_hash: str | None = None,
) -> list[PromotionDecision]:
    """Apply the promotion gate to each task's newest version.

    ``inputs`` (or a function loading them, called only if a re-score is needed) lets the gate re-score
    versions evaluated on different test windows; ``feature_hash`` is the code's feature-set hash
    (taken from ``inputs`` when they are given directly).
    """
    if isinstance(inputs, Inputs):
        feature_hash = feature_hash or inputs.contract.hash
        loaded = inputs
        inputs = lambda: loaded  # noqa: E731
    load = None if inputs is None else functools.cache(inputs)
    decisions = []
    with tracking_store(tracking_uri) as client:
        for task in tasks:
            rescore = None if load is None else _rescorer(load, config, tracking_uri, task)
            decisions.append(promote(client, task, config, rescore, feature_hash=feature_hash))
    return decisions


def _rescorer(load: Callable[[], Inputs], config: TrainingConfig, tracking_uri: str, task: Task) -> Rescorer:
    def rescore(model_uri: str) -> tuple[str, float]:
        _, window, report = evaluate_model(load(), config, tracking_uri=tracking_uri, model_uri=model_uri)
        return window, report["model"][config.primary_metric(task)]

    return rescore


#: The booster's uncalibrated score in ``riskgate score``'s output: it ranks where the calibrated
#: probability (isotonic, a step function) ties many attempts at the same value, often exactly 0 or 1.
SCORE_RAW_COLUMN = "score_raw"


def score_file(model_uri: str, source: Path, destination: Path, *, tracking_uri: str) -> int:
    """Batch-score a Parquet file (or folder of parts) of feature rows; write ``attempt_id``,
    ``p_<task>`` (calibrated probability), :data:`SCORE_RAW_COLUMN` and, for fraud, ``fraud_level``."""
    frame = pq.read_table(source).to_pandas()
    if "attempt_id" not in frame.columns:
        raise DatasetError(
            f"{source} has no attempt_id column: score a table built by `riskgate features build`"
        )
    with tracking_store(tracking_uri) as client:
        bundle = load_bundle(client, model_uri)
    raw = bundle.raw_scores(feature_matrix(frame, bundle.features.names, bundle.task))
    probability = bundle.calibrator.transform(raw)
    result = pd.DataFrame(
        {
            "attempt_id": frame["attempt_id"].to_numpy(),
            f"p_{bundle.task}": probability,
            SCORE_RAW_COLUMN: raw,
        }
    )
    if bundle.thresholds.levels:
        result[f"{bundle.task}_level"] = bundle.level(probability).astype(str)
    destination.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(result, preserve_index=False), destination)
    logger.info("scored %d attempts with %s into %s", len(result), model_uri, destination)
    return len(result)
