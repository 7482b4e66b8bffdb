"""How fast a draft rule is backtested over a month of decision log (``riskgate rules backtest``, issue 17).

A month of :data:`DECISIONS` decisions is written through :class:`serving.store.decisions.DecisionLog` with a
journal (the service's write-behind path: held, then flushed in batches), each with a feature vector, the
attempt's kept fields (device, IP country: :mod:`serving.store.kept_fields`), an action and scores, and fraud
reports arriving 20 to 120 days later. Then three typical drafts are replayed over the whole month by
:func:`serving.readers.rule_backtest.log_backtest` (read, compile once, evaluate, figures), each timed
several times (median and worst wall-clock, median CPU):

* a device block list of 100,000 items (the analyst's walkthrough: block a device, write a rule, backtest it);
* an amount against a feature of the account (the feature vectors are read);
* a country mismatch with a model output.

Run: ``python -m bench rule_backtest``. Target: seconds, not minutes, for a month of 300,000 decisions.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from features.iptv import FEATURE_SET
from rules.book import RuleAction, RuleSpec
from rules.lists import ListItem, make_list
from rules.schema import schema_for
from serving.readers.rule_backtest import Draft, Sources, log_backtest
from serving.readers.trends import Range
from serving.store.base import DecisionRecord
from serving.store.decisions import DecisionLog, DecisionReader
from serving.store.journal import Journal

logger = logging.getLogger(__name__)

DECISIONS: Final = 300_000
REPEATS: Final = 3
DEVICES: Final = 200_000
LIST_ITEMS: Final = 100_000
START: Final = datetime(2026, 1, 1, tzinfo=UTC)
MONTH: Final = Range(START, START + timedelta(days=30))
_FLUSH_EVERY: Final = 20_000
DRAFTS: Final = {
    "device_list": "device_id in @suspects and amount > 10",
    "amount_vs_account_feature": "amount > 3 * account_attempts_max_amount_30d",
    "country_mismatch_and_score": "card_country != ip_country and fraud_probability > 0.3",
}


def write_month(path: Path, n: int = DECISIONS, seed: int = 0) -> None:
    """A month of ``n`` decisions with fields, feature vectors and late fraud reports, written as the service
    writes them under write-behind."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 30 * 86_400, n))
    fraud = rng.beta(0.3, 20, n)
    vectors = rng.gamma(1.0, 8.0, (n, len(FEATURE_SET.names))).astype(np.float32)
    devices = rng.integers(0, DEVICES, n)
    countries = ("DE", "FR", "GB", "PL")
    log = DecisionLog(path, journal=Journal(path.parent / "journal"))
    for i in range(n):
        occurred = START + timedelta(seconds=float(seconds[i]))
        action = "block" if fraud[i] > 0.2 else "review" if fraud[i] > 0.08 else "approve"
        log.record(
            DecisionRecord(
                attempt_id=f"a{i:07d}", occurred_at=occurred, account_key=f"k{i % 50_000}", method_key=None,
                kind="renewal" if i % 5 else "signup", fingerprint="f", action=action, rule="bench",
                fallback=False, fraud_probability=float(fraud[i]), failure_probability=0.1,
                answer={"attempt_id": f"a{i:07d}"}, plan_tier="basic", plan_period="monthly",
                method_type="card", card_funding="credit", card_country=countries[i % 4],
                amount=9.99 + i % 3 * 5, currency="EUR",
                fraud_level="normal", features=vectors[i].tobytes(),
                fields={"device_id": f"dev-{devices[i]}", "ip_country": countries[i % 3], "retry_number": 0},
            )
        )  # fmt: skip
        if rng.random() < fraud[i]:
            later = occurred + timedelta(days=float(rng.uniform(20, 120)))
            log.record_report(f"r{i}", f"a{i:07d}", later, "chargeback")
        if i % _FLUSH_EVERY == 0:
            log.flush()
    log.close()


def _timed(reader: DecisionReader, draft: Draft) -> dict[str, Any]:
    schema = schema_for(FEATURE_SET).with_lists(draft.lists)
    sources = Sources(tuple(FEATURE_SET.names), tuple(FEATURE_SET.fields))
    wall, cpu = [], []
    hits = 0
    for _ in range(REPEATS):
        began, began_cpu = time.perf_counter(), time.process_time()
        answer = log_backtest(reader, draft, schema, sources, MONTH, 90.0)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        hits = answer["hits"]["attempts"]
    return {
        "hits": hits,
        "wall_median_s": round(statistics.median(wall), 3),
        "wall_max_s": round(max(wall), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
    }


def run(scratch: Path) -> dict[str, Any]:
    path = scratch / "decisions.sqlite"
    began = time.perf_counter()
    write_month(path)
    written = time.perf_counter() - began
    logger.info("bench rule_backtest: %d decisions written in %.1f s", DECISIONS, written)
    items = [ListItem(f"dev-{2 * i}", "bench") for i in range(LIST_ITEMS)]
    lists = {"suspects": make_list("suspects", "device_id", items)}
    timings = {}
    with DecisionReader(path) as reader:
        for name, expression in DRAFTS.items():
            draft = Draft(RuleSpec("draft", RuleAction.BLOCK, expression), lists)
            timings[name] = _timed(reader, draft)
            logger.info("bench rule_backtest: %s %s", name, timings[name])
    return {
        "decisions": DECISIONS,
        "period_days": 30,
        "log_write_seconds": round(written, 1),
        "repeats": REPEATS,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "drafts": timings,
        "target": "seconds, not minutes, for a month of 300,000 decisions (issue 17)",
    }
