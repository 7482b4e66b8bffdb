"""Training's runs in the tracking store: one run per trained model, logged and registered as a version.

Nothing here runs at import. The store itself (pointing MLflow at it, finding and downloading versions) is
:mod:`registry.store`; the registry's names and tags are :mod:`registry.names`. Runs are logged inside
:func:`registry.store.tracking_store` (model logging needs MLflow's fluent API).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lightgbm
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from registry.bundle import BUNDLE_ARTIFACT
from registry.errors import RegistryError
from registry.names import FEATURE_HASH_TAG, MODEL_NAMES, PRIMARY_METRIC_TAG, TASK_TAG, TEST_WINDOW_TAG
from registry.pyfunc import RiskgateModel, predict_frame
from training.config import Task, TrainingConfig
from training.evaluation import flatten
from training.plots import close, evaluation_figures
from training.trainer import TrainedModel

logger = logging.getLogger(__name__)

#: Rows of the input example logged with each model.
INPUT_EXAMPLE_ROWS: Final = 5


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
    client: MlflowClient,
) -> LoggedModel:
    """Log one model's run (params, window, metrics, plots, model) and register a new version (``client``:
    the tracking store's, inside :func:`registry.store.tracking_store`)."""
    task = Task(model.bundle.task)
    name = MODEL_NAMES[task]
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{task.value}-train") as run:
        mlflow.set_tags({TASK_TAG: task.value, FEATURE_HASH_TAG: model.bundle.features.hash})
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
