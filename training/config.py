"""The training configuration: one strictly validated object, read from YAML.

Every knob a data scientist turns lives here (split windows, label maturity, search budget, cost model,
promotion gate). Unknown keys are an error (``extra="forbid"``), so a misspelt key never falls back to a
silent default. The defaults are the values in ``training/config.yaml``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class ValidationPlacement(StrEnum):
    """Where the validation window sits and which fraud labels it sees (see :mod:`training.splits`)."""

    BEFORE_TEST = "before_test"
    LABELS_CUT_AT_TEST_START = "labels_cut_at_test_start"


class SplitConfig(Strict):
    """Time windows: the test window by date or laid back from the end of the data, the others before it.

    Layout (``validation: before_test``): ``train | gap | validation | test | immature``; with
    ``validation: labels_cut_at_test_start``: ``train | validation | gap | test``, every label as known at the
    test start. By default the test window ends where labels stop being mature (``label_delay_days`` before
    the end of the data for fraud; at the end for failure, whose labels arrive within minutes);
    ``test_start`` / ``test_end`` place it at those exact instants instead (UTC when no zone is given). The
    gap is at least the label delay. See :mod:`training.splits` for the trade-off of the placements.
    """

    test_days: float = Field(
        28.0, gt=0, description="Length of the held-out test window (unless test_start and test_end give it)."
    )
    test_start: datetime | None = Field(
        None, description="Test window start, exact (UTC unless zoned); null: test_end - test_days."
    )
    test_end: datetime | None = Field(
        None,
        description="Test window end, exclusive and exact; null: test_start + test_days, or where labels "
        "stop being mature when test_start is null too.",
    )
    validation: ValidationPlacement = Field(
        ValidationPlacement.BEFORE_TEST,
        description="before_test: validation right before the test, labels matured to the data's end; "
        "labels_cut_at_test_start: validation before the gap, every label as known at the test start.",
    )
    validation_days: float = Field(21.0, gt=0, description="Early stopping, calibration and thresholds.")
    min_gap_days: float = Field(0.0, ge=0, description="Lower bound of the gap (at least the label delay).")
    max_train_days: float | None = Field(None, gt=0, description="Cap on the train window (None: all).")
    min_train_days: float = Field(14.0, gt=0, description="Refuse to train on less history than this.")

    @field_validator("test_start", "test_end", mode="before")
    @classmethod
    def _instant(cls, value: object) -> object:
        """A date is its midnight; a time without a zone is UTC."""
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value  # pydantic names the key and the problem
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SplitConfig:
        if self.test_start is not None and self.test_end is not None and self.test_end <= self.test_start:
            raise ValueError(f"test_end {self.test_end} is not after test_start {self.test_start}")
        return self


class LabelConfig(Strict):
    """The fraud-label maturity rule.

    A fraud report counts as a label only once reported. An attempt's fraud label is *mature* when at least
    ``fraud_label_delay_days`` have passed since it occurred; with ``None`` the delay is measured on the data
    as the ``fraud_delay_quantile`` quantile of report delays (rounded up to whole days).
    """

    fraud_label_delay_days: float | None = Field(
        None, gt=0, description="Fraud label delay in days (None: measured as the quantile below)."
    )
    fraud_delay_quantile: float = Field(
        0.95, gt=0.5, lt=1.0, description="Quantile of observed report delays that sets the label delay."
    )


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


class BaselineRule(Strict):
    """One declared fraud rule over a feature: it fires when ``feature op value`` (a missing value never
    fires). The rules baseline scores an attempt by how many of its rules fire."""

    feature: str = Field(min_length=1)
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float


class BaselineConfig(Strict):
    """The rule scorers every report shows next to the model (``none`` leaves one out).

    ``fraud``: ``auto`` (the feature set module's ``BASELINES`` when it declares them, the IPTV billing
    rules for the IPTV feature set, else none), ``iptv_rules`` (velocity and country mismatch on the IPTV
    attempt fields), ``none``, or a list of :class:`BaselineRule` over the feature set's features.
    ``failure``: ``declined_last_time`` (the account's last answered attempt failed) or ``none``.
    """

    fraud: Literal["auto", "iptv_rules", "none"] | tuple[BaselineRule, ...] = Field(
        "auto",
        description="auto | iptv_rules | none | a list of {feature, op, value} rules (the score is how many "
        "fire); auto: the feature set module's BASELINES, the IPTV rules for the IPTV set, else none.",
    )
    failure: Literal["declined_last_time", "none"] = Field(
        "declined_last_time", description="declined_last_time | none."
    )


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

    seed: int = Field(7, description="Seed of the search, the subsample and LightGBM.")
    experiment: str = Field("riskgate", description="MLflow experiment the runs are logged in.")
    feature_set: str | None = Field(
        None,
        description="Must stay null: the feature set is chosen with --feature-set or RISKGATE_FEATURE_SET, "
        "one choice for every command.",
    )
    split: SplitConfig = SplitConfig()
    labels: LabelConfig = LabelConfig()
    model: ModelConfig = ModelConfig()
    fraud_costs: FraudCosts = FraudCosts()
    failure_costs: FailureCosts = FailureCosts()
    promotion: PromotionConfig = PromotionConfig()
    retry: RetryConfig = RetryConfig()
    baselines: BaselineConfig = BaselineConfig()
    money_metrics: bool = Field(
        True,
        description="Report the cost model's money_* figures (false: left out of reports and runs; the "
        "decision thresholds are still chosen with the cost model).",
    )
    top_k: tuple[int, ...] = Field(
        (10, 50), min_length=1, description="k of the precision of the top k attempts (and accounts) per day."
    )

    @field_validator("feature_set")
    @classmethod
    def _one_feature_set_choice(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                f"the feature set ({value!r}) is chosen with --feature-set or RISKGATE_FEATURE_SET, the same "
                "for every command, not in the training config: remove this key"
            )
        return value

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


def config_keys(model: type[BaseModel] = TrainingConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """Every ``--set`` key of the training config: (dotted key, default as JSON, description)."""
    keys: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(config_keys(annotation, f"{prefix}{name}."))
            continue
        default = field.default.value if isinstance(field.default, StrEnum) else field.default
        if isinstance(default, tuple):
            default = list(default)
        shown = json.dumps(default, default=str)
        section = (model.__doc__ or "").split("\n")[0] if prefix else ""
        keys.append((f"{prefix}{name}", shown, field.description or section))
    return keys
