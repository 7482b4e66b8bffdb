"""The provider's dunning policy: every knob of the recovery planner, with its default and what it does.

Times are UTC. Card-network caps default to the published retry rules: Visa allows at most 15 reattempts of
one card in 30 days; Mastercard at most 10 in 24 hours and 35 in 30 days. Other networks get ``default_caps``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import RiskgateError
from events import yamlfile

#: The fixed retry schedule billing platforms default to (days after the first decline): the baseline the
#: planner is evaluated against, and the service's plan when no failure model is loaded.
FIXED_RETRY_DAYS: Final = (1.0, 3.0, 5.0, 7.0)


class RecoveryConfigError(RiskgateError, ValueError):
    """A recovery configuration file could not be read or is not valid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryCap(_Section):
    """At most ``max_attempts`` retries of one card within any ``period_hours``."""

    max_attempts: int = Field(ge=0, description="Retries allowed in the period.")
    period_hours: float = Field(gt=0, description="Length of the sliding period, in hours.")

    @property
    def period(self) -> timedelta:
        return timedelta(hours=self.period_hours)


class QuietHours(_Section):
    """Hours of the day (UTC) when no retry is made: ``start_hour`` up to, not including, ``end_hour``.

    A window may wrap midnight (22 → 6). Equal hours mean no quiet hours.
    """

    start_hour: int = Field(22, ge=0, le=23, description="First quiet hour (UTC).")
    end_hour: int = Field(6, ge=0, le=23, description="First hour retries are allowed again (UTC).")

    def is_quiet(self, hour: int) -> bool:
        if self.start_hour == self.end_hour:
            return False
        if self.start_hour < self.end_hour:
            return self.start_hour <= hour < self.end_hour
        return hour >= self.start_hour or hour < self.end_hour


def _visa() -> list[RetryCap]:
    return [RetryCap(max_attempts=15, period_hours=30 * 24)]


def _network_caps() -> dict[str, list[RetryCap]]:
    return {
        "visa": _visa(),
        "mastercard": [
            RetryCap(max_attempts=10, period_hours=24),
            RetryCap(max_attempts=35, period_hours=30 * 24),
        ],
    }


class RecoveryConfig(_Section):
    """How a provider recovers a failed renewal. Load a YAML subset with :meth:`from_yaml`."""

    window_days: float = Field(
        14.0, gt=0, description="Dunning window: retries only until this long after the first decline."
    )
    max_attempts: int = Field(4, ge=0, description="Most retries of one invoice (after its first try).")
    grid_hours: float = Field(
        3.0, gt=0, description="Spacing of the candidate retry times the model evaluates (hours)."
    )
    min_gap_hours: float = Field(
        20.0, ge=0, description="Least time between two attempts of the same invoice (hours)."
    )
    quiet_hours: QuietHours = Field(default_factory=QuietHours, description="No retries in these hours.")
    attempt_cost: float = Field(
        0.10,
        ge=0,
        description="Cost of one retry in the invoice's currency (gateway fee, issuer goodwill); a retry "
        "whose expected recovered amount is below it is not planned.",
    )
    daily_discount: float = Field(
        0.002,
        ge=0,
        lt=1,
        description="Value lost per day a payment is recovered later (service interrupted, churn risk), as a "
        "share of the amount: breaks ties towards earlier retries.",
    )
    reminder_threshold: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Before a renewal whose failure probability is at least this, remind the customer.",
    )
    reminder_lead_hours: float = Field(
        72.0, gt=0, description="How long before the renewal the reminder goes out (hours)."
    )
    other_method_below: float = Field(
        0.5,
        ge=0,
        le=1,
        description="After a decline, suggest another payment method when the plan's probability of "
        "recovering is below this.",
    )
    network_caps: dict[str, list[RetryCap]] = Field(
        default_factory=_network_caps, description="Retry caps per card network (see rules.card_network)."
    )
    default_caps: list[RetryCap] = Field(
        default_factory=_visa, description="Retry caps of cards of any other network, and of unknown BINs."
    )

    @model_validator(mode="after")
    def _grid_fits_window(self) -> RecoveryConfig:
        if self.grid_hours > self.window_days * 24:
            raise ValueError(
                f"grid_hours ({self.grid_hours}) is longer than the dunning window "
                f"({self.window_days} days): no candidate time would fit; lower grid_hours"
            )
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    @property
    def min_gap(self) -> timedelta:
        return timedelta(hours=self.min_gap_hours)

    def caps_for(self, network: str | None) -> list[RetryCap]:
        if network is None:
            return self.default_caps
        return self.network_caps.get(network, self.default_caps)

    @classmethod
    def from_yaml(cls, path: Path) -> RecoveryConfig:
        """A configuration from a YAML file holding any subset of the fields (unknown keys are an error)."""
        return yamlfile.load(
            cls,
            path,
            what="recovery config",
            error=RecoveryConfigError,
            reference="the fields of recovery.config.RecoveryConfig",
        )
