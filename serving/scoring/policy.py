"""The decision policy: from (fraud level, failure risk, attempt kind, decline history) to an action.

The mapping is one ordered table, :data:`RULES`; the first rule that matches decides, and its name is returned
with the action so every decision says why. Thresholds come from the models (the fraud bundle's levels, the
failure bundle's cost-optimal decision threshold) and can be overridden in the settings.

When the fraud model is unavailable the fraud level is ``unknown`` and the fallback rules decide: an existing
subscriber's renewal or retry goes ahead (the service must never be the reason a renewal stalls), a new
customer's charge goes to review. Such decisions are marked ``fallback``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from events.schema import DECLINE_CODES, AttemptKind


class Action(StrEnum):
    APPROVE = "approve"  # send the charge to the gateway
    REVIEW = "review"  # hold for manual review
    BLOCK = "block"  # refuse the charge
    DEFER = "defer"  # do not charge now: retry the renewal at a better moment


class FraudLevel(StrEnum):
    NORMAL = "normal"
    ELEVATED = "elevated"
    HIGHEST = "highest"
    UNKNOWN = "unknown"  # the fraud model is unavailable


class History(StrEnum):
    """The last gateway answer for this payment method, as the policy sees it."""

    CLEAN = "clean"  # no outcome yet, or the last one was an approval
    SOFT_DECLINE = "soft_decline"  # declined, a later retry may succeed
    HARD_DECLINE = "hard_decline"  # declined; fails until the customer acts (new card, authentication)
    RETRY_FORBIDDEN = "retry_forbidden"  # card-network rules forbid charging this card again


#: An attempt whose kind is unknown (``None``: the provider does not send it) is not a renewal: it is never
#: deferred as one, and held for review like new money when the fraud model is unavailable.
RECURRING: Final[frozenset[AttemptKind | None]] = frozenset({AttemptKind.RENEWAL, AttemptKind.RETRY})
NEW_MONEY: Final[frozenset[AttemptKind | None]] = frozenset(
    {AttemptKind.SIGNUP, AttemptKind.UPGRADE, AttemptKind.ONE_OFF, None}
)
ANY_KIND: Final[frozenset[AttemptKind | None]] = frozenset({*AttemptKind, None})
ANY_LEVEL: Final = frozenset(FraudLevel)
ANY_HISTORY: Final = frozenset(History)
_DECLINE_RULES: Final = {code.value: rule for code, rule in DECLINE_CODES.items()}


@dataclass(frozen=True)
class Rule:
    """One row of the policy table: conditions (sets of accepted values) and the action they lead to."""

    name: str
    action: Action
    levels: frozenset[FraudLevel] = ANY_LEVEL
    kinds: frozenset[AttemptKind | None] = ANY_KIND
    history: frozenset[History] = ANY_HISTORY
    likely_failure: bool | None = None  # None: either
    fallback: bool = False
    description: str = ""

    def matches(self, situation: Situation) -> bool:
        return (
            situation.level in self.levels
            and situation.kind in self.kinds
            and situation.history in self.history
            and (self.likely_failure is None or self.likely_failure == situation.likely_failure)
        )


@dataclass(frozen=True)
class Situation:
    """What the policy decides on."""

    level: FraudLevel
    likely_failure: bool
    kind: AttemptKind | None  # None: unknown (see RECURRING)
    history: History


#: The policy, read top to bottom; the last rule matches everything.
RULES: Final[tuple[Rule, ...]] = (
    Rule("fraud_highest", Action.BLOCK, levels=frozenset({FraudLevel.HIGHEST}),
         description="fraud probability at the highest level"),
    Rule("retry_forbidden", Action.BLOCK, history=frozenset({History.RETRY_FORBIDDEN}),
         description="the card's last decline forbids any new charge (lost, stolen, do not try again)"),
    Rule("fraud_elevated", Action.REVIEW, levels=frozenset({FraudLevel.ELEVATED}),
         description="fraud probability elevated: hold for review"),
    Rule("hard_decline_recurring", Action.DEFER, kinds=RECURRING, history=frozenset({History.HARD_DECLINE}),
         description="the card fails until the customer acts: wait for an updated card"),
    Rule("likely_failure_recurring", Action.DEFER, kinds=RECURRING, likely_failure=True,
         levels=frozenset({FraudLevel.NORMAL, FraudLevel.UNKNOWN}),
         description="the renewal would probably be declined now: retry at a better moment"),
    Rule("fallback_recurring", Action.APPROVE, levels=frozenset({FraudLevel.UNKNOWN}), kinds=RECURRING,
         fallback=True, description="fraud model unavailable: let an existing subscriber's renewal go ahead"),
    Rule("fallback_new_money", Action.REVIEW, levels=frozenset({FraudLevel.UNKNOWN}), kinds=NEW_MONEY,
         fallback=True, description="fraud model unavailable: hold new customers' charges for review"),
    Rule("default", Action.APPROVE, description="no rule objects: charge"),
)  # fmt: skip


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs on calibrated probabilities (``None``: that model is unavailable)."""

    fraud_elevated: float | None
    fraud_highest: float | None
    failure_defer: float | None

    def fraud_level(self, probability: float | None) -> FraudLevel:
        if probability is None or self.fraud_elevated is None or self.fraud_highest is None:
            return FraudLevel.UNKNOWN
        if probability >= self.fraud_highest:
            return FraudLevel.HIGHEST
        if probability >= self.fraud_elevated:
            return FraudLevel.ELEVATED
        return FraudLevel.NORMAL

    def likely_failure(self, probability: float | None) -> bool:
        if probability is None or self.failure_defer is None:
            return False
        return probability >= self.failure_defer


@dataclass(frozen=True)
class Verdict:
    action: Action
    rule: str
    fallback: bool


def decide(situation: Situation, rules: tuple[Rule, ...] = RULES) -> Verdict:
    """The first matching rule's action."""
    for rule in rules:
        if rule.matches(situation):
            return Verdict(rule.action, rule.name, rule.fallback or situation.level == FraudLevel.UNKNOWN)
    raise LookupError("the policy table has no catch-all rule: add a last rule matching everything")


def history_of(last_status: str | None, last_decline_code: str | None) -> History:
    """How the policy reads the last gateway answer for a payment method."""
    if last_status != "declined":
        return History.CLEAN  # approved, error (technical, says nothing of the card) or nothing yet
    rule = _DECLINE_RULES.get(last_decline_code or "")
    if rule is None:
        return History.SOFT_DECLINE  # a decline without a known code: assume a later retry may succeed
    if rule.retry_forbidden:
        return History.RETRY_FORBIDDEN
    if rule.hard:
        return History.HARD_DECLINE
    return History.SOFT_DECLINE
