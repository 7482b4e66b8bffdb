"""Request and response bodies of the API (``...In`` / ``...Out``), with the event contract's constraints.

Request fields mirror :data:`events.schema.ATTEMPT_COLUMNS` (a test keeps them equal); the value checks each
column declares (:class:`events.schema.Check`) are applied by one validator from the declarations, so a check
added to the contract applies here too. Every string in a request is searched for a card number first
(:func:`events.cardnumbers.contains_card_number`); such a request is refused without echoing the value.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from events.cardnumbers import contains_card_number, may_hold_card_number
from events.checks import (
    BIN_PATTERN,
    COUNTRIES,
    VALUE_CHECKS,
    YEAR_MONTH_PATTERN,
    ValueCheck,
    too_many_decimals_requirement,
)
from events.currencies import MINOR_UNITS, fits_minor_unit
from events.schema import (
    ATTEMPT_COLUMNS,
    FRAUD_REPORT_COLUMNS,
    OUTCOME_COLUMNS,
    TIME_RANGE_TEXT,
    AttemptKind,
    CardFunding,
    Column,
    DeclineCode,
    MethodType,
    OutcomeStatus,
    PlanPeriod,
    PlanTier,
    ReportType,
    in_time_range,
)
from serving.scoring.attributes import (
    Attributes,
    attributes_schema,
    conform,
    served_fields,
)
from serving.scoring.policy import Action, FraudLevel

#: A character that is not white space (as Python's ``str.strip`` sees it: the contract's non-empty check).
_NOT_SPACE: Final = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=_NOT_SPACE)]
Text = Annotated[str, Field(min_length=1, max_length=256)]
MAX_AMOUNT: Final = 1_000_000.0

_DAYS_31: Final = r"(?:0[1-9]|[12][0-9]|3[01])"
_DAYS_30: Final = r"(?:0[1-9]|[12][0-9]|30)"
_FEBRUARY: Final = r"02-(?:0[1-9]|1[0-9]|2[0-8])"
_MONTH_DAY: Final = rf"(?:(?:0[13578]|1[02])-{_DAYS_31}|(?:0[469]|11)-{_DAYS_30}|{_FEBRUARY})"
#: A calendar date of the contract's years (2000-2099), month lengths and leap days included, except the
#: first and the last day, which :data:`TIME_PATTERN` writes with the offsets that keep them in range.
DATE_PATTERN: Final = (
    rf"(?:20(?:0[1-9]|[1-8][0-9]|9[0-8])-{_MONTH_DAY}|20(?:[02468][048]|[13579][26])-02-29"
    rf"|2000-(?:01-(?:0[2-9]|[12][0-9]|3[01])|(?:0[3578]|1[02])-{_DAYS_31}|(?:0[469]|11)-{_DAYS_30}|{_FEBRUARY})"
    rf"|2099-(?:(?:0[13578]|10)-{_DAYS_31}|12-{_DAYS_30}|(?:0[469]|11)-{_DAYS_30}|{_FEBRUARY}))"
)
_CLOCK: Final = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_HOURS: Final = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
#: RFC 3339 offsets; on 2000-01-01 only those at or behind UTC, on 2099-12-31 only those at or ahead of it.
_OFFSET: Final = rf"(?:Z|[+-]{_HOURS})"
_FIRST_DAY: Final = rf"2000-01-01T{_CLOCK}(?:Z|[+-]00:00|-{_HOURS})"
_LAST_DAY: Final = rf"2099-12-31T{_CLOCK}(?:Z|[+-]00:00|\+{_HOURS})"
#: How the OpenAPI document states a request's time: RFC 3339 with an offset, in the contract's range
#: (:data:`events.schema.TIME_RANGE_TEXT`); on the range's two edge days it is a tighter subset of what the
#: service accepts (:data:`_WRITTEN`, then the range on the instant).
TIME_PATTERN: Final = rf"^(?:{DATE_PATTERN}T{_CLOCK}{_OFFSET}|{_FIRST_DAY}|{_LAST_DAY})$"
#: A moment in a query (trends, drift): a date (its midnight, UTC) or a time, with an offset or in UTC.
MOMENT_PATTERN: Final = (
    rf"^(?:{DATE_PATTERN}(?:T{_CLOCK}{_OFFSET}?)?|2000-01-01(?:T{_CLOCK}(?:Z|[+-]00:00|-{_HOURS})?)?"
    rf"|2099-12-31(?:T{_CLOCK}(?:Z|[+-]00:00|\+{_HOURS})?)?)$"
)
#: What the service reads as a written time: RFC 3339 with an offset, any date; the range is then checked on
#: the instant (:func:`_in_range`), so every time of the range is accepted, also those that the schema's
#: pattern, which must allow only in-range times, leaves out on its two edge days.
_WRITTEN = re.compile(rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T{_CLOCK}{_OFFSET}$")


def _written_time(value: Any) -> Any:
    """In JSON, only an RFC 3339 string is a time (not a number, not digits read as epoch seconds or
    milliseconds); Python callers (the backtest) may pass a ``datetime``."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _WRITTEN.fullmatch(value) is None:
        raise ValueError(
            f"must be {TIME_RANGE_TEXT}, written in RFC 3339 with an offset: 2026-03-01T12:00:00Z"
        )
    return value


