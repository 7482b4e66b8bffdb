"""What ``riskgate train | evaluate-rolling | evaluate | promote | score`` do, as functions a test can call.

Two levels in one module. The steps take assembled :class:`~training.data.Inputs`, the config and the
tracking URI and return results (:func:`train_models`, :func:`evaluate_model`, :func:`promote_models`,
:func:`score_file`); the commands (:func:`train`, :func:`evaluate_rolling`, :func:`evaluate`,
:func:`promote`, :func:`score`) take the settings and the options, load the inputs, run the steps and return
the text the CLI prints, so the CLI stays a thin layer. One task's model end to end is
:func:`training.trainer.train_task`. The feature set is chosen once, by the CLI (``--feature-set``, else
``RISKGATE_FEATURE_SET``, else the IPTV set), and handed down as a :class:`~training.data.ChosenFeatureSet`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from core.progress import NO_PROGRESS, Prefixed, Progress
from core.settings import Settings
from registry.names import CHAMPION, MODEL_NAMES, TEST_WINDOW_TAG
from registry.pyfunc import feature_matrix
from registry.store import ensure_experiment, load_bundle, tracking_store, version_by_alias
from training import rolling
from training.baselines import choose
from training.config import Task, TrainingConfig, config_keys, load_config
from training.data import ChosenFeatureSet, Inputs, load_inputs
from training.dataset import TaskData, task_data
from training.errors import ConfigError, DatasetError
from training.evaluation import evaluate_bundle
from training.promotion import PromotionDecision, Rescorer
from training.promotion import promote as promote_task
from training.report import format_report
from training.retry import (
    FloatArray,
    ReferenceScorer,
    RetryData,
    format_retry_report,
    promote_retry_model,
    train_retry_model,
)
from training.tracking import INPUT_EXAMPLE_ROWS, LoggedModel, log_training_run, test_window_key
from training.trainer import train_task

logger = logging.getLogger(__name__)


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
    artifact_root: Path | None,
    registry_uri: str | None = None,
    tasks: tuple[Task, ...] = (Task.FRAUD, Task.FAILURE),
    progress: Progress = NO_PROGRESS,
) -> list[TrainResult]:
    """Train, evaluate, log and register each task's model; ``progress`` hears each model's steps (prefixed
    with its task) and its search trials. ``artifact_root`` None: where the tracking server puts them."""
    results = []
    with tracking_store(tracking_uri, registry_uri) as client:
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
                client=client,
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
    inputs: Inputs,
    config: TrainingConfig,
    *,
    tracking_uri: str,
    model_uri: str,
    registry_uri: str | None = None,
) -> tuple[Task, str, dict[str, dict[str, float]]]:
    """Re-evaluate a registered model on the current data's test window (with baselines and truth)."""
    with tracking_store(tracking_uri, registry_uri) as client:
        bundle = load_bundle(client, model_uri)
    task = Task(bundle.task)
    data = task_data(inputs.frame, task, inputs.contract, config)
    return task, window_key_of(data), evaluate_bundle(data, bundle, config)


def promote_models(
    inputs: Inputs | Callable[[], Inputs] | None,
    config: TrainingConfig,
    *,
    tracking_uri: str,
    registry_uri: str | None = None,
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
    with tracking_store(tracking_uri, registry_uri) as client:
        for task in tasks:
            rescore = None if load is None else _rescorer(load, config, task, tracking_uri, registry_uri)
            decisions.append(promote_task(client, task, config, rescore, feature_hash=feature_hash))
    return decisions


def _rescorer(
    load: Callable[[], Inputs],
    config: TrainingConfig,
    task: Task,
    tracking_uri: str,
    registry_uri: str | None,
) -> Rescorer:
    def rescore(model_uri: str) -> tuple[str, float]:
        _, window, report = evaluate_model(
            load(), config, tracking_uri=tracking_uri, model_uri=model_uri, registry_uri=registry_uri
        )
        return window, report["model"][config.primary_metric(task)]

    return rescore


#: The booster's uncalibrated score in ``riskgate score``'s output: it ranks where the calibrated
#: probability (isotonic, a step function) ties many attempts at the same value, often exactly 0 or 1.
SCORE_RAW_COLUMN = "score_raw"


def score_file(
    model_uri: str, source: Path, destination: Path, *, tracking_uri: str, registry_uri: str | None = None
) -> int:
    """Batch-score a Parquet file (or folder of parts) of feature rows; write ``attempt_id``,
    ``p_<task>`` (calibrated probability), :data:`SCORE_RAW_COLUMN` and, for fraud, ``fraud_level``."""
    frame = pq.read_table(source).to_pandas()
    if "attempt_id" not in frame.columns:
        raise DatasetError(
            f"{source} has no attempt_id column: score a table built by `riskgate features build`"
        )
    with tracking_store(tracking_uri, registry_uri) as client:
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


# --- the commands: settings and options in, the text printed out --------------------------------------

#: ``--task`` value of the retry model (``riskgate-retry``), trained after the two LightGBM models.
RETRY_TASK = "retry"


def training_config(config: Path | None, overrides: list[str]) -> TrainingConfig:
    """The config file (or the packaged default) with ``KEY=VALUE`` overrides (values parsed as YAML)."""
    pairs: dict[str, object] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. model.trials=10), got {item!r}")
        pairs[key.strip()] = yaml.safe_load(value)
    return load_config(config, pairs)


