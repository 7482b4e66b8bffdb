"""Rules and lists on the scoring path (issue 17): 50 typical rules and 5 lists of 100,000 items each, per
attempt.

The rules are written in the language (:mod:`rules.syntax`) over the IPTV feature set's schema and compiled
once; the lists hold devices, cards, accounts, BINs and IP addresses with CIDR ranges (IPv4 and IPv6), a
tenth of the items with an expiry. Each timed attempt is a realistic attempt (:func:`bench.serving._attempts`)
with every feature and the model outputs in one mapping, as the decision path holds them; a share of the
attempts hit a list. Timed: the 50 rules over one attempt (every rule evaluated, as a backtest does; the
decision path stops at the first match, so it costs at most this), CPU and wall medians over rounds, and
apart, building the mapping from a feature vector, compiling the 50 rules and building the lists.

Run: ``python -m bench rules``. The scoring engine's decision costs about 800 µs of CPU (``bench engine``):
the rules' share must stay under 10% of it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np

from bench.serving import _attempts
from features.iptv import FEATURE_SET
from rules.compiler import CompiledRule, compile_rule
from rules.lists import IpList, ListItem, ValueList, make_list, to_us
from rules.schema import schema_for

logger = logging.getLogger(__name__)

LIST_ITEMS: Final = 100_000
ATTEMPTS: Final = 2_000
ROUNDS: Final = 7
#: Share of the timed attempts whose device, card, account or IP is on a list.
LISTED_SHARE: Final = 0.05
_NOW: Final = datetime(2026, 6, 1, tzinfo=UTC)

#: Ten shapes of rule an analyst writes; each is written five times with other constants (50 rules).
TEMPLATES: Final = (
    "card_country != ip_country and fraud_probability > {p}",
    "device_id in @blocked_devices",
    "amount > {k} * account_attempts_max_amount_30d",
    "ip in @blocked_ips and kind in ('signup', 'upgrade')",
    "card_attempts_count_1h >= {n} or device_attempts_count_1h >= {n}",
    "payment_method_id in @blocked_cards and not (kind == 'renewal')",
    "account_id in @blocked_accounts and fraud_level != 'normal'",
    "card_bin in @risky_bins and amount between {low} and {high}",
    "fraud_level == 'highest' and card_outcomes_declined_count_1d > {n}",
    "failure_probability > {p} and retry_number >= 2 or card_country not in ('DE', 'FR', 'GB')",
)


def rule_texts() -> list[str]:
    """The 50 rules: each template with five sets of constants."""
    return [
        template.format(p=0.2 + 0.15 * i, k=2 + i, n=3 + 2 * i, low=10 * i, high=50 + 20 * i)
        for i in range(5)
        for template in TEMPLATES
    ]


def _items(values: list[str], rng: np.random.Generator) -> list[ListItem]:
    """Items of ``values``: a tenth expire (half of those already expired at the benchmark's time)."""
    expiring = rng.random(len(values)) < 0.1
    days = rng.integers(-30, 30, len(values))
    return [
        ListItem(value, "bench", _NOW + timedelta(days=int(d)) if e else None)
        for value, e, d in zip(values, expiring, days, strict=True)
    ]


def list_items(rng: np.random.Generator, n: int = LIST_ITEMS) -> dict[str, tuple[str, list[ListItem]]]:
    """The five lists of ``n`` items each: name -> (the attempt field it holds, its items)."""
    ips = [str(ipaddress.IPv4Address(0x0A00_0000 + 3 * i)) for i in range(n // 2)]  # in 10.0.0.0/8
    ips += [f"{ipaddress.IPv4Address(0x0B00_0000 + 16 * i)}/28" for i in range(n // 4)]
    ips += [f"2001:db8:{i:x}::/48" for i in range(n - len(ips))]
    values = {
        "blocked_devices": ("device_id", [f"dev-{i}" for i in range(0, 2 * n, 2)]),
        "blocked_cards": ("payment_method_id", [f"pm_{i}" for i in range(0, 3 * n, 3)]),
        "blocked_accounts": ("account_id", [f"acc-{i}" for i in range(0, 5 * n, 5)]),
        "risky_bins": ("card_bin", [f"{500_000 + i}" for i in range(n)]),
        "blocked_ips": ("ip", ips),
    }
    return {name: (field, _items(items, rng)) for name, (field, items) in values.items()}


def build_lists(rng: np.random.Generator) -> dict[str, ValueList | IpList]:
    """The five lists of :func:`list_items`, built for membership tests."""
    return {name: make_list(name, field, items) for name, (field, items) in list_items(rng).items()}


def _values(rng: np.random.Generator) -> tuple[list[dict[str, object]], list[np.ndarray]]:
    """The timed attempts as mappings (fields, features, model outputs), and their feature vectors."""
    names = FEATURE_SET.names
    amounts = np.array([15.0 if "amount" in name else 1.0 for name in names])
    mappings, vectors = [], []
    for body in _attempts(ATTEMPTS, 0):
        attempt: dict[str, object] = json.loads(body)
        if rng.random() < LISTED_SHARE:
            attempt["device_id"] = f"dev-{2 * int(rng.integers(LIST_ITEMS))}"
        vector = rng.exponential(0.7, len(names)) * amounts  # counts mostly 0-2, amounts in euros
        vector[rng.random(len(names)) < 0.1] = np.nan  # entities without history
        vectors.append(vector)
        level = ("normal", "normal", "normal", "elevated", "highest")[int(rng.integers(5))]
        outputs = {"fraud_probability": float(rng.beta(1.0, 12.0)), "fraud_level": level}
        mappings.append(attempt | dict(zip(names, vector.tolist(), strict=True)) | outputs)
        mappings[-1]["failure_probability"] = float(rng.random())
    return mappings, vectors


def _round(
    rules: list[CompiledRule], attempts: list[dict[str, object]], at_us: int
) -> tuple[float, float, int]:
    """Every rule over every attempt: wall and CPU seconds, and the matches (so nothing is optimised away)."""
    wall, cpu = time.perf_counter(), time.process_time()
    matched = 0
    for values in attempts:
        for rule in rules:
            matched += rule.matches(values, at_us)
    return time.perf_counter() - wall, time.process_time() - cpu, matched


def run(scratch: Path) -> dict[str, Any]:
    rng = np.random.default_rng(17)
    started = time.perf_counter()
    lists = build_lists(rng)
    lists_s = time.perf_counter() - started
    schema = schema_for(FEATURE_SET).with_lists(lists)
    texts = rule_texts()
    started = time.perf_counter()
    rules = [compile_rule(text, schema, lists) for text in texts]
    compile_s = time.perf_counter() - started
    attempts, vectors = _values(rng)
    at_us = to_us(_NOW)
    _round(rules, attempts[:200], at_us)  # warm: address cache, branch predictors
    rounds = [_round(rules, attempts, at_us) for _ in range(ROUNDS)]
    names = FEATURE_SET.names
    started = time.perf_counter()
    for vector, values in zip(vectors, attempts, strict=True):
        _ = values | dict(zip(names, vector.tolist(), strict=True))
    mapping_us = (time.perf_counter() - started) / len(vectors) * 1e6
    per_attempt = len(attempts)
    result = {
        "rules": len(rules),
        "lists": {name: len(member) for name, member in lists.items()},
        "attempts_per_round": per_attempt,
        "rounds": ROUNDS,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "matches_per_attempt": round(rounds[0][2] / per_attempt, 2),
        "rules_per_attempt_wall_p50_us": round(
            float(np.median([r[0] for r in rounds])) / per_attempt * 1e6, 1
        ),
        "rules_per_attempt_cpu_p50_us": round(
            float(np.median([r[1] for r in rounds])) / per_attempt * 1e6, 1
        ),
        "values_mapping_per_attempt_us": round(mapping_us, 1),
        "compile_50_rules_ms": round(compile_s * 1e3, 1),
        "build_5_lists_s": round(lists_s, 2),
    }
    logger.info("rules benchmark: %s", result)
    return result
