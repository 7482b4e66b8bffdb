"""The billing checks on the decision path: computed before the rules, blocked by built-in rules by default.

:class:`BillingGate` runs :class:`billing.checks.BillingChecks` over the service's store
(:class:`serving.store.billing.BillingStore`): :meth:`BillingGate.check` answers an attempt's billing fields
(the rules read them by name, :data:`rules.schema.BILLING_CHECKS`), :meth:`BillingGate.decided` records the
attempt once its decision is logged (submitted to the gateway only when approved), :meth:`BillingGate.outcome`
records the gateway's answer (``POST /v1/outcomes``). Accounts are kept by their pseudonym.

:data:`BUILTIN_RULES` are three block rules, one per check, named as the check and reading it
(``billing_double_charge``, ``billing_price_mismatch``, ``billing_early_renewal``). They are served unless the
provider turns the checks off (``RISKGATE_BILLING_CHECKS=false``) or saves a rule of the same name (e.g. the
same rule with ``enabled: false``: the stored rule replaces the built-in one). They are evaluated first among
the block rules (an analyst's allow rule still comes before them); the decision they make is ``block``, names
the check in ``decision.rule`` and gives the reason :data:`billing.checks.BILLING_ERROR_REASON`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Final

from billing.catalogue import Catalogue
from billing.checks import (
    BILLING_ERROR_REASON,
    BillingCheck,
    BillingChecks,
    BillingFields,
    BillingPolicy,
    Charge,
)
from rules.book import RuleAction, RuleSpec
from serving.scoring.schemas import AttemptIn
from serving.store.base import epoch_us
from serving.store.billing import BillingStore

logger = logging.getLogger(__name__)

_DESCRIPTIONS: Final = {
    BillingCheck.DOUBLE_CHARGE: "built in: the invoice is already paid, or this try was just sent",
    BillingCheck.PRICE_MISMATCH: "built in: a new or renewed plan charged off its catalogue price",
    BillingCheck.EARLY_RENEWAL: "built in: a renewal before the account's paid period allows",
}
#: The built-in rules: block an attempt that fails a billing check (one rule per check, named as it).
BUILTIN_RULES: Final = tuple(
    RuleSpec(check.value, RuleAction.BLOCK, check.value, True, _DESCRIPTIONS[check]) for check in BillingCheck
)
_BUILTIN_NAMES: Final = frozenset(spec.name for spec in BUILTIN_RULES)
#: The answer when the checks could not be made.
NOT_CHECKED: Final = BillingFields(None, None, None, None, None)


def with_builtin(specs: Sequence[RuleSpec], builtin: Sequence[RuleSpec]) -> tuple[RuleSpec, ...]:
    """``builtin`` rules first, then ``specs``; a rule of ``specs`` with a built-in rule's name replaces it
    (that is how a provider disables or changes one)."""
    named = {spec.name for spec in specs}
    return (*(spec for spec in builtin if spec.name not in named), *specs)


def decision_reasons(rule: str) -> list[str]:
    """The reasons a decision made by ``rule`` gives: ``billing_error`` for a billing check's rule."""
    return [BILLING_ERROR_REASON] if rule in _BUILTIN_NAMES else []


class BillingGate:
    """The billing checks of the service (see the module docstring); safe to call from several threads."""

    def __init__(
        self,
        store: BillingStore,
        catalogue: Catalogue | None,
        pseudonymise: Callable[[str | None], str | None],
        policy: BillingPolicy | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.on_error = on_error
        self.checks = BillingChecks(store, catalogue, policy)
        self.pseudonymise = pseudonymise
        self._lock = threading.Lock()

    def charge(self, attempt: AttemptIn) -> Charge:
        """What the checks read from ``attempt``."""
        return Charge(
            attempt_id=attempt.attempt_id,
            occurred_us=epoch_us(attempt.occurred_at),
            account_id=self.pseudonymise(attempt.account_id) or "",
            kind=None if attempt.kind is None else attempt.kind.value,
            invoice_id=attempt.invoice_id,
            retry_number=attempt.retry_number or 0,
            amount=attempt.amount,
            currency=attempt.currency,
            plan_tier=None if attempt.plan_tier is None else attempt.plan_tier.value,
            plan_period=None if attempt.plan_period is None else attempt.plan_period.value,
        )

    def check(self, charge: Charge) -> BillingFields:
        """The attempt's billing fields; none checked if the store fails (the decision is still made). An
        attempt that is not a double charge claims its invoice at once (:meth:`BillingChecks.claim`), so a
        second attempt of the invoice checked meanwhile, here or on another instance, is one."""
        try:
            with self._lock:
                return self.checks.claim(charge)
        except Exception:  # the store is down or corrupt: decide without the checks rather than stall
            self._failed("check")
            return NOT_CHECKED

    def decided(self, charge: Charge, action: str) -> None:
        """Record the attempt once its decision is logged: submitted to the gateway when approved."""
        try:
            with self._lock:
                self.checks.record_attempt(charge, submitted=action == "approve")
        except Exception:  # the decision is logged and answered: the checks miss this attempt
            self._failed("record the attempt")

    def outcome(self, attempt_id: str, status: str) -> None:
        """Record the gateway's answer for an attempt (an attempt the checks never saw changes nothing)."""
        try:
            with self._lock:
                self.checks.record_outcome(attempt_id, status)
        except Exception:  # the outcome is kept in the decision log: the checks miss it
            self._failed("record the outcome")

    def _failed(self, what: str) -> None:
        logger.exception("billing store failed to %s", what)
        if self.on_error is not None:
            self.on_error()

    def close(self) -> None:
        self.store.close()
