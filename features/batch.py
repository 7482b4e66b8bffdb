"""The batch engine: point-in-time features for every historical attempt, in one vectorised pass per group.

For each (entity, source) group of aggregates, events are ordered once by (entity, time, id hash) and the
attempts by (entity, time) (a linear counting sort over time-sorted rows); the shared kernels
(:mod:`features.kernels`) then sweep both with two pointers, so the cost is linear in events + attempts per
aggregate. String columns are never turned into Python objects in bulk: filters and keys work on integer
codes (``pandas.factorize``). Request-time features come from :mod:`features.request`, the code the online
engine runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from events.io import iter_parts, read_events, table_dir, write_part
from events.schema import EventKind
from features import request
from features.definitions import (
    ATTEMPT_FILTER_FIELDS,
    DECLINE_FAMILY_OF,
    AmountToUsual,
    FeatureSet,
    Filter,
    RequestFeature,
    Source,
)
from features.kernels import F64, I64, aggregate, initial_carry, order_by_code
from features.plan import GroupPlan, amount_milli, hash_keys, plan, series_to_us

logger = logging.getLogger(__name__)

FEATURES_TABLE: Final = "features"
PART_ROWS: Final = 1_000_000
Bools = npt.NDArray[np.bool_]


class FeatureInputError(ValueError):
    """The event frames handed to the batch engine break the contract (missing column, duplicate id...)."""


@dataclass(frozen=True)
class _Categorical:
    """A string column as integer codes (``-1`` missing) and its distinct values."""

    codes: I64
    uniques: npt.NDArray[np.object_]

    @classmethod
    def of(cls, series: pd.Series) -> _Categorical:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        return cls(codes.astype(np.int64), np.asarray(uniques, dtype=object))

    def isin(self, allowed: tuple[str, ...], derive: dict[str, str] | None = None) -> Bools:
        """Which rows hold one of ``allowed`` (after mapping values through ``derive``, if given)."""
        values = self.uniques if derive is None else [derive.get(value) for value in self.uniques]
        hits = np.array([value in allowed for value in values] + [False], dtype=np.bool_)
        return hits[self.codes]  # code -1 picks the trailing False


@dataclass
class _Events:
    """One source's events, sorted by (time, id hash): times, id hashes, the attempt row, own fields."""

    t: I64
    ids: I64
    row: I64
    own: dict[str, _Categorical] = field(default_factory=dict)


class _Attempts:
    """The attempts as arrays: times, id hashes, amounts, and columns coded on demand."""

    def __init__(self, frame: pd.DataFrame) -> None:
        _require(frame, "attempts", ["attempt_id", "occurred_at", "amount", *ATTEMPT_FILTER_FIELDS])
        self.frame = frame
        self.index = pd.Index(frame["attempt_id"])
        if not self.index.is_unique:
            duplicated = self.index[self.index.duplicated()][:5].tolist()
            raise FeatureInputError(f"attempts: attempt_id must be unique; duplicated: {duplicated}")
        self.t = series_to_us(frame["occurred_at"])
        self.id_hash = hash_keys(frame["attempt_id"])
        self.milli = amount_milli(frame["amount"].to_numpy(dtype=np.float64))
        self.by_time = np.lexsort((self.id_hash, self.t))
        self._columns: dict[str, _Categorical] = {}

    def categorical(self, name: str) -> _Categorical:
        if name not in self._columns:
            _require(self.frame, "attempts", [name])
            self._columns[name] = _Categorical.of(self.frame[name])
        return self._columns[name]

    def rows_of(self, ids: pd.Series, table: str) -> I64:
        rows: I64 = self.index.get_indexer(ids).astype(np.int64)
        unknown = int((rows < 0).sum())
        if unknown:
            logger.warning(
                "%s: %d events refer to attempts not in the attempts table; ignored", table, unknown
            )
        return rows

    def mask(self, events: _Events, flt: Filter) -> Bools:
        """Which events pass a filter: on the event's own field, or on its attempt's."""
        derive = DECLINE_FAMILY_OF if flt.field == "decline_family" else None
        own = "decline_code" if flt.field == "decline_family" else flt.field
        if own in events.own:
            return events.own[own].isin(flt.values, derive)
        return self.categorical(flt.field).isin(flt.values)[events.row]


