"""How fast the trends and drift queries answer over a year of decisions (the default world's size).

A decision log of a year is written through :meth:`serving.store.decisions.DecisionLog.record` (the service's
own
path): 330,000 decisions spread over 365 days like the default world's (plans, methods, card countries and
currencies, kinds), with synthetic scores, gateway outcomes for every attempt not blocked, fraud reports
arriving 20 to 120 days later, and a feature vector per decision. Then each query is timed several times
(median and worst wall-clock, median CPU): ``trends`` for the default 30 days and for the whole year by
day, week (segmented by card country) and hour, and ``drift`` of both models over the year, each followed
by ``json.dumps`` as the endpoint answers it. The machine is shared: the load average is recorded with the
timings, and CPU time (the work is single-threaded) is what the wall-clock time is on an idle machine.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from bench._models import synthetic_bundle
from features.iptv import FEATURE_SET
from serving.readers.drift import DriftModel, drift
from serving.readers.trends import Range, trends
from serving.store.base import DecisionRecord
from serving.store.decisions import DecisionLog, DecisionReader

logger = logging.getLogger(__name__)

DECISIONS: Final = 330_000
REPEATS: Final = 5
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
COUNTRIES: Final = {"DE": "EUR", "FR": "EUR", "ES": "EUR", "IT": "EUR", "NL": "EUR", "GB": "GBP", "PL": "PLN",
                    "SE": "SEK", "US": "USD", "CA": "CAD"}  # fmt: skip
MODELS: Final = {"fraud": "riskgate-fraud/1", "failure": "riskgate-failure/1"}


def _pick(rng: np.random.Generator, values: list[str], weights: list[float], n: int) -> list[str]:
    return list(rng.choice(values, size=n, p=np.array(weights) / sum(weights)))


def write_year(path: Path, n: int = DECISIONS, seed: int = 0) -> None:
    """A year of ``n`` decisions with outcomes and fraud reports, written as the service writes them."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 365 * 86_400, n))
    countries = _pick(rng, list(COUNTRIES), [30, 15, 10, 8, 7, 12, 6, 4, 5, 3], n)
    methods = _pick(rng, ["card", "wallet", "paypal", "sepa_debit", "carrier_billing"], [70, 10, 10, 7, 3], n)
    fraud = rng.beta(0.3, 20, n)
    failure = rng.beta(1.2, 5, n)
    vectors = rng.gamma(1.0, 2.0, (n, len(FEATURE_SET.names))).astype(np.float32)
    log = DecisionLog(path)
    for i in range(n):
        occurred = START + timedelta(seconds=float(seconds[i]))
        action = "block" if fraud[i] > 0.2 else "review" if fraud[i] > 0.08 else "approve"
        action = "defer" if action == "approve" and failure[i] > 0.7 else action
        log.record(
            DecisionRecord(
                attempt_id=f"a{i:07d}", occurred_at=occurred, account_key=f"k{i % 50_000}", method_key=None,
                kind="renewal" if i % 5 else "signup", fingerprint="f", action=action, rule="bench",
                fallback=False, fraud_probability=float(fraud[i]), failure_probability=float(failure[i]),
                answer={"attempt_id": f"a{i:07d}"}, plan_tier=("basic", "standard", "premium")[i % 3],
                plan_period="monthly", method_type=methods[i],
                card_funding=("credit", "debit", "prepaid")[i % 3] if methods[i] == "card" else None,
                card_country=countries[i], amount=9.99 + i % 3 * 5, currency=COUNTRIES[countries[i]],
                fraud_level="normal", fraud_model=MODELS["fraud"], failure_model=MODELS["failure"],
                features=vectors[i].tobytes(),
            )
        )  # fmt: skip
        if action != "block":
            declined = rng.random() < failure[i]
            log.record_outcome(f"a{i:07d}", occurred, "declined" if declined else "approved", None)
        if rng.random() < fraud[i]:
            later = occurred + timedelta(days=float(rng.uniform(20, 120)))
            log.record_report(f"r{i}", f"a{i:07d}", later, "chargeback")
    log.close()


def _timed(work: Callable[[], dict[str, Any]]) -> dict[str, float]:
    """Wall-clock and CPU seconds of ``work`` + JSON encoding (CPU: what an idle machine's wall would be)."""
    wall, cpu = [], []
    size = 0
    for _ in range(REPEATS):
        began, began_cpu = time.perf_counter(), time.process_time()
        size = len(json.dumps(work()))
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return {
        "wall_median_s": round(statistics.median(wall), 3),
        "wall_max_s": round(max(wall), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "json_bytes": size,
    }


def run(scratch: Path) -> dict[str, Any]:
    path = scratch / "decisions.sqlite"
    began = time.perf_counter()
    write_year(path)
    written = time.perf_counter() - began
    logger.info("bench trends: %d decisions written in %.1f s", DECISIONS, written)
    year = Range(START, START + timedelta(days=365))
    last_30 = Range(year.end - timedelta(days=30), year.end)
    models: dict[str, DriftModel | None] = {}
    for seed, task in enumerate(MODELS):
        bundle = synthetic_bundle(task, seed=seed)
        models[task] = DriftModel(task, MODELS[task], bundle.reference, bundle.features.names)
    queries: dict[str, Callable[[DecisionReader], dict[str, Any]]] = {
        "trends_30_days_by_day": lambda r: trends(r, last_30, "day"),
        "trends_year_by_day": lambda r: trends(r, year, "day"),
        "trends_year_by_week_per_card_country": lambda r: trends(r, year, "week", "card_country"),
        "trends_year_by_day_per_card_country": lambda r: trends(r, year, "day", "card_country"),
        "trends_year_by_hour": lambda r: trends(r, year, "hour"),
        "drift_year_both_models": lambda r: drift(r, year.start, year.end, models),
    }
    timings = {}
    with DecisionReader(path) as reader:
        for name, query in queries.items():
            timings[name] = _timed(lambda query=query: query(reader))  # type: ignore[misc]
            logger.info("bench trends: %s %s", name, timings[name])
    return {
        "decisions": DECISIONS,
        "log_write_seconds": round(written, 1),
        "repeats": REPEATS,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "queries": timings,
        "target": "each query under 1 s over a year of decisions (issue 6)",
    }
