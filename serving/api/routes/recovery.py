"""POST /v1/recovery-plan and /v1/recovery-plan/batch: when to retry a declined renewal, and what to ask."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from serving.api.jsonbody import body_schema
from serving.api.routes.deps import ScoreKey, ServiceDep, served_body
from serving.errors import PayloadTooLargeError
from serving.scoring.answers import RecoveryBatchAnswer
from serving.scoring.recovery import RecoveryService
from serving.scoring.schemas import (
    ErrorOut,
    RecoveryBatchIn,
    RecoveryBatchOut,
    RecoveryCaseIn,
    RecoveryPlanOut,
)

router = APIRouter(tags=["recovery"])
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorOut} for code in (401, 403, 413, 422)}


def get_recovery(request: Request) -> RecoveryService:
    recovery: RecoveryService = request.app.state.recovery
    return recovery


RecoveryDep = Annotated[RecoveryService, Depends(get_recovery)]


@router.post(
    "/recovery-plan",
    response_model=RecoveryPlanOut,
    responses=ERRORS,
    openapi_extra=body_schema(RecoveryCaseIn),
)
def recovery_plan(
    _: ScoreKey,
    service: ServiceDep,
    recovery: RecoveryDep,
    case: Annotated[RecoveryCaseIn, Depends(served_body(RecoveryCaseIn))],
) -> JSONResponse:
    """The recovery plan of a declined attempt (or of a renewal about to be charged: `decline_code` null).

    Each step has its time, its success probability (conditional on the retries before it being declined) and
    the reason for it. Only the next retry is a commitment: call again after each decline. Without a failure
    model the plan follows a fixed schedule and says `"fallback": true`. Planning a case after a decline costs
    about 0.1 s (the failure model at every candidate time; `grid_hours` in the recovery config bounds it).
    """
    return JSONResponse(recovery.plan(case, service.engine))


@router.post(
    "/recovery-plan/batch",
    response_model=RecoveryBatchOut,
    responses=ERRORS,
    openapi_extra=body_schema(RecoveryBatchIn),
)
def recovery_plan_batch(
    _: ScoreKey,
    service: ServiceDep,
    recovery: RecoveryDep,
    batch: Annotated[RecoveryBatchIn, Depends(served_body(RecoveryBatchIn))],
) -> JSONResponse:
    """The plans of many cases (a renewal run), each as `POST /v1/recovery-plan` would answer, in order.

    At most `max_batch` cases per call (as `POST /v1/score/batch`; larger batches get 413).
    """
    if len(batch.cases) > service.limits.max_batch:
        raise PayloadTooLargeError(
            f"batch of {len(batch.cases)} cases exceeds the limit of {service.limits.max_batch}: "
            "split it into smaller calls"
        )
    answer: RecoveryBatchAnswer = {"results": [recovery.plan(case, service.engine) for case in batch.cases]}
    return JSONResponse(answer)
