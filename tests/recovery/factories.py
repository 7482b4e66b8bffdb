"""Small recovery cases and simple failure models for the planner's tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from recovery.learned import RetryModel
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


def retry_rows(n: int = 4000, seed: int = 3) -> tuple[pd.DataFrame, npt.NDArray[np.bool_]]:
    """Observed retries of one declined card ``0.5``–``10`` days after an insufficient-funds decline, with
    outcomes drawn so that waiting helps (failure rate falls 6 points a day)."""
    rng = np.random.default_rng(seed)
    declined = pd.Timestamp(DECLINED_AT)
    days = rng.uniform(0.5, 10.0, n)
    frame = pd.DataFrame([attempt(retry_number=1, kind="retry")] * n)
    frame["attempt_id"] = [f"att-r{i}" for i in range(n)]
    frame["occurred_at"] = declined + pd.to_timedelta(days, unit="D")
    frame["last_decline_code"] = "insufficient_funds"
    frame["last_declined_at"] = declined
    frame["first_declined_at"] = declined
    return frame, rng.random(n) < 0.9 - 0.06 * days


def fitted_retry_model(seed: int = 3) -> RetryModel:
    """A retry model fitted on :func:`retry_rows`, recording a training window that ends at
    :data:`DECLINED_AT` + 11 days (what ``riskgate train`` records)."""
    model = RetryModel().fit(*retry_rows(seed=seed))
    model.info_ = {"trained_until": (DECLINED_AT + timedelta(days=11)).isoformat()}
    return model
