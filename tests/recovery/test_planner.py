"""The plan's ordering and limits, its use of the model, and the plan before a renewal is charged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recovery.config import QuietHours, RecoveryConfig, RecoveryConfigError
from recovery.learned import NotFittedError, RetryModel
from recovery.models import CONTEXT_COLUMNS, FailureModel, FeatureVectorModel, FloatArray
from recovery.planner import (
    PlanInputError,
    Planner,
    RecoveryCase,
    RecoveryPlan,
    StepKind,
    Stop,
    candidate_frame,
)
from recovery.rules import CustomerAction
from tests.recovery.factories import DECLINED_AT, attempt, constant, days_after_decline, failure_of

CONFIG = RecoveryConfig()


def plan_for(
    model: FailureModel | None = None,
    config: RecoveryConfig = CONFIG,
    code: str | None = "insufficient_funds",
    now: datetime = DECLINED_AT,
    **fields: Any,
) -> RecoveryPlan:
    case = RecoveryCase(attempt(**fields), now, code)
    return Planner(model or constant(0.3), config).plan(case)


def test_retries_are_in_time_order_within_the_window_and_limits() -> None:
    plan = plan_for()
    times = [step.at for step in plan.retries]
    assert 1 <= len(times) <= CONFIG.max_attempts
    assert times == sorted(times)
    assert all(DECLINED_AT + CONFIG.min_gap <= t < DECLINED_AT + CONFIG.window for t in times)
    assert all(b - a >= CONFIG.min_gap for a, b in pairwise(times))
    assert not any(CONFIG.quiet_hours.is_quiet(t.hour) for t in times)
    assert [s.at for s in plan.steps] == sorted(s.at for s in plan.steps)


def test_retries_already_made_count_against_the_maximum() -> None:
    assert len(plan_for(retry_number=3).retries) <= 1
    exhausted = plan_for(retry_number=CONFIG.max_attempts)
    assert exhausted.retries == ()
    assert exhausted.stop is Stop.MAX_ATTEMPTS


def test_the_window_opens_at_the_first_decline() -> None:
    first = DECLINED_AT - timedelta(days=13)
    case = RecoveryCase(attempt(retry_number=2), DECLINED_AT, "insufficient_funds", first_declined_at=first)
    plan = Planner(constant(0.3), CONFIG).plan(case)
    assert all(step.at < first + CONFIG.window for step in plan.retries)
    late = RecoveryCase(
        attempt(retry_number=2),
        DECLINED_AT,
        "insufficient_funds",
        first_declined_at=first - timedelta(days=2),
    )
    assert Planner(constant(0.3), CONFIG).plan(late).stop is Stop.NO_CANDIDATE


def test_the_first_retry_goes_where_the_model_sees_the_best_chance() -> None:
    peak = 9.0  # success peaks nine days after the decline
    model = failure_of(lambda frame: 0.6 * np.exp(-((days_after_decline(frame) - peak) ** 2) / 2.0))
    best = plan_for(model, CONFIG.model_copy(update={"max_attempts": 1})).retries[0]
    assert abs((best.at - DECLINED_AT).total_seconds() / 86_400 - peak) < 0.5
    assert best.success_probability == pytest.approx(0.6, abs=0.02)
    assert "insufficient_funds" in best.reason


def test_a_flat_model_retries_early_rather_than_late() -> None:
    retries = plan_for(constant(0.3)).retries
    assert retries[0].at - DECLINED_AT < timedelta(days=1, hours=6)


def test_no_retry_worth_less_than_it_costs() -> None:
    config = CONFIG.model_copy(update={"attempt_cost": 1.0})
    plan = plan_for(constant(0.05), config, amount=12.99)  # expected 0.65 < cost 1.0
    assert plan.retries == ()
    assert plan.stop is Stop.NOT_WORTH_IT
    assert plan.steps[-1].action is CustomerAction.OTHER_METHOD
    worth_it = plan_for(constant(0.05), config, amount=129.9)
    assert worth_it.retries


def test_recovery_probability_and_expected_attempts_follow_the_steps() -> None:
    plan = plan_for(constant(0.3))
    k = len(plan.retries)
    assert plan.recovery_probability == pytest.approx(1 - 0.7**k)
    assert plan.expected_attempts == pytest.approx(sum(0.7**i for i in range(k)))


def test_a_card_expiring_in_the_window_is_retried_only_before_and_the_customer_is_asked() -> None:
    plan = plan_for(card_exp="2025-03")  # expires 2025-04-01, inside the 14-day window
    assert all(step.at < datetime(2025, 4, 1, tzinfo=UTC) for step in plan.retries)
    assert plan.steps[0].action is CustomerAction.UPDATE_CARD


def test_quiet_hours_wrap_midnight() -> None:
    quiet = QuietHours(start_hour=22, end_hour=6)
    assert [h for h in range(24) if quiet.is_quiet(h)] == [0, 1, 2, 3, 4, 5, 22, 23]
    assert not any(QuietHours(start_hour=5, end_hour=5).is_quiet(h) for h in range(24))
    assert [h for h in range(24) if QuietHours(start_hour=1, end_hour=3).is_quiet(h)] == [1, 2]


def test_before_the_charge_a_likely_failure_gets_a_reminder() -> None:
    renewal_at = DECLINED_AT + timedelta(days=5)
    risky = plan_for(constant(0.4), code=None, occurred_at=renewal_at)
    assert [s.kind for s in risky.steps] == [StepKind.CUSTOMER, StepKind.CHARGE]
    assert risky.steps[0].action is CustomerAction.REMINDER
    assert risky.steps[0].at == renewal_at - timedelta(hours=CONFIG.reminder_lead_hours)
    assert risky.stop is Stop.NOT_DECLINED
    safe = plan_for(constant(0.95), code=None, occurred_at=renewal_at)
    assert [s.kind for s in safe.steps] == [StepKind.CHARGE]
    assert safe.recovery_probability == pytest.approx(0.95)


def test_before_the_charge_an_expiring_card_asks_for_the_new_card() -> None:
    plan = plan_for(
        constant(0.95), code=None, occurred_at=DECLINED_AT + timedelta(days=20), card_exp="2025-03"
    )
    assert plan.steps[0].action is CustomerAction.UPDATE_CARD


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(PlanInputError, match="timezone-aware"):
        plan_for(now=datetime(2025, 3, 20, 4))


def test_candidates_are_retries_of_the_same_invoice_with_the_decline_as_context() -> None:
    times = [DECLINED_AT + timedelta(days=d) for d in (1, 2)]
    code, last, first = _context()
    frame = candidate_frame(attempt(), times, code=code, last_declined=last, first_declined_at=first)
    assert list(frame["retry_number"]) == [1, 1]
    assert set(frame["kind"]) == {"retry"}
    assert set(frame["invoice_id"]) == {"inv-1"}
    assert frame["attempt_id"].is_unique
    assert list(pd.to_datetime(frame["occurred_at"], utc=True)) == times
    assert set(CONTEXT_COLUMNS) <= set(frame.columns)


def _context() -> tuple[Any, datetime, datetime]:
    from events.schema import DeclineCode  # noqa: PLC0415

    return DeclineCode.INSUFFICIENT_FUNDS, DECLINED_AT, DECLINED_AT


class _Features:
    """A feature source that records what it was asked for: [hours since the decline] at each time."""

    def __init__(self) -> None:
        self.asked: list[tuple[dict[str, object], list[datetime]]] = []

    def features_at(self, attempt: Any, times: Sequence[datetime]) -> FloatArray:
        self.asked.append((dict(attempt), list(times)))
        hours = [(pd.Timestamp(at) - DECLINED_AT).total_seconds() / 3600.0 for at in times]
        return np.array(hours)[:, None]


class _Scorer:
    def predict_proba(self, x: FloatArray) -> FloatArray:
        return np.clip(1.0 - x[:, 0] / 400.0, 0.0, 1.0)


def test_the_feature_vector_model_scores_each_candidate_as_an_attempt() -> None:
    features = _Features()
    model = FeatureVectorModel(features, _Scorer())
    plan = plan_for(model, CONFIG.model_copy(update={"max_attempts": 1}))
    assert len(features.asked) == 2  # one read per retry number (the next retry, a later one)
    for _, times in features.asked:
        assert len(times) == len(set(times))  # each distinct candidate time scored once
    assert max(len(times) for _, times in features.asked) == plan.candidates
    fields = features.asked[0][0]
    assert not set(CONTEXT_COLUMNS) & set(fields)  # the engine gets contract fields only
    assert "occurred_at" not in fields  # the times come apart from the attempt
    assert plan.retries[0].at > DECLINED_AT + timedelta(days=12)  # later is better for this model
    assert model(pd.DataFrame()).shape == (0,)


def test_the_retry_model_learns_that_waiting_helps_and_refuses_before_fit() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    declined = pd.Timestamp(DECLINED_AT)
    days = rng.uniform(0.5, 10.0, n)
    frame = pd.DataFrame([attempt(retry_number=1)] * n)
    frame["occurred_at"] = declined + pd.to_timedelta(days, unit="D")
    frame["last_decline_code"] = "insufficient_funds"
    frame["last_declined_at"] = declined
    frame["first_declined_at"] = declined
    failed = rng.random(n) < 0.9 - 0.06 * days
    with pytest.raises(NotFittedError):
        RetryModel()(frame)
    model = RetryModel().fit(frame, failed)
    early, late = model(frame.iloc[[int(np.argmin(days)), int(np.argmax(days))]])
    assert early > late + 0.3
    with pytest.raises(ValueError, match="both failed and approved"):
        RetryModel().fit(frame, np.ones(n, dtype=bool))


def test_config_files_are_strict(tmp_path: Path) -> None:
    good = tmp_path / "policy.yaml"
    good.write_text("window_days: 10\nquiet_hours: {start_hour: 23, end_hour: 7}\n")
    config = RecoveryConfig.from_yaml(good)
    assert config.window == timedelta(days=10)
    assert config.quiet_hours.start_hour == 23
    bad = tmp_path / "bad.yaml"
    bad.write_text("window_dayz: 10\n")
    with pytest.raises(RecoveryConfigError, match="window_dayz"):
        RecoveryConfig.from_yaml(bad)
    bad.write_text("- 1\n")
    with pytest.raises(RecoveryConfigError, match="mapping"):
        RecoveryConfig.from_yaml(bad)
    with pytest.raises(ValueError, match="grid_hours"):
        RecoveryConfig(window_days=0.1, grid_hours=6)


def test_the_plan_as_json_lists_each_step_with_time_probability_and_reason() -> None:
    answer = plan_for(constant(0.3)).as_json()
    assert json.loads(json.dumps(answer)) == answer
    steps = answer["steps"]
    assert isinstance(steps, list)
    assert {"kind", "at", "success_probability", "action", "reason"} == set(steps[0])
    assert steps[0]["kind"] == "retry"
    assert datetime.fromisoformat(steps[0]["at"]) > DECLINED_AT
    blocked = plan_for(code="stolen_card").as_json()
    assert blocked["hard_rule"] == "retry_forbidden"
    assert blocked["stop"] == "hard_rule"
