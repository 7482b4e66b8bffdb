"""Bulk loading leaves, key for key and byte for byte, the store that recording one event at a time leaves."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.bulk import BulkLoadError
from features.history import Event, EventType, event_stream, load_data_dir, load_history, ns_of, record
from features.iptv import FEATURE_SET
from features.online import OnlineEngine, Retention
from features.state import decode, json_strings
from features.stores import OnlineStore
from features.stores.memory import MemoryStore
from features.stores.redis import RedisStore
from features.stores.sqlite import SQLiteStore
from simulator import WorldConfig, simulate
from tests.features.factory import History, attempt, histories, history_of, outcome, random_history, report
from tests.features.replay import records, stream

FAR: datetime = pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime()
Dump = dict[str, tuple[bytes, int | None]]


def dump(store: OnlineStore) -> Dump:
    """Every key with its value and expiry, read from the backend itself."""
    if isinstance(store, MemoryStore):
        return dict(store._data)
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as connection:
            rows = connection.execute("SELECT k, v, expires FROM kv").fetchall()
        return {k: (bytes(v), expires) for k, v, expires in rows}
    assert isinstance(store, RedisStore)
    client = redis.Redis.from_url(store.url)
    out: Dump = {}
    for raw in client.scan_iter(match="rg:*"):
        key = bytes(raw).decode()
        value, expires = client.get(key), client.zscore("riskgate:__expiry__", key)
        out[key] = (bytes(value), None if expires is None else int(expires))  # type: ignore[arg-type]
    return out


def events_of(history: History, *, seed: int | None = None, early_labels: float = 0.0) -> list[Event]:
    """The history as a stream of events (arrival order as ``tests.features.replay.stream`` gives it)."""
    kinds: dict[str, tuple[int, EventType]] = {
        "attempt": (0, "attempt"),
        "outcome": (1, "outcome"),
        "report": (2, "report"),
    }
    events: list[Event] = []
    for kind, row in stream(history, seed=seed, early_labels=early_labels):
        order, name = kinds[kind]
        events.append((0, order, name, dict(row)))
    return events


def timed_events(history: History) -> list[Event]:
    """The history in event-time order, as ``features.history.event_stream`` orders a data directory."""
    events: list[Event] = [
        (ns_of(f["occurred_at"]), 0, "attempt", dict(f)) for f in records(history.attempts)
    ]
    events += [(ns_of(f["occurred_at"]), 1, "outcome", dict(f)) for f in records(history.outcomes)]
    events += [(ns_of(f["reported_at"]), 2, "report", dict(f)) for f in records(history.reports)]
    return sorted(events, key=lambda event: (event[0], event[1]))


def one_by_one(events: list[Event], store: OnlineStore | None = None) -> OnlineEngine:
    engine = OnlineEngine(store or MemoryStore(), FEATURE_SET)
    load_history(engine, events, FAR, bulk=False)
    return engine


def in_bulk(events: list[Event], store: OnlineStore | None = None) -> OnlineEngine:
    engine = OnlineEngine(store or MemoryStore(), FEATURE_SET)
    load_history(engine, events, FAR)
    return engine


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bulk-world") / "data"
    simulate(WorldConfig(accounts=300, months=4, seed=11, chunk_accounts=300), out)
    return out


def _moment(events: list[Event], share: float) -> datetime:
    return pd.Timestamp(events[int(len(events) * share)][0], unit="ns", tz="UTC").to_pydatetime()


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_a_simulated_world_loads_in_bulk_into_the_state_one_by_one_recording_leaves(
    world: Path, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    events = event_stream(world)
    until = _moment(events, 0.7)
    reference = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(reference, events, until, bulk=False)
    stores: dict[str, OnlineStore] = {"memory": MemoryStore()}
    if backend == "sqlite":
        stores["sqlite"] = SQLiteStore(tmp_path / "online.db")
    if backend == "redis":
        stores["redis"] = request.getfixturevalue("redis_store")
    engine = OnlineEngine(stores[backend], FEATURE_SET)
    loaded = load_history(engine, events, until)
    assert loaded.events == sum(1 for t, *_ in events if t < ns_of(until))
    assert dump(engine.store) == dump(reference.store)
    later = [fields for t, _, kind, fields in events if kind == "attempt" and t >= ns_of(until)][:50]
    for probe in later:
        np.testing.assert_array_equal(engine.features_for(probe), reference.features_for(probe))


def test_loading_a_data_directory_equals_loading_its_event_stream(world: Path) -> None:
    events = event_stream(world)
    until = _moment(events, 0.5)
    from_stream = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(from_stream, events, until)
    from_tables = OnlineEngine(MemoryStore(), FEATURE_SET)
    loaded = load_data_dir(from_tables, world, until)
    assert loaded.events == sum(1 for t, *_ in events if t < ns_of(until))
    assert dump(from_tables.store) == dump(from_stream.store)


def test_recording_goes_on_after_a_bulk_load_as_if_every_event_had_been_recorded_live(world: Path) -> None:
    events = event_stream(world)
    until = _moment(events, 0.4)
    live = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(live, events, FAR, bulk=False)
    warmed = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(warmed, events, until)
    for event in events:
        recorded = record(warmed, event)
        assert recorded == (event[0] >= ns_of(until))  # events loaded already are no-ops (idempotent)
    assert dump(warmed.store) == dump(live.store)


EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@EXAMPLES
@given(histories(max_events=80), st.integers(0, 2**31), st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_any_arrival_order_with_early_labels_and_duplicates_loads_like_one_by_one(
    history: History, seed: int, early: float, repeated: float
) -> None:
    events = events_of(history, seed=seed, early_labels=early)
    events += events[: int(len(events) * repeated)]  # deliveries repeated: no-ops one by one
    assert dump(in_bulk(events).store) == dump(one_by_one(events).store)


@EXAMPLES
@given(histories(max_events=80), st.sampled_from([None, 0, 3]))
def test_any_retention_loads_like_one_by_one(history: History, ttl_days: int | None) -> None:
    retention = Retention(
        slack=pd.Timedelta(hours=1).to_pytimedelta(),
        entity_ttl=None if ttl_days is None else pd.Timedelta(days=ttl_days).to_pytimedelta(),
    )
    events = events_of(history)
    bulk = OnlineEngine(MemoryStore(), FEATURE_SET, retention)
    load_history(bulk, events, FAR)
    reference = OnlineEngine(MemoryStore(), FEATURE_SET, retention)
    load_history(reference, events, FAR, bulk=False)
    assert dump(bulk.store) == dump(reference.store)


def test_labels_whose_attempt_comes_after_the_moment_wait_as_pending() -> None:
    history = history_of(
        [attempt("a1", "10:00"), attempt("a2", "10:30")],
        [
            outcome("a1", "10:01", "declined", "do_not_honor"),
            outcome("a2", "10:10", "declined", "expired_card"),
        ],
        [report("r2", "a2", "10:20")],
    )
    timed = timed_events(history)
    until = pd.Timestamp("2026-01-01T10:25", tz="UTC").to_pydatetime()
    bulk = OnlineEngine(MemoryStore(), FEATURE_SET)
    assert load_history(bulk, timed, until).events == 4  # a1, its outcome, a2's outcome and report (early)
    reference = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(reference, timed, until, bulk=False)
    assert dump(bulk.store) == dump(reference.store)
    assert any(":p:a2" in key for key in dump(bulk.store))
    (late,) = [fields for _, _, kind, fields in timed if kind == "attempt" and fields["attempt_id"] == "a2"]
    assert bulk.record_attempt(late)
    assert reference.record_attempt(late)
    assert dump(bulk.store) == dump(reference.store)
    probe = {**late, "attempt_id": "a3", "occurred_at": late["occurred_at"] + pd.Timedelta(hours=1)}
    vector = bulk.features_for(probe)
    assert vector[FEATURE_SET.names.index("card_outcomes_declined_count_1d")] == 2


def test_old_events_are_pruned_into_the_carry_as_one_by_one() -> None:
    history = random_history(300, seed=3, accounts=3, days=400.0, tick_seconds=3_600)
    events = events_of(history)
    bulk, reference = in_bulk(events), one_by_one(events)
    state = dump(bulk.store)
    assert state == dump(reference.store)
    card_keys = [key for key in state if ":e:card:" in key]
    groups = [g for g in bulk._groups if g.entity.name == "card"]
    kept = sum(len(s.rows) for key in card_keys for s in decode(groups, state[key][0]))
    inserted = len(history.attempts) + len(history.outcomes) + len(history.reports)
    assert 0 < kept < inserted  # most of 400 days of history lies beyond the longest window


def test_a_store_holding_state_is_refused_and_one_by_one_still_loads_into_it() -> None:
    events = events_of(random_history(20, seed=1))
    engine = in_bulk(events[:10])
    with pytest.raises(BulkLoadError, match="already holds state"):
        load_history(engine, events, FAR)
    load_history(engine, events, FAR, bulk=False)
    assert dump(engine.store) == dump(one_by_one(events).store)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"occurred_at": datetime(2026, 1, 1, 10)}, "tz-aware"),
        ({"attempt_id": ""}, "non-empty string"),
        ({"amount": "9.99"}, "must be a number"),
    ],
)
def test_bad_events_are_refused_before_anything_is_written(change: dict[str, object], message: str) -> None:
    events = events_of(random_history(5, seed=2))
    broken = [
        (t, o, kind, {**fields, **change} if kind == "attempt" else fields) for t, o, kind, fields in events
    ]
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    with pytest.raises(BulkLoadError, match=message):
        load_history(engine, broken, FAR)
    assert dump(engine.store) == {}


@given(st.lists(st.text(max_size=8), max_size=5))
def test_json_strings_are_what_json_dumps_writes(texts: list[str]) -> None:
    assert json_strings(texts) == [json.dumps(text) for text in texts]
