"""Typed errors of the training package; each message says what, where, why and what to do.

A model the code cannot use and a registry that cannot answer are the registry's errors
(:class:`registry.errors.FeatureContractError`, :class:`registry.errors.RegistryError`).
"""

from __future__ import annotations

from core.errors import EXIT_FAILURE, RiskgateError


class TrainingError(RiskgateError):
    """Base class of every error raised by :mod:`training`: the training commands exit 1 on it."""

    exit_code = EXIT_FAILURE


class ConfigError(TrainingError, ValueError):
    """The training configuration is missing or invalid."""


class SplitError(TrainingError, ValueError):
    """The data cannot be split into train | gap | validation | test windows as configured."""


class DatasetError(TrainingError, ValueError):
    """The assembled dataset is unusable (no positives, missing columns, mismatched rows)."""
