"""Load a data directory into training :class:`~training.pipeline.Inputs`: events → features → labels.

Features come from the ``features/`` table when it was built (``riskgate features build``) with the same
feature set (its Parquet metadata holds the set's hash), aligned on ``attempt_id``; otherwise the batch engine
builds them in memory. A table of the same feature set that lacks attempts is refused, not silently rebuilt.
On simulated data the ``truth/`` table adds the ground-truth probabilities used for the ceiling.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from events.io import EventTableMissingError, part_files, read_events, read_table
from events.schema import EventKind
from features.batch import FEATURES_TABLE, build_features, read_features
from features.definitions import FeatureSet
from features.registry import load_feature_set
from training.bundle import FeatureContract
from training.dataset import assemble
from training.errors import DatasetError
from training.pipeline import Inputs

logger = logging.getLogger(__name__)

TRUTH_TABLE = "truth"
FEATURE_SET_METADATA = b"riskgate.feature_set"
_REBUILD = "rebuild it with `riskgate features build` (or delete its folder to build the features in memory)"


def contract_of(feature_set: FeatureSet) -> FeatureContract:
    return FeatureContract(tuple(feature_set.names), feature_set.hash, tuple(feature_set.categorical))


def load_inputs(data_dir: Path, feature_set_spec: str | None) -> Inputs:
    """Events, features (table or batch engine), label sources, baselines and truth of ``data_dir``."""
    feature_set = load_feature_set(feature_set_spec)
    attempts = read_events(data_dir, EventKind.ATTEMPTS)
    outcomes = read_events(data_dir, EventKind.OUTCOMES)
    reports = read_events(data_dir, EventKind.FRAUD_REPORTS)
    features = _features(data_dir, attempts, outcomes, reports, feature_set)
    truth = _truth(data_dir)
    frame = assemble(attempts, outcomes, reports, features, truth)
    logger.info("loaded %d attempts and %d fraud reports from %s", len(attempts), len(reports), data_dir)
    return Inputs(frame, contract_of(feature_set))


def _features(
    data_dir: Path,
    attempts: pd.DataFrame,
    outcomes: pd.DataFrame,
    reports: pd.DataFrame,
    feature_set: FeatureSet,
) -> pd.DataFrame:
    if _stored_feature_hash(data_dir) == feature_set.hash:
        logger.info("using the features table of %s (feature set %s)", data_dir, feature_set.hash)
        return aligned(read_features(data_dir), attempts["attempt_id"], data_dir)
    started = time.perf_counter()
    built = build_features(attempts, outcomes, reports, feature_set)
    logger.info("built features in memory in %.1f s", time.perf_counter() - started)
    return built


def aligned(stored: pd.DataFrame, attempt_ids: pd.Series, data_dir: Path) -> pd.DataFrame:
    """The stored feature rows in the order of ``attempt_ids`` (the table's own row order is free).

    Refuses a table that is not the one of these attempts: an attempt without features, or features of
    attempts that are no longer in the data (the events changed after the build, so even the rows present
    may be stale).
    """
    index = pd.Index(stored["attempt_id"])
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
    if len(stored) != len(attempt_ids):
        raise DatasetError(
            f"the features table of {data_dir} holds {len(stored) - len(attempt_ids)} attempts that are not "
            "in its attempts table: the events changed after it was built; " + _REBUILD
        )
    ordered: pd.DataFrame = stored.iloc[rows].reset_index(drop=True)
    return ordered


def _stored_feature_hash(data_dir: Path) -> str | None:
    try:
        first = part_files(data_dir, FEATURES_TABLE)[0]
    except EventTableMissingError:
        return None
    metadata = pq.read_schema(first).metadata or {}
    raw = metadata.get(FEATURE_SET_METADATA)
    return None if raw is None else raw.decode()


def _truth(data_dir: Path) -> pd.DataFrame | None:
    try:
        truth: pd.DataFrame = read_table(data_dir, TRUTH_TABLE).to_pandas()
    except EventTableMissingError:
        return None
    return truth
