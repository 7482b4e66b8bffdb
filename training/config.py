"""The training configuration: one strictly validated object, read from YAML.

Every knob a data scientist turns lives here (split windows, label maturity, search budget, cost model,
promotion gate). Unknown keys are an error (``extra="forbid"``), so a misspelt key never falls back to a
silent default. The defaults are the values in ``training/config.yaml``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from events import yamlfile
from training.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).parent / "config.yaml"
#: Metrics that can drive early stopping, the search and the promotion gate.
PrimaryMetric = Literal["average_precision", "roc_auc"]


class Task(StrEnum):
    """The two models riskgate trains."""

    FRAUD = "fraud"
    FAILURE = "failure"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(Strict):
    """Time windows, counted back from the end of the data.

    Layout: ``train | gap | validation | test | immature``. The test window ends where labels stop being
    mature (``label_delay_days`` before the end of the data for fraud; at the end for failure, whose labels
    arrive within minutes). The gap between train and validation is at least the label delay.
    """

    test_days: float = Field(28.0, gt=0, description="Length of the held-out test window.")
    validation_days: float = Field(21.0, gt=0, description="Early stopping, calibration and thresholds.")
    min_gap_days: float = Field(0.0, ge=0, description="Lower bound of the train→validation gap.")
    max_train_days: float | None = Field(None, gt=0, description="Cap on the train window (None: all).")
    min_train_days: float = Field(14.0, gt=0, description="Refuse to train on less history than this.")


class LabelConfig(Strict):
    """The fraud-label maturity rule.

    A fraud report counts as a label only once reported. An attempt's fraud label is *mature* when at least
    ``fraud_label_delay_days`` have passed since it occurred; with ``None`` the delay is measured on the data
    as the ``fraud_delay_quantile`` quantile of report delays (rounded up to whole days).
    """

    fraud_label_delay_days: float | None = Field(None, gt=0)
    fraud_delay_quantile: float = Field(0.95, gt=0.5, lt=1.0)


class SearchSpace(Strict):
    """Ranges the budgeted random search samples (log-uniform for rates, uniform otherwise)."""

    learning_rate: tuple[float, float] = (0.04, 0.15)
    num_leaves: tuple[int, int] = (15, 63)
    min_child_samples: tuple[int, int] = (20, 400)
    feature_fraction: tuple[float, float] = (0.5, 1.0)
    bagging_fraction: tuple[float, float] = (0.6, 1.0)
    lambda_l2: tuple[float, float] = (0.001, 10.0)
    pos_weight: tuple[float, ...] = Field((1.0, 3.0), min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SearchSpace:
        for name in ("learning_rate", "num_leaves", "min_child_samples", "feature_fraction"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"search_space.{name}: low {low} is above high {high}")
        return self


class ModelConfig(Strict):
    """LightGBM settings shared by every trial."""

    trials: int = Field(5, ge=1, description="Hyperparameter-search budget: number of trials per model.")
    max_rounds: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(40, ge=1)
    num_threads: int = Field(2, ge=1)
    search_rows: int | None = Field(
        400_000,
        ge=1000,
        description=(
            "Training rows the search's trials see at most (a seeded random subsample; the best "
            "parameters are then refitted on every row). None: every row."
        ),
    )
    search_space: SearchSpace = SearchSpace()


class FraudCosts(Strict):
    """Cost model of the fraud decision (block / let through), in the attempt's currency.

    Letting a fraudulent attempt through costs its amount (charged back) plus the chargeback fee.
    Declining a good customer loses ``false_decline_factor`` × amount (the payment, plus churn of
    customers who leave after a false decline when the factor is above 1). Both apply only to attempts the
    gateway approved: blocking a charge the issuer declines anyway neither saves nor loses money.
    """

    chargeback_fee: float = Field(15.0, ge=0)
    false_decline_factor: float = Field(1.5, gt=0)
    elevated_fpr: float = Field(0.01, gt=0, lt=1, description="Share of good attempts flagged elevated.")


class FailureCosts(Strict):
    """Cost model of the failure decision (send now / defer the attempt).

    A wasted attempt (sent and declined) costs ``wasted_attempt_cost`` (gateway fee plus issuer-score
    damage); deferring an attempt that would have succeeded risks losing the renewal: ``missed_renewal_rate``
    × amount.
    """

    wasted_attempt_cost: float = Field(0.35, gt=0)
    missed_renewal_rate: float = Field(0.1, gt=0, le=1)


class PromotionConfig(Strict):
    """The gate: the candidate must beat the champion's primary metric on the same test window."""

    fraud_metric: PrimaryMetric = "average_precision"
    failure_metric: PrimaryMetric = "roc_auc"
    min_improvement: float = Field(0.0, ge=0)


class RetryConfig(Strict):
    """The retry model's own held-out window (:mod:`training.retry`)."""

    test_days: float = Field(
        92.0,
        gt=0,
        description="Days back from the data's end held out from the retry model: it learns from the "
        "retries before and is evaluated on those inside. Longer than split.test_days because the recovery "
        "evaluation of the served model (`riskgate recovery-eval --model champion`) needs declined renewals "
        "whose whole dunning window lies inside it: ~3 months give ~3,000 on the default world where 28 days "
        "give ~500. Shorter: a fresher model, a noisier evaluation.",
    )


class TrainingConfig(Strict):
    """Everything ``riskgate train`` needs besides the data and the tracking store."""

    seed: int = 7
    experiment: str = "riskgate"
    feature_set: str | None = Field(None, description="Feature-set spec for features.registry.")
    split: SplitConfig = SplitConfig()
    labels: LabelConfig = LabelConfig()
    model: ModelConfig = ModelConfig()
    fraud_costs: FraudCosts = FraudCosts()
    failure_costs: FailureCosts = FailureCosts()
    promotion: PromotionConfig = PromotionConfig()
    retry: RetryConfig = RetryConfig()
    top_k: tuple[int, ...] = Field((10, 50), min_length=1)

    def primary_metric(self, task: Task) -> str:
        return self.promotion.fraud_metric if task is Task.FRAUD else self.promotion.failure_metric


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """Read and validate a YAML config (the packaged default when ``path`` is None).

    ``overrides`` are top-level or dotted keys (``{"model.trials": 3}``) applied on top, as the CLI does.
    """
    source = path or DEFAULT_CONFIG_PATH
    raw = yamlfile.read_mapping(source, what="training config", error=ConfigError)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return yamlfile.validate(
        TrainingConfig, raw, path=source, error=ConfigError, reference=str(DEFAULT_CONFIG_PATH.name)
    )


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot override {dotted}: {key} is not a section")
        node = child
    node[leaf] = value
