"""Batch and online engines agree: replay parity, arrival order, idempotency, row order, no leakage."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.io import read_events
from events.schema import EventKind
from features.batch import build_features
from features.definitions import CARD, DEVICE, FeatureSet, Op, Source, days, hours
from features.definitions import Aggregate as Agg
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from features.stores.redis import RedisStore
from features.stores.sqlite import SQLiteStore
from simulator import simulate
from simulator.config import WorldConfig
from tests.features.factory import History, histories, random_history
from tests.features.replay import mismatches, replay, stream

NAMES = FEATURE_SET.names
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def batch(history: History, feature_set: FeatureSet = FEATURE_SET) -> pd.DataFrame:
    return build_features(history.attempts, history.outcomes, history.reports, feature_set)


@EXAMPLES
@given(history=histories(), seed=st.integers(0, 2**31))
def test_online_replay_equals_batch_whatever_the_arrival_order(history: History, seed: int) -> None:
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    online = replay(engine, stream(history, seed=seed, early_labels=0.3))
    assert mismatches(batch(history), online, NAMES) == []


@EXAMPLES
@given(history=histories(), seed=st.integers(0, 2**31))
def test_scoring_and_recording_in_one_unit_of_work_equals_batch(history: History, seed: int) -> None:
    """The service's path (features read once, then the attempt recorded) replays like the batch engine,
    recording twice included."""
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    online = replay(engine, stream(history, seed=seed, early_labels=0.3), record_twice=True, combined=True)
    assert mismatches(batch(history), online, NAMES) == []


@EXAMPLES
@given(history=histories())
def test_recording_twice_changes_nothing(history: History) -> None:
    once = replay(OnlineEngine(MemoryStore(), FEATURE_SET), stream(history))
    twice = replay(OnlineEngine(MemoryStore(), FEATURE_SET), stream(history), record_twice=True)
    assert mismatches(once, twice, NAMES) == []


@EXAMPLES
@given(history=histories(), seed=st.integers(0, 2**31))
def test_batch_does_not_depend_on_row_order(history: History, seed: int) -> None:
    shuffled = History(
        *(
            frame.sample(frac=1.0, random_state=seed)
            for frame in (history.attempts, history.outcomes, history.reports)
        )
    )
    assert mismatches(batch(history), batch(shuffled), NAMES) == []


@EXAMPLES
@given(history=histories(), cut=st.floats(0.0, 1.0))
def test_events_after_an_attempt_never_change_its_features(history: History, cut: float) -> None:
    times = history.attempts["occurred_at"]
    cutoff = times.min() + (times.max() - times.min()) * cut
    known = History(
        history.attempts[history.attempts["occurred_at"] <= cutoff],
        history.outcomes[history.outcomes["occurred_at"] <= cutoff],
        history.reports[history.reports["reported_at"] <= cutoff],
    )
    full = batch(history)
    assert mismatches(batch(known), full[full["attempt_id"].isin(known.attempts["attempt_id"])], NAMES) == []


WINDOWED = FeatureSet(
    "windows",
    tuple(
        Agg(entity, source, op, window)
        for entity in (CARD, DEVICE)
        for source in (Source.ATTEMPTS, Source.OUTCOMES)
        for op in (Op.COUNT,)
        for window in (hours(1), hours(24), days(7), days(90), None)
    )
    + tuple(Agg(CARD, Source.ATTEMPTS, Op.SUM, w, value="amount") for w in (hours(1), days(7), days(90)))
    + tuple(
        Agg(DEVICE, Source.ATTEMPTS, Op.DISTINCT, w, value="account_id")
        for w in (hours(1), days(7), days(90))
    ),
)


@EXAMPLES
@given(history=histories())
def test_counts_sums_and_distinct_counts_grow_with_the_window(history: History) -> None:
    table = batch(history, WINDOWED)
    names = WINDOWED.names
    for narrow, wide in itertools.pairwise(names):
        same_family = narrow.rsplit("_", 1)[0] == wide.rsplit("_", 1)[0]
        if same_family:
            a, b = table[narrow].to_numpy(), table[wide].to_numpy()
            present = ~np.isnan(a)
            assert (a[present] <= b[present] + 1e-9).all(), f"{narrow} > {wide}"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_persistent_stores_replay_like_the_batch_engine(
    backend: str, tmp_path: Path, redis_store: RedisStore
) -> None:
    history = random_history(250, 11, accounts=12, days=200.0)
    store = SQLiteStore(tmp_path / "online.db") if backend == "sqlite" else redis_store
    events = stream(history, seed=3, early_labels=0.2)
    online = replay(OnlineEngine(store, FEATURE_SET), events, combined=backend == "sqlite")
    assert mismatches(batch(history), online, NAMES) == []


@pytest.mark.slow
@pytest.mark.no_cover  # the engines' lines are covered by the tests above; tracing would double the run time
def test_replaying_100k_simulated_attempts_reproduces_the_batch_table_exactly(tmp_path: Path) -> None:
    """A simulated year, in time order: score each attempt, record it, record labels when they happen."""
    simulate(WorldConfig(accounts=15_500, months=12, seed=7), tmp_path)
    history = History(*(read_events(tmp_path, kind) for kind in EventKind))
    online = replay(OnlineEngine(MemoryStore(), FEATURE_SET), stream(history, seed=1, early_labels=0.01))
    assert len(online) == len(history.attempts) >= 100_000
    assert mismatches(batch(history), online, NAMES) == []
