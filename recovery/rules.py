"""The hard rules of recovery, which no model overrides.

* A decline whose code forbids retrying (lost / stolen / pick-up card, fraudulent, do-not-try-again, invalid
  account: ``retry_forbidden`` in :data:`events.schema.DECLINE_CODES`) is never retried; nor is an attempt
  riskgate itself blocked as fraud.
* A hard decline that the customer can fix (expired card, incorrect number, transaction not allowed) and a
  soft one that needs the customer (authentication required) are not retried until the customer acts.
* A card is never retried after its expiry month, nor more often than its network's caps allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from core.errors import RiskgateError
from events.schema import DECLINE_CODES, DeclineCode, DeclineFamily
from recovery.config import RetryCap


class UnknownDeclineCodeError(RiskgateError, ValueError):
    """A decline code outside the contract's taxonomy reached the planner."""


class CustomerAction(StrEnum):
    """What the customer is asked to do before (or instead of) a retry."""

    UPDATE_CARD = "update_card"
    AUTHENTICATE = "authenticate"
    OTHER_METHOD = "other_method"
    REMINDER = "reminder"


class NoRetry(StrEnum):
    """Why a plan holds no retry at all."""

    RETRY_FORBIDDEN = "retry_forbidden"
    FRAUD_BLOCKED = "fraud_blocked"
    NEEDS_CUSTOMER = "needs_customer"
    CARD_EXPIRED = "card_expired"


@dataclass(frozen=True)
class Block:
    """A hard rule that stops every retry of this card, and what the customer should do instead."""

    rule: NoRetry
    action: CustomerAction
    reason: str


def decline_code(value: str) -> DeclineCode:
    """The contract's decline code of ``value``; raises with the allowed codes if it is not one."""
    try:
        return DeclineCode(value)
    except ValueError:
        allowed = ", ".join(code.value for code in DeclineCode)
        raise UnknownDeclineCodeError(
            f"unknown decline code {value!r}: the planner follows the contract's taxonomy ({allowed}); "
            "map the gateway's code to one of them in the import mapping"
        ) from None


def block_for(code: DeclineCode | None, *, fraud_blocked: bool) -> Block | None:
    """The hard rule that forbids retrying after this decline (or a fraud block), if any."""
    if fraud_blocked:
        return Block(
            NoRetry.FRAUD_BLOCKED,
            CustomerAction.OTHER_METHOD,
            "riskgate blocked the attempt as fraud: it is never retried",
        )
    if code is None:
        return None
    rule = DECLINE_CODES[code]
    if rule.retry_forbidden:
        return Block(
            NoRetry.RETRY_FORBIDDEN,
            CustomerAction.OTHER_METHOD,
            f"decline '{code.value}' forbids retrying this card (card-network rule)",
        )
    if rule.family is DeclineFamily.EXPIRED:
        return Block(NoRetry.CARD_EXPIRED, CustomerAction.UPDATE_CARD, "the card has expired")
    if rule.hard or rule.customer_action:
        action = (
            CustomerAction.AUTHENTICATE
            if code is DeclineCode.AUTHENTICATION_REQUIRED
            else CustomerAction.UPDATE_CARD
        )
        return Block(
            NoRetry.NEEDS_CUSTOMER,
            action,
            f"decline '{code.value}' needs the customer before a retry can succeed",
        )
    return None


def card_network(card_bin: str | None) -> str | None:
    """The card network of a BIN by its leading digits (ISO/IEC 7812 ranges), or None if unknown."""
    if not card_bin or not card_bin[:4].isdigit():
        return None
    two, four = int(card_bin[:2]), int(card_bin[:4])
    if card_bin[0] == "4":
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in {34, 37}:
        return "amex"
    if four == 6011 or two == 65 or 644 <= int(card_bin[:3]) <= 649:
        return "discover"
    return None


def card_expires_at(card_exp: str | None) -> datetime | None:
    """The first instant a card with expiry ``YYYY-MM`` is no longer valid (None for no expiry)."""
    if not card_exp:
        return None
    year, month = int(card_exp[:4]), int(card_exp[5:7])
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def within_caps(earlier: Sequence[datetime], at: datetime, caps: Sequence[RetryCap]) -> bool:
    """Whether one more retry at ``at`` keeps every cap (a sliding period ending at ``at``), given the times
    of the card's earlier retries."""
    for cap in caps:
        recent = sum(1 for t in earlier if at - cap.period < t <= at)
        if recent + 1 > cap.max_attempts:
            return False
    return True
