"""MLflow: the one tracking store, run logging, the model registry and the promotion gate.

Nothing here runs at import. Every function takes the tracking URI (from :class:`core.settings.Settings`)
explicitly; :func:`tracking_store` points MLflow's fluent API at it for the duration of a ``with`` block
(model logging needs the fluent API) and restores what was there before.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightgbm
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from registry.bundle import ModelBundle
from registry.pyfunc import BUNDLE_ARTIFACT, RiskgateModel, bundle_from_model_dir, predict_frame
from training.config import Task, TrainingConfig
from training.errors import RegistryError
from training.evaluation import flatten
from training.plots import close, evaluation_figures
from training.trainer import TrainedModel

logger = logging.getLogger(__name__)
T = TypeVar("T")

CHAMPION = "champion"
MODEL_NAMES = {Task.FRAUD: "riskgate-fraud", Task.FAILURE: "riskgate-failure"}
TEST_WINDOW_TAG = "test_window"
PRIMARY_METRIC_TAG = "primary_metric"
FEATURE_HASH_TAG = "feature_set_hash"
INPUT_EXAMPLE_ROWS = 5
REGISTRY_ENV = "MLFLOW_REGISTRY_URI"


@contextmanager
def tracking_store(tracking_uri: str) -> Iterator[MlflowClient]:
    """Use ``tracking_uri`` for tracking and registry inside the block; yields a client on it."""
    was_set = bool(mlflow.is_tracking_uri_set())  # type: ignore[no-untyped-call]
    previous_tracking = mlflow.get_tracking_uri() if was_set else None
    previous_registry = os.environ.get(REGISTRY_ENV)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    finally:
        mlflow.set_tracking_uri(previous_tracking)  # type: ignore[arg-type]
        mlflow.set_registry_uri(previous_registry)  # type: ignore[arg-type]
        if previous_registry is None:
            os.environ.pop(REGISTRY_ENV, None)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path) -> str:
    """The experiment's id, created with its artifacts under ``artifact_root/<name>`` if new."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = (artifact_root / name).resolve()
    location.mkdir(parents=True, exist_ok=True)
    return str(client.create_experiment(name, artifact_location=location.as_uri()))


def test_window_key(plan_params: dict[str, str], positives: float, rows: int) -> str:
    """What "the same test window" means: same window bounds, same data end, same labelled attempts."""
    return (
        f"{plan_params['test_start']}/{plan_params['test_end']}/as_of={plan_params['as_of']}/"
        f"rows={rows}/positives={int(positives)}"
    )


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    name: str
    version: str


def log_training_run(
    model: TrainedModel,
    *,
    config: TrainingConfig,
    test_labels: np.ndarray,
    input_example: pd.DataFrame,
    window_key: str,
    extra_params: dict[str, str],
    extra_metrics: dict[str, float],
    experiment_id: str,
) -> LoggedModel:
    """Log one model's run (params, window, metrics, plots, model) and register a new version."""
    task = Task(model.bundle.task)
    name = MODEL_NAMES[task]
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{task.value}-train") as run:
        mlflow.set_tags({"task": task.value, "feature_set_hash": model.bundle.features.hash})
        mlflow.log_params(_params(model, config, extra_params))
        metrics = {**flatten(model.report), **extra_metrics}
        metrics.update({f"trial_{t.number}_validation_score": t.score for t in model.trials})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(model.report, "report/test_report.json")
        mlflow.log_dict(model.bundle.features.to_dict(), "contract/feature_set.json")
        mlflow.log_dict({"trials": [t.__dict__ for t in model.trials]}, "report/search_trials.json")
        _log_figures(model, test_labels)
        info = _log_model(model, input_example, name)
    version = info.registered_model_version
    if version is None:
        raise RegistryError(f"MLflow did not register {name} for run {run.info.run_id}")
    client = MlflowClient()
    primary = config.primary_metric(task)
    client.set_model_version_tag(name, str(version), TEST_WINDOW_TAG, window_key)
    client.set_model_version_tag(name, str(version), FEATURE_HASH_TAG, model.bundle.features.hash)
    client.set_model_version_tag(
        name, str(version), PRIMARY_METRIC_TAG, json.dumps({primary: model.report["model"][primary]})
    )
    logger.info("logged run %s, registered %s version %s", run.info.run_id, name, version)
    return LoggedModel(run.info.run_id, name, str(version))


def _params(model: TrainedModel, config: TrainingConfig, extra: dict[str, str]) -> dict[str, str]:
    best = max(model.trials, key=lambda trial: trial.score)
    params = {f"best_{key}": f"{value:.6g}" for key, value in best.params.items()}
    params.update({key: str(value) for key, value in model.bundle.info.items()})
    params.update(
        {
            "config": json.dumps(config.model_dump(mode="json"), sort_keys=True)[:6000],
            "trials": str(config.model.trials),
            "feature_set_hash": model.bundle.features.hash,
            "n_features": str(len(model.bundle.features.names)),
            "threshold_decision": f"{model.bundle.thresholds.decision:.6g}",
            **{f"threshold_{k}": f"{v:.6g}" for k, v in model.bundle.thresholds.levels.items()},
            **extra,
        }
    )
    return params


def _log_figures(model: TrainedModel, labels: np.ndarray) -> None:
    scores = {"model": model.scores.test, **_reference_test_scores(model)}
    figures = evaluation_figures(model.bundle, labels, scores)
    try:
        for file_name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{file_name}")
    finally:
        close(figures)


def _reference_test_scores(model: TrainedModel) -> dict[str, np.ndarray]:
    return {scorer.name: scorer.test for scorer in model.references}


def _log_model(model: TrainedModel, input_example: pd.DataFrame, name: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="riskgate-bundle-") as scratch:
        bundle_dir = model.bundle.save(Path(scratch) / BUNDLE_ARTIFACT)
        signature = infer_signature(input_example, predict_frame(model.bundle, input_example))
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=RiskgateModel(),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            signature=signature,
            input_example=input_example,
            registered_model_name=name,
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"lightgbm=={lightgbm.__version__}",
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
            ],
        )


def load_logged(
    client: MlflowClient, model_uri: str, load: Callable[[Path], T], *, what: str, hint: str
) -> T:
    """Download a logged model (``models:/name@alias``, ``models:/name/3``, ``runs:/...``) into a scratch
    directory and ``load`` it from there; a registry failure is a :class:`RegistryError` naming ``what`` and
    what to do (``hint``)."""
    try:
        with tempfile.TemporaryDirectory(prefix="riskgate-model-") as scratch:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=scratch, tracking_uri=client.tracking_uri
            )
            return load(Path(local))
    except MlflowException as error:
        raise RegistryError(
            f"cannot load {what} {model_uri} from {client.tracking_uri}: {error.message} ({hint})"
        ) from error


def load_bundle(client: MlflowClient, model_uri: str) -> ModelBundle:
    """Download a model (``models:/name@alias``, ``models:/name/3``, ``runs:/...``); load its bundle."""
    return load_logged(
        client,
        model_uri,
        bundle_from_model_dir,
        what="model",
        hint="check the name and alias/version with `make ui`, or run `make train` first",
    )


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def latest_version(client: MlflowClient, name: str) -> ModelVersion:
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        raise RegistryError(f"cannot list versions of {name}: {error.message}") from error
    if not versions:
        raise RegistryError(
            f"no version of {name} is registered in this tracking store: run `make train` first"
        )
    return max(versions, key=lambda version: int(version.version))
