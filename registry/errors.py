"""Typed errors of the model registry: a model the code cannot use, a registry that cannot answer.

Both are raised below training and serving (training writes through :mod:`registry`, serving reads through
it), so both packages catch the one definition here.
"""

from __future__ import annotations

from core.errors import EXIT_USAGE, RiskgateError


class FeatureContractError(RiskgateError, ValueError):
    """A model's feature contract (or stored format) does not match the features the code offers it."""

    http_status = 503
    code = "model_contract_mismatch"
    exit_code = EXIT_USAGE


class RegistryError(RiskgateError, LookupError):
    """A model version, alias or run the command needs is not in the tracking store, or it cannot answer."""

    http_status = 503
    code = "registry_unavailable"
    exit_code = EXIT_USAGE


class RegistryUnreachableError(RegistryError):
    """The tracking server (or the registry's) does not answer: down, unreachable, or too slow."""


class CalibrationError(RiskgateError, ValueError):
    """A calibration cannot be fitted (misaligned or empty scores and labels) or read (an unknown kind)."""

    http_status = 500
    code = "calibration_error"
    exit_code = EXIT_USAGE
