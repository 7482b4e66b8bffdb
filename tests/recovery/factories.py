"""Small recovery cases and simple failure models for the planner's tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from recovery.models import FloatArray

DECLINED_AT = datetime(2025, 3, 20, 4, 0, tzinfo=UTC)


def attempt(**overrides: Any) -> dict[str, object]:
    """A first-try renewal by Visa debit card, declined at :data:`DECLINED_AT` (contract fields)."""
    row: dict[str, object] = {
        "attempt_id": "att-1",
        "occurred_at": DECLINED_AT,
        "account_id": "acc-1",
        "kind": "renewal",
        "plan_tier": "standard",
        "plan_period": "monthly",
        "amount": 12.99,
        "currency": "EUR",
        "payment_method_id": "pm_1",
        "method_type": "card",
        "card_bin": "411111",
        "card_funding": "debit",
        "card_country": "DE",
        "card_exp": "2029-09",
        "device_id": "dev-1",
        "ip": "203.0.113.7",
        "ip_country": "DE",
        "billing_country": "DE",
        "invoice_id": "inv-1",
        "retry_number": 0,
    }
    row.update(overrides)
    return row


def failure_of(p_success: Callable[[pd.DataFrame], FloatArray]) -> Callable[[pd.DataFrame], FloatArray]:
    """A failure model from a success-probability function of the candidate frame."""

    def model(candidates: pd.DataFrame) -> FloatArray:
        return 1.0 - np.asarray(p_success(candidates), dtype=np.float64)

    return model


def constant(p_success: float) -> Callable[[pd.DataFrame], FloatArray]:
    return failure_of(lambda frame: np.full(len(frame), p_success))


def days_after_decline(frame: pd.DataFrame) -> FloatArray:
    at = pd.to_datetime(frame["occurred_at"], utc=True)
    since = at - pd.to_datetime(frame["last_declined_at"], utc=True)
    return np.asarray(since.dt.total_seconds().to_numpy(np.float64) / 86_400.0)
