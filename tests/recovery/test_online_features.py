"""The planner over riskgate's online feature engine: candidate retries at future times get the features of
the state before them (windows shift with the candidate time), as the failure model would see them."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from features.online import OnlineEngine
from features.registry import load_feature_set
from features.stores.memory import MemoryStore
from recovery.config import RecoveryConfig
from recovery.models import FeatureVectorModel, FloatArray
from recovery.planner import Planner, RecoveryCase
from tests.recovery.factories import DECLINED_AT, attempt

FEATURE_SET = load_feature_set(None)
HOURS_SINCE_DECLINE = FEATURE_SET.names.index("card_outcomes_declined_since_last_hours")
DECLINES_1D = FEATURE_SET.names.index("card_outcomes_declined_count_1d")


class _FadingScorer:
    """Failure falls as the card's last decline recedes (a stand-in for the trained failure bundle)."""

    def predict_proba(self, x: FloatArray) -> FloatArray:
        hours = x[:, HOURS_SINCE_DECLINE]
        return np.asarray(0.95 * np.exp(-hours / 200.0), dtype=np.float64)


def engine_after_a_decline() -> OnlineEngine:
    engine = OnlineEngine(MemoryStore(), FEATURE_SET)
    first_try = attempt()
    engine.record_attempt(first_try)
    engine.record_outcome(
        {
            "attempt_id": first_try["attempt_id"],
            "occurred_at": DECLINED_AT + timedelta(seconds=2),
            "status": "declined",
            "decline_code": "insufficient_funds",
        }
    )
    return engine


def test_features_at_future_candidate_times_see_the_decline_recede() -> None:
    engine = engine_after_a_decline()
    at = [DECLINED_AT + timedelta(hours=h) for h in (6, 30, 200)]
    rows = np.vstack([engine.features_for(attempt(occurred_at=t, retry_number=1)) for t in at])
    np.testing.assert_allclose(rows[:, HOURS_SINCE_DECLINE], [6, 30, 200], atol=0.01)
    assert list(rows[:, DECLINES_1D]) == [1, 0, 0]  # the one-day window has moved past the decline


def test_the_planner_scores_candidates_through_the_engine() -> None:
    model = FeatureVectorModel(engine_after_a_decline(), _FadingScorer())
    config = RecoveryConfig(max_attempts=1)
    plan = Planner(model, config).plan(RecoveryCase(attempt(), DECLINED_AT, "insufficient_funds"))
    retry = plan.next_retry
    assert retry is not None
    assert retry.at > DECLINED_AT + timedelta(days=12)  # this scorer says: wait as long as the window allows
    expected = 1 - 0.95 * np.exp(-(retry.at - DECLINED_AT).total_seconds() / 3600 / 200)
    assert retry.success_probability is not None
    assert abs(retry.success_probability - expected) < 0.01
