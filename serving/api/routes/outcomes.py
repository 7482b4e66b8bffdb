"""POST /v1/outcomes."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from serving.api.answers import NOT_TAKING_WRITES
from serving.api.routes.deps import ScoreKey, ServiceDep
from serving.errors import PayloadTooLargeError
from serving.scoring.schemas import ErrorOut, OutcomesIn, OutcomesOut

router = APIRouter(tags=["outcomes"])


@router.post(
    "/outcomes", response_model=OutcomesOut, responses={413: {"model": ErrorOut}, **NOT_TAKING_WRITES}
)
def record_outcomes(body: OutcomesIn, service: ServiceDep, _: ScoreKey) -> OutcomesOut:
    """Gateway outcomes and fraud reports: they update the online store and are kept for retraining.

    They may arrive late, twice or before their attempt: each is applied once (duplicates are counted as
    such), and one whose attempt is not known yet is kept until the attempt arrives.
    """
    size = len(body.outcomes) + len(body.fraud_reports)
    if size > service.limits.max_batch:
        raise PayloadTooLargeError(f"{size} events exceed the limit of {service.limits.max_batch} per call")
    counts = service.engine.record_outcomes(body.outcomes, body.fraud_reports)
    return OutcomesOut(**asdict(counts))
