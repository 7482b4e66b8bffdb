"""The two models the service answers with: loaded by registry alias, checked, compiled, cached, swapped.

* :class:`ServingModel`: one registered model version, its bundle (calibration, thresholds, feature contract)
  and its trees compiled for the one-row path (:mod:`serving.scoring.trees`).
* :class:`ModelPair`: the immutable (fraud, failure) pair a request uses from start to end. Either may be
  ``None`` (unavailable): the policy then falls back (see :mod:`serving.scoring.policy`). The pair also
  carries the
  recovery planner's retry model (:class:`ServingRetryModel`, ``riskgate-retry``; ``None``: the planner
  scores candidate times with the failure model), swapped with the pair in the same assignment.
* :class:`ModelHolder`: holds the current pair; a reload builds a whole new pair and replaces the reference in
  one assignment, so no request ever sees a half-reloaded pair or mixes versions.
* :class:`ModelLoader`: resolves ``models:/<name>@<alias>`` in the MLflow registry, refuses a model whose
  feature-set hash differs from the code's (with a log line saying so; for the retry model: its design of the
  retry columns, :data:`recovery.learned.RETRY_DESIGN_HASH`), and keeps a local copy of the last good version
  of each model, from which the service starts when the tracking store is unreachable.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import numpy as np

from recovery.learned import RetryModel, RetryModelFormatError
from registry.bundle import ModelBundle
from serving.scoring.answers import ModelRefAnswer
from serving.scoring.trees import F64, CompiledTrees
from training.errors import FeatureContractError

logger = logging.getLogger(__name__)

TASKS: Final = ("fraud", "failure")
MODEL_NAMES: Final = {"fraud": "riskgate-fraud", "failure": "riskgate-failure"}
RETRY_TASK: Final = "retry"
RETRY_MODEL_NAME: Final = "riskgate-retry"
_RETRY_FILE: Final = "retry_model.json"
_VERSION_FILE: Final = "version.json"


@dataclass(frozen=True)
class Scored:
    """One model's answer for one row: calibrated probability and per-feature contributions (log-odds)."""

    probability: float
    raw: float
    contributions: F64


@dataclass(frozen=True)
class ServingModel:
    """A registered model version ready for the one-row path."""

    task: str
    name: str
    version: str
    source: str  # "registry" or "cache"
    bundle: ModelBundle
    trees: CompiledTrees

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, name: str, version: str, source: str) -> ServingModel:
        model = cls(bundle.task, name, version, source, bundle, CompiledTrees.from_booster(bundle.booster))
        model.score(
            np.zeros(len(bundle.features.names))
        )  # compile (or load the cached jit) now, not mid-request
        return model

    @property
    def ref(self) -> ModelRefAnswer:
        return {"name": self.name, "version": self.version, "source": self.source}

    def score(self, row: F64) -> Scored:
        raw, _bias, contributions = self.trees.explain(row)
        probability = float(self.bundle.calibrator.transform(self.trees.probability(np.array([raw])))[0])
        return Scored(probability, raw, contributions)

    def score_rows(self, rows: F64) -> F64:
        """Calibrated probabilities of many rows (no contributions)."""
        probabilities: F64 = self.bundle.calibrator.transform(
            self.trees.probability(self.trees.raw_scores(rows))
        )
        return probabilities


@dataclass(frozen=True)
class ServingRetryModel:
    """A registered version of the retry model the recovery planner scores candidate times with."""

    name: str
    version: str
    source: str  # "registry" or "cache"
    model: RetryModel
    task: str = RETRY_TASK

    @property
    def ref(self) -> ModelRefAnswer:
        return {"name": self.name, "version": self.version, "source": self.source}

    @property
    def trained_until(self) -> str | None:
        return self.model.info_.get("trained_until")


@dataclass(frozen=True)
class ModelPair:
    fraud: ServingModel | None
    failure: ServingModel | None
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    retry: ServingRetryModel | None = None

    def get(self, task: str) -> ServingModel | None:
        return self.fraud if task == "fraud" else self.failure

    @property
    def complete(self) -> bool:
        return self.fraud is not None and self.failure is not None


class ModelHolder:
    """The current :class:`ModelPair`; reading it is one attribute access, replacing it one assignment."""

    def __init__(self, pair: ModelPair | None = None) -> None:
        self._pair = pair or ModelPair(None, None)
        self.reload_lock = threading.Lock()

    @property
    def current(self) -> ModelPair:
        return self._pair

    def swap(self, pair: ModelPair) -> ModelPair:
        previous, self._pair = self._pair, pair
        return previous