def _in_range(value: datetime) -> datetime:
    """The instant, in UTC, if the contract's range holds it."""
    utc = _utc(value)
    if not in_time_range(utc):
        raise ValueError(f"must be {TIME_RANGE_TEXT}")
    return utc


Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_written_time),
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIME_PATTERN}),
]


def _json_number(value: Any) -> Any:
    """A number as JSON writes it: not a boolean, not a string (``true`` is not 1, ``"3"`` is not 3)."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number, not a boolean or a string")
    return value


Amount = Annotated[float, Field(strict=True, ge=0, le=MAX_AMOUNT)]
#: A whole number (``3`` or ``3.0``, as JSON Schema's ``integer``), never a boolean or a string.
Count = Annotated[int, Field(ge=0, le=1000), BeforeValidator(_json_number)]

_NEVER_CARDS: Final = "riskgate never accepts card numbers; send the payment method's token instead"
#: Codes the schema lists (the checks below apply them; the schema states them as enums).
CountryCode = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(COUNTRIES)})]
CurrencyCode = Annotated[str, WithJsonSchema({"type": "string", "enum": [*MINOR_UNITS]})]
IpAddress = Annotated[
    str,
    Field(max_length=45),
    WithJsonSchema({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}),
]


#: What an optional-over-HTTP core field means when absent while the contract still requires it (absent
#: while the contract has it optional: unknown, ``None``).
_REQUIRED_DEFAULTS: Final[dict[str, object]] = {"retry_number": 0}


def _apply_checks(model: BaseModel, columns: tuple[Column, ...]) -> None:
    """The contract's checks of each present value, as declared in :data:`events.checks.VALUE_CHECKS` (the
    rules imports apply over whole columns)."""
    problems = []
    for column in columns:
        value = getattr(model, column.name)
        if value is None and column.required:
            if column.name not in _REQUIRED_DEFAULTS:
                problems.append(f"{column.name} is required by the contract")
                continue
            value = _REQUIRED_DEFAULTS[column.name]
            setattr(model, column.name, value)
        if value is None:
            continue
        for check in _checks_of(column):
            other = getattr(model, check.against) if check.against is not None else None
            if not check.accepts_value(value, other):
                problems.append(f"{column.name} {check.requirement}")
    if problems:
        raise ValueError("; ".join(problems))


@functools.cache
def _checks_of(column: Column) -> tuple[ValueCheck, ...]:
    """A column's declared checks, with those each includes first (once each), for one value."""
    names = (included for name in column.checks for included in (*VALUE_CHECKS[name].includes, name))
    return tuple(VALUE_CHECKS[name] for name in dict.fromkeys(names) if not VALUE_CHECKS[name].import_only)


def _strings(value: Any) -> list[str]:
    """A field's strings: the value itself, or the strings of a list (nested objects check their own)."""
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _refuse_card_numbers(data: Any, what: str = "field", article: str = "a") -> Any:
    """Refuse a body whose strings (values, list items or keys, also those of its ``attributes``) hold a card
    number, naming only the field."""
    if isinstance(data, dict) and may_hold_card_number(
        [*map(str, data), *(text for value in data.values() for text in _strings(value))]
    ):
        for key, value in data.items():
            if contains_card_number(str(key)):
                raise ValueError(f"{article} {what} name holds what looks like a card number: {_NEVER_CARDS}")
            if any(contains_card_number(text) for text in _strings(value)):
                raise ValueError(f"{what} {key!r} holds what looks like a card number: {_NEVER_CARDS}")
    if isinstance(data, dict) and isinstance(data.get("attributes"), dict):
        _refuse_card_numbers(data["attributes"], "attribute", "an")
    return data


