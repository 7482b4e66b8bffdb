from __future__ import annotations

import numpy as np
import pandas as pd

from training.baselines import declined_last_time, fraud_rules, prior_count

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def at(*hours: float) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(hours=h) for h in hours])


def test_prior_count_counts_strictly_earlier_rows_of_the_same_entity_in_the_window() -> None:
    entity = pd.Series(["a", "a", "b", "a", "a", None])
    times = pd.Series(at(0, 1, 1, 1, 30, 30))
    counts = prior_count(entity, times, pd.Timedelta(hours=24))
    # row 3 ties row 1 (same instant): not before it; row 4 is 29h after row 3 → window empty
    assert counts.tolist() == [0, 1, 0, 1, 0, 0]


def test_fraud_rules_fire_on_velocity_and_country_mismatch() -> None:
    attempts = pd.DataFrame(
        {
            "occurred_at": at(0, 1, 2, 3, 100),
            "account_id": ["a", "a", "a", "a", "b"],
            "payment_method_id": ["p1", "p2", "p3", "p4", "p5"],
            "ip": ["i1", "i2", "i3", "i4", "i5"],
            "card_country": ["DE", "DE", "DE", "DE", "FR"],
            "ip_country": ["DE", "DE", "DE", "DE", "NL"],
            "billing_country": ["DE", "DE", "DE", "DE", None],
        }
    )
    # row 3: 3 earlier attempts of account a in 24h; row 4: card vs ip mismatch (billing unknown: no fire)
    assert fraud_rules(attempts).tolist() == [0, 0, 0, 1, 1]


def test_declined_last_time_uses_only_answers_known_before_the_attempt() -> None:
    attempts = pd.DataFrame(
        {
            "attempt_id": ["x1", "x2", "x3", "y1"],
            "account_id": ["a", "a", "a", "b"],
            "occurred_at": at(0, 1, 1.001, 5),
        },
        index=[10, 11, 12, 13],
    )
    outcomes = pd.DataFrame(
        {
            "attempt_id": ["x1", "x2", "x3", "y1"],
            "occurred_at": at(0.01, 2, 1.002, 5.01),  # x2's answer arrives after x3 is made
            "status": ["declined", "approved", "approved", "error"],
        }
    )
    result = declined_last_time(attempts, outcomes)
    assert list(result.index) == [10, 11, 12, 13]
    np.testing.assert_array_equal(result.to_numpy(), [np.nan, 1.0, 1.0, np.nan])
