"""The hard rules: each forbidden case produces no retry; network caps and card expiry hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.schema import DECLINE_CODES, DeclineCode
from recovery.config import RecoveryConfig, RetryCap
from recovery.planner import Planner, RecoveryCase, RecoveryPlan, StepKind, Stop
from recovery.rules import (
    CustomerAction,
    NoRetry,
    UnknownDeclineCodeError,
    block_for,
    card_expires_at,
    card_network,
    within_caps,
)
from tests.recovery.factories import DECLINED_AT, attempt, constant

FORBIDDEN = [code for code, rule in DECLINE_CODES.items() if rule.retry_forbidden]
NEEDS_CUSTOMER = [
    code
    for code, rule in DECLINE_CODES.items()
    if (rule.hard or rule.customer_action) and not rule.retry_forbidden
]
SOFT = [code for code, rule in DECLINE_CODES.items() if not (rule.hard or rule.customer_action)]


def plan_after(code: str, *, fraud_blocked: bool = False) -> RecoveryPlan:
    planner = Planner(constant(0.9), RecoveryConfig())  # a model that would love to retry
    case = RecoveryCase(attempt(), DECLINED_AT, code, fraud_blocked=fraud_blocked)
    return planner.plan(case)


@pytest.mark.parametrize("code", FORBIDDEN, ids=str)
def test_a_forbidding_decline_gets_no_retry_and_asks_for_another_method(code: DeclineCode) -> None:
    plan = plan_after(code.value)
    assert plan.retries == ()
    assert plan.stop is Stop.HARD_RULE
    assert plan.blocked_by is not None
    assert plan.blocked_by.rule is NoRetry.RETRY_FORBIDDEN
    assert [s.action for s in plan.steps] == [CustomerAction.OTHER_METHOD]


@pytest.mark.parametrize("code", NEEDS_CUSTOMER, ids=str)
def test_a_decline_the_customer_must_fix_gets_no_blind_retry(code: DeclineCode) -> None:
    plan = plan_after(code.value)
    assert plan.retries == ()
    expected = (
        CustomerAction.AUTHENTICATE
        if code is DeclineCode.AUTHENTICATION_REQUIRED
        else CustomerAction.UPDATE_CARD
    )
    assert plan.steps[0].action is expected
    assert plan.steps[0].kind is StepKind.CUSTOMER


@pytest.mark.parametrize("code", SOFT, ids=str)
def test_a_fraud_blocked_attempt_is_never_retried_whatever_its_code(code: DeclineCode) -> None:
    assert plan_after(code.value).retries
    plan = plan_after(code.value, fraud_blocked=True)
    assert plan.retries == ()
    assert plan.blocked_by is not None
    assert plan.blocked_by.rule is NoRetry.FRAUD_BLOCKED


def test_every_code_is_classified_once() -> None:
    assert {*FORBIDDEN, *NEEDS_CUSTOMER, *SOFT} == set(DeclineCode)
    assert all(block_for(code, fraud_blocked=False) is None for code in SOFT)


def test_an_unknown_code_is_refused_with_the_taxonomy() -> None:
    with pytest.raises(UnknownDeclineCodeError, match="insufficient_funds"):
        plan_after("card_on_fire")


@pytest.mark.parametrize(
    ("bin_", "network"),
    [
        ("411111", "visa"),
        ("51234567", "mastercard"),
        ("222100", "mastercard"),
        ("371449", "amex"),
        ("601100", "discover"),
        ("650000", "discover"),
        ("999999", None),
        (None, None),
        ("", None),
    ],
)
def test_card_network_by_bin(bin_: str | None, network: str | None) -> None:
    assert card_network(bin_) == network


def test_card_expiry_is_the_end_of_its_month() -> None:
    assert card_expires_at("2025-12") == datetime(2026, 1, 1, tzinfo=UTC)
    assert card_expires_at("2025-03") == datetime(2025, 4, 1, tzinfo=UTC)
    assert card_expires_at(None) is None


def test_visa_allows_fifteen_retries_in_thirty_days() -> None:
    caps = RecoveryConfig().caps_for("visa")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    earlier = [start + timedelta(days=i) for i in range(15)]
    assert not within_caps(earlier, start + timedelta(days=15), caps)
    assert within_caps(earlier, start + timedelta(days=30, hours=1), caps)  # the first one left the window
    assert within_caps(earlier[:14], start + timedelta(days=15), caps)


def test_mastercard_allows_ten_retries_in_a_day() -> None:
    caps = RecoveryConfig().caps_for("mastercard")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    earlier = [start + timedelta(hours=i) for i in range(10)]
    assert not within_caps(earlier, start + timedelta(hours=10), caps)
    assert within_caps(earlier, start + timedelta(hours=24, minutes=1), caps)


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=72), min_size=1, max_size=60),
    cap=st.integers(min_value=1, max_value=6),
    period=st.integers(min_value=1, max_value=96),
)
def test_retries_admitted_one_by_one_never_exceed_a_cap(gaps: list[int], cap: int, period: int) -> None:
    caps = [RetryCap(max_attempts=cap, period_hours=period)]
    admitted: list[datetime] = []
    t = datetime(2025, 1, 1, tzinfo=UTC)
    for gap in gaps:
        t += timedelta(hours=gap)
        if within_caps(admitted, t, caps):
            admitted.append(t)
    for end in admitted:
        assert sum(1 for s in admitted if end - timedelta(hours=period) < s <= end) <= cap


def test_the_planner_respects_the_cards_earlier_retries() -> None:
    config = RecoveryConfig(network_caps={"visa": [RetryCap(max_attempts=3, period_hours=30 * 24)]})
    earlier = (DECLINED_AT - timedelta(days=3), DECLINED_AT - timedelta(days=2))
    case = RecoveryCase(attempt(), DECLINED_AT, "insufficient_funds", card_retry_times=earlier)
    plan = Planner(constant(0.3), config).plan(case)
    assert len(plan.retries) == 1