class _Body(BaseModel):
    """A request body or part of one: no unknown field, and no card number in a field name or value."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_card_numbers(cls, data: Any) -> Any:
        return _refuse_card_numbers(data)


class _In(_Body):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    contract_columns: ClassVar[tuple[Column, ...]] = ()

    @model_validator(mode="after")
    def _contract_checks(self) -> Self:
        _apply_checks(self, self.contract_columns)
        return self


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the first representable UTC time
        raise ValueError(f"must be {TIME_RANGE_TEXT}") from None


def _event_time(value: datetime) -> datetime:
    """A time that is not a contract column, held to the same range (``events.schema.TIME_RANGE_TEXT``)."""
    utc = _utc(value)
    if not in_time_range(utc):
        raise ValueError(f"must be {TIME_RANGE_TEXT}")
    return utc


_UNKNOWN: Final = " Absent or null: unknown (accepted when the contract declares the field optional)."


class AttemptIn(_In):
    """One payment attempt, as the event contract defines it (without outcome fields), with the provider's
    own fields in ``attributes`` (see :mod:`serving.scoring.attributes`).

    Whether ``kind``, ``plan_tier``, ``plan_period``, ``amount``'s lower bound, ``currency``, ``method_type``
    and ``retry_number`` may be absent follows the contract's declarations (``Column.required`` and checks):
    absent means unknown, except ``retry_number``, which is 0 while the contract requires it.
    """

    contract_columns = ATTEMPT_COLUMNS

    attempt_id: Id = Field(description="Unique id of the attempt; the idempotency key.")
    occurred_at: Moment = Field(description=f"When the attempt is made: {TIME_RANGE_TEXT}, with an offset.")
    account_id: Id
    kind: AttemptKind | None = Field(None, description="Why the charge is made." + _UNKNOWN)
    plan_tier: PlanTier | None = Field(None, description="Plan tier." + _UNKNOWN)
    plan_period: PlanPeriod | None = Field(None, description="Billing period of the plan." + _UNKNOWN)
    amount: Amount = Field(
        description="Amount in major units, e.g. 12.99 (0: an authorisation check), with no more decimals "
        "than the currency's minor unit (EUR 2, JPY 0, KWD 3): 14.999 EUR or 14.99 JPY is refused (422), as "
        "imports refuse it."
    )
    currency: CurrencyCode | None = Field(
        None, min_length=3, max_length=3, description="ISO 4217 code." + _UNKNOWN
    )
    payment_method_id: Id = Field(
        description="Token or fingerprint of the payment method, never a card number."
    )
    method_type: MethodType | None = Field(None, description="Payment method type." + _UNKNOWN)
    card_bin: str | None = Field(None, max_length=8, pattern=rf"^{BIN_PATTERN}$")
    card_funding: CardFunding | None = None
    card_country: CountryCode | None = Field(None, max_length=2)
    card_exp: str | None = Field(
        None,
        max_length=7,
        pattern=rf"^{YEAR_MONTH_PATTERN}$",
        description="Card expiry, YYYY-MM, from 2000-01 to 2099-12 (the years of the contract's times).",
    )
    device_id: Id | None = None
    ip: IpAddress | None = Field(None, description="IPv4 or IPv6 address.")
    ip_country: CountryCode | None = Field(None, max_length=2)
    billing_country: CountryCode | None = Field(None, max_length=2)
    invoice_id: Id | None = None
    retry_number: Count | None = Field(
        None, description="0 for an invoice's first try, then 1, 2, ..." + _UNKNOWN
    )
    account_created_at: Moment | None = Field(
        None, description="When the account was created (its known start), not after occurred_at."
    )
    payment_method_first_used_at: Moment | None = Field(
        None, description="When the payment method was first used (its known start), not after occurred_at."
    )
    attributes: Annotated[dict[str, Any] | None, WithJsonSchema(attributes_schema())] = None

    @field_validator("attributes")
    @classmethod
    def _served_attributes(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Attributes | None:
        """Checked against the served feature set's fields (the validation context), typed by declaration; a
        refused attribute (:class:`serving.scoring.attributes.InvalidAttributeError`, a ValueError) is one of
        the validation's problems (answered 422 with the others)."""
        if not value:
            return None
        return conform(value, served_fields(info.context)) or None

    @field_validator("occurred_at", "account_created_at", "payment_method_first_used_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _utc(value)

    @model_validator(mode="after")
    def _minor_unit(self) -> Self:
        if self.currency in MINOR_UNITS and not fits_minor_unit(self.amount, self.currency):
            raise ValueError(f"amount {too_many_decimals_requirement(self.currency)}")
        return self

    def as_event(self) -> dict[str, object]:
        """The attempt as the feature engine reads it (enum values as plain strings), its attributes as
        top-level keys."""
        event = self.model_dump(mode="python")
        attributes = event.pop("attributes")
        if attributes:
            event.update(attributes)
        return event


class ScoreOptions(_Body):
    explain: bool = Field(
        False, strict=True, description="Also return the full feature vector (for investigations)."
    )


class BatchIn(_Body):
    """Many attempts in one call (a renewal run); at most ``max_batch`` (see the service's settings)."""

    attempts: list[AttemptIn] = Field(min_length=1)
    explain: bool = Field(False, strict=True)


class OutcomeIn(_In):
    """The gateway's answer to an attempt."""

    contract_columns = OUTCOME_COLUMNS

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"properties": {"status": {"const": "declined"}, "decline_code": {"type": "string"}},
                 "required": ["decline_code"]},
                {"properties": {"status": {"const": "approved"}, "decline_code": {"type": "null"}}},
                {"properties": {"status": {"const": "error"}}},
            ]
        }
    )  # fmt: skip

    attempt_id: Id
    occurred_at: Moment
    status: OutcomeStatus
    decline_code: DeclineCode | None = Field(
        None, description="Required when status is declined; null or absent when approved."
    )

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return _utc(value)

    @model_validator(mode="after")
    def _decline_code_matches_status(self) -> Self:
        if self.status == OutcomeStatus.DECLINED and self.decline_code is None:
            raise ValueError("a declined outcome needs a decline_code")
        if self.status == OutcomeStatus.APPROVED and self.decline_code is not None:
            raise ValueError("an approved outcome has no decline_code")
        return self


