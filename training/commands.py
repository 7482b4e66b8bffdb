"""What the ``riskgate train | evaluate | promote`` commands do, given the settings and the options.

Each function returns the text the command prints, so the CLI stays a thin layer and tests can call these.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from features.registry import load_feature_set
from riskgate.settings import Settings
from training.config import Task, TrainingConfig, load_config
from training.data import load_inputs
from training.errors import ConfigError
from training.pipeline import Inputs, evaluate_model, promote_models, score_file, train_models
from training.report import format_report
from training.tracking import CHAMPION, MODEL_NAMES


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


def train(settings: Settings, config: Path | None, overrides: list[str], task_names: list[str]) -> str:
    chosen = training_config(config, overrides)
    inputs = load_inputs(settings.data_dir, chosen.feature_set)
    results = train_models(
        inputs,
        chosen,
        tracking_uri=settings.tracking_uri,
        artifact_root=settings.artifact_root,
        tasks=tasks(task_names),
    )
    return "\n\n".join(
        format_report(
            f"{r.logged.name} v{r.logged.version} (run {r.logged.run_id}, {r.seconds:.0f} s), test window",
            r.report,
        )
        for r in results
    )


def evaluate(
    settings: Settings, model_uris: list[str], config: Path | None, overrides: list[str], output: Path | None
) -> str:
    chosen = training_config(config, overrides)
    inputs = load_inputs(settings.data_dir, chosen.feature_set)
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


def promote(
    settings: Settings, config: Path | None, overrides: list[str], task_names: list[str], rescore: bool
) -> str:
    chosen = training_config(config, overrides)
    feature_set = load_feature_set(chosen.feature_set)

    def inputs() -> Inputs:
        return load_inputs(settings.data_dir, chosen.feature_set)

    decisions = promote_models(
        inputs if rescore else None,
        chosen,
        tracking_uri=settings.tracking_uri,
        tasks=tasks(task_names),
        feature_hash=feature_set.hash,
    )
    return "\n".join(str(decision) for decision in decisions)


def score(settings: Settings, model_uri: str, source: Path, output: Path) -> str:
    rows = score_file(model_uri, source, output, tracking_uri=settings.tracking_uri)
    return f"scored {rows} attempts with {model_uri} -> {output}"