def tasks(names: list[str]) -> tuple[Task, ...]:
    """The tasks named (both when none)."""
    try:
        return tuple(dict.fromkeys(Task(name) for name in names)) or (Task.FRAUD, Task.FAILURE)
    except ValueError as error:
        raise ConfigError(f"--task must be one of {[t.value for t in Task]}: {error}") from error


def split_tasks(names: list[str]) -> tuple[tuple[Task, ...], bool]:
    """The LightGBM tasks named, and whether the retry model is (all three when none is named)."""
    if not names:
        return (Task.FRAUD, Task.FAILURE), True
    boosted = [name for name in names if name != RETRY_TASK]
    try:
        return tuple(dict.fromkeys(Task(name) for name in boosted)), RETRY_TASK in names
    except ValueError as error:
        raise ConfigError(
            f"--task must be one of {[t.value for t in Task] + [RETRY_TASK]}: {error}"
        ) from error


def inputs_of(settings: Settings, features: ChosenFeatureSet, config: TrainingConfig) -> Inputs:
    """The settings' data directory loaded with the chosen feature set and the config's baselines."""
    baselines = choose(config.baselines, features.spec, features.feature_set)
    return load_inputs(settings.data_dir, features, baselines)


def train(
    settings: Settings,
    features: ChosenFeatureSet,
    config: Path | None,
    overrides: list[str],
    task_names: list[str],
    *,
    progress: Progress = NO_PROGRESS,
) -> str:
    """``riskgate train``: the LightGBM tasks named, then the retry model (beside the failure model's scores
    when they are comparable); the reports printed."""
    chosen = training_config(config, overrides)
    boosted, with_retry = split_tasks(task_names)
    texts, reference = [], None
    if boosted:
        progress.stage("load events and features")
        inputs = inputs_of(settings, features, chosen)
        results = train_models(
            inputs,
            chosen,
            tracking_uri=settings.tracking_uri,
            artifact_root=settings.artifact_root,
            registry_uri=settings.registry_uri,
            tasks=boosted,
            progress=progress,
        )
        texts = [
            format_report(
                f"{r.logged.name} v{r.logged.version} (run {r.logged.run_id}, {r.seconds:.0f} s), "
                "test window",
                r.report,
            )
            for r in results
        ]
        failure = [r.logged for r in results if r.task is Task.FAILURE]
        if failure and chosen.retry.test_days == chosen.split.test_days:
            uri = f"models:/{failure[0].name}/{failure[0].version}"
            reference = failure_reference(inputs, uri, settings)
        elif failure:
            # The failure model just trained learned from attempts inside the retry model's longer test
            # window: its scores there would flatter it.
            logger.info(
                "retry.test_days (%s) != split.test_days (%s): no failure-model reference on the retry test "
                "window (the failure model trained on part of it)",
                chosen.retry.test_days,
                chosen.split.test_days,
            )
    if with_retry:
        progress.stage("retry model")
        reference = reference or champion_reference(settings, features, chosen)
        texts.append(_train_retry(settings, chosen, reference))
    return "\n\n".join(texts)


def _train_retry(settings: Settings, config: TrainingConfig, reference: ReferenceScorer | None) -> str:
    result = train_retry_model(
        settings.data_dir,
        config,
        tracking_uri=settings.tracking_uri,
        artifact_root=settings.artifact_root,
        registry_uri=settings.registry_uri,
        reference=reference,
    )
    logged = result.logged
    title = (
        f"{logged.name} v{logged.version} (run {logged.run_id}, {result.seconds:.0f} s, trained on retries "
        f"before {result.trained_until:%Y-%m-%d %H:%M}), retry outcomes in the test window"
    )
    return format_retry_report(title, result.report)


def failure_reference(inputs: Inputs, model_uri: str, settings: Settings) -> ReferenceScorer:
    """The LightGBM failure model's probabilities of the retry test rows, from the inputs' feature rows."""
    with tracking_store(settings.tracking_uri, settings.registry_uri) as client:
        bundle = load_bundle(client, model_uri)
    rows = pd.Series(range(len(inputs.frame)), index=inputs.frame["attempt_id"].to_numpy())

    def scores(data: RetryData) -> FloatArray | None:
        index = data.test["attempt_id"].map(rows)
        if index.isna().any():
            return None
        x = inputs.frame.iloc[index.to_numpy(int)][list(bundle.features.names)].to_numpy(np.float64)
        return np.asarray(bundle.predict_proba(x), dtype=np.float64)

    return scores