class FraudReportIn(_In):
    """A chargeback or confirmed-fraud report on an attempt."""

    contract_columns = FRAUD_REPORT_COLUMNS

    report_id: Id
    attempt_id: Id
    reported_at: Moment
    report_type: ReportType

    @field_validator("reported_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return _utc(value)


class OutcomesIn(_Body):
    """Gateway outcomes and fraud reports, in any order, possibly repeated."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"outcomes": {"minItems": 1}}, "required": ["outcomes"]},
                {"properties": {"fraud_reports": {"minItems": 1}}, "required": ["fraud_reports"]},
            ]
        }
    )
    outcomes: list[OutcomeIn] = Field(default_factory=list)
    fraud_reports: list[FraudReportIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.outcomes and not self.fraud_reports:
            raise ValueError("send at least one outcome or fraud report")
        return self


class OutcomesOut(BaseModel):
    outcomes_recorded: int = Field(description="New outcomes (already known ones are not counted twice).")
    outcomes_duplicate: int
    fraud_reports_recorded: int
    fraud_reports_duplicate: int


class ReasonOut(BaseModel):
    feature: str
    value: float | None = Field(description="The feature's value (null: missing, e.g. no history).")
    contribution: float = Field(description="Log-odds contribution to this model's score (+ raises risk).")


class ModelRef(BaseModel):
    name: str
    version: str
    source: str = Field(description="'registry', or 'cache' when the tracking store was unreachable.")


class FraudOut(BaseModel):
    probability: float | None = Field(description="Calibrated fraud probability; null if the model is down.")
    level: FraudLevel
    reasons: list[ReasonOut]
    model: ModelRef | None


class FailureOut(BaseModel):
    probability: float | None = Field(
        description="Calibrated decline probability; null if the model is down."
    )
    reasons: list[ReasonOut]
    model: ModelRef | None


class DecidedBy(StrEnum):
    """Who decided: an analyst's rule (``rule``: its name) or the model policy's table (``policy``)."""

    RULE = "rule"
    POLICY = "policy"


class DecisionOut(BaseModel):
    action: Action
    rule: str = Field(
        description="The rule that chose the action: an analyst's rule (decided_by rule) or the model "
        "policy's rule (decided_by policy)."
    )
    fallback: bool = Field(description="True when a model was unavailable and a fallback rule decided.")
    decided_by: DecidedBy = Field(
        DecidedBy.POLICY,
        description="rule: an analyst's rule matched (rules run after both models: allow, then block, then "
        "review; the first match decides); policy: no rule matched and the model policy decided (decisions "
        "logged before rules existed read policy).",
    )
    reasons: list[str] = Field(
        default_factory=list,
        description="Why, in words the billing system acts on: billing_error when a billing check's rule "
        "blocked the charge (rule names the check: billing_double_charge, billing_price_mismatch or "
        "billing_early_renewal); empty otherwise.",
    )


class ScoreOut(BaseModel):
    attempt_id: str
    fraud: FraudOut
    failure: FailureOut
    decision: DecisionOut
    scoring_ms: float = Field(description="Server-side time to score and log this attempt, in milliseconds.")
    replayed: bool = Field(False, description="True when this attempt was scored before: the logged answer.")
    features: dict[str, float | None] | None = Field(None, description="The feature vector (explain=true).")


class BatchOut(BaseModel):
    results: list[ScoreOut]


class LoggedDecisionOut(ScoreOut):
    decided_at: datetime
    erased: bool = Field(description="True once the account was erased: personal content removed.")
    attributes: dict[str, str | float] | None = Field(
        None, description="The attempt's attributes as accepted (times in UTC); null: none, or erased."
    )


class ErasureOut(BaseModel):
    account: str = Field(description="The erased account's pseudonym (the id itself is not kept).")
    online_events_removed: int
    decisions_unlinked: int
    kept: list[str] = Field(description="What riskgate keeps, and why it is no longer personal data.")


class ModelStatusOut(BaseModel):
    task: str
    model: ModelRef | None
    changed: bool
    error: str | None


class ReloadOut(BaseModel):
    models: list[ModelStatusOut]


class ErrorOut(BaseModel):
    error: str
    message: str
    details: list[dict[str, Any]] | None = None


# -- recovery plans (POST /v1/recovery-plan) ---------------------------------------------------------------

MAX_CARD_RETRY_TIMES: Final = 100


class RecoveryCaseIn(_Body):
    """One invoice to plan: a declined attempt, or a renewal about to be charged (``decline_code`` null).

    Whether riskgate blocked the attempt as fraud is read from the decision log, never from the client.
    What the schema cannot say is refused with 422: ``first_declined_at`` after ``declined_at``, a decline in
    the future, a case the planner cannot plan (:class:`serving.errors.RecoveryCaseError`).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"decline_code": {"type": "string"}}, "required": ["decline_code"]},
                {"properties": {"declined_at": {"type": "null"}, "first_declined_at": {"type": "null"}}},
            ]
        }
    )
    attempt: AttemptIn = Field(description="The declined attempt, or the renewal about to be charged.")
    decline_code: DeclineCode | None = Field(
        None, description="The decline received (null: the renewal has not been charged yet)."
    )
    declined_at: Moment | None = Field(
        None, description="When it was declined (default: the attempt's occurred_at)."
    )
    first_declined_at: Moment | None = Field(
        None,
        description="The invoice's first decline, which opens the dunning window (default: declined_at).",
    )
    card_retry_times: list[Moment] = Field(
        default_factory=list,
        max_length=MAX_CARD_RETRY_TIMES,
        description="The card's retries in the last 30 days, for the card network's retry caps.",
    )

    @field_validator("declined_at", "first_declined_at")
    @classmethod
    def _optional_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _event_time(value)

    @field_validator("card_retry_times")
    @classmethod
    def _all_utc(cls, values: list[datetime]) -> list[datetime]:
        return [_event_time(value) for value in values]

    @model_validator(mode="after")
    def _consistent_times(self) -> Self:
        if self.decline_code is None and (self.declined_at or self.first_declined_at):
            raise ValueError("declined_at and first_declined_at need a decline_code (null: not declined yet)")
        declined = self.declined_at or self.attempt.occurred_at
        if self.first_declined_at is not None and self.first_declined_at > declined:
            raise ValueError("first_declined_at is after declined_at: the first decline cannot come later")
        return self


