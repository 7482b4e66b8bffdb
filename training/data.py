"""Load a data directory into training :class:`Inputs`: events → features → labels.

Features come from the ``features/`` table when it was built (``riskgate features build``) with the same
feature set (its Parquet metadata holds the set's hash), aligned on ``attempt_id``. A table built with another
feature set (or without a recorded one) is refused, naming both sets and the command that rebuilds it: never
silently rebuilt, never silently used. Without a table, a
history of up to ``in_memory_attempts`` attempts is built by the batch engine in memory (fast; about 1 kB
of memory per attempt at its peak); a larger one is first written to the ``features/`` table by the
memory-bounded build (the one ``riskgate features build`` runs, in about five steps; later runs reuse
the table). A table of the same
feature set that lacks attempts is refused, not silently rebuilt.

From a table, only the columns training needs are read: the attempts' id, time, account, amount and the
baselines' columns, the outcomes' status, the reports' times, and the features straight into one float32
block in the attempts' order, part by part (never a float64 copy of the whole table). On simulated data the
``truth/`` table adds the ground-truth probabilities used for the ceiling.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from events.io import EventTableMissingError, part_files, read_events, read_extension, read_table
from events.schema import EventKind
from features.batch import (
    FEATURES_TABLE,
    PARTITION_ATTEMPTS,
    FeatureInputError,
    build_data_dir,
    build_features,
    require_fields,
)
from features.definitions import FeatureSet
from features.registry import load_feature_set
from registry.bundle import FeatureContract
from training.baselines import Baselines
from training.booster import FEATURE_DTYPE
from training.dataset import TRUE_FRAUD_COLUMN, TRUTH_COLUMNS, assemble, attempt_columns
from training.errors import DatasetError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """Everything training needs from the data: the assembled frame and the feature contract."""

    frame: pd.DataFrame
    contract: FeatureContract
    #: Where the inputs come from, logged with every run (the feature set's spec, the baselines computed).
    provenance: dict[str, str] = field(default_factory=dict)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short hash of the attempts, label sources and features the models are trained on."""
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(self.frame, index=False).to_numpy().tobytes())
        digest.update(self.contract.hash.encode())
        return digest.hexdigest()[:16]


TRUTH_TABLE = "truth"
FEATURE_SET_METADATA = b"riskgate.feature_set"
#: Histories up to this many attempts without a features table are built in memory (~1.5 kB per attempt at
#: the peak; the default world's 330k attempts); larger ones go through the bounded build (peak ~0.5 GB
#: whatever the size) into the ``features/`` table first.
IN_MEMORY_ATTEMPTS: Final = 500_000
#: Training's bounded build runs in about this many steps (its scratch files grow with the square of the
#: number of steps: 41 steps of 250k attempts made a 10M-attempt build take hours here) ...
BUILD_STEPS: Final = 5
#: ... of at most this many attempts each (peak ~2.5 GB, below what training itself holds at that size).
MAX_STEP_ATTEMPTS: Final = 2_500_000
#: The outcome and report columns :func:`~training.dataset.assemble` and the baselines read.
OUTCOME_COLUMNS: Final = ("attempt_id", "occurred_at", "status")
REPORT_COLUMNS: Final = ("attempt_id", "reported_at")
#: Feature columns read from a table part at once (a part holds up to a build step's attempts, in float64).
_COLUMNS_PER_READ: Final = 6
_REBUILD = "rebuild it with `riskgate features build` (or delete its folder to build the features in memory)"


@dataclass(frozen=True)
class ChosenFeatureSet:
    """The feature set a command uses and the spec that named it (``module:ATTRIBUTE``: for messages, and
    for what its module declares beside it, e.g. its baselines)."""

    spec: str
    feature_set: FeatureSet

    @classmethod
    def named(cls, spec: str) -> ChosenFeatureSet:
        """The feature set ``spec`` names (:func:`features.registry.load_feature_set`)."""
        return cls(spec, load_feature_set(spec))

    def describe(self) -> str:
        return f"{self.feature_set.name} ({self.feature_set.hash}, {self.spec})"


