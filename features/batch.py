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
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import feather

from core.errors import RiskgateError
from core.progress import NO_PROGRESS, Progress
from events.io import iter_parts, part_files, read_events, read_extension, table_dir, write_part
from events.schema import EventKind, ExtensionField, column_names
from features import request
from features.definitions import (
    DECLINE_FAMILY_OF,
    DERIVED,
    OWN_FILTER_FIELDS,
    Aggregate,
    AnyFilter,
    Definition,
    FeatureSet,
    Filter,
    RequestFeature,
    Source,
)
from features.kernels import F64, I64, aggregate, initial_carry, order_by_code
from features.plan import MISSING, GroupPlan, amount_milli, derive, hash_keys, in_range, plan, series_to_us

logger = logging.getLogger(__name__)

FEATURES_TABLE: Final = "features"
#: attempts per step of :func:`build_data_dir`: its peak memory follows this, not the size of the data
PARTITION_ATTEMPTS: Final = 250_000
#: the scratch folder of :func:`build_data_dir`, inside the data directory (removed when done)
SCRATCH: Final = ".features-scratch"
Bools = npt.NDArray[np.bool_]


class FeatureInputError(RiskgateError, ValueError):
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

    @classmethod
    def missing(cls, n: int) -> _Categorical:
        """A column the frame does not have: missing in every row."""
        return cls(np.full(n, -1, dtype=np.int64), np.empty(0, dtype=object))

    def passes(self, flt: Filter, derive: dict[str, str] | None = None) -> Bools:
        """Which rows pass ``flt`` (after mapping values through ``derive``, if given); missing never does."""
        values = self.uniques if derive is None else [derive.get(value) for value in self.uniques]
        hits = np.array([flt.matches(value) for value in values] + [False], dtype=np.bool_)
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
        _require(frame, "attempts", ["attempt_id", "occurred_at", "amount"])
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
        self._numbers: dict[str, F64] = {}

    def categorical(self, name: str) -> _Categorical:
        """A text column as codes; a column the frame does not have is missing everywhere."""
        if name not in self._columns:
            if name in self.frame.columns:
                self._columns[name] = _Categorical.of(self.frame[name])
            else:
                self._columns[name] = _Categorical.missing(len(self.t))
        return self._columns[name]

    def number(self, name: str) -> F64:
        """A number column as float64 (NaN where missing, or everywhere if the frame does not have it)."""
        if name not in self._numbers:
            if name in self.frame.columns:
                values = pd.to_numeric(self.frame[name], errors="coerce")
                self._numbers[name] = values.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                self._numbers[name] = np.full(len(self.t), np.nan)
        return self._numbers[name]

    def column(self, name: str) -> pd.Series:
        """A column as given (all missing if the frame does not have it), indexed 0..n-1."""
        if name in self.frame.columns:
            return self.frame[name].reset_index(drop=True)
        return pd.Series([None] * len(self.t), dtype=object)

    def rows_of(self, ids: pd.Series, table: str) -> I64:
        rows: I64 = self.index.get_indexer(ids).astype(np.int64)
        unknown = int((rows < 0).sum())
        if unknown:
            logger.warning(
                "%s: %d events refer to attempts not in the attempts table; ignored", table, unknown
            )
        return rows

    def mask(self, events: _Events, flt: AnyFilter) -> Bools:
        """Which events pass a filter: on the event's own field, or on its attempt's."""
        if not isinstance(flt, Filter):
            return in_range(flt, self.number(flt.field))[events.row]
        derive = DECLINE_FAMILY_OF if flt.field == "decline_family" else None
        own = "decline_code" if flt.field == "decline_family" else flt.field
        if own in events.own:
            return events.own[own].passes(flt, derive)
        return self.categorical(flt.field).passes(flt)[events.row]


def read_columns(feature_set: FeatureSet) -> list[str]:
    """The attempt columns a feature set reads beyond ``attempt_id``, ``occurred_at`` and ``amount``: entity
    keys, distinct-count values, filtered fields and request features' columns. Each may be absent."""
    requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
    names = [e.key for e in feature_set.entities]
    names += [a.value for a in feature_set.aggregates if a.value is not None]
    names += [
        a.filter.field
        for a in feature_set.aggregates
        if a.filter is not None and a.filter.field not in OWN_FILTER_FIELDS[a.source]
    ]
    names += request.required_columns(requests)
    return [name for name in dict.fromkeys(names) if name not in ("amount", "occurred_at")]