class RecoveryBatchIn(_Body):
    """Many cases in one call (a renewal run); at most ``max_batch`` (as ``POST /v1/score/batch``)."""

    cases: list[RecoveryCaseIn] = Field(min_length=1)


class RecoveryStepOut(BaseModel):
    kind: Literal["charge", "retry", "customer"]
    at: datetime
    success_probability: float | None = Field(
        description="P(success) of this charge or retry, given the retries before it are declined; null for "
        "customer steps and in a fallback plan."
    )
    action: Literal["update_card", "authenticate", "other_method", "reminder"] | None = Field(
        description="What the customer is asked to do (customer steps only)."
    )
    reason: str


class RecoveryPlanOut(BaseModel):
    invoice_id: str | None
    steps: list[RecoveryStepOut] = Field(description="In time order.")
    recovery_probability: float | None = Field(
        description="P(the planned charge or retries succeed); null in a fallback plan."
    )
    expected_attempts: float | None = Field(
        description="Expected number of attempts; null in a fallback plan."
    )
    stop: Literal["hard_rule", "max_attempts", "no_candidate", "not_worth_it", "not_declined"] = Field(
        description="Why the plan holds no further retry."
    )
    hard_rule: str | None = Field(description="The hard rule that forbids retrying, if any.")
    candidates: int = Field(description="Candidate retry times the failure model was evaluated at.")
    fallback: bool = Field(
        description="True when the failure model was unavailable: retries follow the fixed schedule."
    )
    model: ModelRef | None = Field(
        description="The model version the plan was made with (riskgate-retry or riskgate-failure)."
    )
    planned_with: Literal["retry_model", "failure_model", "fixed_schedule"] = Field(
        description="What scored the candidate times: the retry model (after a decline, when one is served), "
        "the LightGBM failure model (before a charge, or without a retry model), or nothing (fallback)."
    )
    planning_ms: float


