"""One loader for every registered model kind: by alias from the registry, checked, kept locally.

A :class:`ModelKind` says what differs between kinds: the registered name, how to read a version from a
downloaded MLflow model directory, how to check it against the running code (and which error means
"refused"), and how to write and read the local copy of the last good version. :class:`RegistryLoader` does
the rest the same way for all of them (:func:`bundle_kind`: the fraud and failure models; :data:`RETRY_KIND`:
the retry model):

* the version ``<name>@<alias>`` points at is resolved; when it is the one already served, nothing changes;
* a version the code cannot use is refused with a log line (``REFUSED <name> version <v>``), and what was
  served is kept;
* every version loaded from the registry replaces the local copy atomically (written beside the old one,
  then renamed over it), and when the registry cannot be reached (or refuses) a fresh process starts from
  that local copy.

The caller turns a loaded artifact into what it serves (``serve``): serving compiles trees, for instance.
MLflow is imported only when the registry is asked (:mod:`registry.store`): importing this module is cheap.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from recovery.learned import RetryModel, RetryModelFormatError
from registry.bundle import BUNDLE_HINT, ModelBundle, bundle_from_model_dir
from registry.errors import FeatureContractError
from registry.names import CHAMPION, MODEL_NAMES, RETRY_MODEL_NAME, RETRY_TASK
from registry.retry import MODEL_FILE, RETRY_HINT, retry_model_from_dir

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

#: The local copy's description of the version it holds (name, version, when it was saved).
VERSION_FILE: Final = "version.json"
#: The local copy's file (or directory) of a LightGBM bundle.
BUNDLE_FILE: Final = "bundle"


class Served(Protocol):
    """What the caller serves: it knows its version and where it came from (``registry`` or ``cache``)."""

    @property
    def version(self) -> str: ...

    @property
    def source(self) -> str: ...


T = TypeVar("T")
M = TypeVar("M", bound=Served)
M_co = TypeVar("M_co", covariant=True)


@dataclass(frozen=True)
class ModelKind(Generic[T]):
    """How one registered model is read, checked and kept locally (``T``: what a version holds)."""

    task: str  # the local copy's directory and the reload report's name
    name: str  # the registered model's name
    what: str  # how messages name it
    hint: str  # what to do when it cannot be downloaded
    from_model_dir: Callable[[Path], T]  # a version from a downloaded MLflow model directory
    check: Callable[[T], None]  # raise ``refused`` unless the running code can use it
    refused: type[Exception]
    local_file: str  # the file (or directory) of the local copy, beside VERSION_FILE
    save_local: Callable[[T, Path], object]
    read_local: Callable[[Path], T]
    optional: bool = False  # no version with the alias is normal (logged at info)
    without: str = ""  # what the service does without it (for the log line)


@dataclass(frozen=True)
class LoadResult(Generic[M_co]):
    """What a (re)load did for one kind."""

    task: str
    model: M_co | None
    changed: bool
    error: str | None
    unreachable: str | None = None  # why the registry could not be asked (None: it answered)


def bundle_kind(task: str, feature_names: Sequence[str], feature_hash: str) -> ModelKind[ModelBundle]:
    """The fraud or failure model, refused unless trained on the code's feature set (names and hash)."""
    names = tuple(feature_names)

    def check(bundle: ModelBundle) -> None:
        bundle.check_features(names, feature_hash)

    def save(bundle: ModelBundle, path: Path) -> object:
        return bundle.save(path)

    return ModelKind(
        task=task,
        name=MODEL_NAMES[task],
        what="model",
        hint=BUNDLE_HINT,
        from_model_dir=bundle_from_model_dir,
        check=check,
        refused=FeatureContractError,
        local_file=BUNDLE_FILE,
        save_local=save,
        read_local=ModelBundle.load,
    )


def _no_check(model: RetryModel) -> None:
    """Reading a retry model already refuses another design of the retry columns."""


def _save_retry(model: RetryModel, path: Path) -> object:
    return model.save(path)


#: The recovery planner's retry model (optional: without it the planner scores with the failure model).
RETRY_KIND: Final[ModelKind[RetryModel]] = ModelKind(
    task=RETRY_TASK,
    name=RETRY_MODEL_NAME,
    what="the retry model",
    hint=RETRY_HINT,
    from_model_dir=retry_model_from_dir,
    check=_no_check,
    refused=RetryModelFormatError,
    local_file=MODEL_FILE,
    save_local=_save_retry,
    read_local=RetryModel.load,
    optional=True,
    without=": recovery plans score candidate times with the failure model",
)