def _log_absent(columns: list[str], feature_set: FeatureSet) -> None:
    """One warning naming the columns the set reads that the attempts do not have."""
    absent = [name for name in read_columns(feature_set) if name not in columns]
    if absent:
        logger.warning(
            "attempts: no column(s) %s; read as missing in every attempt (NaN features of those entities "
            "and fields, filters on them match nothing)",
            absent,
        )


def build_features(
    attempts: pd.DataFrame,
    outcomes: pd.DataFrame,
    reports: pd.DataFrame,
    feature_set: FeatureSet,
    *,
    warn_absent: bool = True,
) -> pd.DataFrame:
    """Point-in-time features of every attempt: ``attempt_id`` + ``feature_set.names``, in ``attempts``
    order. A column the set reads that ``attempts`` lacks is missing everywhere (one warning, unless
    ``warn_absent`` is False: a caller building in steps warns once itself)."""
    started = time.perf_counter()
    table = _Attempts(attempts)
    if warn_absent:
        _log_absent(list(attempts.columns), feature_set)
    position = {name: k for k, name in enumerate(feature_set.names)}
    out = np.full((len(table.t), len(position)), np.nan, order="F")  # one contiguous column per feature
    inputs: dict[str, F64] = {}  # the aggregates derived definitions read, for every attempt
    requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
    if requests:
        columns = {name: table.column(name) for name in request.required_columns(requests)}
        out[:, [position[d.name] for d in requests]] = request.compute(
            requests, columns, table.t, feature_set.vocabulary
        )
    sources = _sources(table, outcomes, reports)
    derived = [d for d in feature_set.definitions if isinstance(d, DERIVED)]
    wanted = {a.name for d in derived for a in d.inputs}
    for group in plan(feature_set):
        rows, values = _run_group(group, table, sources[group.source])
        for k, name in enumerate(a.name for a in group.aggregates):
            if name in position:
                out[rows, position[name]] = values[:, k]
            if name in wanted:
                inputs[name] = np.full(len(table.t), np.nan)
                inputs[name][rows] = values[:, k]
    if derived:
        amount = table.milli / 1000.0
        for definition in derived:
            read = [inputs[a.name] for a in definition.inputs]
            out[:, position[definition.name]] = derive(definition, amount, read)
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


def require_fields(feature_set: FeatureSet, recorded: tuple[ExtensionField, ...]) -> None:
    """Refuse a feature set whose declared fields the data directory's recorded extension does not have
    with the same type (an attribute missing from the mapping would otherwise read as missing everywhere);
    a category's values may differ (codes are indices in the feature set's own values)."""
    have = {f.name: f for f in recorded}
    problems = [
        f"{f.name} ({f.type.value}): "
        + ("not declared" if f.name not in have else f"declared as {have[f.name].type.value}")
        for f in feature_set.fields
        if f.name not in have or have[f.name].type != f.type
    ]
    if problems:
        raise FeatureInputError(
            f"feature set {feature_set.name!r} reads provider fields the data directory's extension does "
            f"not provide: {'; '.join(problems)}. Declare each under attempts.attributes in the mapping file "
            "with the same type and import again (the import records them in extension.json)"
        )


