"""The one tracking store (MLflow): pointing MLflow at it, finding versions, downloading stored models.

Training writes through it (experiments, runs, versions; :mod:`training.tracking`) and every reader uses it
(serving's loader, the backtest, the report, the CLI). Nothing here runs at import; every function takes the
tracking URI (from :class:`core.settings.Settings`) or a client on it explicitly. This module imports MLflow,
which is slow: serving imports it lazily, where it needs it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from recovery.learned import RetryModel
from registry.bundle import BUNDLE_HINT, ModelBundle, bundle_from_model_dir
from registry.errors import RegistryError
from registry.retry import RETRY_HINT, retry_model_from_dir

logger = logging.getLogger(__name__)
T = TypeVar("T")

REGISTRY_ENV: Final = "MLFLOW_REGISTRY_URI"


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
    return load_logged(client, model_uri, bundle_from_model_dir, what="model", hint=BUNDLE_HINT)


def load_retry_model(client: MlflowClient, model_uri: str) -> RetryModel:
    """Download ``models:/riskgate-retry/<version>`` (or ``@alias``) and load it."""
    return load_logged(client, model_uri, retry_model_from_dir, what="the retry model", hint=RETRY_HINT)


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``name@alias`` points at; None when there is none (or the registry does not know it)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def latest_version(client: MlflowClient, name: str) -> ModelVersion:
    """The newest registered version of ``name``; a :class:`RegistryError` when there is none."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        raise RegistryError(f"cannot list versions of {name}: {error.message}") from error
    if not versions:
        raise RegistryError(
            f"no version of {name} is registered in this tracking store: run `make train` first"
        )
    return max(versions, key=lambda version: int(version.version))
