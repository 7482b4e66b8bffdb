"""Small synthetic worlds for the training tests: events, a feature table and ground truth, with signal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from registry.bundle import FeatureContract

START = pd.Timestamp("2026-01-01", tz="UTC")
FEATURES = ("f_risk", "f_declines", "f_noise", "f_tier")
CONTRACT = FeatureContract(FEATURES, "test-hash-1", ("f_tier",))


@dataclass(frozen=True)
class World:
    attempts: pd.DataFrame
    outcomes: pd.DataFrame
    reports: pd.DataFrame
    features: pd.DataFrame
    truth: pd.DataFrame


def make_world(rows: int = 6000, days: int = 150, seed: int = 0, report_delay_days: float = 10.0) -> World:
    """Attempts spread over ``days``; fraud and failure depend on the features, reports come later."""
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, days * 86400, rows))
    occurred = START + pd.to_timedelta(offsets, unit="s")
    accounts = rng.integers(0, rows // 4, rows)
    risk = rng.normal(size=rows)
    declines = rng.poisson(0.5, rows).astype(float)
    declines[rng.random(rows) < 0.1] = np.nan  # missing history
    tier = rng.integers(0, 3, rows).astype(float)
    mismatch = rng.random(rows) < 0.1
    p_fraud = 1 / (1 + np.exp(-(-4.0 + 1.6 * risk + 1.5 * mismatch)))
    p_fail = 1 / (1 + np.exp(-(-1.8 + 0.9 * np.nan_to_num(declines, nan=1.0) + 0.3 * tier)))
    is_fraud = rng.random(rows) < p_fraud
    failed = rng.random(rows) < p_fail
    ids = np.array([f"a{i:06d}" for i in range(rows)])
    attempts = pd.DataFrame(
        {
            "attempt_id": ids,
            "occurred_at": occurred,
            "account_id": [f"acc{a}" for a in accounts],
            "amount": rng.choice([9.99, 14.99, 29.99, 99.0], rows),
            "payment_method_id": [f"pm{a}" for a in accounts],
            "ip": [f"10.0.{a % 200}.{a % 7}" for a in accounts],
            "card_country": "DE",
            "ip_country": np.where(mismatch, "NL", "DE"),
            "billing_country": "DE",
        }
    )
    outcomes = pd.DataFrame(
        {
            "attempt_id": ids,
            "occurred_at": occurred + pd.Timedelta(seconds=2),
            "status": np.where(failed, "declined", "approved"),
        }
    )
    fraud_ids = ids[is_fraud]
    delays = rng.exponential(report_delay_days / 3, len(fraud_ids)) + 1.0
    reports = pd.DataFrame(
        {
            "report_id": [f"r{i}" for i in range(len(fraud_ids))],
            "attempt_id": fraud_ids,
            "reported_at": occurred[is_fraud] + pd.to_timedelta(delays, unit="D"),
            "report_type": "chargeback",
        }
    )
    features = pd.DataFrame(
        {
            "attempt_id": ids,
            "f_risk": risk + 1.5 * mismatch,
            "f_declines": declines,
            "f_noise": rng.normal(size=rows),
            "f_tier": tier,
        }
    )
    truth = pd.DataFrame({"attempt_id": ids, "p_fraud": p_fraud, "p_fail": p_fail, "is_fraud": is_fraud})
    return World(attempts, outcomes, reports, features, truth)
