"""The service's errors, each knowing its HTTP status and answer code (:class:`core.errors.RiskgateError`);
:func:`serving.api.answers.error_response` maps them, with every other riskgate error, to the API's answers.

Messages say what went wrong and what to do, and never carry request values (they may hold personal data).
"""

from __future__ import annotations

from core.errors import RiskgateError


class ServingError(RiskgateError):
    """Base class of the service's errors (an internal error, answered 500, unless a subclass says)."""


class UnauthenticatedError(ServingError):
    """No API key, or one that is not configured."""

    http_status = 401
    code = "unauthenticated"


class ForbiddenError(ServingError):
    """The key is valid but lacks the scope the endpoint needs."""

    http_status = 403
    code = "forbidden"


class NotFoundError(ServingError):
    http_status = 404
    code = "not_found"


class ConflictError(ServingError):
    """An idempotency key reused with a different payload."""

    http_status = 409
    code = "conflict"


class PayloadTooLargeError(ServingError):
    http_status = 413
    code = "payload_too_large"


class NotReadyError(ServingError):
    http_status = 503
    code = "not_ready"


class ConfigurationError(ServingError, ValueError):
    """The service is configured unsafely or inconsistently; it refuses to start."""

    code = "configuration_error"


class ModelLoadError(ServingError):
    """A model could not be loaded (registry unreachable, no cache, or a feature-set mismatch)."""

    http_status = 503
    code = "model_unavailable"


class RecoveryCaseError(ServingError, ValueError):
    """A recovery case the planner cannot plan (an unusable field, an unknown decline code)."""

    http_status = 422
    code = "invalid_recovery_case"