def contract_of(feature_set: FeatureSet) -> FeatureContract:
    return FeatureContract(tuple(feature_set.names), feature_set.hash, tuple(feature_set.categorical))


def load_inputs(
    data_dir: Path,
    chosen: ChosenFeatureSet,
    baselines: Baselines,
    *,
    in_memory_attempts: int = IN_MEMORY_ATTEMPTS,
) -> Inputs:
    """Events, features (table or batch engine), label sources, baselines and truth of ``data_dir``."""
    feature_set = chosen.feature_set
    try:
        require_fields(feature_set, read_extension(data_dir))
    except FeatureInputError as error:
        raise DatasetError(str(error)) from None
    from_table = check_stored_features(data_dir, chosen)
    if not from_table and (attempts_count := count_attempts(data_dir)) > in_memory_attempts:
        _build_table(data_dir, feature_set, attempts_count)
        from_table = True
    if from_table:
        logger.info("using the features table of %s (feature set %s)", data_dir, feature_set.hash)
        attempts = read_events(data_dir, EventKind.ATTEMPTS, list(attempt_columns(baselines)))
        outcomes = read_events(data_dir, EventKind.OUTCOMES, list(OUTCOME_COLUMNS))
        reports = read_events(data_dir, EventKind.FRAUD_REPORTS, list(REPORT_COLUMNS))
        features = stored_features(data_dir, attempts["attempt_id"], feature_set.names)
    else:
        attempts = read_events(data_dir, EventKind.ATTEMPTS)
        outcomes = read_events(data_dir, EventKind.OUTCOMES)
        reports = read_events(data_dir, EventKind.FRAUD_REPORTS)
        features = _built_in_memory(attempts, outcomes, reports, feature_set)
    frame = assemble(attempts, outcomes, reports, features, _truth(data_dir), baselines=baselines)
    logger.info("loaded %d attempts and %d fraud reports from %s", len(attempts), len(reports), data_dir)
    provenance = {"feature_set": chosen.spec, "baselines": baselines.describe()}
    return Inputs(frame, contract_of(feature_set), provenance)


def check_stored_features(data_dir: Path, chosen: ChosenFeatureSet) -> bool:
    """Whether ``data_dir`` holds a features table of the chosen set (False: it holds none); a table of
    another set, or of an unrecorded one, is a :class:`DatasetError` naming both and the rebuild command."""
    try:
        part_files(data_dir, FEATURES_TABLE)
    except EventTableMissingError:
        return False
    stored = _stored_feature_hash(data_dir)
    if stored == chosen.feature_set.hash:
        return True
    built_with = "an unrecorded feature set" if stored is None else f"feature set {stored}"
    raise DatasetError(
        f"the features table {data_dir / FEATURES_TABLE} was built with {built_with}, but this command uses "
        f" feature set {chosen.describe()}: rebuild it with `riskgate features build "
        f"--data-dir {data_dir} --feature-set {chosen.spec}`, or choose the feature set it was built with "
        "(--feature-set / RISKGATE_FEATURE_SET)"
    )


def count_attempts(data_dir: Path) -> int:
    """The number of attempts under ``data_dir`` (from the Parquet footers, without reading rows)."""
    return sum(pq.read_metadata(path).num_rows for path in part_files(data_dir, EventKind.ATTEMPTS.value))


