"""The policy table: each rule where it applies, fallbacks marked, the decline taxonomy read correctly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.schema import DECLINE_CODES, AttemptKind
from serving.scoring.policy import (
    RULES,
    Action,
    FraudLevel,
    History,
    Situation,
    Thresholds,
    decide,
    history_of,
)

R, S = AttemptKind.RENEWAL, AttemptKind.SIGNUP


def verdict(
    level: FraudLevel, kind: AttemptKind = R, history: History = History.CLEAN, fails: bool = False
) -> str:
    result = decide(Situation(level, fails, kind, history))
    return f"{result.action.value}:{result.rule}"


@pytest.mark.parametrize(
    ("situation", "expected"),
    [
        ((FraudLevel.NORMAL,), "approve:default"),
        ((FraudLevel.HIGHEST,), "block:fraud_highest"),
        ((FraudLevel.ELEVATED, S), "review:fraud_elevated"),
        ((FraudLevel.NORMAL, R, History.RETRY_FORBIDDEN), "block:retry_forbidden"),
        ((FraudLevel.NORMAL, S, History.RETRY_FORBIDDEN), "block:retry_forbidden"),
        ((FraudLevel.NORMAL, R, History.HARD_DECLINE), "defer:hard_decline_recurring"),
        ((FraudLevel.NORMAL, S, History.HARD_DECLINE), "approve:default"),
        (
            (FraudLevel.NORMAL, AttemptKind.RETRY, History.SOFT_DECLINE, True),
            "defer:likely_failure_recurring",
        ),
        ((FraudLevel.NORMAL, S, History.CLEAN, True), "approve:default"),
        ((FraudLevel.ELEVATED, R, History.CLEAN, True), "review:fraud_elevated"),
        ((FraudLevel.UNKNOWN, R), "approve:fallback_recurring"),
        ((FraudLevel.UNKNOWN, S), "review:fallback_new_money"),
        ((FraudLevel.UNKNOWN, R, History.CLEAN, True), "defer:likely_failure_recurring"),
    ],
)
def test_the_table(situation: tuple[object, ...], expected: str) -> None:
    assert verdict(*situation) == expected  # type: ignore[arg-type]


@given(
    st.sampled_from(list(FraudLevel)),
    st.booleans(),
    st.sampled_from(list(AttemptKind)),
    st.sampled_from(list(History)),
)
def test_every_situation_is_decided_and_unknown_fraud_is_a_fallback(
    level: FraudLevel, fails: bool, kind: AttemptKind, history: History
) -> None:
    result = decide(Situation(level, fails, kind, history))
    assert result.rule in {rule.name for rule in RULES}
    assert result.fallback == (level == FraudLevel.UNKNOWN)
    if level == FraudLevel.HIGHEST or history == History.RETRY_FORBIDDEN:
        assert result.action == Action.BLOCK


def test_a_table_without_catch_all_is_an_error() -> None:
    with pytest.raises(LookupError, match="catch-all"):
        decide(Situation(FraudLevel.NORMAL, False, R, History.CLEAN), rules=RULES[:1])


@pytest.mark.parametrize("code", list(DECLINE_CODES))
def test_decline_history_follows_the_taxonomy(code: object) -> None:
    rule = DECLINE_CODES[code]  # type: ignore[index]
    history = history_of("declined", str(code))
    if rule.retry_forbidden:
        assert history == History.RETRY_FORBIDDEN
    elif rule.hard:
        assert history == History.HARD_DECLINE
    else:
        assert history == History.SOFT_DECLINE


def test_history_without_a_decline_is_clean() -> None:
    assert history_of(None, None) == History.CLEAN
    assert history_of("approved", None) == History.CLEAN
    assert history_of("error", None) == History.CLEAN
    assert history_of("declined", "something_new") == History.SOFT_DECLINE


def test_thresholds_to_levels() -> None:
    t = Thresholds(fraud_elevated=0.2, fraud_highest=0.8, failure_defer=0.5)
    assert [t.fraud_level(p) for p in (0.1, 0.2, 0.79, 0.8, None)] == [
        FraudLevel.NORMAL, FraudLevel.ELEVATED, FraudLevel.ELEVATED, FraudLevel.HIGHEST, FraudLevel.UNKNOWN
    ]  # fmt: skip
    assert (t.likely_failure(0.5), t.likely_failure(0.49), t.likely_failure(None)) == (True, False, False)
    assert Thresholds(None, None, None).fraud_level(0.99) == FraudLevel.UNKNOWN


@given(
    level=st.sampled_from(list(FraudLevel)),
    history=st.sampled_from(list(History)),
    fails=st.booleans(),
)
def test_an_attempt_of_unknown_kind_is_decided_as_new_money_never_as_a_renewal(
    level: FraudLevel, history: History, fails: bool
) -> None:
    unknown = decide(Situation(level, fails, None, history))
    assert unknown.action is not Action.DEFER  # a renewal-only rule never applies
    assert unknown == decide(Situation(level, fails, S, history))
