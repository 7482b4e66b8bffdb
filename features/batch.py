"""The batch engine: point-in-time features for every historical attempt, in one vectorised pass per group.

For each (entity, source) group of aggregates, events are sorted once by (entity, time, id hash) and the
attempts by (entity, time); the shared kernels (:mod:`features.kernels`) then sweep both with two pointers,
so the cost is linear in events + attempts per aggregate. Request-time features are computed by
:mod:`features.request`, the same code the online engine runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from events.io import iter_parts, read_events, table_dir, write_part
from events.schema import EventKind
from features import request
from features.definitions import ATTEMPT_FILTER_FIELDS, AmountToUsual, FeatureSet, RequestFeature, Source
from features.kernels import F64, I64, aggregate, initial_carry
from features.plan import (
    GroupPlan,
    ObjectArray,
    amount_milli,
    decline_families,
    hash_keys,
    plan,
    series_to_us,
)

logger = logging.getLogger(__name__)

FEATURES_TABLE: Final = "features"
PART_ROWS: Final = 1_000_000


class FeatureInputError(ValueError):
    """The event frames handed to the batch engine break the contract (missing column, duplicate id...)."""


@dataclass(frozen=True)
class _Events:
    """One source's events, sorted by (time, id hash): time, id hash, row of their attempt, filter fields."""

    t: I64
    ids: I64
    row: I64
    fields: dict[str, ObjectArray]


class _Attempts:
    """The attempts as arrays: times, keys coded per entity, amounts, the fields filters read."""

    def __init__(self, frame: pd.DataFrame) -> None:
        _require(frame, "attempts", ["attempt_id", "occurred_at", "amount", *ATTEMPT_FILTER_FIELDS])
        self.frame = frame
        self.ids = frame["attempt_id"].to_numpy(dtype=object)
        self.index = pd.Index(self.ids)
        if not self.index.is_unique:
            duplicated = self.index[self.index.duplicated()][:5].tolist()
            raise FeatureInputError(f"attempts: attempt_id must be unique; duplicated: {duplicated}")
        self.t = series_to_us(frame["occurred_at"])
        self.id_hash = hash_keys(self.ids)
        self.milli = amount_milli(frame["amount"].to_numpy(dtype=np.float64))
        self.by_time = np.lexsort((self.id_hash, self.t))
        self._codes: dict[str, I64] = {}

    def column(self, name: str) -> ObjectArray:
        return self.frame[name].to_numpy(dtype=object)

    def codes(self, key: str) -> I64:
        """Dense codes of a key column (``-1`` where missing)."""
        if key not in self._codes:
            _require(self.frame, "attempts", [key])
            codes, _ = pd.factorize(self.frame[key], use_na_sentinel=True)
            self._codes[key] = codes.astype(np.int64)
        return self._codes[key]

    def rows_of(self, ids: pd.Series, table: str) -> I64:
        rows: I64 = self.index.get_indexer(ids.to_numpy(dtype=object)).astype(np.int64)
        unknown = int((rows < 0).sum())
        if unknown:
            logger.warning(
                "%s: %d events refer to attempts not in the attempts table; ignored", table, unknown
            )
        return rows


def build_features(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, reports: pd.DataFrame, feature_set: FeatureSet
) -> pd.DataFrame:
    """Point-in-time features of every attempt: ``attempt_id`` + ``feature_set.names``, in ``attempts``
    order."""
    started = time.perf_counter()
    table = _Attempts(attempts)
    computed: dict[str, F64] = {}
    requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
    if requests:
        columns = {name: table.column(name) for name in request.required_columns(requests)}
        values = request.compute(requests, columns, table.t)
        computed.update({d.name: values[:, k] for k, d in enumerate(requests)})
    sources = _sources(table, outcomes, reports)
    for group in plan(feature_set):
        values = _run_group(group, table, sources[group.source])
        computed.update({a.name: values[:, k] for k, a in enumerate(group.aggregates)})
    for definition in feature_set.definitions:
        if isinstance(definition, AmountToUsual):
            computed[definition.name] = table.milli / 1000.0 / computed[definition.usual.name]
    out = pd.DataFrame({"attempt_id": attempts["attempt_id"].to_numpy()})
    features = pd.DataFrame({name: computed[name] for name in feature_set.names}, dtype=np.float64)
    logger.info(
        "built %d features for %d attempts in %.2f s",
        len(feature_set.names),
        len(out),
        time.perf_counter() - started,
    )
    return pd.concat([out, features], axis=1)


