"""The billing checks' state machine, attempt by attempt, as the service and the replay drive it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.catalogue import Catalogue
from billing.checks import (
    US_PER_DAY,
    BillingCheck,
    BillingChecks,
    BillingFields,
    BillingPolicy,
    Charge,
    MemoryBillingState,
)

CATALOGUE = Catalogue({("basic", "monthly", "EUR"): 7.99, ("premium", "annual", "EUR"): 199.99})
T0 = 1_750_000_000 * 1_000_000
SECOND = 1_000_000


def charge(attempt: str, at_us: int = T0, **over: object) -> Charge:
    base = Charge(
        attempt_id=attempt, occurred_us=at_us, account_id="acc-1", kind="renewal", invoice_id="inv-1",
        retry_number=0, amount=7.99, currency="EUR", plan_tier="basic", plan_period="monthly",
    )  # fmt: skip
    return replace(base, **over)  # type: ignore[arg-type]


def machine(catalogue: Catalogue | None = CATALOGUE) -> BillingChecks:
    return BillingChecks(MemoryBillingState(), catalogue, BillingPolicy())


def sent(checks: BillingChecks, attempt: Charge, status: str | None = None) -> BillingFields:
    """Check, submit, and (if given) record the gateway's answer; the checks' answer before submitting."""
    fields = checks.check(attempt)
    checks.record_attempt(attempt, submitted=True)
    if status is not None:
        checks.record_outcome(attempt.attempt_id, status)
    return fields


def test_a_second_charge_of_a_paid_invoice_is_a_double_charge() -> None:
    checks = machine()
    assert sent(checks, charge("a1"), "approved").failed() == ()
    again = checks.check(charge("a2", T0 + 3 * US_PER_DAY))
    assert again.billing_double_charge is True
    assert again.failed() == (BillingCheck.DOUBLE_CHARGE,)


def test_a_resubmission_before_the_answer_is_a_double_charge_within_the_window() -> None:
    checks = machine()
    sent(checks, charge("a1"))  # no outcome yet
    assert checks.check(charge("a2", T0 + 2 * SECOND)).billing_double_charge is True
    late = T0 + int(BillingPolicy().double_submission_window_s + 1) * SECOND
    assert checks.check(charge("a2", late)).billing_double_charge is False  # the answer may be lost


def test_a_retry_after_a_decline_is_not_a_double_charge() -> None:
    checks = machine()
    sent(checks, charge("a1"), "declined")
    retry = charge("a2", T0 + US_PER_DAY, kind="retry", retry_number=1)
    assert checks.check(retry).billing_double_charge is False
    sent(checks, retry, "approved")
    assert checks.check(charge("a3", T0 + 2 * US_PER_DAY, kind="retry", retry_number=2)).billing_double_charge


def test_an_attempt_riskgate_did_not_submit_is_not_pending() -> None:
    checks = machine()
    checks.record_attempt(charge("a1"), submitted=False)  # blocked: never reached the gateway
    assert checks.check(charge("a2", T0 + SECOND)).billing_double_charge is False


def test_the_same_attempt_asked_again_is_not_its_own_double() -> None:
    checks = machine()
    sent(checks, charge("a1"), "approved")
    assert checks.check(charge("a1")).billing_double_charge is False


def test_prices_are_checked_for_new_and_renewed_plans_and_their_retries_only() -> None:
    checks = machine()
    assert checks.check(charge("a1", amount=9.99)).billing_price_mismatch is True
    assert checks.check(charge("a1", amount=7.99)).billing_catalogue_price == 7.99
    assert (
        checks.check(charge("u1", kind="upgrade", invoice_id="u", amount=3.12)).billing_price_mismatch is None
    )
    assert (
        checks.check(charge("o1", kind="one_off", invoice_id="o", amount=4.99)).billing_price_mismatch is None
    )
    sent(checks, charge("s1", kind="signup", invoice_id="s", amount=9.99), "declined")
    retry = charge("s2", kind="retry", invoice_id="s", retry_number=1, amount=9.99)
    assert checks.check(retry).billing_price_mismatch is True  # the retry of a signup invoice is priced
    upgrade_retry = charge("u2", kind="retry", invoice_id="u", amount=3.12)
    sent(checks, charge("u1", kind="upgrade", invoice_id="u", amount=3.12), "declined")
    assert checks.check(upgrade_retry).billing_price_mismatch is None


def test_without_a_catalogue_or_an_entry_prices_are_not_checked() -> None:
    assert machine(None).check(charge("a1", amount=1.0)).billing_price_mismatch is None
    fields = machine().check(charge("a1", currency="USD", amount=1.0))
    assert (fields.billing_price_mismatch, fields.billing_catalogue_price) == (None, None)
    assert fields.failed() == ()


@given(cents=st.integers(-5000, 5000))
def test_a_price_mismatch_is_a_difference_beyond_the_tolerance(cents: int) -> None:
    amount = round(199.99 + cents / 100, 2)
    fields = machine().check(charge("a1", plan_tier="premium", plan_period="annual", amount=amount))
    assert fields.billing_price_mismatch is (abs(cents) >= 200)  # 1% of 199.99 is 2.00 less a cent


def test_a_renewal_before_its_period_allows_is_early() -> None:
    checks = machine()
    sent(checks, charge("a1", kind="signup"), "approved")
    early = charge("a2", T0 + 10 * US_PER_DAY, invoice_id="inv-2")
    assert checks.check(early).billing_early_renewal is True
    assert checks.check(early).billing_days_since_paid == pytest.approx(10.0)
    on_time = charge("a3", T0 + 27 * US_PER_DAY, invoice_id="inv-3")  # 28 days less 2 of grace
    assert checks.check(on_time).billing_early_renewal is False


def test_an_early_renewal_does_not_move_the_accounts_cycle() -> None:
    checks = machine()
    sent(checks, charge("a1"), "approved")
    sent(checks, charge("a2", T0 + 10 * US_PER_DAY, invoice_id="inv-2"), "approved")  # early, charged
    assert checks.check(charge("a3", T0 + 30 * US_PER_DAY, invoice_id="inv-3")).billing_early_renewal is False


def test_a_renewal_recovered_late_by_a_retry_keeps_its_due_date() -> None:
    """Dunning recovers a renewal 14 days after its due date: the next renewal is due a period after the due
    date, not after the retry, so it is on time."""
    checks = machine()
    sent(checks, charge("a1"), "declined")
    sent(checks, charge("a2", T0 + 14 * US_PER_DAY, kind="retry", retry_number=1), "approved")
    assert checks.check(charge("a3", T0 + 30 * US_PER_DAY, invoice_id="inv-2")).billing_early_renewal is False


def test_without_a_known_paid_period_renewals_are_not_checked() -> None:
    fields = machine().check(charge("a1"))
    assert (fields.billing_early_renewal, fields.billing_days_since_paid) == (None, None)
    assert machine().check(charge("a1", kind="signup")).billing_early_renewal is None


def test_a_retry_is_priced_by_its_invoices_plan_even_if_the_plan_changed_since() -> None:
    """An upgrade during dunning: the retries still charge the invoice's price, which is right."""
    checks = machine()
    sent(checks, charge("a1"), "declined")  # basic monthly, 7.99
    retry = charge("a2", T0 + US_PER_DAY, kind="retry", retry_number=1, plan_tier="premium")
    assert checks.check(retry).billing_price_mismatch is False
    assert checks.check(replace(retry, amount=19.99)).billing_price_mismatch is True