@dataclass(frozen=True)
class LoadResult:
    """What a (re)load did for one task."""

    task: str
    model: ServingModel | ServingRetryModel | None
    changed: bool
    error: str | None


class ModelLoader:
    """Loads each task's ``@alias`` version from the registry (or the local cache), checked and compiled."""

    def __init__(
        self,
        tracking_uri: str,
        cache_dir: Path,
        feature_names: Sequence[str],
        feature_hash: str,
        alias: str = "champion",
    ) -> None:
        self.tracking_uri = tracking_uri
        self.cache_dir = cache_dir
        self.feature_names = tuple(feature_names)
        self.feature_hash = feature_hash
        self.alias = alias

    def load(self, task: str, current: ServingModel | None) -> LoadResult:
        """The task's model now: unchanged if the alias still points at ``current``'s version."""
        name = MODEL_NAMES[task]
        try:
            version = self._registry_version(name)
        except Exception as error:  # any failure to reach the registry means: serve what we have
            logger.warning("model registry unreachable for %s (%s); trying the local copy", name, error)
            return self._from_cache_or_current(task, current, f"registry unreachable: {error}")
        if version is None:
            return self._from_cache_or_current(task, current, f"no version of {name} has alias @{self.alias}")
        if current is not None and current.version == version and current.source == "registry":
            return LoadResult(task, current, False, None)
        try:
            bundle = self._download(name, version)
            self._check(bundle, name, version)
        except FeatureContractError as error:
            logger.error("REFUSED %s version %s (@%s): %s", name, version, self.alias, error)
            return self._from_cache_or_current(task, current, f"version {version} refused: {error}")
        except Exception as error:  # a broken artifact: keep serving what we have
            logger.warning("cannot download %s version %s (%s); trying the local copy", name, version, error)
            return self._from_cache_or_current(task, current, f"download failed: {error}")
        model = ServingModel.from_bundle(bundle, name, version, "registry")
        self._save_cache(task, model)
        logger.info("loaded %s version %s (@%s) from the registry", name, version, self.alias)
        return LoadResult(task, model, current is None or current.version != version, None)

    # -- registry -------------------------------------------------------------------------------------------

    def _registry_version(self, name: str) -> str | None:
        database = self.tracking_uri.removeprefix("sqlite:///")
        if database != self.tracking_uri and not Path(database).exists():  # MLflow would create an empty one
            raise FileNotFoundError(f"no tracking store at {self.tracking_uri}")
        from training.tracking import tracking_store, version_by_alias  # noqa: PLC0415 - MLflow is slow to import

        with tracking_store(self.tracking_uri) as client:
            found = version_by_alias(client, name, self.alias)
        return None if found is None else str(found.version)

    def _download(self, name: str, version: str) -> ModelBundle:
        from training.tracking import load_bundle, tracking_store  # noqa: PLC0415

        with tracking_store(self.tracking_uri) as client:
            return load_bundle(client, f"models:/{name}/{version}")

    def _check(self, bundle: ModelBundle, name: str, version: str) -> None:
        bundle.check_features(self.feature_names, self.feature_hash)

    # -- local copy -----------------------------------------------------------------------------------------

    def _task_dir(self, task: str) -> Path:
        return self.cache_dir / task

    def _save_cache(self, task: str, model: ServingModel) -> None:
        self._replace_local_copy(
            task, model.name, model.version, lambda staging: model.bundle.save(staging / "bundle")
        )

    def _replace_local_copy(
        self, task: str, name: str, version: str, write: Callable[[Path], object]
    ) -> None:
        """Replace ``task``'s local copy atomically: ``write`` it beside the old one, then rename over it."""
        target = self._task_dir(task)
        staging = target.with_name(f".{task}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write(staging)
        meta = {"name": name, "version": version, "saved_at": datetime.now(UTC).isoformat()}
        (staging / _VERSION_FILE).write_text(json.dumps(meta))
        old = target.with_name(f".{task}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)

    def _from_cache_or_current(self, task: str, current: ServingModel | None, why: str) -> LoadResult:
        if current is not None:
            return LoadResult(task, current, False, why)
        meta_path = self._task_dir(task) / _VERSION_FILE
        if not meta_path.exists():
            logger.error("no %s model: %s, and no local copy in %s", task, why, self._task_dir(task))
            return LoadResult(task, None, False, f"{why}; no local copy")
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        try:
            bundle = ModelBundle.load(self._task_dir(task) / "bundle")
            self._check(bundle, meta["name"], meta["version"])
        except FeatureContractError as error:
            logger.error("REFUSED the local copy of %s version %s: %s", meta["name"], meta["version"], error)
            return LoadResult(task, None, False, str(error))
        model = ServingModel.from_bundle(bundle, meta["name"], meta["version"], "cache")
        logger.warning("serving %s version %s from the local copy (%s)", model.name, model.version, why)
        return LoadResult(task, model, True, why)

    def load_pair(self, current: ModelPair) -> tuple[ModelPair, list[LoadResult]]:
        """Both tasks and the retry model; the pair keeps a model when its new version cannot be had."""
        results = [self.load(task, current.get(task)) for task in TASKS]
        by_task = {result.task: result.model for result in results}
        retry = self.load_retry(current.retry)
        if not any(result.changed for result in [*results, retry]):
            return current, [*results, retry]
        fraud = cast(ServingModel | None, by_task["fraud"])  # load() builds ServingModels only
        failure = cast(ServingModel | None, by_task["failure"])
        retry_model = cast(ServingRetryModel | None, retry.model)  # load_retry() builds ServingRetryModels
        return ModelPair(fraud, failure, retry=retry_model), [*results, retry]

    # -- the retry model (riskgate-retry) -------------------------------------------------------------------

    def load_retry(self, current: ServingRetryModel | None) -> LoadResult:
        """The retry model ``@alias`` points at now (optional: without it the planner uses the failure model).

        Same rules as :meth:`load`: unchanged when the alias has not moved, a version of another design of the
        retry columns refused with a log line (the current or local copy kept), a local copy of the last good
        version used when the registry cannot be reached."""
        try:
            version = self._registry_version(RETRY_MODEL_NAME)
        except Exception as error:  # any failure to reach the registry means: serve what we have
            logger.warning(
                "model registry unreachable for %s (%s); trying the local copy", RETRY_MODEL_NAME, error
            )
            return self._retry_from_cache_or_current(current, f"registry unreachable: {error}")
        if version is None:
            why = f"no version of {RETRY_MODEL_NAME} has alias @{self.alias}"
            return self._retry_from_cache_or_current(current, why, quiet=True)
        if current is not None and current.version == version and current.source == "registry":
            return LoadResult(RETRY_TASK, current, False, None)
        try:
            model = self._download_retry(version)
        except RetryModelFormatError as error:
            logger.error("REFUSED %s version %s (@%s): %s", RETRY_MODEL_NAME, version, self.alias, error)
            return self._retry_from_cache_or_current(current, f"version {version} refused: {error}")
        except Exception as error:  # a broken artifact: keep serving what we have
            logger.warning(
                "cannot download %s version %s (%s); trying the local copy", RETRY_MODEL_NAME, version, error
            )
            return self._retry_from_cache_or_current(current, f"download failed: {error}")
        served = ServingRetryModel(RETRY_MODEL_NAME, version, "registry", model)
        self._save_retry_cache(served)
        logger.info("loaded %s version %s (@%s) from the registry", RETRY_MODEL_NAME, version, self.alias)
        return LoadResult(RETRY_TASK, served, current is None or current.version != version, None)

    def _download_retry(self, version: str) -> RetryModel:
        from training.retry import load_retry_model  # noqa: PLC0415 - MLflow is slow to import
        from training.tracking import tracking_store  # noqa: PLC0415

        with tracking_store(self.tracking_uri) as client:
            return load_retry_model(client, f"models:/{RETRY_MODEL_NAME}/{version}")

    def _save_retry_cache(self, served: ServingRetryModel) -> None:
        self._replace_local_copy(
            RETRY_TASK, served.name, served.version, lambda staging: served.model.save(staging / _RETRY_FILE)
        )

    def _retry_from_cache_or_current(
        self, current: ServingRetryModel | None, why: str, *, quiet: bool = False
    ) -> LoadResult:
        if current is not None:
            return LoadResult(RETRY_TASK, current, False, why)
        meta_path = self._task_dir(RETRY_TASK) / _VERSION_FILE
        if not meta_path.exists():
            log = logger.info if quiet else logger.warning
            log("no retry model (%s): recovery plans score candidate times with the failure model", why)
            return LoadResult(RETRY_TASK, None, False, f"{why}; no local copy")
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        try:
            model = RetryModel.load(self._task_dir(RETRY_TASK) / _RETRY_FILE)
        except RetryModelFormatError as error:
            logger.error("REFUSED the local copy of %s version %s: %s", meta["name"], meta["version"], error)
            return LoadResult(RETRY_TASK, None, False, str(error))
        served = ServingRetryModel(meta["name"], meta["version"], "cache", model)
        logger.warning("serving %s version %s from the local copy (%s)", served.name, served.version, why)
        return LoadResult(RETRY_TASK, served, True, why)
