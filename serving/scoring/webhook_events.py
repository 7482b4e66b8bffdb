"""The events the scoring path and the recovery planner emit into the outbox (:mod:`serving.store.outbox`).

Emitting is one append to the outbox, on the caller's thread; delivery happens later, in the deliverer's
thread (:mod:`serving.api.webhooks`). Payloads hold what the decision log keeps, never more: ids of people
as the log's keyed pseudonyms, the attempt's own id, its amount and segments, never a card detail. An
outbox that fails is logged and counted (``riskgate_errors_total{kind="outbox"}``): a decision or a plan is
never refused because its event could not be kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from serving.metrics import ServiceMetrics
from serving.scoring.answers import RecoveryPlanAnswer, ScoreAnswer
from serving.scoring.schemas import AttemptIn
from serving.store.outbox import EventType, Outbox

logger = logging.getLogger(__name__)

Pseudonymise = Callable[[str | None], str | None]


def emit_blocked(
    outbox: Outbox,
    metrics: ServiceMetrics,
    answer: ScoreAnswer,
    attempt: AttemptIn,
    pseudonymise: Pseudonymise,
) -> None:
    """``decision.blocked`` for a first decision ``block`` (once per attempt: the attempt id is its key)."""
    fraud, decision = answer["fraud"], answer["decision"]
    payload = {
        "attempt_id": attempt.attempt_id,
        "occurred_at": attempt.occurred_at.isoformat(),
        "account": pseudonymise(attempt.account_id),
        "payment_method": pseudonymise(attempt.payment_method_id),
        "kind": None if attempt.kind is None else attempt.kind.value,
        "rule": decision["rule"],
        "decided_by": decision["decided_by"],
        "reasons": list(decision["reasons"]),
        "fallback": decision["fallback"],
        "fraud_probability": fraud["probability"],
        "fraud_level": fraud["level"],
        "amount": attempt.amount,
        "currency": attempt.currency,
    }
    _emit(outbox, metrics, EventType.DECISION_BLOCKED, payload, attempt.attempt_id)


def emit_review(
    outbox: Outbox, metrics: ServiceMetrics, event: EventType, payload: Mapping[str, Any]
) -> None:
    """``review.opened`` or ``review.resolved`` (once per case: the case id is its key)."""
    _emit(outbox, metrics, event, payload, str(payload["case_id"]))


def emit_customer_actions(
    outbox: Outbox,
    metrics: ServiceMetrics,
    plan: RecoveryPlanAnswer,
    attempt: AttemptIn,
    pseudonymise: Pseudonymise,
) -> None:
    """``recovery.customer_action`` for each step of a plan that needs the customer (once per attempt and
    action, however often the plan is asked for)."""
    for step in plan["steps"]:
        action = step["action"]
        if action is None:
            continue
        payload = {
            "attempt_id": attempt.attempt_id,
            "invoice_id": plan["invoice_id"],
            "account": pseudonymise(attempt.account_id),
            "action": action,
            "at": step["at"],
            "reason": step["reason"],
        }
        key = f"{attempt.attempt_id}:{action}"
        _emit(outbox, metrics, EventType.RECOVERY_CUSTOMER_ACTION, payload, key)


def _emit(
    outbox: Outbox, metrics: ServiceMetrics, event: EventType, payload: Mapping[str, Any], key: str
) -> None:
    try:
        outbox.emit(event, payload, key=key)
    except Exception:  # the decision stands; the event is lost, which the metric and the log say
        metrics.count_error("outbox")
        logger.exception("%s event not kept in the outbox", event.value)
