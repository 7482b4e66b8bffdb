"""POST /v1/score and /v1/score/batch.

``POST /v1/score`` is answered by :class:`serving.api.fastpath.ScoreFastPath` in front of FastAPI; the route
below
stays registered (it documents the endpoint and serves it when the app is built without the fast path), and
both reach :func:`score_request`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from serving.api.answers import NOT_TAKING_WRITES
from serving.api.jsonbody import FastJSONResponse, body_schema, parse_body
from serving.api.routes.deps import ScoreKey, ServiceDep, served_body
from serving.api.service import Service
from serving.errors import PayloadTooLargeError
from serving.scoring.answers import BatchAnswer, ScoreAnswer
from serving.scoring.schemas import AttemptIn, BatchIn, BatchOut, ErrorOut, ScoreOut

SCORE_PATH = "/score"  # under the API prefix: POST /v1/score
router = APIRouter(tags=["scoring"])
ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: {"model": ErrorOut} for code in (401, 403, 409, 413)},
    **NOT_TAKING_WRITES,
}


def score_request(service: Service, body: bytes, explain: bool) -> ScoreAnswer:
    """The answer to an authenticated ``POST /v1/score``: ``body`` validated as :class:`AttemptIn` (422
    otherwise), then the whole decision."""
    return service.engine.score(parse_body(AttemptIn, body, service.engine.validation_context), explain)


@router.post(SCORE_PATH, response_model=ScoreOut, responses=ERRORS, openapi_extra=body_schema(AttemptIn))
async def score_attempt(
    request: Request, service: ServiceDep, _: ScoreKey, explain: bool = False
) -> FastJSONResponse:
    """Score one attempt (the body: `AttemptIn`): fraud and failure probabilities, the action and why, logged
    before it is answered.

    Idempotent on `attempt_id`: a repeat returns the logged decision (`replayed: true`); a repeat with a
    different payload is refused (409). `explain=true` adds the full feature vector.
    """
    return FastJSONResponse(score_request(service, await request.body(), explain))


@router.post("/score/batch", response_model=BatchOut, responses=ERRORS, openapi_extra=body_schema(BatchIn))
def score_batch(
    _: ScoreKey, service: ServiceDep, batch: Annotated[BatchIn, Depends(served_body(BatchIn))]
) -> FastJSONResponse:
    """Score many attempts (a renewal run), each exactly as `POST /v1/score` would, in order.

    At most `max_batch` attempts per call (500 unless configured; larger batches get 413).
    """
    if len(batch.attempts) > service.limits.max_batch:
        raise PayloadTooLargeError(
            f"batch of {len(batch.attempts)} attempts exceeds the limit of {service.limits.max_batch}: "
            "split it into smaller calls"
        )
    answer: BatchAnswer = {"results": [service.engine.score(a, batch.explain) for a in batch.attempts]}
    return FastJSONResponse(answer)