class RecoveryBatchOut(BaseModel):
    results: list[RecoveryPlanOut]


# -- trends and drift (GET /v1/trends, GET /v1/drift; documented shapes, see serving.readers.trends)


class ActionCountsOut(BaseModel):
    approve: int
    review: int
    block: int
    defer: int


class FraudTrendOut(BaseModel):
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    predicted_rate: float | None = Field(
        description="Mean fraud probability over attempts whose label is mature."
    )
    realised_rate: float | None = Field(description="Share of those attempts a fraud report names.")
    mature: bool = Field(description="Every attempt of the bucket occurred fraud_maturity_days before as_of.")
    mature_share: float | None


class FailureTrendOut(BaseModel):
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    predicted_rate: float | None = Field(
        description="Mean failure probability over attempts with an outcome."
    )
    realised_rate: float | None = Field(description="Share of those attempts declined or errored.")
    with_outcome: int


class MoneyAtRiskOut(BaseModel):
    fraud: float = Field(description="sum(amount x fraud probability) in `currency` (no conversion).")
    failure: float
    currency: str | None = Field(description="The range's main currency (most attempts).")
    currency_note: str
    by_currency: dict[str, dict[str, float]] = Field(description="Per currency: {fraud, failure} sums.")


class TrendPointOut(BaseModel):
    bucket_start: datetime
    attempts: int
    actions: ActionCountsOut
    fraud: FraudTrendOut
    failure: FailureTrendOut
    money_at_risk: MoneyAtRiskOut


class TrendSeriesOut(BaseModel):
    segment_value: str | None = Field(
        description="The segment's value (null: no segment, or attempts without a value for it)."
    )
    points: list[TrendPointOut]


class TrendsOut(BaseModel):
    start: datetime
    end: datetime
    bucket: Literal["hour", "day", "week"]
    segment: str | None
    as_of: datetime | None = Field(description="Newest outcome or fraud-report time in the log (null: none).")
    fraud_maturity_days: float
    series: list[TrendSeriesOut]


class DriftRowOut(BaseModel):
    name: str = Field(description="'score' or a feature name.")
    kind: Literal["score", "feature"]
    psi: float | None
    band: Literal["stable", "moderate", "significant", "insufficient_data"]
    n: int = Field(description="Decisions compared (those the model version scored in the range).")


class DriftModelOut(BaseModel):
    task: Literal["fraud", "failure"]
    model: str | None = Field(description="e.g. riskgate-fraud/3 (null: no model served).")
    reference_window: str | None
    status: Literal["ok", "no_model", "no_reference"]
    rows: list[DriftRowOut]


class DriftOut(BaseModel):
    start: datetime
    end: datetime
    models: list[DriftModelOut]
