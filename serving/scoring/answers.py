"""The static types of the engine's JSON-ready answers (``POST /v1/score``, ``POST /v1/recovery-plan``).

The answers stay plain dicts (the fast path renders them with orjson; a pydantic model per request would
cost more than the decision itself), typed here as :class:`typing.TypedDict` so that mypy checks where they
are built and where they are read. Each mirrors the response document of :mod:`serving.scoring.schemas`
of the same name (``ScoreAnswer`` / ``ScoreOut``, ...); a test keeps their keys equal, so the type and the
document cannot drift apart. Enum values are written as their strings (the documents state which).
"""

from __future__ import annotations

from typing import TypedDict


class ModelRefAnswer(TypedDict):
    """The model version that answered (:class:`serving.scoring.schemas.ModelRef`)."""

    name: str
    version: str
    source: str


class ReasonAnswer(TypedDict):
    """One reason code (:class:`serving.scoring.schemas.ReasonOut`)."""

    feature: str
    value: float | None
    contribution: float


class FraudAnswer(TypedDict):
    """The fraud model's part (:class:`serving.scoring.schemas.FraudOut`)."""

    probability: float | None
    level: str
    reasons: list[ReasonAnswer]
    model: ModelRefAnswer | None


class FailureAnswer(TypedDict):
    """The failure model's part (:class:`serving.scoring.schemas.FailureOut`)."""

    probability: float | None
    reasons: list[ReasonAnswer]
    model: ModelRefAnswer | None


class DecisionAnswer(TypedDict):
    """The policy's verdict (:class:`serving.scoring.schemas.DecisionOut`)."""

    action: str
    rule: str
    fallback: bool
    decided_by: str
    reasons: list[str]


class ScoreAnswer(TypedDict):
    """One decision (:class:`serving.scoring.schemas.ScoreOut`); ``features`` is None unless explained."""

    attempt_id: str
    fraud: FraudAnswer
    failure: FailureAnswer
    decision: DecisionAnswer
    scoring_ms: float
    replayed: bool
    features: dict[str, float | None] | None


class BatchAnswer(TypedDict):
    """Many decisions, in the order asked (:class:`serving.scoring.schemas.BatchOut`)."""

    results: list[ScoreAnswer]


class RecoveryStepAnswer(TypedDict):
    """One step of a plan (:class:`serving.scoring.schemas.RecoveryStepOut`); ``at`` in ISO 8601."""

    kind: str
    at: str
    success_probability: float | None
    action: str | None
    reason: str


class PlannedAnswer(TypedDict):
    """What the planner (or the fallback schedule) decided: a plan's answer before the service adds which
    model planned it and how long it took (:meth:`recovery.planner.RecoveryPlan.as_json` and ``fallback``)."""

    invoice_id: str | None
    steps: list[RecoveryStepAnswer]
    recovery_probability: float | None
    expected_attempts: float | None
    stop: str
    hard_rule: str | None
    candidates: int
    fallback: bool


class RecoveryPlanAnswer(PlannedAnswer):
    """A recovery plan (:class:`serving.scoring.schemas.RecoveryPlanOut`)."""

    model: ModelRefAnswer | None
    planned_with: str
    planning_ms: float


class RecoveryBatchAnswer(TypedDict):
    """Many plans, in the order asked (:class:`serving.scoring.schemas.RecoveryBatchOut`)."""

    results: list[RecoveryPlanAnswer]


__all__ = [
    "BatchAnswer",
    "DecisionAnswer",
    "FailureAnswer",
    "FraudAnswer",
    "ModelRefAnswer",
    "PlannedAnswer",
    "ReasonAnswer",
    "RecoveryBatchAnswer",
    "RecoveryPlanAnswer",
    "RecoveryStepAnswer",
    "ScoreAnswer",
]
