"""The service's errors, each knowing its HTTP status; one handler in :mod:`serving.api.app` maps them.

Messages say what went wrong and what to do, and never carry request values (they may hold personal data).
"""

from __future__ import annotations

from typing import ClassVar


class ServingError(Exception):
    """Base class: an error with an HTTP status and a stable machine-readable code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"


class UnauthenticatedError(ServingError):
    """No API key, or one that is not configured."""

    status_code = 401
    code = "unauthenticated"


class ForbiddenError(ServingError):
    """The key is valid but lacks the scope the endpoint needs."""

    status_code = 403
    code = "forbidden"


class NotFoundError(ServingError):
    status_code = 404
    code = "not_found"


class ConflictError(ServingError):
    """An idempotency key reused with a different payload."""

    status_code = 409
    code = "conflict"


class PayloadTooLargeError(ServingError):
    status_code = 413
    code = "payload_too_large"


class NotReadyError(ServingError):
    status_code = 503
    code = "not_ready"


class ConfigurationError(ServingError, ValueError):
    """The service is configured unsafely or inconsistently; it refuses to start."""

    code = "configuration_error"


class ModelLoadError(ServingError):
    """A model could not be loaded (registry unreachable, no cache, or a feature-set mismatch)."""

    status_code = 503
    code = "model_unavailable"


class RecoveryCaseError(ServingError, ValueError):
    """A recovery case the planner cannot plan (an unusable field, an unknown decline code)."""

    status_code = 422
    code = "invalid_recovery_case"
