"""The failure mechanism: directional behaviour a smart-retry planner relies on."""

from __future__ import annotations

from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from events.schema import DECLINE_CODES, DeclineCode
from simulator import WorldConfig
from simulator.catalog import CARD, FUNDINGS, METHOD_TYPES
from simulator.truth import (
    CARD_OK,
    CARD_STOLEN,
    CAUSES,
    DECLINE_CODE_NAMES,
    NO_PRIOR,
    FailureRisk,
    GatewayIncidents,
    PaymentState,
    build_incidents,
    day_of_month,
    failure_probability,
    sample_outcomes,
)

PARAMS = WorldConfig().failure
NO_INCIDENTS = GatewayIncidents(
    np.array([], dtype="datetime64[s]"), np.array([], dtype="datetime64[s]"), np.array([])
)
NAT = np.datetime64("NaT", "s")


def card(funding: str = "debit", **over: object) -> PaymentState:
    """One card payment state (a factory: override any field)."""
    values: dict[str, object] = {
        "method": np.array([CARD]),
        "funding": np.array([FUNDINGS.index(funding)]),
        "issuer_logit": np.array([0.0]),
        "card_exp_month": np.array([np.datetime64("2030-01", "M").astype(np.int64)]),
        "card_status": np.array([CARD_OK]),
        "blocked_at": np.array([NAT]),
        "fragility": np.array([0.0]),
        "cross_border": np.array([False]),
        "amount_eur": np.array([12.0]),
        "prior_cause": np.array([NO_PRIOR]),
        "prior_at": np.array([NAT]),
    }
    values.update({key: np.array([value]) for key, value in over.items()})
    return PaymentState(**values)  # type: ignore[arg-type]


def at(*stamps: str) -> np.ndarray:
    return np.array(stamps, dtype="datetime64[s]")


def p_fail(state: PaymentState, *stamps: str, incidents: GatewayIncidents = NO_INCIDENTS) -> np.ndarray:
    times = at(*stamps)
    return failure_probability(state.repeat(len(times)), times, incidents, PARAMS).p_fail


def test_prepaid_fails_more_before_payday_than_after() -> None:
    before, after = p_fail(card("prepaid"), "2025-03-29T03:00:00", "2025-04-02T03:00:00")
    assert before > 1.5 * after


def test_prepaid_fails_more_than_credit_on_the_same_day() -> None:
    (prepaid,) = p_fail(card("prepaid"), "2025-03-25T03:00:00")
    (credit,) = p_fail(card("credit"), "2025-03-25T03:00:00")
    assert prepaid > 2 * credit


def test_expired_and_blocked_cards_always_fail() -> None:
    expired = card(card_exp_month=np.datetime64("2025-02", "M").astype(np.int64))
    assert p_fail(expired, "2025-02-28T23:00:00")[0] < 0.5  # valid through its expiry month
    assert p_fail(expired, "2025-03-01T01:00:00")[0] == 1.0
    blocked = card(card_status=CARD_STOLEN, blocked_at=np.datetime64("2025-03-10T00:00:00", "s"))
    before, after = p_fail(blocked, "2025-03-09T00:00:00", "2025-03-11T00:00:00")
    assert before < 1.0
    assert after == 1.0


def test_gateway_incident_raises_errors_only_inside_its_window() -> None:
    incidents = GatewayIncidents(at("2025-03-10T10:00:00"), at("2025-03-10T12:00:00"), np.array([4.0]))
    state = card()
    times = at("2025-03-10T09:59:00", "2025-03-10T11:00:00", "2025-03-10T12:00:00")
    risk = failure_probability(state.repeat(3), times, incidents, PARAMS)
    technical = risk.by_cause[:, CAUSES.index("technical")]
    assert technical[1] > 20 * technical[0]
    assert technical[2] == technical[0]


@settings(max_examples=50, deadline=None)
@given(first=st.floats(0.1, 20), later=st.floats(0.1, 20), funding=st.sampled_from(FUNDINGS))
def test_a_funds_decline_fades_with_time(first: float, later: float, funding: str) -> None:
    """Once the payday swing is taken out, retrying later never looks worse than retrying sooner."""
    decline = np.datetime64("2025-03-01T03:00:00", "s")
    state = card(funding, prior_cause=CAUSES.index("funds"), prior_at=decline)
    soon, late = sorted([first, later])
    times = decline + np.array([int(soon * 86400), int(late * 86400)]).astype("timedelta64[s]")
    risk = failure_probability(state.repeat(2), times, NO_INCIDENTS, PARAMS)
    fading = risk.by_cause[:, CAUSES.index("funds")]
    payday = (day_of_month(times) - 1) / 30.0
    amplitude = PARAMS.payday_amplitude[funding]
    logit = np.log(fading / (1 - fading)) - amplitude * (payday - 0.5)
    assert logit[1] <= logit[0] + 1e-9


def test_a_prior_decline_on_the_same_method_makes_a_quick_retry_riskier() -> None:
    decline = "2025-03-10T03:00:00"
    fresh = card(prior_cause=CAUSES.index("funds"), prior_at=np.datetime64(decline, "s"))
    (quick,) = p_fail(fresh, "2025-03-11T03:00:00")
    (none,) = p_fail(card(), "2025-03-11T03:00:00")
    assert quick > 3 * none


def test_cross_border_and_weak_issuers_decline_more() -> None:
    (home,) = p_fail(card(), "2025-03-10T03:00:00")
    (abroad,) = p_fail(card(cross_border=True), "2025-03-10T03:00:00")
    (weak,) = p_fail(card(issuer_logit=1.0), "2025-03-10T03:00:00")
    assert abroad > home
    assert weak > home


def test_non_cards_never_expire() -> None:
    paypal = card(method=METHOD_TYPES.index("paypal"), card_exp_month=0)
    assert p_fail(paypal, "2025-03-10T03:00:00")[0] < 0.2


def test_sampled_outcomes_follow_the_probabilities() -> None:
    rng = np.random.default_rng(1)
    n = 40_000
    by_cause = np.zeros((n, len(CAUSES)))
    by_cause[:, CAUSES.index("funds")] = 0.2
    by_cause[:, CAUSES.index("technical")] = 0.1
    risk = FailureRisk(by_cause)
    outcome = sample_outcomes(rng, risk)
    assert abs(outcome.failed.mean() - risk.p_fail[0]) < 0.01
    causes = outcome.cause[outcome.failed]
    assert set(np.unique(causes)) == {CAUSES.index("funds"), CAUSES.index("technical")}
    assert abs((causes == CAUSES.index("funds")).mean() - 2 / 3) < 0.02
    assert (outcome.code[~outcome.failed] == -1).all()


def test_every_sampled_code_belongs_to_its_cause() -> None:
    rng = np.random.default_rng(2)
    risk = FailureRisk(np.full((5000, len(CAUSES)), 0.3))
    outcome = sample_outcomes(rng, risk)
    for cause, code in zip(outcome.cause[outcome.failed], outcome.code[outcome.failed], strict=True):
        assert DECLINE_CODES[DeclineCode(DECLINE_CODE_NAMES[code])].family == CAUSES[cause]


def test_incidents_are_disjoint_and_deterministic() -> None:
    config = WorldConfig().incidents
    start, end = np.datetime64(date(2025, 1, 1), "s"), np.datetime64(date(2026, 1, 1), "s")
    first = build_incidents(config, start, end, seed=5)
    again = build_incidents(config, start, end, seed=5)
    assert len(first.starts) > 5
    assert (first.starts == again.starts).all()
    assert (first.ends > first.starts).all()
    assert (first.ends[:-1] <= first.starts[1:]).all()
