"""The packed entity state: the compiled scan inserts, prunes and refuses as a plain reference does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.definitions import CARD
from features.iptv import FEATURE_SET
from features.kernels import fold, initial_carry
from features.online import OnlineEngine, _now_of
from features.plan import GroupPlan
from features.state import (
    EV_FIRST_FIELD,
    FIRST_MASK,
    ID,
    SOURCE_CODE,
    TIME,
    CorruptStateError,
    GroupState,
    Layout,
    Scan,
    encode,
)
from features.stores.memory import MemoryStore
from tests.features.factory import attempt, history_of
from tests.features.replay import records

ENGINE = OnlineEngine(MemoryStore(), FEATURE_SET)
#: A small time range and few ids: equal times and equal (time, id) pairs happen often.
TIMES = st.integers(0, 4)
IDS = st.integers(0, 1)


def _reference_insert(state: GroupState, row: np.ndarray) -> None:
    """The order the batch engine sorts events in, one row at a time: before the first row at or after the
    new row's (time, id hash)."""
    times, ids = state.rows[:, TIME], state.rows[:, ID]
    position = int(np.searchsorted(times, row[TIME], side="left"))
    while position < len(times) and times[position] == row[TIME] and ids[position] < row[ID]:
        position += 1
    state.rows = np.insert(state.rows, position, row, axis=0)


def _reference_prune(group: GroupPlan, state: GroupState, before: int) -> None:
    cut = int(np.searchsorted(state.rows[:, TIME], before, side="left"))
    gone = state.rows[:cut]
    state.carry = fold(
        gone[:, TIME].copy(), gone[:, FIRST_MASK : FIRST_MASK + state.n_masks], group.specs, state.carry
    )
    state.rows = state.rows[cut:]


@st.composite
def entity_states(draw: st.DrawFn, entity: int) -> list[GroupState]:
    """Sorted random rows and a random carry for each group of the entity."""
    states = []
    for group in ENGINE._by_entity[ENGINE._entities[entity].name]:
        n = draw(st.integers(0, 6))
        width = FIRST_MASK + len(group.filters) + len(group.values)
        rows = np.array(
            [
                [draw(TIMES), draw(IDS), *(draw(st.integers(0, 1)) for _ in group.filters)]
                + [draw(st.integers(-1, 5)) for _ in group.values]
                for _ in range(n)
            ],
            dtype=np.int64,
        ).reshape(n, width)
        rows = rows[np.lexsort((rows[:, ID], rows[:, TIME]))]
        carry = initial_carry(group.specs)
        if draw(st.booleans()):
            carry = np.array([draw(st.integers(0, 30)) for _ in group.specs], dtype=np.int64)
        states.append(GroupState(rows, carry, len(group.filters)))
    return states


@st.composite
def event_rows(draw: st.DrawFn) -> np.ndarray:
    """A few events of any source, in the layout of :class:`features.state.EventColumns`."""
    columns = ENGINE._fields
    rows = [
        [draw(st.sampled_from(sorted(SOURCE_CODE.values()))), draw(TIMES), draw(IDS)]
        + [draw(st.integers(0, 1)) for _ in columns.filters]
        + [draw(st.integers(-1, 5)) for _ in columns.values]
        for _ in range(draw(st.integers(0, 3)))
    ]
    return np.array(rows, dtype=np.int64).reshape(len(rows), columns.width)


def _group_row(group: GroupPlan, event: np.ndarray) -> np.ndarray:
    columns = ENGINE._fields
    bits = [event[columns.filter_column(f)] for f in group.filters]
    values = [event[columns.value_column(v)] for v in group.values]
    return np.array([event[1], event[2], *bits, *values], dtype=np.int64)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), entity=st.integers(0, len(ENGINE._entities) - 1), now=TIMES, horizon=st.integers(0, 6))
def test_the_compiled_update_inserts_and_prunes_as_one_row_at_a_time(
    data: Any, entity: int, now: int, horizon: int
) -> None:
    states = data.draw(entity_states(entity))
    events = data.draw(event_rows())
    groups = ENGINE._by_entity[ENGINE._entities[entity].name]
    layout = Layout.of([groups], [horizon], ENGINE._fields, lambda aggregate: -1)  # a short horizon prunes
    scan = Scan.of([encode(states)], [0], np.empty(0, np.int64), ["key"])
    ((blob, latest),) = layout.scan(scan, np.empty((0, 0)), events, now)
    for group, state in zip(groups, states, strict=True):
        for event in events:
            if event[0] == SOURCE_CODE[group.source]:
                _reference_insert(state, _group_row(group, event))
    expected_latest = _now_of(groups, states, now)
    for group, state in zip(groups, states, strict=True):
        _reference_prune(group, state, expected_latest - horizon)
    assert latest == expected_latest
    assert blob == encode(states)


def test_scoring_reads_the_scanned_state_into_the_vector_columns() -> None:
    """Score with no events: the scan writes nothing back, and an entity's columns come from its state."""
    online = OnlineEngine(MemoryStore(), FEATURE_SET)
    (first,) = records(history_of([attempt("a1", "10:00")]).attempts)
    online.record_attempt(first)
    later = {**first, "attempt_id": "a2", "occurred_at": first["occurred_at"] + timedelta(minutes=30)}
    vector = online.features_for(later)
    assert vector[FEATURE_SET.names.index("card_attempts_count_1h")] == 1
    assert vector[FEATURE_SET.names.index("device_attempts_count_1h")] == 1
    without_device = online.features_for({**later, "device_id": None})
    assert np.isnan(without_device[FEATURE_SET.names.index("device_attempts_count_1h")])
    assert without_device[FEATURE_SET.names.index("card_attempts_count_1h")] == 1


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda blob: b"\0" * len(blob), "does not match the feature set's groups"),
        (lambda blob: blob[:-8], "does not match the feature set's groups"),  # sizes do not add up
        (lambda blob: blob + b"\0" * 8, "does not match the feature set's groups"),
        (lambda blob: blob[:-3], "not a whole number of 64-bit words"),
        (lambda blob: blob[:8], "does not match the feature set's groups"),
    ],
)
def test_a_corrupt_entity_state_is_refused_with_its_key_named(corrupt: Any, message: str) -> None:
    online = OnlineEngine(MemoryStore(), FEATURE_SET)
    (row,) = records(history_of([attempt("a1", "10:00")]).attempts)
    online.record_attempt(row)
    key = online._entity_key(CARD, str(row["payment_method_id"]))
    (blob,) = online.store.get_many([key])
    assert blob is not None
    online.store.put_many([(key, corrupt(blob), None)])
    later = {**row, "attempt_id": "a2", "occurred_at": row["occurred_at"] + timedelta(hours=1)}
    for call in (online.features_for, online.score_and_record, online.record_attempt):
        with pytest.raises(CorruptStateError, match=message) as raised:
            call(later)
        assert key in str(raised.value)


def test_event_columns_hold_every_filter_and_value_a_group_reads() -> None:
    columns = ENGINE._fields
    for group in ENGINE._groups:
        for item in group.filters:
            assert EV_FIRST_FIELD <= columns.filter_column(item) < columns.width
        for name in group.values:
            assert columns.value_column(name) < columns.width
    assert len(set(columns.filters)) == len(columns.filters)


def test_a_big_endian_machine_is_refused_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    groups = ENGINE._by_entity[ENGINE._entities[0].name]
    monkeypatch.setattr("features.state.sys.byteorder", "big")
    with pytest.raises(RuntimeError, match=r"little-endian int64.*big-endian machine is not supported"):
        Layout.of([groups], [1], ENGINE._fields, lambda aggregate: -1)
