"""Replaying a history through the online engine, and comparing it with the batch table."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.online import OnlineEngine
from tests.features.factory import History

TOLERANCE = 1e-9

Event = tuple[str, dict[str, Any]]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the service would receive them: missing values as None, timestamps as tz-aware datetimes."""
    rows = frame.to_dict("records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in rows
    ]


def stream(history: History, *, seed: int | None = None, early_labels: float = 0.0) -> Iterator[Event]:
    """Every event in event-time order; attempts scored at their time; labels recorded when they happen.

    With a ``seed``, events sharing a timestamp arrive in random order, and a fraction ``early_labels`` of
    outcomes and reports arrive *before* their attempt (they wait as pending until it does).
    """
    rng = np.random.default_rng(seed)
    shuffle = seed is not None
    timed: list[tuple[pd.Timestamp, int, float, Event]] = []
    attempts = {row["attempt_id"]: row for row in _records(history.attempts)}
    for row in attempts.values():
        timed.append((row["occurred_at"], 1, rng.random() if shuffle else 0.0, ("attempt", row)))
    labels = [("outcome", r, r["occurred_at"]) for r in _records(history.outcomes)]
    labels += [("report", r, r["reported_at"]) for r in _records(history.reports)]
    for kind, row, at in labels:
        if shuffle and rng.random() < early_labels:
            timed.append((attempts[row["attempt_id"]]["occurred_at"], 0, 0.0, (kind, row)))
        else:
            timed.append((at, 1 if shuffle else 2, rng.random() if shuffle else 0.0, (kind, row)))
    timed.sort(key=lambda item: item[:3])
    for *_, event in timed:
        yield event


def replay(
    engine: OnlineEngine, events: Iterator[Event], *, record_twice: bool = False, combined: bool = False
) -> pd.DataFrame:
    """Score each attempt then record it; record outcomes and reports as they come. Returns the scores.

    ``combined`` scores and records through :meth:`OnlineEngine.score_and_record` (the service's path)."""
    scored: dict[str, np.ndarray] = {}
    for kind, row in events:
        for _ in range(2 if record_twice else 1):
            if kind == "attempt":
                if combined:
                    vector, _ = engine.score_and_record(row)
                    scored.setdefault(row["attempt_id"], vector)
                    continue
                if row["attempt_id"] not in scored:
                    scored[row["attempt_id"]] = engine.features_for(row)
                engine.record_attempt(row)
            elif kind == "outcome":
                engine.record_outcome(row)
            else:
                engine.record_report(row)
    frame = pd.DataFrame.from_dict(scored, orient="index", columns=engine.feature_set.names)
    return frame.rename_axis("attempt_id").reset_index()


def mismatches(
    expected: pd.DataFrame, got: pd.DataFrame, names: list[str], tolerance: float = TOLERANCE
) -> list[str]:
    """Human-readable differences beyond the tolerance (NaN equals NaN), keyed by attempt_id."""
    left = expected.set_index("attempt_id")
    right = got.set_index("attempt_id").loc[left.index]
    problems = []
    for name in names:
        a, b = left[name].to_numpy(np.float64), right[name].to_numpy(np.float64)
        same = (np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tolerance)
        for position in np.flatnonzero(~same)[:3]:
            problems.append(f"{name} @ {left.index[position]}: batch {a[position]!r} online {b[position]!r}")
    return problems


def records(frame: pd.DataFrame) -> list[Mapping[str, Any]]:
    return list(_records(frame))
