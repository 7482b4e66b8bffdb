"""Bulk loading: the online state that recording a history one event at a time leaves, built in one pass.

:func:`load` writes into an *empty* online store exactly the keys and values (byte for byte, with the same
expiry times) that :meth:`~features.online.OnlineEngine.record_attempt`, ``record_outcome`` and
``record_report`` leave after receiving the same events in the same arrival order; the one-by-one path stays
the reference and the tests compare the two stores. Instead of decoding, inserting, pruning and encoding an
entity's state per event (~1.6 ms per event), it groups the events by entity and builds each entity's arrays
once.

What one-by-one recording does, and how it is reproduced here:

* Every recorded attempt, and every label (outcome, fraud report) applied to an attempt already recorded, is
  a *step* for each entity the attempt names: its rows are inserted, then every group of the entity is
  pruned at ``latest - horizon``, ``latest`` being the entity's latest attempt time so far (or its latest
  event time when the entity aggregates no attempts). A label arriving before its attempt waits as pending
  and is inserted in the attempt's step.
* The pruning thresholds of an entity never decrease, so a row inserted at step ``s`` is pruned at the first
  step ``p >= s`` whose threshold exceeds its time, or never. Rows still there are the rows at or after the
  final threshold; the carry folds the pruned rows in the order one-by-one pruning folds them: by step, then
  (time, id hash) within a step (:func:`entity_blobs`).
* Attempt records, account indexes and pending labels are the same JSON documents, built column-wise.

Caveat: equal (time, id hash) rows in one group (a 64-bit hash collision) may be stored in another order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from numba import njit

from core.errors import RiskgateError
from features.definitions import DECLINE_FAMILY_OF, AnyFilter, Entity, Source
from features.kernels import I64, fold_groups, initial_carry
from features.plan import MISSING, GroupPlan, amount_milli, hash_keys, number_or_none, series_to_us
from features.state import FIRST_MASK, MAGIC, json_strings
from features.stores.base import Write

if TYPE_CHECKING:
    from features.online import OnlineEngine

logger = logging.getLogger(__name__)

NO_TIME: Final = np.iinfo(np.int64).min
#: keys written per unit of work (one transaction / pipeline per batch)
WRITE_BATCH: Final = 20_000
ObjectArray = npt.NDArray[np.object_]
Bools = npt.NDArray[np.bool_]


class BulkLoadError(RiskgateError, ValueError):
    """Bulk loading cannot give the state one-by-one recording would (the store holds state, bad events)."""


@dataclass(frozen=True)
class Arrivals:
    """Events of one kind as columns (``events.io.read_events`` or the service's field names), with each
    event's position in the arrival order of the whole stream (positions are unique across kinds)."""

    frame: pd.DataFrame
    position: I64

    def __post_init__(self) -> None:
        if len(self.frame) != len(self.position):
            raise BulkLoadError(f"{len(self.frame)} events but {len(self.position)} arrival positions")


@dataclass(frozen=True)
class Rows:
    """Rows inserted into one group of an entity type: entity code, the step (arrival position) that inserted
    each, and the rows as the state holds them (time, id hash, filter bits, values)."""

    entity: I64
    step: I64
    rows: I64


@dataclass(frozen=True)
class Steps:
    """Units of work touching entities of one type: entity code, arrival position, the attempt's time on an
    attempt's step (``NO_TIME`` on a label's), and the time of the attempt record the step belongs to."""

    entity: I64
    position: I64
    attempt_t: I64
    record_t: I64


# -- entity states ----------------------------------------------------------------------------------------


def entity_blobs(
    groups: Sequence[GroupPlan], horizon_us: int, n_entities: int, steps: Steps, rows: Sequence[Rows]
) -> tuple[list[bytes], I64]:
    """The encoded state of every entity of one type (codes ``0..n_entities-1``) and its final ``latest``
    time (what its expiry counts from), as one-by-one recording of the same steps leaves them."""
    order = np.lexsort((steps.position, steps.entity))
    step_entity, step_position = steps.entity[order], steps.position[order]
    row_times = np.full(len(order), NO_TIME, dtype=np.int64)
    step_keys = _pair_keys(step_entity, step_position)
    located = []
    for inserted in rows:
        at = np.searchsorted(step_keys, _pair_keys(inserted.entity, inserted.step))
        if len(at) and (
            at.max() >= len(step_keys) or np.any(step_keys[at] != _pair_keys(inserted.entity, inserted.step))
        ):
            raise BulkLoadError("an inserted row refers to a step that is not in the steps table")
        np.maximum.at(row_times, at, inserted.rows[:, 0])
        located.append(at)
    uses_attempts = any(group.source == Source.ATTEMPTS for group in groups)
    latest = _step_latest(
        step_entity, steps.attempt_t[order], row_times, steps.record_t[order], uses_attempts
    )
    threshold = latest - horizon_us
    segment_end = np.searchsorted(step_entity, np.arange(n_entities), side="right").astype(np.int64)
    final = np.full(n_entities, NO_TIME, dtype=np.int64)
    touched = segment_end > np.concatenate(([0], segment_end[:-1]))
    final[touched] = latest[segment_end[touched] - 1]
    states = []
    for group, inserted, at in zip(groups, rows, located, strict=True):
        popped = _pop_steps(inserted.entity, at, inserted.rows[:, 0], threshold, segment_end)
        states.append(_group_state(group, inserted, popped, n_entities))
    return _pack(states, n_entities), final


def _pair_keys(entity: I64, position: I64) -> I64:
    """(entity code, position) as one sortable int64 (both are below 2**31)."""
    return (entity.astype(np.int64) << 32) | position.astype(np.int64)


@dataclass(frozen=True)
class _GroupState:
    counts: I64  # rows kept per entity
    rows: I64  # kept rows of every entity, by (entity, time, id)
    carry: I64  # (n_entities, specs)


def _group_state(group: GroupPlan, inserted: Rows, popped: I64, n_entities: int) -> _GroupState:
    matrix = inserted.rows
    kept = popped < 0
    order = np.flatnonzero(kept)
    order = order[np.lexsort((matrix[order, 1], matrix[order, 0], inserted.entity[order]))]
    gone = np.flatnonzero(~kept)
    gone = gone[np.lexsort((matrix[gone, 1], matrix[gone, 0], popped[gone], inserted.entity[gone]))]
    carry0 = initial_carry(group.specs)
    masks = matrix[gone, FIRST_MASK : FIRST_MASK + len(group.filters)]
    carry = fold_groups(inserted.entity[gone], matrix[gone, 0], masks, group.specs, carry0, n_entities)
    counts = np.bincount(inserted.entity[order], minlength=n_entities).astype(np.int64)
    return _GroupState(counts, np.ascontiguousarray(matrix[order]), carry)


def _pack(states: Sequence[_GroupState], n_entities: int) -> list[bytes]:
    """``features.state.encode`` of every entity's group states, laid out in one buffer then sliced."""
    n_groups = len(states)
    sizes = np.full(n_entities, 2 + n_groups, dtype=np.int64)
    for state in states:
        sizes += state.counts * state.rows.shape[1] + state.carry.shape[1]
    ends = np.cumsum(sizes)
    starts = ends - sizes
    buffer = np.empty(int(ends[-1]) if n_entities else 0, dtype="<i8")
    buffer[starts] = MAGIC
    buffer[starts + 1] = n_groups
    cursor = starts + 2 + n_groups
    for index, state in enumerate(states):
        buffer[starts + 2 + index] = state.counts
        width = state.rows.shape[1]
        first = np.cumsum(state.counts) - state.counts  # first kept row of each entity
        entity = np.repeat(np.arange(n_entities), state.counts)
        rank = np.arange(len(entity)) - first[entity]
        target = cursor[entity] + rank * width
        buffer[target[:, None] + np.arange(width)] = state.rows
        cursor = cursor + state.counts * width
        buffer[cursor[:, None] + np.arange(state.carry.shape[1])] = state.carry
        cursor = cursor + state.carry.shape[1]
    data = buffer.tobytes()
    return [data[8 * start : 8 * end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


@njit(cache=True)
def _step_latest(
    entity: I64, attempt_t: I64, row_t: I64, record_t: I64, uses_attempts: bool
) -> I64:  # pragma: no cover - compiled
    """Per step (sorted by entity, position): the entity's "now" after it, as ``online._now_of`` gives it."""
    out = np.empty(entity.shape[0], dtype=np.int64)
    current = -1
    running = NO_TIME
    for k in range(entity.shape[0]):
        if entity[k] != current:
            current = entity[k]
            running = NO_TIME
        running = max(running, attempt_t[k] if uses_attempts else row_t[k])
        out[k] = record_t[k] if running == NO_TIME else running
    return out


@njit(cache=True)
def _pop_steps(
    entity: I64, step: I64, t: I64, threshold: I64, segment_end: I64
) -> I64:  # pragma: no cover - compiled
    """Per row: the first step (index), at or after the one inserting it, whose pruning threshold is above the
    row's time (thresholds never decrease within an entity); ``-1`` if the row is never pruned."""
    out = np.empty(t.shape[0], dtype=np.int64)
    for i in range(t.shape[0]):
        lo = step[i]
        hi = segment_end[entity[i]]
        if threshold[hi - 1] <= t[i]:
            out[i] = -1
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            if threshold[mid] > t[i]:
                hi = mid
            else:
                lo = mid + 1
        out[i] = lo
    return out


# -- from events to rows, records and writes --------------------------------------------------------------


@dataclass(frozen=True)
class _Codes:
    """A column as integer codes (``-1`` missing) and its distinct values as the engine keeps them (a text,
    or for a number field a float), with their JSON literals."""

    codes: I64
    texts: list[str]
    uniques: list[object]
    literals: list[str]

    @classmethod
    def of(cls, values: pd.Series) -> _Codes:
        codes, uniques = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
        texts = [str(u) for u in uniques]
        return cls(codes.astype(np.int64), texts, list(texts), json_strings(texts))

    @classmethod
    def numbers(cls, values: pd.Series) -> _Codes:
        """A number field: :func:`features.plan.number_or_none` of each value, coded by its bits (so ``-0.0``
        keeps its sign, as ``json.dumps`` of the online record does)."""
        if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
            floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            converted = [number_or_none(v) for v in values.to_numpy(dtype=object)]
            floats = np.array([np.nan if v is None else v for v in converted], dtype=np.float64)
        present = ~np.isnan(floats)
        codes = np.full(len(floats), -1, dtype=np.int64)
        found, bits = pd.factorize(floats[present].view(np.int64))
        codes[present] = found
        uniques = np.asarray(bits, dtype=np.int64).view(np.float64).tolist()
        return cls(codes, [str(u) for u in uniques], uniques, [json.dumps(u) for u in uniques])

    def pairs(self, name: str, *, skip_missing: bool) -> ObjectArray:
        """Each row as ``, "name": value`` (JSON; ``null`` when missing, or nothing if ``skip_missing``)."""
        prefix = ", " + json.dumps(name) + ": "
        literals = [prefix + literal for literal in self.literals]
        literals.append("" if skip_missing else prefix + "null")
        return np.array(literals, dtype=object)[self.codes]

    def hashes(self) -> I64:
        table = np.append(hash_keys(pd.Series(self.texts, dtype=object)), MISSING).astype(np.int64)
        return table[self.codes]

    def passes(self, flt: AnyFilter) -> I64:
        """Per row, 1 if it passes ``flt`` (as the online engine tests its record), else 0."""
        table = np.array([flt.matches(u) for u in self.uniques] + [False], dtype=np.int64)
        return table[self.codes]

    def present(self) -> Bools:
        return self.codes >= 0


class _AttemptTable:
    """The first arrival of every attempt, as columns the records and the entity rows are built from."""

    def __init__(self, engine: OnlineEngine, arrivals: Arrivals) -> None:
        frame = arrivals.frame
        _require(frame, "attempts", ["attempt_id", "occurred_at", "account_id", "amount"])
        first = _first_arrivals(_column(frame, "attempt_id"), arrivals.position, [])
        frame = frame.iloc[first].reset_index(drop=True)
        self.ids = _texts(_column(frame, "attempt_id"), "attempt_id")
        self.position = arrivals.position[first]
        self.t = _times(_column(frame, "occurred_at"), "occurred_at")
        self.id_hash = hash_keys(pd.Series(self.ids, dtype=object))
        self.milli = amount_milli(_numbers(_column(frame, "amount"), "amount"))
        self.account = _texts(_column(frame, "account_id"), "account_id")
        self.keys = {e.name: _Codes.of(_column(frame, e.key)) for e in engine._entities}
        self.values = {name: _Codes.of(_column(frame, name)) for name in engine._value_keys}
        numbers = engine.feature_set.attempt_fields.numbers
        self.fields = {
            name: (_Codes.numbers if name in numbers else _Codes.of)(_column(frame, name))
            for name in engine.feature_set.filtered_fields
        }
        self.index = pd.Index(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def records(self, engine: OnlineEngine, labels: Sequence[_LabelTable]) -> list[str]:
        """Each attempt's record, as ``json.dumps`` writes ``OnlineEngine._record_of`` + its labels."""
        keys = _json_object([self.keys[e.name].pairs(e.name, skip_missing=True) for e in engine._entities])
        values = _json_object([self.values[k].pairs(k, skip_missing=False) for k in engine._value_keys])
        fields = _json_object([codes.pairs(f, skip_missing=False) for f, codes in self.fields.items()])
        parts = [
            _text_array('{"t": ', self.t, ', "account": '),
            np.array(json_strings(list(self.account)), dtype=object),
            _text_array(', "milli": ', self.milli, ', "keys": {'),
            keys,
            np.full(len(self), '}, "values": {', dtype=object),
            values,
            np.full(len(self), '}, "fields": {', dtype=object),
            fields,
            np.full(len(self), '}, "labels": [', dtype=object),
            self._labels(labels),
            np.full(len(self), "]}", dtype=object),
        ]
        return list(_concat(parts))

    def _labels(self, labels: Sequence[_LabelTable]) -> ObjectArray:
        """Per attempt, its applied labels as JSON list items, in the order they were applied (arrival)."""
        position = np.concatenate([label.position[label.applied] for label in labels])
        attempt = np.concatenate([label.attempt[label.applied] for label in labels])
        tags = np.concatenate([label.tags[label.applied] for label in labels])
        order = np.lexsort((position, attempt))
        attempt, tags = attempt[order], tags[order]
        later = np.zeros(len(attempt), dtype=bool)
        later[1:] = attempt[1:] == attempt[:-1]
        applied = np.full(len(self), "", dtype=object)
        np.add.at(applied, attempt, np.where(later, ", " + tags, tags))
        return applied


class _LabelTable:
    """The first arrival of every outcome or report of one source, joined to its attempt."""

    def __init__(self, source: Source, arrivals: Arrivals, attempts: _AttemptTable) -> None:
        frame = arrivals.frame
        self.source = source
        if source == Source.OUTCOMES:
            _require(frame, "outcomes", ["attempt_id", "occurred_at", "status"])
            label_ids = _column(frame, "attempt_id").rename("attempt_id")
            time_column = "occurred_at"
        else:
            _require(frame, "fraud_reports", ["report_id", "attempt_id", "reported_at", "report_type"])
            label_ids = _column(frame, "report_id").rename("report_id")
            time_column = "reported_at"
        first = _first_arrivals(_column(frame, "attempt_id"), arrivals.position, [label_ids])
        frame = frame.iloc[first].reset_index(drop=True)
        self.frame = frame
        self.attempt_ids = _texts(_column(frame, "attempt_id"), "attempt_id")
        self.ids = _texts(label_ids.iloc[first].reset_index(drop=True), label_ids.name)
        self.position = arrivals.position[first]
        self.t = _times(_column(frame, time_column), time_column)
        self.id_hash = hash_keys(pd.Series(self.ids, dtype=object))
        self.fields = self._fields(frame)
        self.attempt = attempts.index.get_indexer(pd.Index(self.attempt_ids)).astype(np.int64)
        self.applied = self.attempt >= 0
        #: the step inserting the label: its own arrival, or its attempt's if it came first (pending)
        self.step = np.where(
            self.applied, np.maximum(self.position, attempts.position[np.maximum(self.attempt, 0)]), -1
        )
        self.tags = np.array(json_strings([f"{source.value}:{i}" for i in self.ids]), dtype=object)

    def _fields(self, frame: pd.DataFrame) -> dict[str, _Codes]:
        if self.source == Source.REPORTS:
            _texts(_column(frame, "report_type"), "report_type")
            return {"report_type": _Codes.of(_column(frame, "report_type"))}
        _texts(_column(frame, "status"), "status")
        codes = _column(frame, "decline_code").to_numpy(dtype=object)
        code = np.array([c if isinstance(c, str) else None for c in codes], dtype=object)
        family = np.array([DECLINE_FAMILY_OF.get(c) if c is not None else None for c in code], dtype=object)
        return {
            "status": _Codes.of(_column(frame, "status")),
            "decline_code": _Codes.of(pd.Series(code, dtype=object)),
            "decline_family": _Codes.of(pd.Series(family, dtype=object)),
        }

    def pending_rows(self) -> pd.DataFrame:
        """The labels whose attempt is not among the loaded ones: they stay pending."""
        return self.frame[~self.applied]


def load(engine: OnlineEngine, attempts: Arrivals, outcomes: Arrivals, reports: Arrivals) -> int:
    """Write the state of these events into ``engine``'s (empty) store; returns the number of keys written."""
    _refuse_existing_state(engine)
    table = _AttemptTable(engine, attempts)
    labels = [
        _LabelTable(Source.OUTCOMES, outcomes, table),
        _LabelTable(Source.REPORTS, reports, table),
    ]
    written = 0
    for batch in _batches(_writes(engine, table, labels, outcomes, reports), WRITE_BATCH):
        engine.store.put_many(batch)
        written += len(batch)
    logger.info(
        "bulk-loaded %d attempts, %d outcomes, %d reports: %d keys",
        len(table),
        len(outcomes.frame),
        len(reports.frame),
        written,
    )
    return written


def _writes(
    engine: OnlineEngine,
    table: _AttemptTable,
    labels: Sequence[_LabelTable],
    outcomes: Arrivals,
    reports: Arrivals,
) -> Iterator[Write]:
    horizon = _us(engine.retention.label_horizon)
    for attempt_id, record, t in zip(table.ids, table.records(engine, labels), table.t.tolist(), strict=True):
        yield engine._attempt_key(attempt_id), record.encode(), t + horizon
    yield from _account_indexes(engine, table, horizon)
    yield from _pending(engine, labels, horizon)
    for entity in engine._entities:
        yield from _entity_writes(engine, entity, table, labels)


def _account_indexes(engine: OnlineEngine, table: _AttemptTable, horizon: int) -> Iterator[Write]:
    order = np.lexsort((table.position, table.account))
    accounts = table.account[order]
    ids = table.ids[order]
    times = table.t[order]
    starts = np.flatnonzero(np.concatenate(([True], accounts[1:] != accounts[:-1])))
    ends = np.append(starts[1:], len(accounts))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        value = json.dumps(ids[start:end].tolist()).encode()
        yield engine._account_key(accounts[start]), value, int(times[end - 1]) + horizon


def _pending(engine: OnlineEngine, labels: Sequence[_LabelTable], horizon: int) -> Iterator[Write]:
    waiting: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for label in labels:
        rows = label.pending_rows()
        positions = label.position[~label.applied].tolist()
        for position, row in zip(positions, service_rows(rows), strict=True):
            attempt_id, payload = (
                engine._outcome_payload(row)
                if label.source == Source.OUTCOMES
                else engine._report_payload(row)
            )
            waiting.setdefault(attempt_id, []).append((position, payload))
    for attempt_id, queued in waiting.items():
        payloads = [payload for _, payload in sorted(queued, key=lambda item: item[0])]
        yield engine._pending_key(attempt_id), json.dumps(payloads).encode(), payloads[-1]["t"] + horizon


def _entity_writes(
    engine: OnlineEngine, entity: Entity, table: _AttemptTable, labels: Sequence[_LabelTable]
) -> Iterator[Write]:
    codes = table.keys[entity.name]
    if not codes.texts:
        return
    named = codes.present()
    steps = [(codes.codes[named], table.position[named], table.t[named], table.t[named])]
    for label in labels:
        after = label.applied & (label.position > table.position[np.maximum(label.attempt, 0)])
        owner = label.attempt[after]
        keep = named[owner]
        steps.append(
            (
                codes.codes[owner[keep]],
                label.position[after][keep],
                np.full(int(keep.sum()), NO_TIME),
                table.t[owner[keep]],
            )
        )
    groups = engine._by_entity[entity.name]
    rows = [_rows(group, codes, table, labels) for group in groups]
    blobs, latest = entity_blobs(
        groups,
        engine._horizon[entity.name],
        len(codes.texts),
        Steps(*(np.concatenate(parts).astype(np.int64) for parts in zip(*steps, strict=True))),
        rows,
    )
    ttl = engine.retention.entity_ttl
    ttl_us = None if ttl is None else _us(ttl)
    for key, blob, now in zip(codes.texts, blobs, latest.tolist(), strict=True):
        yield engine._entity_key(entity, key), blob, None if ttl_us is None else now + ttl_us


def _rows(group: GroupPlan, codes: _Codes, table: _AttemptTable, labels: Sequence[_LabelTable]) -> Rows:
    """The rows one-by-one recording inserts into this group, for every entity of its type."""
    if group.source == Source.ATTEMPTS:
        owner = np.flatnonzero(codes.present())
        t, ids, step = table.t[owner], table.id_hash[owner], table.position[owner]
        masks = [table.fields[f.field].passes(f)[owner] for f in group.filters]
    else:
        label = next(label for label in labels if label.source == group.source)
        chosen = np.flatnonzero(label.applied)
        chosen = chosen[codes.present()[label.attempt[chosen]]]
        owner = label.attempt[chosen]
        t, ids, step = label.t[chosen], label.id_hash[chosen], label.step[chosen]
        masks = []
        for f in group.filters:
            if f.field in label.fields:
                masks.append(label.fields[f.field].passes(f)[chosen])
            else:
                masks.append(table.fields[f.field].passes(f)[owner])
    values = [
        table.milli[owner] if name == "amount" else table.values[name].hashes()[owner]
        for name in group.values
    ]
    matrix = (
        np.column_stack([t, ids, *masks, *values]).astype(np.int64)
        if len(owner)
        else np.empty((0, FIRST_MASK + len(group.filters) + len(group.values)), np.int64)
    )
    return Rows(codes.codes[owner], step.astype(np.int64), matrix)


# -- helpers ----------------------------------------------------------------------------------------------


def _refuse_existing_state(engine: OnlineEngine) -> None:
    if next(iter(engine.store.keys(engine._prefix)), None) is not None:
        raise BulkLoadError(
            f"the online store already holds state for feature set {engine.feature_set.hash[:12]}: "
            "bulk loading builds the state from scratch; load into an empty store, or record the events "
            "one by one (features.history.load_history(..., bulk=False))"
        )


def _first_arrivals(attempt_ids: pd.Series, position: I64, extra: list[pd.Series]) -> I64:
    """Row numbers of the first arrival of each distinct event (later duplicates are no-ops one by one)."""
    keys = pd.DataFrame(
        {
            "attempt_id": attempt_ids.to_numpy(dtype=object),
            **{f"k{i}": s.to_numpy(dtype=object) for i, s in enumerate(extra)},
        }
    )
    order = np.argsort(position, kind="stable")
    duplicated = keys.iloc[order].duplicated(keep="first").to_numpy()
    first: I64 = order[~duplicated]
    return first


def _require(frame: pd.DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing and len(frame):
        raise BulkLoadError(f"{name}: missing field(s) {missing}; the event contract is in events/schema.py")


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A field the engine reads, absent from the events meaning missing everywhere (as ``attempt.get``)."""
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), dtype=object)


def _texts(series: pd.Series, name: object) -> ObjectArray:
    values = series.to_numpy(dtype=object)
    bad = [v for v in values if not isinstance(v, str) or not v]
    if bad:
        raise BulkLoadError(
            f"event field {name!r} must be a non-empty string; {len(bad)} events have e.g. {bad[0]!r}"
        )
    return values


def _times(series: pd.Series, name: str) -> I64:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        if series.isna().any():
            raise BulkLoadError(f"event field {name!r} is missing in {int(series.isna().sum())} events")
        return series_to_us(series)
    values = series.to_numpy(dtype=object)
    naive = [v for v in values if getattr(v, "tzinfo", None) is None]
    if naive:
        raise BulkLoadError(
            f"event field {name!r} must be a tz-aware (UTC) datetime; "
            f"{len(naive)} events have e.g. {naive[0]!r}"
        )
    return series_to_us(pd.Series(values, dtype=object))


def _numbers(series: pd.Series, name: str) -> npt.NDArray[np.float64]:
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    values = series.to_numpy(dtype=object)
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int | float)]
    if bad:
        raise BulkLoadError(f"event field {name!r} must be a number; {len(bad)} events have e.g. {bad[0]!r}")
    return values.astype(np.float64)


def _json_object(pairs: list[ObjectArray]) -> ObjectArray:
    """Per row, the inside of a JSON object from its ``, "name": value`` pieces (the first comma dropped)."""
    if not pairs:
        return np.array([], dtype=object)
    joined = _concat(pairs)
    return np.array([text[2:] for text in joined], dtype=object)


def _concat(columns: list[ObjectArray]) -> ObjectArray:
    """Row-wise concatenation of string columns."""
    out = columns[0]
    for column in columns[1:]:
        out = out + column
    return out


def _text_array(before: str, numbers: I64, after: str) -> ObjectArray:
    """``before + str(n) + after`` for each integer."""
    return np.array([before + str(n) + after for n in numbers.tolist()], dtype=object)


def service_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the service receives them: plain field dicts, every missing marker (NaN, NaT, NA) as None."""
    columns = {str(name): frame[name].to_numpy(dtype=object, copy=True) for name in frame.columns}
    for values in columns.values():
        values[pd.isna(values)] = None
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _batches(writes: Iterator[Write], size: int) -> Iterator[list[Write]]:
    batch: list[Write] = []
    for write in writes:
        batch.append(write)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