def build_step(attempts: int) -> int:
    """Attempts per step of training's bounded build: :data:`BUILD_STEPS` steps, each at least the feature
    engine's own step (:data:`~features.batch.PARTITION_ATTEMPTS`) and at most :data:`MAX_STEP_ATTEMPTS`."""
    return min(MAX_STEP_ATTEMPTS, max(PARTITION_ATTEMPTS, -(-attempts // BUILD_STEPS)))


def _build_table(data_dir: Path, feature_set: FeatureSet, attempts: int) -> None:
    step = build_step(attempts)
    logger.info(
        "no features table of feature set %s in %s: building it with the memory-bounded build "
        "(as `riskgate features build` does, in steps of %d attempts); later runs reuse it",
        feature_set.hash,
        data_dir,
        step,
    )
    started = time.perf_counter()
    build_data_dir(data_dir, feature_set, partition_attempts=step)
    logger.info("built the features table in %.1f s", time.perf_counter() - started)


def _built_in_memory(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, reports: pd.DataFrame, feature_set: FeatureSet
) -> pd.DataFrame:
    started = time.perf_counter()
    built = build_features(attempts, outcomes, reports, feature_set)
    logger.info("built features in memory in %.1f s", time.perf_counter() - started)
    return built


def stored_features(data_dir: Path, attempt_ids: pd.Series, names: list[str]) -> pd.DataFrame:
    """The features table's rows in the order of ``attempt_ids``, as ``attempt_id`` + float32 features.

    Read part by part into one float32 block (the table's own row order is free); refused as
    :func:`aligned` says.
    """
    stored_ids = pd.Index(read_table(data_dir, FEATURES_TABLE, ["attempt_id"]).column(0).to_pandas())
    rows = _positions(stored_ids, attempt_ids, data_dir)
    target = np.empty(len(rows), dtype=np.int64)
    target[rows] = np.arange(len(rows))  # stored row → the attempt's position
    values = np.empty((len(names), len(rows)), dtype=FEATURE_DTYPE)
    offset = 0
    for path in part_files(data_dir, FEATURES_TABLE):
        part = pq.ParquetFile(path)
        at = target[offset : offset + part.metadata.num_rows]
        for first in range(0, len(names), _COLUMNS_PER_READ):  # a few float64 columns in memory at once
            some = names[first : first + _COLUMNS_PER_READ]
            table = part.read(columns=some)
            for column, name in enumerate(some, start=first):
                values[column, at] = table.column(name).to_numpy()
        offset += part.metadata.num_rows
    frame = pd.DataFrame(values.T, columns=list(names), copy=False)
    frame.insert(0, "attempt_id", attempt_ids.reset_index(drop=True))
    return frame


def aligned(stored: pd.DataFrame, attempt_ids: pd.Series, data_dir: Path) -> pd.DataFrame:
    """The stored feature rows in the order of ``attempt_ids`` (the table's own row order is free).

    Refuses a table that is not the one of these attempts: an attempt without features, or features of
    attempts that are no longer in the data (the events changed after the build, so even the rows present
    may be stale).
    """
    rows = _positions(pd.Index(stored["attempt_id"]), attempt_ids, data_dir)
    ordered: pd.DataFrame = stored.iloc[rows].reset_index(drop=True)
    return ordered


def _positions(index: pd.Index, attempt_ids: pd.Series, data_dir: Path) -> np.ndarray:
    """Per attempt, its row in the table whose ``attempt_id`` column is ``index`` (see :func:`aligned`)."""
    if not index.is_unique:
        duplicated = index[index.duplicated()][:3].tolist()
        raise DatasetError(
            f"the features table of {data_dir} holds attempts twice (e.g. {duplicated}); " + _REBUILD
        )
    rows = index.get_indexer(pd.Index(attempt_ids))
    missing = attempt_ids[rows < 0]
    if len(missing):
        raise DatasetError(
            f"the features table of {data_dir} has no features for {len(missing)} of {len(attempt_ids)} "
            f"attempts (e.g. {missing.head(3).tolist()}): it was built from other events; " + _REBUILD
        )
    if len(index) != len(attempt_ids):
        raise DatasetError(
            f"the features table of {data_dir} holds {len(index) - len(attempt_ids)} attempts that are not "
            "in its attempts table: the events changed after it was built; " + _REBUILD
        )
    return np.asarray(rows)


def _stored_feature_hash(data_dir: Path) -> str | None:
    try:
        first = part_files(data_dir, FEATURES_TABLE)[0]
    except EventTableMissingError:
        return None
    metadata = pq.read_schema(first).metadata or {}
    raw = metadata.get(FEATURE_SET_METADATA)
    return None if raw is None else raw.decode()


def _truth(data_dir: Path) -> pd.DataFrame | None:
    columns = ["attempt_id", *TRUTH_COLUMNS.values(), TRUE_FRAUD_COLUMN]
    try:
        truth: pd.DataFrame = read_table(data_dir, TRUTH_TABLE, columns).to_pandas()
    except EventTableMissingError:
        return None
    return truth
