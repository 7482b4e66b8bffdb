"""What the ``riskgate train | evaluate | promote | score`` commands do, given the settings and the options.

Each function returns the text the command prints, so the CLI stays a thin layer and tests can call these.
The feature set is chosen once, by the CLI (``--feature-set``, else ``RISKGATE_FEATURE_SET``, else the IPTV
set), and handed down as a :class:`~training.data.ChosenFeatureSet`; the data directory is the settings'.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from core.progress import NO_PROGRESS, Progress
from core.settings import Settings
from registry.names import CHAMPION, MODEL_NAMES, TEST_WINDOW_TAG
from registry.store import load_bundle, tracking_store, version_by_alias
from training import rolling
from training.baselines import choose
from training.config import Task, TrainingConfig, load_config
from training.data import ChosenFeatureSet, load_inputs
from training.errors import ConfigError
from training.pipeline import Inputs, evaluate_model, promote_models, score_file, train_models
from training.report import format_report
from training.retry import (
    FloatArray,
    ReferenceScorer,
    RetryData,
    format_retry_report,
    promote_retry_model,
    train_retry_model,
)

logger = logging.getLogger(__name__)

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
            reference = failure_reference(inputs, uri, settings.tracking_uri)
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
        reference=reference,
    )
    logged = result.logged
    title = (
        f"{logged.name} v{logged.version} (run {logged.run_id}, {result.seconds:.0f} s, trained on retries "
        f"before {result.trained_until:%Y-%m-%d %H:%M}), retry outcomes in the test window"
    )
    return format_retry_report(title, result.report)


def failure_reference(inputs: Inputs, model_uri: str, tracking_uri: str) -> ReferenceScorer:
    """The LightGBM failure model's probabilities of the retry test rows, from the inputs' feature rows."""
    with tracking_store(tracking_uri) as client:
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
        with tracking_store(settings.tracking_uri) as client:
            champion = version_by_alias(client, name, CHAMPION)
        window = "" if champion is None else champion.tags.get(TEST_WINDOW_TAG, "")
        if champion is None or not window.startswith(f"{data.plan.test.start.isoformat()}/"):
            logger.info("no %s@%s on the retry model's split: no failure-model reference", name, CHAMPION)
            return None
        inputs = inputs_of(settings, features, config)
        uri = f"models:/{name}/{champion.version}"
        return failure_reference(inputs, uri, settings.tracking_uri)(data)

    return scores


def evaluate(  # noqa: PLR0917 (the command's options)
    settings: Settings,
    features: ChosenFeatureSet,
    model_uris: list[str],
    config: Path | None,
    overrides: list[str],
    output: Path | None,
) -> str:
    chosen = training_config(config, overrides)
    inputs = inputs_of(settings, features, chosen)
    uris = model_uris or [f"models:/{name}@{CHAMPION}" for name in MODEL_NAMES.values()]
    reports: dict[str, object] = {}
    texts = []
    for uri in uris:
        _, window, report = evaluate_model(inputs, chosen, tracking_uri=settings.tracking_uri, model_uri=uri)
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
    chosen = training_config(config, overrides)

    def inputs() -> Inputs:
        return inputs_of(settings, features, chosen)

    boosted, with_retry = split_tasks(task_names)
    decisions = promote_models(
        inputs if rescore else None,
        chosen,
        tracking_uri=settings.tracking_uri,
        tasks=boosted,
        feature_hash=features.feature_set.hash,
    )
    if with_retry:
        decisions.append(
            promote_retry_model(
                chosen, tracking_uri=settings.tracking_uri, data_dir=settings.data_dir if rescore else None
            )
        )
    return "\n".join(str(decision) for decision in decisions)


def score(settings: Settings, model_uri: str, source: Path, output: Path) -> str:
    rows = score_file(model_uri, source, output, tracking_uri=settings.tracking_uri)
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
