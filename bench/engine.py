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

``rules_side_by_side`` is the decision with and without the analysts' rules (issue 17's budget: at most +10%
server CPU): two engines built alike over scratch states of their own, one serving 50 rules and 5 lists of
100,000 items each (:mod:`bench.rules`' generators; every rule a review rule, so that a decision evaluates
every rule up to the first match), fed the same history, then timed alternately on the same attempts (same
load). The attempts' devices, cards, accounts and IPs are outside the lists but for a share
(:data:`bench.rules.LISTED_SHARE`) whose device is listed; the share decided by a rule is reported.

``billing_side_by_side`` is the decision without and with the billing checks as the service serves them by
default (:class:`serving.scoring.billing.BillingGate` over a SQLite billing store with a catalogue, and the
three built-in block rules), built and timed alike. The catalogue prices every plan at 9.99 EUR and the
attempts are priced independently of their plan, so about 40% of them fail the price check and are blocked
by its rule: the costlier path (the rules' values are gathered), far more often than billing errors occur.
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
from bench.rules import LIST_ITEMS, LISTED_SHARE, build_lists, rule_texts
from bench.serving import _attempts
from billing.catalogue import Catalogue
from events.schema import PlanPeriod, PlanTier
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from features.stores.sqlite import SQLiteStore
from rules.book import RuleAction, RuleSpec
from rules.schema import schema_for
from serving.scoring.billing import BUILTIN_RULES, BillingGate
from serving.scoring.engine import ScoringEngine
from serving.scoring.models import ModelHolder, ModelPair, ServingModel
from serving.scoring.rulebook import RuleBookHolder
from serving.scoring.schemas import AttemptIn
from serving.store.billing_sqlite import SQLiteBillingStore
from serving.store.decisions import DecisionLog
from serving.store.pseudonyms import Pseudonymiser
from serving.store.upkeep import Checkpointer

logger = logging.getLogger(__name__)

HISTORY = 1_000  # attempts scored before timing, so entities have state to read and update
TIMED = 2_000
COLD = 300  # decisions timed after evicting the caches
PSEUDONYMISE = Pseudonymiser("bench-pseudonym-secret-of-enough-length")
#: The scratch states: the engine of the figures above, and the side-by-side pairs without and with rules, and
#: without and with the billing checks.
STATES = ("state", "plain", "ruled", "unbilled", "billed")
EVICT_BYTES = 64 * 1024 * 1024  # more than any cache level of this machine


def build(
    state: Path, rules: RuleBookHolder | None = None, billing: BillingGate | None = None
) -> ScoringEngine:
    """The engine over SQLite files in ``state``, with synthetic production-size models (and ``rules``, and
    the billing checks)."""
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
        pseudonymise=PSEUDONYMISE,
        rules=rules,
        billing=billing,
    )


def _billed(state: Path) -> tuple[RuleBookHolder, BillingGate]:
    """The built-in billing rules alone, and the billing checks over ``state``/billing.sqlite with a catalogue
    of every plan in EUR."""
    holder = RuleBookHolder(schema_for(FEATURE_SET), builtin=BUILTIN_RULES)
    holder.install((), {})
    prices = {(tier.value, period.value, "EUR"): 9.99 for tier in PlanTier for period in PlanPeriod}
    store = SQLiteBillingStore(state / "billing.sqlite")
    return holder, BillingGate(store, Catalogue(prices), PSEUDONYMISE)


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
    rules, built = _rules()
    engines = {name: build(scratch / name, rules if name == "ruled" else None) for name in STATES[:-1]}
    engines["billed"] = build(scratch / "billed", *_billed(scratch / "billed"))
    checkpointers = [  # as the service runs them: WAL checkpoints off the request path
        Checkpointer(scratch / state / name).start()
        for state in STATES
        for name in ("online.sqlite", "decisions.sqlite")
    ] + [Checkpointer(scratch / "billed" / "billing.sqlite").start()]
    try:
        result = _measure(engines["state"])
        result["rules_side_by_side"] = built | _side_by_side(engines["plain"], engines["ruled"])
        logger.info("rules side by side: %s", result["rules_side_by_side"])
        result["billing_side_by_side"] = _side_by_side(engines["unbilled"], engines["billed"], "billing")
        logger.info("billing side by side: %s", result["billing_side_by_side"])
        return result
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


def _rules() -> tuple[RuleBookHolder, dict[str, Any]]:
    """The holder serving :mod:`bench.rules`' 50 rules (as review rules) and 5 lists, and how long building
    the lists and installing the rules took."""
    started = time.perf_counter()
    lists = build_lists(np.random.default_rng(17))
    lists_s = time.perf_counter() - started
    holder = RuleBookHolder(schema_for(FEATURE_SET))
    specs = [RuleSpec(f"bench-{i:02d}", RuleAction.REVIEW, text) for i, text in enumerate(rule_texts())]
    started = time.perf_counter()
    holder.install(specs, lists)
    return holder, {
        "rules": len(specs),
        "lists": len(lists),
        "items_per_list": LIST_ITEMS,
        "build_5_lists_s": round(lists_s, 2),
        "install_50_rules_s": round(time.perf_counter() - started, 3),
    }


def _side_attempts(count: int) -> list[AttemptIn]:
    """Attempts (after :data:`STATES`' others, so no id repeats) whose entities are outside the lists but
    for :data:`LISTED_SHARE` of them, whose device is listed."""
    rng = np.random.default_rng(1)
    attempts = []
    for n, body in enumerate(_attempts(count, 10 * (HISTORY + 2 * TIMED + COLD))):
        attempt = json.loads(body)
        listed = rng.random() < LISTED_SHARE
        device = 2 * int(rng.integers(LIST_ITEMS))
        attempt["device_id"] = f"dev-{device}" if listed else f"device-{n % 15_000}"
        attempt["payment_method_id"] = f"pm_x{n % 22_000}"
        attempt["account_id"] = f"acc-x{n % 20_000}"
        attempt["ip"] = f"192.168.{n % 250}.{n % 7}"
        attempts.append(AttemptIn.model_validate(attempt))
    return attempts


def _side_by_side(plain: ScoringEngine, ruled: ScoringEngine, what: str = "rules") -> dict[str, Any]:
    """:meth:`ScoringEngine.score` without and with ``what`` (the rules), alternately on the same attempts."""
    for engine in (plain, ruled):
        engine.warm_up()
    attempts = _side_attempts(HISTORY + TIMED)
    for attempt in attempts[:HISTORY]:
        plain.score(attempt)
        ruled.score(attempt)
    without: list[tuple[float, float]] = []
    with_rules: list[tuple[float, float]] = []
    answers: list[Any] = []
    for k, attempt in enumerate(attempts[HISTORY:]):
        first = k % 2 == 0  # alternate which engine goes first
        if first:
            without.append(_timed(lambda a=attempt: plain.score(a)))  # type: ignore[misc]
        with_rules.append(_timed(lambda a=attempt: answers.append(ruled.score(a))))  # type: ignore[misc]
        if not first:
            without.append(_timed(lambda a=attempt: plain.score(a)))  # type: ignore[misc]
    by_rule = sum(answer["decision"]["decided_by"] == "rule" for answer in answers)
    plain_summary, ruled_summary = _summary(without), _summary(with_rules)
    return {
        "calls": TIMED,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "decided_by_rule_share": round(by_rule / TIMED, 3),
        f"without_{what}": plain_summary,
        f"with_{what}": ruled_summary,
        "cpu_ratio": round(ruled_summary["cpu_mean_us"] / plain_summary["cpu_mean_us"], 3),
    }


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
