"""How errors become HTTP answers: one definition, used by the FastAPI exception handlers
(:mod:`serving.api.app`) and the scoring fast path (:mod:`serving.api.fastpath`), so both answer alike.

Every failure on every route is answered in one shape, ``{"error", "message"}`` (``details`` on a 422), and
bodies say what went wrong without echoing request values (they may hold card numbers or personal data);
whatever a message does carry (a field name, an id from the path) has its card numbers masked
(:func:`events.cardnumbers.mask_card_numbers`). Any riskgate error (:class:`core.errors.RiskgateError`) is
answered with its own status and code; one whose status is 500, and any other exception, is internal: logged
with its traceback and answered without details.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from core.errors import RiskgateError
from events.cardnumbers import mask_card_numbers
from serving.errors import PayloadTooLargeError
from serving.metrics import ServiceMetrics
from serving.scoring.schemas import ErrorOut

logger = logging.getLogger(__name__)

VALIDATION_MESSAGE = "the request does not match the API schema: see details (values are never echoed)"
INTERNAL_MESSAGE = "unexpected error; it has been logged"
UNREADABLE_BODY_MESSAGE = (
    "the request body is not a JSON document riskgate can read: send UTF-8 JSON, not nested hundreds deep"
)


def body_too_large(limit: int) -> PayloadTooLargeError:
    """The error of a request body longer than ``limit`` bytes (declared or streamed)."""
    return PayloadTooLargeError(f"request body larger than {limit} bytes")


def declares_too_much(declared: bytes | None, limit: int) -> bool:
    """Whether a raw ``Content-Length`` header value declares a body longer than ``limit`` bytes (refused
    with :func:`too_large_response` before the body is read; a malformed value is left to the server)."""
    return declared is not None and declared.isdigit() and int(declared) > limit


def too_large_response(limit: int) -> JSONResponse:
    """The 413 answered before routing, when the declared ``Content-Length`` exceeds ``limit``."""
    return riskgate_error_response(body_too_large(limit))


def riskgate_error_response(error: RiskgateError) -> JSONResponse:
    """The answer to a riskgate error that is not internal: its status, its code and its message."""
    message = mask_card_numbers(str(error))  # e.g. an attempt id from the path
    return JSONResponse({"error": error.code, "message": message}, status_code=error.http_status)


def _masked(part: Any) -> Any:
    return mask_card_numbers(part) if isinstance(part, str) else part


def validation_response(error: RequestValidationError) -> JSONResponse:
    """422 with where and why of each problem (``loc``, ``msg``, ``type``), never the offending value (and
    a field name that holds a card number masked)."""
    details = [
        {
            "loc": [_masked(part) for part in e.get("loc", ())],
            "msg": mask_card_numbers(str(e.get("msg", ""))),
            "type": e.get("type", ""),
        }
        for e in error.errors()
    ]
    return JSONResponse({"error": "invalid_request", "message": VALIDATION_MESSAGE, "details": details}, 422)


def http_error_response(error: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own HTTP errors in the service's shape: an unknown route (404), a method
    the route lacks (405, with ``Allow``), and a body FastAPI could not read (its 400 "error parsing the
    body": 422, not UTF-8 or nested too deep; one that passed the limit while streaming is answered from its
    cause, 413, by :func:`error_response`)."""
    if error.status_code == 400 and error.__cause__ is not None:
        return JSONResponse({"error": "invalid_request", "message": UNREADABLE_BODY_MESSAGE}, 422)
    status = HTTPStatus(error.status_code)
    messages = {
        404: "no such resource: the API's routes are listed at /docs",
        405: "this route does not answer this method: see the Allow header and /docs",
    }
    return JSONResponse(
        {"error": status.phrase.lower().replace(" ", "_"), "message": messages.get(status, status.phrase)},
        status_code=status,
        headers=error.headers,
    )


ERROR_SCHEMA: Final = {"$ref": "#/components/schemas/ErrorOut"}
_ERROR_STATUSES: Final = {
    "401": "No API key, or an unknown one.",
    "403": "The API key lacks the scope this route needs.",
    "413": "The body is larger than max_body_bytes, or the batch larger than max_batch.",
    "422": "The request does not match the schema or the contract's value checks (see details).",
    "500": "Unexpected error (logged; no details are given).",
}

#: The documented 503 of a route that writes to the online store or the decision log
#: (:class:`serving.errors.NotReadyError`), for its ``responses``.
NOT_TAKING_WRITES: Final[dict[int | str, dict[str, Any]]] = {
    503: {
        "model": ErrorOut,
        "description": "The online store or the decision log is not taking writes: retry later.",
    }
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document ``schema`` with the error answers of every operation documented in the one
    shape (``ErrorOut``): 401 and 403 where a key is needed, 422 where there are parameters or a body, 413
    where there is a body, 500 everywhere; FastAPI's own 422 shape (``HTTPValidationError``) is replaced."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            statuses = ["500"]
            if operation.get("security"):
                statuses += ["401", "403"]
            if operation.get("parameters") or operation.get("requestBody"):
                statuses.append("422")
            if operation.get("requestBody"):
                statuses.append("413")
            responses = operation.setdefault("responses", {})
            for status in statuses:
                answer = responses.setdefault(status, {"description": _ERROR_STATUSES[status]})
                answer["content"] = {"application/json": {"schema": ERROR_SCHEMA}}
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def error_response(error: Exception, metrics: ServiceMetrics, where: str) -> JSONResponse:
    """The answer to ``error`` raised while handling a request on route ``where`` (a route template or
    ``unmatched``, never a path with values), counted in ``riskgate_errors_total`` by kind. An unexpected
    error (one that is not a riskgate error, or one whose status is 500) is logged with its traceback and
    answered 500 without details."""
    if isinstance(error, HTTPException) and isinstance(error.__cause__, RiskgateError):
        error = error.__cause__  # raised while FastAPI read the body (e.g. 413 on a streamed body)
    if isinstance(error, RiskgateError) and error.http_status != HTTPStatus.INTERNAL_SERVER_ERROR:
        metrics.count_error(error.code)
        return riskgate_error_response(error)
    if isinstance(error, RequestValidationError):
        metrics.count_error("validation")
        return validation_response(error)
    if isinstance(error, HTTPException):
        answer = http_error_response(error)
        metrics.count_error("validation" if answer.status_code == 422 else f"http_{answer.status_code}")
        return answer
    metrics.count_error("internal")
    logger.error("unexpected error on %s", where, exc_info=error)
    return JSONResponse({"error": "internal_error", "message": INTERNAL_MESSAGE}, 500)
