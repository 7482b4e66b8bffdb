"""riskgate's trained failure model in the recovery evaluation: online features from the world's own history.

:class:`ReplayedFailureModel` scores candidate retries with a failure-model bundle (``predict_proba`` over
feature rows) and the features the service would compute: an :class:`features.online.OnlineEngine` on a
memory store into which the world's events (attempts, outcomes, fraud reports as of when they were reported)
are replayed in time order, up to the moment each invoice is planned. Cases must be planned in time order
(the evaluation sorts them): the replay only moves forward, so a case never sees an event after its decline.

What the engine does not see: the retries the evaluation itself simulates (the planner's context columns carry
the last simulated decline, which :class:`recovery.models.FeatureVectorModel` does not pass to the engine), so
after a simulated decline the features still describe the invoice's first decline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from events.io import read_events
from events.schema import EventKind
from features.definitions import FeatureSet
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from recovery.models import FeatureVectorModel, FloatArray, ProbabilityScorer

logger = logging.getLogger(__name__)

_ORDER = {"attempt": 0, "outcome": 1, "report": 2}  # at equal times: the attempt, then its outcome


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def _value(value: object) -> object:
    """A missing value as None (the engine's "absent"), whatever missing marker the column's dtype uses."""
    missing = value is None or value is pd.NaT or value is pd.NA
    return None if missing or (isinstance(value, float) and math.isnan(value)) else value


def _records(frame: pd.DataFrame, kind: str, time_column: str) -> list[tuple[int, int, str, dict[str, Any]]]:
    times = _utc(frame[time_column])
    frame = frame.assign(**{time_column: times})
    keys = times.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    rows = [
        {str(k): (None if v is pd.NaT else v) for k, v in row.items()} for row in frame.to_dict("records")
    ]
    return [(int(key), _ORDER[kind], kind, row) for key, row in zip(keys, rows, strict=True)]


def event_stream(data_dir: Path) -> list[tuple[int, int, str, dict[str, Any]]]:
    """Every event of a world as (time ns, order, kind, fields), in time order."""
    events = [
        *_records(read_events(data_dir, EventKind.ATTEMPTS), "attempt", "occurred_at"),
        *_records(read_events(data_dir, EventKind.OUTCOMES), "outcome", "occurred_at"),
        *_records(read_events(data_dir, EventKind.FRAUD_REPORTS), "report", "reported_at"),
    ]
    events.sort(key=lambda event: (event[0], event[1]))
    return events


class ReplayedFailureModel:
    """A failure bundle over online features replayed from a world's history, forward in time."""

    def __init__(self, data_dir: Path, feature_set: FeatureSet, scorer: ProbabilityScorer) -> None:
        self.engine = OnlineEngine(MemoryStore(), feature_set)
        self.model = FeatureVectorModel(self.engine, scorer)
        self._events: Iterator[tuple[int, int, str, dict[str, Any]]] = iter(event_stream(data_dir))
        self._pending: tuple[int, int, str, dict[str, Any]] | None = next(self._events, None)
        self._invoice: object = None
        self.replayed = 0

    def replay_until(self, until: datetime) -> None:
        """Record every event at or before ``until`` not recorded yet."""
        limit = pd.Timestamp(until).as_unit("ns").value
        while self._pending is not None and self._pending[0] <= limit:
            _, _, kind, fields = self._pending
            self._record(kind, fields)
            self.replayed += 1
            self._pending = next(self._events, None)

    def _record(self, kind: str, fields: Mapping[str, object]) -> None:
        if kind == "attempt":
            self.engine.record_attempt(fields)
        elif kind == "outcome":
            self.engine.record_outcome(fields)
        else:
            self.engine.record_report(fields)

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        if candidates.empty:
            return np.empty(0)
        invoice = candidates["invoice_id"].iloc[0]
        if invoice != self._invoice:  # a new case: bring the history up to its decline
            self._invoice = invoice
            self.replay_until(_utc(candidates["last_declined_at"]).min().to_pydatetime())
        return self.model(candidates)
