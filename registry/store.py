"""The one tracking store (MLflow): pointing MLflow at it, finding versions, downloading stored models.

Training writes through it (experiments, runs, versions; :mod:`training.tracking`) and every reader uses it
(serving's loader, the backtest, the report, the CLI). Nothing here runs at import; every function takes the
tracking URI and the registry's (from :class:`core.settings.Settings`: any MLflow URI, a local SQLite file by
default, or a tracking server) or a client on them explicitly. This module imports MLflow, which is slow:
serving imports it lazily, where it needs it.

A tracking server that does not answer is a :class:`~registry.errors.RegistryUnreachableError` naming it
(password hidden), after a bounded wait (:class:`HttpBounds`): MLflow alone retries for minutes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException, RestException

from core.urls import redact, scrub
from recovery.learned import RetryModel
from registry.bundle import BUNDLE_HINT, ModelBundle, bundle_from_model_dir
from registry.errors import RegistryError, RegistryUnreachableError
from registry.retry import RETRY_HINT, retry_model_from_dir

logger = logging.getLogger(__name__)
T = TypeVar("T")

REGISTRY_ENV: Final = "MLFLOW_REGISTRY_URI"
#: How MLflow's message starts when a tracking server gave no answer (refused, timed out, or a proxy's 5xx
#: page instead of MLflow's JSON): ``mlflow.utils.rest_utils.http_request`` and ``verify_rest_response``.
_NO_ANSWER: Final = "API request to "


@dataclass(frozen=True)
class HttpBounds:
    """How long a call to a tracking server may wait: ``retries`` after the first try (backed off
    ``backoff`` x 0, 2, 4... seconds) and ``timeout`` seconds per try to connect or between bytes. Set through
    MLflow's own variables, only those the environment does not set (the operator's values win)."""

    retries: int
    backoff: int
    timeout: int

    def environment(self) -> dict[str, str]:
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.backoff),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.timeout),
        }


#: The commands (train, promote, evaluate, score): a server that is down fails them in about 6 s (three
#: retries, 0 + 2 + 4 s apart); a hung one in at most 4 x 30 s. MLflow's defaults (7 retries, 120 s) wait
#: minutes.
COMMAND_BOUNDS: Final = HttpBounds(retries=3, backoff=1, timeout=30)
#: The service's start-up and reloads: one quick retry, then the local copy (start-up) or the models served
#: (reload); the next periodic reload tries again.
SERVICE_BOUNDS: Final = HttpBounds(retries=1, backoff=0, timeout=5)


@contextmanager
def tracking_store(
    tracking_uri: str, registry_uri: str | None = None, *, bounds: HttpBounds = COMMAND_BOUNDS
) -> Iterator[MlflowClient]:
    """Use ``tracking_uri`` for tracking and ``registry_uri`` (default: the same) for the registry inside the
    block, calls to a server bounded by ``bounds``; yields a client on them. A server that does not answer
    inside the block is a :class:`RegistryUnreachableError` naming it."""
    registry_uri = registry_uri or tracking_uri
    was_set = bool(mlflow.is_tracking_uri_set())  # type: ignore[no-untyped-call]
    previous_tracking = mlflow.get_tracking_uri() if was_set else None
    previous_registry = os.environ.get(REGISTRY_ENV)
    bounded = {key: value for key, value in bounds.environment().items() if key not in os.environ}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    os.environ.update(bounded)
    try:
        yield MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    except MlflowException as error:
        if unreachable(error):
            raise _unreachable_error(error, tracking_uri, registry_uri) from None
        raise
    finally:
        for key in bounded:
            os.environ.pop(key, None)
        mlflow.set_tracking_uri(previous_tracking)  # type: ignore[arg-type]
        mlflow.set_registry_uri(previous_registry)  # type: ignore[arg-type]
        if previous_registry is None:
            os.environ.pop(REGISTRY_ENV, None)


def unreachable(error: MlflowException) -> bool:
    """Whether ``error`` means the server gave no answer (rather than an answer saying no)."""
    return not isinstance(error, RestException) and error.message.startswith(_NO_ANSWER)


def _unreachable_error(error: MlflowException, tracking_uri: str, registry_uri: str) -> RegistryError:
    where = redact(tracking_uri)
    if registry_uri != tracking_uri:
        where += f" (registry {redact(registry_uri)})"
    detail = scrub(scrub(error.message, tracking_uri), registry_uri)
    return RegistryUnreachableError(
        f"the MLflow tracking server at {where} does not answer: {detail}. Is it running and reachable "
        "from here, and are RISKGATE_MLFLOW_TRACKING_URI (and RISKGATE_MLFLOW_REGISTRY_URI) right? "
        "Credentials come from MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN; "
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_TIMEOUT set how long to wait."
    )


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    """The experiment's id, created if new: with its artifacts under ``artifact_root/<name>``, or where the
    tracking server puts them when ``artifact_root`` is None."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    if artifact_root is None:
        return str(client.create_experiment(name))
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
        if unreachable(error):
            raise
        message = scrub(error.message, client.tracking_uri)
        raise RegistryError(
            f"cannot load {what} {model_uri} from {redact(client.tracking_uri)}: {message} ({hint})"
        ) from error


def load_bundle(client: MlflowClient, model_uri: str) -> ModelBundle:
    """Download a model (``models:/name@alias``, ``models:/name/3``, ``runs:/...``); load its bundle."""
    return load_logged(client, model_uri, bundle_from_model_dir, what="model", hint=BUNDLE_HINT)


def load_retry_model(client: MlflowClient, model_uri: str) -> RetryModel:
    """Download ``models:/riskgate-retry/<version>`` (or ``@alias``) and load it."""
    return load_logged(client, model_uri, retry_model_from_dir, what="the retry model", hint=RETRY_HINT)


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``name@alias`` points at; None when there is none (or the registry does not know it). A
    registry that does not answer raises."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if unreachable(error):
            raise
        return None


def latest_version(client: MlflowClient, name: str) -> ModelVersion:
    """The newest registered version of ``name``; a :class:`RegistryError` when there is none."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as error:
        if unreachable(error):
            raise
        raise RegistryError(f"cannot list versions of {name}: {error.message}") from error
    if not versions:
        raise RegistryError(
            f"no version of {name} is registered in this tracking store: run `make train` first"
        )
    return max(versions, key=lambda version: int(version.version))