def build_data_dir(
    data_dir: Path,
    feature_set: FeatureSet,
    *,
    partition_attempts: int = PARTITION_ATTEMPTS,
    progress: Progress = NO_PROGRESS,
) -> list[Path]:
    """Build the feature table of the events under ``data_dir`` into ``data_dir/features/`` Parquet parts.

    Memory stays bounded whatever the size of the history (longer, or with more accounts): the events are
    re-laid in a scratch folder so that each step holds about ``partition_attempts`` attempts and their
    events.
    Every entity's aggregates only read that entity's events, so the attempts are split by the hash of each
    entity's key into partitions (one entity's whole history in one partition) and :func:`build_features`
    runs per partition on the definitions of that entity; request features run per bucket of attempt ids;
    the results are joined back per bucket. The values are those :func:`build_features` gives over the whole
    tables, bit for bit. One part per bucket of attempt ids; rows are not in the attempts' order (join on
    ``attempt_id``). Data that fits in one step (up to ``partition_attempts`` attempts) is built in memory,
    in one part. One entity's own history is never split: a single key holding a large share of all
    events (a popular BIN) makes its partition that much larger. ``progress`` hears each step, counted in
    buckets or partitions.
    """
    started = time.perf_counter()
    require_fields(feature_set, read_extension(data_dir))
    if partition_attempts < 1:
        raise ValueError(f"partition_attempts must be at least 1, got {partition_attempts}")
    attempts = sum(pq.read_metadata(path).num_rows for path in part_files(data_dir, EventKind.ATTEMPTS.value))
    layout = _Layout(data_dir / SCRATCH, max(1, -(-attempts // partition_attempts)), feature_set)
    if layout.partitions == 1:  # it fits in one step: no re-lay
        progress.stage("read events")
        events, outcomes, reports = (read_events(data_dir, kind) for kind in EventKind)
        progress.stage("build features")
        features = build_features(events, outcomes, reports, feature_set)
        progress.stage("write features")
        _clear(data_dir)
        written = [_feature_part(data_dir, 0, features, feature_set)]
        logger.info("wrote %d feature rows to %s", attempts, written[0])
        return written
    shutil.rmtree(layout.root, ignore_errors=True)
    _log_absent(pq.read_schema(part_files(data_dir, EventKind.ATTEMPTS.value)[0]).names, feature_set)
    try:
        progress.stage("bucket events")
        _bucket_events(data_dir, layout, partition_attempts)
        progress.stage("partition buckets by entity", layout.partitions)
        for bucket in range(layout.partitions):
            _spread_bucket(layout, bucket)
            progress.advance()
        progress.stage("build features per partition", len(layout.entity_sets) * layout.partitions)
        for entity in layout.entity_sets:
            for partition in range(layout.partitions):
                _build_partition(layout, entity, partition)
                progress.advance()
        progress.stage("write features")
        written = _join_buckets(data_dir, layout)
    finally:
        shutil.rmtree(layout.root, ignore_errors=True)
    logger.info(
        "wrote %d feature rows to %s (%d parts, %d partitions) in %.1f s",
        attempts,
        table_dir(data_dir, FEATURES_TABLE),
        len(written),
        layout.partitions,
        time.perf_counter() - started,
    )
    return written


class _Layout:
    """The scratch folder of a bounded build: which definitions run where, and where each step's files go."""

    def __init__(self, root: Path, partitions: int, feature_set: FeatureSet) -> None:
        self.root = root
        self.partitions = partitions
        self.feature_set = feature_set
        requests = [d for d in feature_set.definitions if isinstance(d, RequestFeature)]
        self.request_set = (
            FeatureSet(f"{feature_set.name}/request", tuple(requests), fields=feature_set.fields)
            if requests
            else None
        )
        self.entity_sets: dict[str, tuple[str, FeatureSet]] = {}
        for entity in feature_set.entities:
            own = [d for d in feature_set.definitions if _entity_of(d) == entity.name]
            subset = FeatureSet(
                f"{feature_set.name}/{entity.name}", tuple(own), feature_set.key_columns, feature_set.fields
            )
            self.entity_sets[entity.name] = (entity.key, subset)

    def events(self, kind: EventKind, bucket: int) -> Path:
        return self.root / "events" / kind.value / f"b{bucket:05d}"

    def partition(self, entity: str, partition: int) -> Path:
        return self.root / "partitions" / entity / f"p{partition:05d}"

    def results(self, name: str, bucket: int) -> Path:
        return self.root / "results" / name / f"b{bucket:05d}"

    def bucket_of(self, attempt_ids: pd.Series) -> I64:
        return _modulo(hash_keys(attempt_ids), self.partitions)


def _entity_of(definition: Definition) -> str | None:
    if isinstance(definition, Aggregate):
        return definition.entity.name
    if isinstance(definition, DERIVED):
        return definition.inputs[0].entity.name  # a derived definition reads one entity (validated)
    return None


def _modulo(hashes: I64, n: int) -> I64:
    """Hash values into ``0..n-1`` (``-1`` where the hash marks a missing value)."""
    out = (hashes.view(np.uint64) % np.uint64(n)).astype(np.int64)
    out[hashes == MISSING] = -1
    return out


def _write(folder: Path, name: str, table: pa.Table) -> None:
    """A scratch file: Arrow IPC (Feather v2, LZ4), several times faster to write and read than Parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    feather.write_feather(table, folder / f"{name}.arrow", compression="lz4")


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(folder.glob(f"{pattern}.arrow"))


def _read(folder: Path, pattern: str = "*", columns: list[str] | None = None) -> pa.Table | None:
    files = _files(folder, pattern)
    if not files:
        return None
    tables = [feather.read_table(path, columns=columns, memory_map=False) for path in files]
    return pa.concat_tables(tables, promote_options="default")


def _frame(table: pa.Table | None, kind: EventKind) -> pd.DataFrame:
    """Events read back as pandas (none: an empty frame with the contract's columns)."""
    if table is None:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in column_names(kind)})
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _results(frame: pd.DataFrame) -> pa.Table:
    """Feature rows (``attempt_id`` + float columns) as Arrow."""
    return pa.Table.from_pandas(frame, preserve_index=False)


def _bucket_events(data_dir: Path, layout: _Layout, batch_rows: int) -> None:
    """Pass 1: every event table, batch by batch, into buckets by the hash of ``attempt_id`` (kept as Arrow:
    every column the data holds goes through, untouched)."""
    for kind in EventKind:
        for part, path in enumerate(part_files(data_dir, kind.value)):
            for index, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=batch_rows)):
                table = pa.Table.from_batches([batch])
                buckets = layout.bucket_of(table.column("attempt_id").to_pandas())
                for bucket in np.unique(buckets).tolist():
                    _write(
                        layout.events(kind, bucket),
                        f"p{part:05d}-{index:05d}",
                        table.filter(pa.array(buckets == bucket)),
                    )


