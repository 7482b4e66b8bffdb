"""A data directory's history as one time-ordered event stream, and loading it into the online engine.

The stream is what the service would have received had it been live: every attempt at its ``occurred_at``,
every gateway outcome at its ``occurred_at`` and every fraud report at its ``reported_at``; at equal times
the attempt comes first, then its outcome, then reports (and, within one kind, the order of the files).
:func:`load_history` records the stream up to a moment into an :class:`features.online.OnlineEngine`, which
is how a backtest, the recovery evaluation and a provider going live start from the state the history
implies; :func:`load_data_dir` does the same straight from a data directory's Parquet tables.

Loading is in bulk by default (:mod:`features.bulk`: the state one-by-one recording would leave, built per
entity in one pass, into an empty store); ``bulk=False`` records the events one at a time, the reference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from core.progress import NO_PROGRESS, Progress
from events.io import read_events, read_extension
from events.schema import EventKind
from features.batch import require_fields
from features.bulk import Arrivals, service_rows
from features.bulk import load as load_in_bulk
from features.kernels import I64
from features.online import OnlineEngine

logger = logging.getLogger(__name__)

EventType = Literal["attempt", "outcome", "report"]
#: (event time in ns since the epoch, order at equal times, type, fields as the service receives them)
Event = tuple[int, int, EventType, dict[str, Any]]

_ORDER: Final[dict[EventType, int]] = {"attempt": 0, "outcome": 1, "report": 2}
#: each kind's table and the column holding its event time
_TABLES: Final[dict[EventType, tuple[EventKind, str]]] = {
    "attempt": (EventKind.ATTEMPTS, "occurred_at"),
    "outcome": (EventKind.OUTCOMES, "occurred_at"),
    "report": (EventKind.FRAUD_REPORTS, "reported_at"),
}


def _time_keys(frame: pd.DataFrame, time_column: str) -> I64:
    """Event times as ns since the epoch (the stream's time key)."""
    times = pd.DatetimeIndex(pd.to_datetime(frame[time_column], utc=True)).as_unit("ns")
    return np.asarray(times.asi8, dtype=np.int64)


def _events(frame: pd.DataFrame, kind: EventType, time_column: str) -> list[Event]:
    frame = frame.assign(**{time_column: pd.to_datetime(frame[time_column], utc=True)})
    keys = _time_keys(frame, time_column).tolist()
    order = _ORDER[kind]
    return [(key, order, kind, row) for key, row in zip(keys, service_rows(frame), strict=True)]


def _tables(data_dir: Path) -> dict[EventType, pd.DataFrame]:
    return {kind: read_events(data_dir, table) for kind, (table, _) in _TABLES.items()}


def event_stream(data_dir: Path) -> list[Event]:
    """Every event of a data directory, in time order (attempt, then outcome, then report at equal times)."""
    events = [
        event for kind, frame in _tables(data_dir).items() for event in _events(frame, kind, _TABLES[kind][1])
    ]
    events.sort(key=lambda event: (event[0], event[1]))
    return events


def ns_of(moment: datetime) -> int:
    """A timezone-aware moment as ns since the epoch, the stream's time key; a moment past what nanoseconds
    can hold (after 2262, e.g. the CLI's "no limit" 9999-01-01) is the largest key, after every event."""
    if moment.tzinfo is None:
        raise ValueError(f"moment {moment.isoformat()} has no timezone; event times are UTC-aware")
    if moment > _LAST_NS:
        return int(np.iinfo(np.int64).max)
    return int(pd.Timestamp(moment).as_unit("ns").value)


_LAST_NS: Final = pd.Timestamp.max.tz_localize("UTC").to_pydatetime(warn=False)


def record(engine: OnlineEngine, event: Event) -> bool:
    """Record one event of the stream; False when the engine had it already (recording is idempotent)."""
    _, _, kind, fields = event
    if kind == "attempt":
        return engine.record_attempt(fields)
    if kind == "outcome":
        return engine.record_outcome(fields)
    return engine.record_report(fields)


@dataclass(frozen=True)
class Loaded:
    """What :func:`load_history` recorded."""

    events: int
    until_ns: int


def load_history(
    engine: OnlineEngine, events: Iterable[Event], until: datetime, *, bulk: bool = True
) -> Loaded:
    """Record every event strictly before ``until`` (time-ordered ``events``) into ``engine``.

    The state afterwards is what the engine holds had it received those events live, one by one. In bulk
    (the default) the engine's store must hold no state for its feature set yet
    (:class:`features.bulk.BulkLoadError` otherwise); ``bulk=False`` records one event at a time into any
    state (about 1.6 ms per event).
    """
    limit = ns_of(until)
    started = time.perf_counter()
    chosen = list(_before(events, limit))
    if bulk:
        load_in_bulk(engine, *_arrivals(chosen))
    else:
        for event in chosen:
            record(engine, event)
    logger.info("loaded %d events before %s in %.1f s", len(chosen), until, time.perf_counter() - started)
    return Loaded(events=len(chosen), until_ns=limit)


def load_data_dir(
    engine: OnlineEngine, data_dir: Path, until: datetime, *, progress: Progress = NO_PROGRESS
) -> Loaded:
    """:func:`load_history` of a data directory's :func:`event_stream`, in bulk, without building the
    stream's per-event dicts (the tables go to the bulk loader as columns); ``progress`` hears each step."""
    require_fields(engine.feature_set, read_extension(data_dir))
    limit = ns_of(until)
    started = time.perf_counter()
    progress.stage("read events")
    tables = _tables(data_dir)
    progress.stage("order events")
    keys = {kind: _time_keys(frame, _TABLES[kind][1]) for kind, frame in tables.items()}
    times = np.concatenate(list(keys.values()))
    orders = np.concatenate([np.full(len(keys[kind]), _ORDER[kind]) for kind in keys])
    rank = np.empty(len(times), dtype=np.int64)
    rank[np.lexsort((np.arange(len(times)), orders, times))] = np.arange(len(times))
    arrivals, offset = [], 0
    for kind, frame in tables.items():
        positions = rank[offset : offset + len(frame)]
        before = keys[kind] < limit
        arrivals.append(Arrivals(frame[before].reset_index(drop=True), positions[before]))
        offset += len(frame)
    progress.stage("load into the online store")
    load_in_bulk(engine, *arrivals)
    count = sum(len(a.position) for a in arrivals)
    logger.info(
        "loaded %d events of %s before %s in %.1f s", count, data_dir, until, time.perf_counter() - started
    )
    return Loaded(events=count, until_ns=limit)


def _arrivals(events: list[Event]) -> tuple[Arrivals, Arrivals, Arrivals]:
    """The events by kind as columns (values as the objects given), with their positions in ``events``."""
    rows: dict[EventType, list[Mapping[str, Any]]] = {kind: [] for kind in _ORDER}
    positions: dict[EventType, list[int]] = {kind: [] for kind in _ORDER}
    for position, (_, _, kind, fields) in enumerate(events):
        rows[kind].append(fields)
        positions[kind].append(position)
    attempts, outcomes, reports = (
        Arrivals(_columns(rows[kind]), np.array(positions[kind], dtype=np.int64)) for kind in _ORDER
    )
    return attempts, outcomes, reports


def _columns(rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    names = dict.fromkeys(name for row in rows for name in row)
    return pd.DataFrame(
        {name: pd.Series([row.get(name) for row in rows], dtype=object) for name in names},
        index=range(len(rows)),
    )


def _before(events: Iterable[Event], limit: int) -> Iterator[Event]:
    for event in events:
        if event[0] >= limit:
            return
        yield event