def _sources(table: _Attempts, outcomes: pd.DataFrame, reports: pd.DataFrame) -> dict[Source, _Events]:
    order = table.by_time
    attempt_fields = {name: table.column(name)[order] for name in ATTEMPT_FILTER_FIELDS}
    sources = {Source.ATTEMPTS: _Events(table.t[order], table.id_hash[order], order, attempt_fields)}
    _require(outcomes, "outcomes", ["attempt_id", "occurred_at", "status", "decline_code"])
    codes = outcomes["decline_code"].to_numpy(dtype=object)
    sources[Source.OUTCOMES] = _events(
        table,
        outcomes,
        name="outcomes",
        time_column="occurred_at",
        id_column="attempt_id",
        own={
            "status": outcomes["status"].to_numpy(dtype=object),
            "decline_code": codes,
            "decline_family": decline_families(codes),
        },
    )
    _require(reports, "fraud_reports", ["report_id", "attempt_id", "reported_at", "report_type"])
    sources[Source.REPORTS] = _events(
        table,
        reports,
        name="fraud_reports",
        time_column="reported_at",
        id_column="report_id",
        own={"report_type": reports["report_type"].to_numpy(dtype=object)},
    )
    return sources


def _events(
    table: _Attempts,
    frame: pd.DataFrame,
    *,
    name: str,
    time_column: str,
    id_column: str,
    own: dict[str, ObjectArray],
) -> _Events:
    rows = table.rows_of(frame["attempt_id"], name)
    known = rows >= 0
    t = series_to_us(frame[time_column])[known]
    ids = hash_keys(frame[id_column].to_numpy(dtype=object))[known]
    rows = rows[known]
    order = np.lexsort((ids, t))
    fields = {field: values[known][order] for field, values in own.items()}
    fields.update({field: table.column(field)[rows[order]] for field in ATTEMPT_FILTER_FIELDS})
    return _Events(t[order], ids[order], rows[order], fields)


def _run_group(group: GroupPlan, table: _Attempts, events: _Events) -> F64:
    """The group's aggregates for every attempt (NaN where the attempt has no key for the entity)."""
    key_codes = table.codes(group.entity.key)
    ev_ent = key_codes[events.row]
    ev_order = np.argsort(ev_ent, kind="stable")
    ev_order = ev_order[ev_ent[ev_order] >= 0]
    masks = group.masks(events.fields, len(events.t))[ev_order]
    values = np.empty((len(ev_order), len(group.values)), dtype=np.int64)
    rows = events.row[ev_order]
    for column, name in enumerate(group.values):
        values[:, column] = table.milli[rows] if name == "amount" else table.codes(name)[rows]
    q_ent_by_time = key_codes[table.by_time]
    queries = table.by_time[q_ent_by_time >= 0]
    queries = queries[np.argsort(key_codes[queries], kind="stable")]
    out = np.full((len(table.t), len(group.aggregates)), np.nan)
    out[queries] = aggregate(
        ev_ent[ev_order],
        events.t[ev_order],
        masks,
        values,
        key_codes[queries],
        table.t[queries],
        group.specs,
        initial_carry(group.specs),
    )
    return out


def _require(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise FeatureInputError(
            f"{name}: missing column(s) {missing}; the event contract is in events/schema.py "
            f"(present: {list(frame.columns)})"
        )


def build_data_dir(data_dir: Path, feature_set: FeatureSet) -> list[Path]:
    """Build the feature table of the events under ``data_dir`` into ``data_dir/features/`` Parquet parts."""
    attempts = read_events(data_dir, EventKind.ATTEMPTS)
    outcomes = read_events(data_dir, EventKind.OUTCOMES)
    reports = read_events(data_dir, EventKind.FRAUD_REPORTS)
    features = build_features(attempts, outcomes, reports, feature_set)
    folder = table_dir(data_dir, FEATURES_TABLE)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    metadata = {b"riskgate.feature_set": feature_set.hash.encode()}
    written = []
    for part, start in enumerate(range(0, max(len(features), 1), PART_ROWS)):
        chunk = pa.Table.from_pandas(features.iloc[start : start + PART_ROWS], preserve_index=False)
        written.append(write_part(data_dir, FEATURES_TABLE, part, chunk.replace_schema_metadata(metadata)))
    logger.info("wrote %d feature rows to %s (%d parts)", len(features), folder, len(written))
    return written


def read_features(data_dir: Path) -> pd.DataFrame:
    """The feature table written by :func:`build_data_dir`."""
    frames = [part.to_pandas() for part in iter_parts(data_dir, FEATURES_TABLE)]
    table: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return table