def _spread_bucket(layout: _Layout, bucket: int) -> None:
    """Pass 2: one bucket of attempt ids: its request features, and its events into entity partitions."""
    stored = _read(layout.events(EventKind.ATTEMPTS, bucket))
    if stored is None:
        return
    attempts = stored.to_pandas()
    tables = {
        kind: _read(layout.events(kind, bucket)) for kind in (EventKind.OUTCOMES, EventKind.FRAUD_REPORTS)
    }
    outcomes = _frame(tables[EventKind.OUTCOMES], EventKind.OUTCOMES)
    reports = _frame(tables[EventKind.FRAUD_REPORTS], EventKind.FRAUD_REPORTS)
    _require(attempts, "attempts", ["attempt_id"])
    index = pd.Index(attempts["attempt_id"])
    if not index.is_unique:
        duplicated = index[index.duplicated()][:5].tolist()
        raise FeatureInputError(f"attempts: attempt_id must be unique; duplicated: {duplicated}")
    rows = {}  # each outcome's and report's attempt (row in ``attempts``, -1 if unknown)
    for kind, frame in ((EventKind.OUTCOMES, outcomes), (EventKind.FRAUD_REPORTS, reports)):
        _require(frame, kind.value, ["attempt_id"])
        rows[kind] = index.get_indexer(pd.Index(frame["attempt_id"])).astype(np.int64)
        unknown = int((rows[kind] < 0).sum())
        if unknown:
            logger.warning(
                "%s: %d events refer to attempts not in the attempts table; ignored", kind, unknown
            )
    if layout.request_set is not None:
        own = build_features(
            attempts, outcomes.iloc[:0], reports.iloc[:0], layout.request_set, warn_absent=False
        )
        _write(layout.results("request", bucket), "p00000", _results(own))
    for name, (key, _) in layout.entity_sets.items():
        if key not in attempts.columns:  # no attempt names this entity: its features stay NaN
            continue
        partition = _modulo(hash_keys(attempts[key]), layout.partitions)
        of_events = {kind: np.where(at >= 0, partition[np.maximum(at, 0)], -1) for kind, at in rows.items()}
        for p in np.unique(partition[partition >= 0]).tolist():
            folder = layout.partition(name, p)
            _write(
                folder, f"{EventKind.ATTEMPTS.value}-b{bucket:05d}", stored.filter(pa.array(partition == p))
            )
            for kind, table in tables.items():
                if table is not None:
                    _write(
                        folder, f"{kind.value}-b{bucket:05d}", table.filter(pa.array(of_events[kind] == p))
                    )


