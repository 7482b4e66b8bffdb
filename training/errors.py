"""Typed errors of the training package; each message says what, where, why and what to do."""

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


class FeatureContractError(TrainingError, ValueError):
    """A model's feature contract does not match the features offered to it."""


class RegistryError(TrainingError, LookupError):
    """A model version, alias or run the command needs is not in the tracking store."""
