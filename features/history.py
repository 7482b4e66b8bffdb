"""A data directory's history as one time-ordered event stream, and loading it into the online engine.

The stream is what the service would have received had it been live: every attempt at its ``occurred_at``,
every gateway outcome at its ``occurred_at`` and every fraud report at its ``reported_at``; at equal times
the attempt comes first, then its outcome, then reports. :func:`load_history` records the stream up to a
moment into an :class:`features.online.OnlineEngine`, which is how a backtest, the recovery evaluation and a
provider going live start from the state the history implies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from events.io import read_events
from events.schema import EventKind
from features.online import OnlineEngine

EventType = Literal["attempt", "outcome", "report"]
#: (event time in ns since the epoch, order at equal times, type, fields as the service receives them)
Event = tuple[int, int, EventType, dict[str, Any]]

_ORDER: Final[dict[EventType, int]] = {"attempt": 0, "outcome": 1, "report": 2}


def _value(value: object) -> object:
    """A missing value as None (the engine's "absent"), whatever missing marker the column's dtype uses."""
    missing = value is None or value is pd.NaT or value is pd.NA
    return None if missing or (isinstance(value, float) and math.isnan(value)) else value


def _events(frame: pd.DataFrame, kind: EventType, time_column: str) -> list[Event]:
    times = pd.to_datetime(frame[time_column], utc=True)
    frame = frame.assign(**{time_column: times})
    keys = times.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    rows = [{str(k): _value(v) for k, v in row.items()} for row in frame.to_dict("records")]
    return [(int(key), _ORDER[kind], kind, row) for key, row in zip(keys, rows, strict=True)]


def event_stream(data_dir: Path) -> list[Event]:
    """Every event of a data directory, in time order (attempt, then outcome, then report at equal times)."""
    events = [
        *_events(read_events(data_dir, EventKind.ATTEMPTS), "attempt", "occurred_at"),
        *_events(read_events(data_dir, EventKind.OUTCOMES), "outcome", "occurred_at"),
        *_events(read_events(data_dir, EventKind.FRAUD_REPORTS), "report", "reported_at"),
    ]
    events.sort(key=lambda event: (event[0], event[1]))
    return events


def ns_of(moment: datetime) -> int:
    """A timezone-aware moment as ns since the epoch, the stream's time key."""
    if moment.tzinfo is None:
        raise ValueError(f"moment {moment.isoformat()} has no timezone; event times are UTC-aware")
    return int(pd.Timestamp(moment).as_unit("ns").value)


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


def load_history(engine: OnlineEngine, events: Iterable[Event], until: datetime) -> Loaded:
    """Record every event strictly before ``until`` (time-ordered ``events``) into ``engine``.

    The state afterwards is what the engine holds had it received those events live, one by one.
    """
    limit = ns_of(until)
    count = 0
    for event in _before(events, limit):
        record(engine, event)
        count += 1
    return Loaded(events=count, until_ns=limit)


def _before(events: Iterable[Event], limit: int) -> Iterator[Event]:
    for event in events:
        if event[0] >= limit:
            return
        yield event