def champion_reference(
    settings: Settings, features: ChosenFeatureSet, config: TrainingConfig
) -> ReferenceScorer:
    """The failure ``@champion``'s scores of the retry test rows, when it was trained on the same split (its
    test window starts where the retry model's does); None otherwise (it may have seen those attempts)."""

    def scores(data: RetryData) -> FloatArray | None:
        name = MODEL_NAMES[Task.FAILURE]
        with tracking_store(settings.tracking_uri, settings.registry_uri) as client:
            champion = version_by_alias(client, name, CHAMPION)
        window = "" if champion is None else champion.tags.get(TEST_WINDOW_TAG, "")
        if champion is None or not window.startswith(f"{data.plan.test.start.isoformat()}/"):
            logger.info("no %s@%s on the retry model's split: no failure-model reference", name, CHAMPION)
            return None
        inputs = inputs_of(settings, features, config)
        uri = f"models:/{name}/{champion.version}"
        return failure_reference(inputs, uri, settings)(data)

    return scores


def evaluate(  # noqa: PLR0917 (the command's options)
    settings: Settings,
    features: ChosenFeatureSet,
    model_uris: list[str],
    config: Path | None,
    overrides: list[str],
    output: Path | None,
) -> str:
    """``riskgate evaluate``: each model URI (default: both champions) on the data's test window."""
    chosen = training_config(config, overrides)
    inputs = inputs_of(settings, features, chosen)
    uris = model_uris or [f"models:/{name}@{CHAMPION}" for name in MODEL_NAMES.values()]
    reports: dict[str, object] = {}
    texts = []
    for uri in uris:
        _, window, report = evaluate_model(
            inputs,
            chosen,
            model_uri=uri,
            tracking_uri=settings.tracking_uri,
            registry_uri=settings.registry_uri,
        )
        reports[uri] = {"test_window": window, "report": report}
        texts.append(format_report(f"{uri} on test window {window}", report))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(reports, indent=2))
        texts.append(f"reports written to {output}")
    return "\n\n".join(texts)


def promote(  # noqa: PLR0917 (the command's options)
    settings: Settings,
    features: ChosenFeatureSet,
    config: Path | None,
    overrides: list[str],
    task_names: list[str],
    rescore: bool,
) -> str:
    """``riskgate promote``: the promotion gate's decision for each task named, one line each."""
    chosen = training_config(config, overrides)

    def inputs() -> Inputs:
        return inputs_of(settings, features, chosen)

    boosted, with_retry = split_tasks(task_names)
    decisions = promote_models(
        inputs if rescore else None,
        chosen,
        tracking_uri=settings.tracking_uri,
        registry_uri=settings.registry_uri,
        tasks=boosted,
        feature_hash=features.feature_set.hash,
    )
    if with_retry:
        decisions.append(
            promote_retry_model(
                chosen,
                tracking_uri=settings.tracking_uri,
                registry_uri=settings.registry_uri,
                data_dir=settings.data_dir if rescore else None,
            )
        )
    return "\n".join(str(decision) for decision in decisions)


def score(settings: Settings, model_uri: str, source: Path, output: Path) -> str:
    """``riskgate score``: :func:`score_file`, and the line printed."""
    rows = score_file(
        model_uri, source, output, tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri
    )
    return f"scored {rows} attempts with {model_uri} -> {output}"


def evaluate_rolling(  # noqa: PLR0917 (the command's options)
    settings: Settings,
    features: ChosenFeatureSet,
    config: Path | None,
    overrides: list[str],
    task_names: list[str],
    folds: int,
    *,
    progress: Progress = NO_PROGRESS,
) -> str:
    """``riskgate evaluate-rolling``: each task on ``folds`` consecutive test windows (registers nothing)."""
    chosen = training_config(config, overrides)
    boosted = tasks(task_names)
    progress.stage("load events and features")
    inputs = inputs_of(settings, features, chosen)
    result = rolling.evaluate_rolling(
        inputs,
        chosen,
        folds=folds,
        tracking_uri=settings.tracking_uri,
        artifact_root=settings.artifact_root,
        tasks=boosted,
        progress=progress,
    )
    return rolling.format_rolling(result, boosted)


def config_show(config: Path | None, overrides: list[str]) -> str:
    """``riskgate config show``: every config key (what ``--set`` takes), its value (the defaults, or the
    file's with the overrides applied, its default beside it when it differs) and what it does."""
    values = _flat(training_config(config, overrides).model_dump(mode="json"))
    lines = []
    for key, default, doc in config_keys():
        value = json.dumps(values.get(key), default=str)
        lines.append(f"{key} = {value}" + ("" if value == default else f" (default {default})"))
        lines.append(f"    {doc}")
    return "\n".join(lines)


def _flat(mapping: dict[str, object], prefix: str = "") -> dict[str, object]:
    """The nested mapping's leaves under their dotted keys (``model.trials``)."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
