"""Micro-benchmark of the scoring engine without HTTP: the whole decision of one new attempt, in process.

The engine is built as the service builds it (SQLite online store and decision log in a scratch state
directory, both models of production size on the real feature set), warmed up, fed a history of attempts,
then timed call by call: wall-clock and CPU time per :meth:`ScoringEngine.score`, and for the online features
alone, interleaved: ``features_for`` then ``record_attempt`` (two units of work) against ``score_and_record``
(one, each blob read once). Medians and p99 of thousands of calls, so the figure
holds on a loaded machine.

``online_memory_score_and_record`` is the same online call over an in-memory store, fed the same history:
the feature engine's own CPU without SQLite's. ``online_warm_up_s`` is the time the service's warm-up of the
feature engine takes (the compiled kernels loaded from numba's cache, or compiled when it is cold).

``score_cold`` is :meth:`ScoringEngine.score` with the processor's caches evicted before each call (64 MB
written between calls): what a decision costs when requests arrive a few at a time and the machine has run
other work in between, as the service sees at 50 requests/s here.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._models import production_size_bundles
from bench.serving import _attempts
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from features.stores.sqlite import SQLiteStore
from serving.scoring.engine import ScoringEngine
from serving.scoring.models import ModelHolder, ModelPair, ServingModel
from serving.scoring.schemas import AttemptIn
from serving.store.decisions import DecisionLog
from serving.store.pseudonyms import Pseudonymiser
from serving.store.upkeep import Checkpointer

logger = logging.getLogger(__name__)

HISTORY = 1_000  # attempts scored before timing, so entities have state to read and update
TIMED = 2_000
COLD = 300  # decisions timed after evicting the caches
EVICT_BYTES = 64 * 1024 * 1024  # more than any cache level of this machine


def build(state: Path) -> ScoringEngine:
    """The engine over SQLite files in ``state``, with synthetic production-size models."""
    bundles = production_size_bundles()
    pair = ModelPair(
        ServingModel.from_bundle(bundles["fraud"], "riskgate-fraud", "1", "bench"),
        ServingModel.from_bundle(bundles["failure"], "riskgate-failure", "1", "bench"),
    )
    features = OnlineEngine(SQLiteStore(state / "online.sqlite"), FEATURE_SET)
    return ScoringEngine(
        features=features,
        feature_names=FEATURE_SET.names,
        holder=ModelHolder(pair),
        log=DecisionLog(state / "decisions.sqlite"),
        pseudonymise=Pseudonymiser("bench-pseudonym-secret-of-enough-length"),
    )


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    wall = np.array([s[0] for s in samples]) * 1e6
    cpu = np.array([s[1] for s in samples]) * 1e6
    return {
        "wall_p50_us": round(float(np.median(wall)), 1),
        "wall_p99_us": round(float(np.quantile(wall, 0.99)), 1),
        "cpu_mean_us": round(float(cpu.mean()), 1),  # process_time ticks coarsely: the mean is the figure
    }


def run(scratch: Path) -> dict[str, Any]:
    engine = build(scratch / "state")
    checkpointers = [  # as the service runs them: WAL checkpoints off the request path
        Checkpointer(scratch / "state" / name).start() for name in ("online.sqlite", "decisions.sqlite")
    ]
    try:
        return _measure(engine)
    finally:
        for checkpointer in checkpointers:
            checkpointer.stop()


def _measure(engine: ScoringEngine) -> dict[str, Any]:
    memory = OnlineEngine(MemoryStore(), FEATURE_SET)
    warm_up, _ = _timed(memory.warm_up)  # the first in the process: loads (or compiles) the kernels
    engine.warm_up()
    bodies = [AttemptIn.model_validate(json.loads(b)) for b in _attempts(HISTORY + 2 * TIMED + COLD, 0)]
    for attempt in bodies[:HISTORY]:
        engine.score(attempt)
    scores = [_timed(lambda a=a: engine.score(a)) for a in bodies[HISTORY : HISTORY + TIMED]]  # type: ignore[misc]
    online = engine.features
    events = [a.as_event() for a in bodies[HISTORY + TIMED : HISTORY + 2 * TIMED]]
    separate, combined = [], []
    for first, second in zip(events[::2], events[1::2], strict=True):  # interleaved: same load, same state
        separate.append(_timed(lambda e=first: (online.features_for(e), online.record_attempt(e))))  # type: ignore[misc]
        combined.append(_timed(lambda e=second: online.score_and_record(e)))  # type: ignore[misc]
    result = {
        "calls": TIMED,
        "history": HISTORY,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "online_warm_up_s": round(warm_up, 3),
        "score": _summary(scores),
        "score_cold": _summary(_cold(engine, bodies[HISTORY + 2 * TIMED :])),
        "online_features_for_then_record_attempt": _summary(separate),
        "online_score_and_record": _summary(combined),
        "online_memory_score_and_record": _summary(_in_memory(memory, [a.as_event() for a in bodies])),
    }
    logger.info("engine micro-benchmark: %s", result)
    return result


def _cold(engine: ScoringEngine, attempts: list[AttemptIn]) -> list[tuple[float, float]]:
    """:meth:`ScoringEngine.score` of each attempt after writing :data:`EVICT_BYTES` (caches evicted)."""
    scratch = np.zeros(EVICT_BYTES // 8)
    samples = []
    for attempt in attempts:
        scratch += 1.0
        samples.append(_timed(lambda a=attempt: engine.score(a)))  # type: ignore[misc]
    return samples


def _in_memory(online: OnlineEngine, events: list[dict[str, object]]) -> list[tuple[float, float]]:
    """``score_and_record`` over a :class:`MemoryStore` fed the same history: the online engine's own CPU."""
    for event in events[:HISTORY]:
        online.score_and_record(event)
    return [_timed(lambda e=e: online.score_and_record(e)) for e in events[HISTORY : HISTORY + TIMED]]  # type: ignore[misc]
