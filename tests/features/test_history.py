"""A data directory's history as one event stream, and loading it into the online engine up to a moment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from events.io import read_events
from events.schema import EventKind
from features.history import event_stream, load_data_dir, load_history, ns_of
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from simulator import WorldConfig, simulate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history-world") / "data"
    simulate(WorldConfig(accounts=400, months=3, seed=5, chunk_accounts=400), out)
    return out


def test_the_stream_holds_every_event_once_in_time_order(world: Path) -> None:
    stream = event_stream(world)
    counts = {kind: len(read_events(world, kind)) for kind in EventKind}
    assert len(stream) == sum(counts.values())
    keys = [(t, order) for t, order, *_ in stream]
    assert keys == sorted(keys)
    assert {kind for *_, kind, _ in stream} == {"attempt", "outcome", "report"}


def test_loading_stops_strictly_before_the_moment_and_matches_the_live_state(world: Path) -> None:
    stream = event_stream(world)
    middle = pd.Timestamp(stream[len(stream) // 2][0], unit="ns", tz="UTC").to_pydatetime()
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    loaded = load_history(engine, stream, middle)
    times = np.array([t for t, *_ in stream])
    assert loaded.events == int((times < ns_of(middle)).sum())
    probe = next(fields for t, _, kind, fields in stream if kind == "attempt" and t >= ns_of(middle))
    live = OnlineEngine(MemoryStore(), FEATURE_SET)
    for t, _, kind, fields in stream:
        if t >= ns_of(middle):
            break
        getattr(live, f"record_{kind}")(fields)
    np.testing.assert_array_equal(engine.features_for(probe), live.features_for(probe))


def test_a_moment_without_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        ns_of(datetime(2025, 1, 1))
    assert ns_of(datetime(1970, 1, 1, tzinfo=UTC)) == 0


def test_a_moment_beyond_nanoseconds_loads_every_event(world: Path) -> None:
    """The CLI's default ``--until`` (9999-01-01): after every event, not an overflow."""
    far = datetime(9999, 1, 1, tzinfo=UTC)
    assert ns_of(far) > ns_of(datetime(2262, 1, 1, tzinfo=UTC))
    loaded = load_data_dir(OnlineEngine(MemoryStore(), FEATURE_SET), world, far)
    assert loaded.events == len(event_stream(world))


def test_an_attempt_at_several_times_is_each_time_its_own_vector(world: Path) -> None:
    stream = event_stream(world)
    middle = stream[len(stream) // 2][0]
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(engine, stream, pd.Timestamp(middle, unit="ns", tz="UTC").to_pydatetime())
    probes = [fields for t, _, kind, fields in stream if kind == "attempt" and t >= middle][:20]
    for probe in probes:
        start = pd.Timestamp(probe["occurred_at"])
        hours = [30.0, 1.0, 200.0, 1.0, 0.0, 24.0 * 40]  # unsorted, repeated, up to past the 30-day windows
        times = [start + pd.Timedelta(hours=h) for h in hours]
        rows = engine.features_at(probe, times)
        for at, row in zip(times, rows, strict=True):
            np.testing.assert_array_equal(row, engine.features_for({**probe, "occurred_at": at}))
