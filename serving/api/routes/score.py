"""POST /v1/score and /v1/score/batch.

``POST /v1/score`` has one front door, :func:`serving.api.fastpath.score_response`: answered in front of
FastAPI by :class:`serving.api.fastpath.ScoreFastPath`, and by the route below when the app is built without
the fast path. The route declares the endpoint in the OpenAPI document (its key, ``explain`` parameter and
body are declared as data: the front door reads them itself) and hands the request to the front door.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from serving.api.answers import NOT_TAKING_WRITES
from serving.api.fastpath import score_response
from serving.api.jsonbody import FastJSONResponse, body_schema
from serving.api.routes.deps import KEY_SECURITY, ScoreKey, ServiceDep, served_body
from serving.errors import PayloadTooLargeError
from serving.scoring.answers import BatchAnswer
from serving.scoring.schemas import AttemptIn, BatchIn, BatchOut, ErrorOut, ScoreOut

SCORE_PATH = "/score"  # under the API prefix: POST /v1/score
router = APIRouter(tags=["scoring"])
ERRORS: dict[int | str, dict[str, Any]] = {
    **{code: {"model": ErrorOut} for code in (401, 403, 409, 413)},
    **NOT_TAKING_WRITES,
}
#: What the front door reads besides the body, as OpenAPI declares it (FastAPI does not see it in the route's
#: signature): the ``explain`` flag, and the API key.
SCORE_DECLARED: dict[str, Any] = {
    "parameters": [
        {
            "in": "query",
            "name": "explain",
            "required": False,
            "schema": {"default": False, "title": "Explain", "type": "boolean"},
        }
    ],
    "security": KEY_SECURITY,
}


@router.post(
    SCORE_PATH,
    response_model=ScoreOut,
    responses={**ERRORS, 422: {"model": ErrorOut, "description": "Validation Error"}},
    openapi_extra={**body_schema(AttemptIn), **SCORE_DECLARED},
)
async def score_attempt(request: Request, service: ServiceDep) -> Response:
    """Score one attempt (the body: `AttemptIn`): fraud and failure probabilities, the action and why, logged
    before it is answered.

    Idempotent on `attempt_id`: a repeat returns the logged decision (`replayed: true`); a repeat with a
    different payload is refused (409). `explain=true` adds the full feature vector.
    """
    return await score_response(service, request.scope, request.receive)


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
