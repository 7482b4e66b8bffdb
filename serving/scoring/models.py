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
* :class:`ModelLoader`: the three models through the registry's one loader (:mod:`registry.loader`), which
  resolves ``models:/<name>@<alias>``, refuses a model whose feature-set hash differs from the code's (with a
  log line saying so; for the retry model: its design of the retry columns,
  :data:`recovery.learned.RETRY_DESIGN_HASH`), and keeps a local copy of the last good version of each
  model, from which the service starts when the tracking store is unreachable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

import numpy as np

from recovery.learned import RetryModel
from registry import loader
from registry.bundle import ModelBundle
from registry.loader import RETRY_KIND, ModelKind, RegistryLoader, bundle_kind
from registry.names import CHAMPION, RETRY_TASK, TASKS
from serving.scoring.answers import ModelRefAnswer
from serving.scoring.trees import F64, CompiledTrees

logger = logging.getLogger(__name__)


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

    @classmethod
    def from_model(cls, model: RetryModel, name: str, version: str, source: str) -> ServingRetryModel:
        return cls(name, version, source, model)

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


#: What a (re)load did for one model (fraud, failure or retry).
LoadResult: TypeAlias = loader.LoadResult[ServingModel | ServingRetryModel]


class ModelLoader:
    """Loads each model's ``@alias`` version from the registry (or the local copy), checked and compiled."""

    def __init__(
        self,
        tracking_uri: str,
        cache_dir: Path,
        feature_names: Sequence[str],
        feature_hash: str,
        alias: str = CHAMPION,
        *,
        registry_uri: str | None = None,
    ) -> None:
        self.registry = RegistryLoader(tracking_uri, cache_dir, alias, registry_uri=registry_uri)
        self.feature_names = tuple(feature_names)
        self.feature_hash = feature_hash
        self.kinds: dict[str, ModelKind[ModelBundle]] = {
            task: bundle_kind(task, self.feature_names, feature_hash) for task in TASKS
        }

    @property
    def alias(self) -> str:
        return self.registry.alias

    def load(
        self, task: str, current: ServingModel | None, *, down: str | None = None
    ) -> loader.LoadResult[ServingModel]:
        """The task's model now: unchanged if the alias still points at ``current``'s version (``down``: see
        :meth:`registry.loader.RegistryLoader.load`)."""
        return self.registry.load(self.kinds[task], current, ServingModel.from_bundle, down=down)

    def load_retry(
        self, current: ServingRetryModel | None, *, down: str | None = None
    ) -> loader.LoadResult[ServingRetryModel]:
        """The retry model ``@alias`` points at now (optional: the planner can use the failure model)."""
        return self.registry.load(RETRY_KIND, current, ServingRetryModel.from_model, down=down)

    def load_pair(self, current: ModelPair) -> tuple[ModelPair, list[LoadResult]]:
        """Both tasks and the retry model; the pair keeps a model when its new version cannot be had. A
        registry that does not answer is waited for once (then every model comes from what is at hand)."""
        fraud = self.load(TASKS[0], current.get(TASKS[0]))
        failure = self.load(TASKS[1], current.get(TASKS[1]), down=fraud.unreachable)
        retry = self.load_retry(current.retry, down=fraud.unreachable or failure.unreachable)
        results: list[LoadResult] = [fraud, failure, retry]
        if not any(result.changed for result in results):
            return current, results
        return ModelPair(fraud.model, failure.model, retry=retry.model), results
