"""Cost models and the thresholds they choose.

Both decisions have the same shape: flag an attempt (fraud: block it; failure: defer it) when its score is at
or above a threshold. Flagging a positive earns ``gain`` (fraud: the amount plus the chargeback fee that are
not lost; failure: the cost of a wasted attempt that is not paid); flagging a negative costs ``cost`` (fraud:
revenue lost by declining a good customer; failure: the renewal risked by deferring a payment that would
have gone through). Each attempt carries its own gain and cost (they depend on the amount). The threshold
is the one that maximises the net value ``Σ gain(flagged positives) − Σ cost(flagged negatives)`` on the
validation window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import FailureCosts, FraudCosts, Task, TrainingConfig

FloatArray = np.ndarray

#: A threshold above every probability: flag nothing.
NEVER = 1.0 + 1e-9


@dataclass(frozen=True)
class Stakes:
    """Per-attempt value of flagging a positive (``gain``) and cost of flagging a negative (``cost``)."""

    gain: FloatArray
    cost: FloatArray


def fraud_stakes(amount: FloatArray, approved: FloatArray, costs: FraudCosts) -> Stakes:
    """Money moves only on attempts the gateway would approve: a declined charge is neither charged back
    nor revenue (blocking it changes nothing)."""
    return Stakes(
        gain=np.where(approved, amount + costs.chargeback_fee, 0.0),
        cost=np.where(approved, amount * costs.false_decline_factor, 0.0),
    )


def failure_stakes(amount: FloatArray, costs: FailureCosts) -> Stakes:
    return Stakes(
        gain=np.full(len(amount), costs.wasted_attempt_cost), cost=amount * costs.missed_renewal_rate
    )


def stakes_for(task: Task, amount: FloatArray, approved: FloatArray, config: TrainingConfig) -> Stakes:
    """The stakes of each attempt; ``approved`` is whether the gateway approved (or would approve) it."""
    if task is Task.FRAUD:
        return fraud_stakes(amount, approved, config.fraud_costs)
    return failure_stakes(amount, config.failure_costs)


def best_threshold(scores: FloatArray, labels: FloatArray, stakes: Stakes) -> float:
    """The threshold maximising net value; :data:`NEVER` when no threshold is worth flagging anything."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    value = np.cumsum(np.where(labels[order] == 1, stakes.gain[order], -stakes.cost[order]))
    # Only cut between distinct scores: every attempt with the threshold's score is flagged.
    cuts = np.flatnonzero(np.r_[sorted_scores[1:] < sorted_scores[:-1], True])
    if len(cuts) == 0 or value[cuts].max() <= 0:
        return NEVER
    return float(sorted_scores[cuts[np.argmax(value[cuts])]])


def money(scores: FloatArray, labels: FloatArray, stakes: Stakes, threshold: float) -> dict[str, float]:
    """What the decision at ``threshold`` is worth, against flagging nothing."""
    flagged = scores >= threshold
    positive = labels == 1
    gained = float(stakes.gain[flagged & positive].sum())
    lost = float(stakes.cost[flagged & ~positive].sum())
    return {
        "flagged": float(flagged.sum()),
        "flagged_share": float(flagged.mean()),
        "true_positives": float((flagged & positive).sum()),
        "false_positives": float((flagged & ~positive).sum()),
        "value_at_stake": float(stakes.gain[positive].sum()),
        "value_saved": gained,
        "cost_of_false_flags": lost,
        "net_value": gained - lost,
    }
