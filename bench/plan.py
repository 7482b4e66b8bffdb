"""Recovery-plan latency after a decline: the planner over riskgate's failure model and the online engine.

A small simulated world is loaded into an online engine (memory store) up to the middle of its history;
declined renewals after that moment are planned, each twice, interleaved: with the engine reading the
invoice's state once and scoring every candidate time in one kernel call (:meth:`OnlineEngine.features_at`,
what the service does), and with one ``features_for`` per distinct candidate (the reference: the same
vectors, one read each); and with the retry model the service plans declines with when it serves one
(``riskgate-retry``, :class:`recovery.learned.RetryModel`, here fitted on the world's retries before that
moment: it reads no online state). Medians of wall time per plan, side by side in one run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._models import synthetic_bundle
from events.io import read_events
from events.schema import EventKind
from features.history import event_stream, load_history
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from recovery.config import RecoveryConfig
from recovery.learned import RetryModel, observed_attempts, retry_history
from recovery.models import FeatureVectorModel, FloatArray
from recovery.planner import Planner, RecoveryCase
from simulator import WorldConfig, simulate

WORLD = WorldConfig(accounts=1500, months=4, seed=3, chunk_accounts=1500)
CASES = 30


class _OneByOne:
    """The reference feature source: one ``features_for`` (one state read) per candidate time."""

    def __init__(self, engine: OnlineEngine) -> None:
        self.engine = engine

    def features_at(self, attempt: Mapping[str, object], times: Sequence[datetime]) -> FloatArray:
        return np.vstack([self.engine.features_for({**attempt, "occurred_at": at}) for at in times])


def _cases(world: Path, after: pd.Timestamp) -> list[RecoveryCase]:
    attempts = read_events(world, EventKind.ATTEMPTS)
    outcomes = read_events(world, EventKind.OUTCOMES)
    funds = outcomes[outcomes["decline_code"] == "insufficient_funds"]
    declined = attempts.merge(funds[["attempt_id", "occurred_at"]], on="attempt_id", suffixes=("", "_o"))
    declined = declined[declined["occurred_at"] >= after].sort_values("occurred_at").head(CASES)
    cases = []
    for _, row in declined.iterrows():
        fields: dict[str, Any] = {
            str(k): None if pd.isna(v) else v for k, v in row.drop(labels=["occurred_at_o"]).items()
        }
        at = pd.Timestamp(row["occurred_at_o"]).to_pydatetime()
        cases.append(RecoveryCase(fields, now=at, decline_code="insufficient_funds", declined_at=at))
    return cases


def run(scratch: Path) -> dict[str, Any]:
    world = scratch / "data"
    simulate(WORLD, world)
    stream = event_stream(world)
    middle = pd.Timestamp(stream[len(stream) // 2][0], unit="ns", tz="UTC")
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    load_history(engine, stream, middle.to_pydatetime())
    bundle = synthetic_bundle("failure", seed=3)
    config = RecoveryConfig()
    planners = {
        "features_at": Planner(FeatureVectorModel(engine, bundle), config),
        "one_by_one": Planner(FeatureVectorModel(_OneByOne(engine), bundle), config),
        "retry_model": Planner(RetryModel().fit(*retry_history(observed_attempts(world), middle)), config),
    }
    cases = _cases(world, middle)
    for planner in planners.values():  # first use (kernels, pandas) outside the timing
        planner.plan(cases[0])
    seconds: dict[str, list[float]] = {name: [] for name in planners}
    candidates = []
    for case in cases:
        for name, planner in planners.items():
            started = time.perf_counter()
            plan = planner.plan(case)
            seconds[name].append(time.perf_counter() - started)
        candidates.append(plan.candidates)
    medians = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    return {
        "world": WORLD.model_dump(include={"accounts", "months", "seed"}),
        "plans": len(cases),
        "candidate_times_median": statistics.median(candidates),
        "median_ms": {name: round(value, 2) for name, value in medians.items()},
        "p90_ms": {name: round(float(np.quantile(v, 0.9)) * 1000, 2) for name, v in seconds.items()},
        "speedup_median": round(medians["one_by_one"] / medians["features_at"], 2),
    }