def _build_partition(layout: _Layout, entity: str, partition: int) -> None:
    """Pass 3: one entity partition's features (its whole history), into result buckets by attempt id."""
    folder = layout.partition(entity, partition)
    files = _files(folder, f"{EventKind.ATTEMPTS.value}-b*")
    if not files:
        return
    parts = [feather.read_table(path, memory_map=False) for path in files]
    # the bucket of each attempt, from its file's name (``attempts-bNNNNN``): no second hash of the ids
    buckets = np.repeat([int(path.stem.rsplit("-b", 1)[1]) for path in files], [len(t) for t in parts])
    events = {
        kind: _read(folder, f"{kind.value}-b*") for kind in (EventKind.OUTCOMES, EventKind.FRAUD_REPORTS)
    }
    attempts = pa.concat_tables(parts, promote_options="default").to_pandas()
    outcomes = _frame(events[EventKind.OUTCOMES], EventKind.OUTCOMES)
    reports = _frame(events[EventKind.FRAUD_REPORTS], EventKind.FRAUD_REPORTS)
    _, subset = layout.entity_sets[entity]
    own = build_features(attempts, outcomes, reports, subset, warn_absent=False)  # in ``attempts`` order
    for bucket in np.unique(buckets).tolist():
        _write(layout.results(entity, bucket), f"p{partition:05d}", _results(own[buckets == bucket]))


def _join_buckets(data_dir: Path, layout: _Layout) -> list[Path]:
    """Pass 4: per bucket of attempt ids, every slice's columns joined on ``attempt_id``, one part each."""
    _clear(data_dir)
    names = layout.feature_set.names
    position = {name: k for k, name in enumerate(names)}
    written: list[Path] = []
    for bucket in range(layout.partitions):
        attempts = _read(layout.events(EventKind.ATTEMPTS, bucket), columns=["attempt_id"])
        ids = pd.Series([], dtype=object) if attempts is None else attempts.column("attempt_id").to_pandas()
        index = pd.Index(ids)  # unique: pass 2 refused duplicates
        out = np.full((len(index), len(names)), np.nan, order="F")  # NaN: the attempt names no such entity
        for name in ["request", *layout.entity_sets]:
            own = _read(layout.results(name, bucket))
            if own is None:
                continue
            rows = index.get_indexer(pd.Index(own.column("attempt_id").to_pandas()))
            for column in own.column_names[1:]:
                out[rows, position[column]] = own.column(column).to_numpy()
        if len(index) == 0 and written:
            continue
        frame = pd.DataFrame(out, columns=names, copy=False)
        frame.insert(0, "attempt_id", ids.reset_index(drop=True))
        written.append(_feature_part(data_dir, len(written), frame, layout.feature_set))
    return written


def _clear(data_dir: Path) -> None:
    """Remove the parts of a previous feature table."""
    for old in table_dir(data_dir, FEATURES_TABLE).glob("part-*.parquet"):
        old.unlink()


def _feature_part(data_dir: Path, part: int, frame: pd.DataFrame, feature_set: FeatureSet) -> Path:
    """One part of the feature table, its Parquet metadata naming the feature set's hash."""
    metadata = {b"riskgate.feature_set": feature_set.hash.encode()}
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(metadata)
    return write_part(data_dir, FEATURES_TABLE, part, table)


def read_features(data_dir: Path) -> pd.DataFrame:
    """The feature table written by :func:`build_data_dir`."""
    frames = [part.to_pandas() for part in iter_parts(data_dir, FEATURES_TABLE)]
    table: pd.DataFrame = pd.concat(frames, ignore_index=True)
    return table
