"""How errors become HTTP answers: one definition, used by the FastAPI exception handlers
(:mod:`serving.app`) and the scoring fast path (:mod:`serving.fastpath`), so both answer alike.

Bodies say what went wrong and never echo request values (they may hold card numbers or personal data).
"""

from __future__ import annotations

import logging

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from serving.errors import PayloadTooLargeError, ServingError
from serving.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

VALIDATION_MESSAGE = "the request does not match the API schema: see details (values are never echoed)"
INTERNAL_MESSAGE = "unexpected error; it has been logged"


def body_too_large(limit: int) -> PayloadTooLargeError:
    """The error of a request body longer than ``limit`` bytes (declared or streamed)."""
    return PayloadTooLargeError(f"request body larger than {limit} bytes")


def declares_too_much(declared: bytes | None, limit: int) -> bool:
    """Whether a raw ``Content-Length`` header value declares a body longer than ``limit`` bytes (refused
    with :func:`too_large_response` before the body is read; a malformed value is left to the server)."""
    return declared is not None and declared.isdigit() and int(declared) > limit


def too_large_response(limit: int) -> JSONResponse:
    """The 413 answered before routing, when the declared ``Content-Length`` exceeds ``limit``."""
    return serving_error_response(body_too_large(limit))


def serving_error_response(error: ServingError) -> JSONResponse:
    return JSONResponse({"error": error.code, "message": str(error)}, status_code=error.status_code)


def validation_response(error: RequestValidationError) -> JSONResponse:
    """422 with where and why of each problem (``loc``, ``msg``, ``type``), never the offending value."""
    details = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]
    return JSONResponse({"error": "invalid_request", "message": VALIDATION_MESSAGE, "details": details}, 422)


def error_response(error: Exception, metrics: ServiceMetrics, where: str) -> JSONResponse:
    """The answer to ``error`` raised while handling a request on route ``where`` (a route template or
    ``unmatched``, never a path with values), counted in ``riskgate_errors_total`` by kind. An unexpected
    error is logged with its traceback and answered 500 without details."""
    if isinstance(error, ServingError):
        metrics.count_error(error.code)
        return serving_error_response(error)
    if isinstance(error, RequestValidationError):
        metrics.count_error("validation")
        return validation_response(error)
    metrics.count_error("internal")
    logger.error("unexpected error on %s", where, exc_info=error)
    return JSONResponse({"error": "internal_error", "message": INTERNAL_MESSAGE}, 500)
