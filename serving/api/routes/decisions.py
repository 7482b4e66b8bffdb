"""GET /v1/decisions/{attempt_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from serving.api.routes.deps import ScoreKey, ServiceDep
from serving.scoring.schemas import ErrorOut, LoggedDecisionOut

router = APIRouter(tags=["decisions"])


@router.get("/decisions/{attempt_id}", response_model=LoggedDecisionOut, responses={404: {"model": ErrorOut}})
def get_decision(
    attempt_id: Annotated[str, Path(min_length=1, max_length=128)], service: ServiceDep, _: ScoreKey
) -> LoggedDecisionOut:
    """The decision logged for an attempt, with its feature vector and the attempt's attributes (for support
    and audits)."""
    logged = service.engine.decision(attempt_id)
    return LoggedDecisionOut.model_validate(
        {
            **logged.answer,
            "decided_at": logged.decided_at,
            "erased": logged.erased,
            "attributes": logged.attributes,
        }
    )