def build_features(
    attempts: pd.DataFrame, outcomes: pd.DataFrame, reports: pd.DataFrame, feature_set: FeatureSet
) -> pd.DataFrame:
    """Point-in-time features of every attempt: ``attempt_id`` + ``feature_set.names``, in ``attempts``
    order."""
    started = time.perf_counter()
    table = _Attempts(attempts)
    position = {name: k for k, name in enumerate(feature_set.names)}
    out = np.full((len(table.t), len(position)), np.nan, order="F")  # one contiguous column per feature
    usual: dict[str, F64] = {}
    requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
    if requests:
        columns = {name: attempts[name].reset_index(drop=True) for name in request.required_columns(requests)}
        out[:, [position[d.name] for d in requests]] = request.compute(requests, columns, table.t)
    sources = _sources(table, outcomes, reports)
    wanted = {d.usual.name for d in feature_set.definitions if isinstance(d, AmountToUsual)}
    for group in plan(feature_set):
        rows, values = _run_group(group, table, sources[group.source])
        for k, name in enumerate(a.name for a in group.aggregates):
            if name in position:
                out[rows, position[name]] = values[:, k]
            if name in wanted:
                usual[name] = np.full(len(table.t), np.nan)
                usual[name][rows] = values[:, k]
    for ratio in feature_set.definitions:
        if isinstance(ratio, AmountToUsual):
            out[:, position[ratio.name]] = table.milli / 1000.0 / usual[ratio.usual.name]
    frame = pd.DataFrame(out, columns=feature_set.names, copy=False)
    frame.insert(0, "attempt_id", attempts["attempt_id"].reset_index(drop=True))
    logger.info(
        "built %d features for %d attempts in %.2f s",
        len(position),
        len(frame),
        time.perf_counter() - started,
    )
    return frame


def _sources(table: _Attempts, outcomes: pd.DataFrame, reports: pd.DataFrame) -> dict[Source, _Events]:
    order = table.by_time
    sources = {Source.ATTEMPTS: _Events(table.t[order], table.id_hash[order], order)}
    _require(outcomes, "outcomes", ["attempt_id", "occurred_at", "status", "decline_code"])
    rows = table.rows_of(outcomes["attempt_id"], "outcomes")
    sources[Source.OUTCOMES] = _events(
        rows,
        series_to_us(outcomes["occurred_at"]),
        table.id_hash[rows],  # an outcome's id is its attempt's
        {name: _Categorical.of(outcomes[name]) for name in ("status", "decline_code")},
    )
    _require(reports, "fraud_reports", ["report_id", "attempt_id", "reported_at", "report_type"])
    sources[Source.REPORTS] = _events(
        table.rows_of(reports["attempt_id"], "fraud_reports"),
        series_to_us(reports["reported_at"]),
        hash_keys(reports["report_id"]),
        {"report_type": _Categorical.of(reports["report_type"])},
    )
    return sources


def _events(rows: I64, t: I64, ids: I64, own: dict[str, _Categorical]) -> _Events:
    """Events joined to their attempt (unknown attempts dropped), sorted by (time, id hash)."""
    known = np.flatnonzero(rows >= 0)
    order = known[np.lexsort((ids[known], t[known]))]
    return _Events(
        t[order],
        ids[order],
        rows[order],
        {k: _Categorical(c.codes[order], c.uniques) for k, c in own.items()},
    )


def _run_group(group: GroupPlan, table: _Attempts, events: _Events) -> tuple[I64, F64]:
    """The group's aggregates for the attempts that have a key for its entity: (their rows, values)."""
    keys = table.categorical(group.entity.key)
    n_keys = len(keys.uniques)
    ev_ent = keys.codes[events.row]
    ev_order = order_by_code(ev_ent, n_keys)
    rows = events.row[ev_order]
    masks = np.empty((len(ev_order), len(group.filters)), dtype=np.uint8)
    for column, flt in enumerate(group.filters):
        masks[:, column] = table.mask(events, flt)[ev_order]
    values = np.empty((len(ev_order), len(group.values)), dtype=np.int64)
    for column, name in enumerate(group.values):
        values[:, column] = table.milli[rows] if name == "amount" else table.categorical(name).codes[rows]
    queries = table.by_time[order_by_code(keys.codes[table.by_time], n_keys)]
    values_out: F64 = aggregate(
        ev_ent[ev_order],
        events.t[ev_order],
        masks,
        values,
        keys.codes[queries],
        table.t[queries],
        group.specs,
        initial_carry(group.specs),
    )
    return queries, values_out


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