class RegistryLoader:
    """Loads a kind's ``@alias`` version from the registry, or the local copy of its last good version."""

    def __init__(
        self, tracking_uri: str, cache_dir: Path, alias: str = CHAMPION, *, registry_uri: str | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.cache_dir = cache_dir
        self.alias = alias

    def load(
        self,
        kind: ModelKind[T],
        current: M | None,
        serve: Callable[[T, str, str, str], M],
        *,
        down: str | None = None,
    ) -> LoadResult[M]:
        """The kind's model now: ``current`` unchanged if the alias still points at its version, else the
        new version (``serve(artifact, name, version, source)``), else the local copy or ``current``.
        ``down``: the registry did not answer another kind just before (why): the local copy or ``current``
        without asking it again, so a reload waits for a server that is down once, not once per kind."""
        version = None
        if down is None:
            down, version = self._ask(kind.name)
        if down is not None:
            return replace(self._local_or_current(kind, current, serve, down), unreachable=down)
        if version is None:
            why = f"no version of {kind.name} has alias @{self.alias}"
            return self._local_or_current(kind, current, serve, why, quiet=kind.optional)
        if current is not None and current.version == version and current.source == "registry":
            return LoadResult(kind.task, current, False, None)
        try:
            artifact = self._download(kind, version)
            kind.check(artifact)
        except kind.refused as error:
            logger.error("REFUSED %s version %s (@%s): %s", kind.name, version, self.alias, error)
            return self._local_or_current(kind, current, serve, f"version {version} refused: {error}")
        except Exception as error:  # a broken artifact: keep serving what we have
            logger.warning(
                "cannot download %s version %s (%s); trying the local copy", kind.name, version, error
            )
            return self._local_or_current(kind, current, serve, f"download failed: {error}")
        model = serve(artifact, kind.name, version, "registry")
        self.keep_local(kind, version, artifact)
        logger.info("loaded %s version %s (@%s) from the registry", kind.name, version, self.alias)
        # a new version, or the registry's copy of the one served from the local copy since the registry was
        # down: either way it replaces what is served (the next reload then finds it unchanged)
        return LoadResult(kind.task, model, True, None)

    # -- registry -------------------------------------------------------------------------------------------

    def _ask(self, name: str) -> tuple[str | None, str | None]:
        """(None, the version ``name@alias`` points at, or None), or (why, None) if the registry is down."""
        try:
            return None, self._registry_version(name)
        except Exception as error:  # any failure to reach the registry means: serve what we have
            logger.warning("model registry unreachable for %s (%s); trying the local copy", name, error)
            return f"registry unreachable: {error}", None

    def _registry_version(self, name: str) -> str | None:
        database = self.registry_uri.removeprefix("sqlite:///")
        if database != self.registry_uri and not Path(database).exists():  # MLflow would create an empty one
            raise FileNotFoundError(f"no model registry at {self.registry_uri}")
        from registry.store import version_by_alias  # noqa: PLC0415 - MLflow is slow to import

        with self._store() as client:
            found = version_by_alias(client, name, self.alias)
        return None if found is None else str(found.version)

    def _download(self, kind: ModelKind[T], version: str) -> T:
        from registry.store import load_logged  # noqa: PLC0415

        with self._store() as client:
            uri = f"models:/{kind.name}/{version}"
            return load_logged(client, uri, kind.from_model_dir, what=kind.what, hint=kind.hint)

    def _store(self) -> AbstractContextManager[MlflowClient]:
        """The tracking store, its calls bounded for the service (a reload must not wait for minutes)."""
        from registry.store import SERVICE_BOUNDS, tracking_store  # noqa: PLC0415

        return tracking_store(self.tracking_uri, self.registry_uri, bounds=SERVICE_BOUNDS)

    # -- local copy -----------------------------------------------------------------------------------------

    def local_dir(self, kind: ModelKind[Any]) -> Path:
        """Where the local copy of ``kind``'s last good version lives."""
        return self.cache_dir / kind.task

    def keep_local(self, kind: ModelKind[T], version: str, artifact: T) -> None:
        """Replace ``kind``'s local copy atomically: write it beside the old one, then rename over it."""
        target = self.local_dir(kind)
        staging = target.with_name(f".{kind.task}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        kind.save_local(artifact, staging / kind.local_file)
        meta = {"name": kind.name, "version": version, "saved_at": datetime.now(UTC).isoformat()}
        (staging / VERSION_FILE).write_text(json.dumps(meta))
        old = target.with_name(f".{kind.task}.old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)

    def _local_or_current(
        self,
        kind: ModelKind[T],
        current: M | None,
        serve: Callable[[T, str, str, str], M],
        why: str,
        *,
        quiet: bool = False,
    ) -> LoadResult[M]:
        if current is not None:
            return LoadResult(kind.task, current, False, why)
        local = self.local_dir(kind)
        meta_path = local / VERSION_FILE
        if not meta_path.exists():
            log = logger.info if quiet else logger.warning if kind.optional else logger.error
            log("no %s model (%s) and no local copy in %s%s", kind.task, why, local, kind.without)
            return LoadResult(kind.task, None, False, f"{why}; no local copy")
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        try:
            artifact = kind.read_local(local / kind.local_file)
            kind.check(artifact)
        except kind.refused as error:
            logger.error("REFUSED the local copy of %s version %s: %s", meta["name"], meta["version"], error)
            return LoadResult(kind.task, None, False, str(error))
        model = serve(artifact, meta["name"], meta["version"], "cache")
        logger.warning("serving %s version %s from the local copy (%s)", meta["name"], meta["version"], why)
        return LoadResult(kind.task, model, True, why)
