"""The event contract, in one place (``docs/contract.md`` describes it for providers).

Three kinds of event travel through riskgate:

* an **attempt**: one charge sent (or about to be sent) to the payment gateway;
* an **outcome**: the gateway's answer to an attempt, known shortly after it;
* a **fraud report**: a chargeback or confirmed-fraud report on an attempt, known days to months later.

Each kind is declared once, as a tuple of :class:`Column` specs. Everything else is derived from these
declarations: the Arrow schemas that Parquet files are written with, the vectorised validation of imports,
the column lists the simulator writes and the feature engines read. The enumerations below are the
vocabulary of the contract (attempt kinds, plans, payment methods, the decline-code taxonomy).

The attempt's *core* serves any card or account-based business: only the ids, the time, the amount and the
payment method are required; the fields only subscriptions have (kind, plan, retry number) are optional, each
with a documented meaning when absent. A provider's own attempt fields are its *extension*
(:class:`ExtensionField`), declared in the import mapping and stored as typed columns after the core ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

import pyarrow as pa

from core.errors import RiskgateError


class AttemptKind(StrEnum):
    """Why the charge is made."""

    SIGNUP = "signup"
    RENEWAL = "renewal"
    RETRY = "retry"
    UPGRADE = "upgrade"
    ONE_OFF = "one_off"


class PlanTier(StrEnum):
    BASIC = "basic"
    STANDARD = "standard"
    PREMIUM = "premium"


class PlanPeriod(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"


class MethodType(StrEnum):
    CARD = "card"
    WALLET = "wallet"
    CARRIER_BILLING = "carrier_billing"
    SEPA_DEBIT = "sepa_debit"
    PAYPAL = "paypal"


class CardFunding(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"
    PREPAID = "prepaid"


class OutcomeStatus(StrEnum):
    """The gateway's answer: approved, declined by the issuer, or a processing error."""

    APPROVED = "approved"
    DECLINED = "declined"
    ERROR = "error"


class DeclineFamily(StrEnum):
    """Groups of decline codes that behave alike (used by feature filters and the recovery planner)."""

    FUNDS = "funds"
    EXPIRED = "expired"
    ISSUER = "issuer"
    TECHNICAL = "technical"
    FRAUD = "fraud"
    INVALID = "invalid"


class DeclineCode(StrEnum):
    """The usual gateway decline taxonomy. See :data:`DECLINE_CODES` for each code's family and rules."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    CARD_VELOCITY_EXCEEDED = "card_velocity_exceeded"
    EXPIRED_CARD = "expired_card"
    DO_NOT_HONOR = "do_not_honor"
    GENERIC_DECLINE = "generic_decline"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    PROCESSING_ERROR = "processing_error"
    TRY_AGAIN_LATER = "try_again_later"
    AUTHENTICATION_REQUIRED = "authentication_required"
    STOLEN_CARD = "stolen_card"
    LOST_CARD = "lost_card"
    PICKUP_CARD = "pickup_card"
    FRAUDULENT = "fraudulent"
    DO_NOT_TRY_AGAIN = "do_not_try_again"
    INCORRECT_NUMBER = "incorrect_number"
    INVALID_ACCOUNT = "invalid_account"
    TRANSACTION_NOT_ALLOWED = "transaction_not_allowed"


@dataclass(frozen=True)
class DeclineRule:
    """What a decline code means for what happens next.

    ``hard``: the card will not succeed as it is (retrying is pointless or forbidden).
    ``retry_forbidden``: card-network rules forbid retrying this card at all (lost/stolen, do-not-try-again).
    ``customer_action``: the customer must do something (update the card, authenticate) before a retry helps.
    """

    family: DeclineFamily
    hard: bool
    retry_forbidden: bool
    customer_action: bool


DECLINE_CODES: Final[dict[DeclineCode, DeclineRule]] = {
    DeclineCode.INSUFFICIENT_FUNDS: DeclineRule(DeclineFamily.FUNDS, False, False, False),
    DeclineCode.CARD_VELOCITY_EXCEEDED: DeclineRule(DeclineFamily.FUNDS, False, False, False),
    DeclineCode.EXPIRED_CARD: DeclineRule(DeclineFamily.EXPIRED, True, False, True),
    DeclineCode.DO_NOT_HONOR: DeclineRule(DeclineFamily.ISSUER, False, False, False),
    DeclineCode.GENERIC_DECLINE: DeclineRule(DeclineFamily.ISSUER, False, False, False),
    DeclineCode.ISSUER_UNAVAILABLE: DeclineRule(DeclineFamily.TECHNICAL, False, False, False),
    DeclineCode.PROCESSING_ERROR: DeclineRule(DeclineFamily.TECHNICAL, False, False, False),
    DeclineCode.TRY_AGAIN_LATER: DeclineRule(DeclineFamily.TECHNICAL, False, False, False),
    DeclineCode.AUTHENTICATION_REQUIRED: DeclineRule(DeclineFamily.ISSUER, False, False, True),
    DeclineCode.STOLEN_CARD: DeclineRule(DeclineFamily.FRAUD, True, True, True),
    DeclineCode.LOST_CARD: DeclineRule(DeclineFamily.FRAUD, True, True, True),
    DeclineCode.PICKUP_CARD: DeclineRule(DeclineFamily.FRAUD, True, True, True),
    DeclineCode.FRAUDULENT: DeclineRule(DeclineFamily.FRAUD, True, True, True),
    DeclineCode.DO_NOT_TRY_AGAIN: DeclineRule(DeclineFamily.INVALID, True, True, True),
    DeclineCode.INCORRECT_NUMBER: DeclineRule(DeclineFamily.INVALID, True, False, True),
    DeclineCode.INVALID_ACCOUNT: DeclineRule(DeclineFamily.INVALID, True, True, True),
    DeclineCode.TRANSACTION_NOT_ALLOWED: DeclineRule(DeclineFamily.INVALID, True, False, True),
}


class ReportType(StrEnum):
    CHARGEBACK = "chargeback"
    CONFIRMED_FRAUD = "confirmed_fraud"


class EventKind(StrEnum):
    """The three event tables; the value is also the table's file/folder name under a data directory."""

    ATTEMPTS = "attempts"
    OUTCOMES = "outcomes"
    FRAUD_REPORTS = "fraud_reports"


class ColumnType(StrEnum):
    STRING = "string"
    TIMESTAMP = "timestamp"
    FLOAT = "float"
    INT = "int"


#: Arrow type of each column type. Timestamps are UTC, microsecond precision.
ARROW_TYPES: Final[dict[ColumnType, pa.DataType]] = {
    ColumnType.STRING: pa.string(),
    ColumnType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.INT: pa.int32(),
}


#: The event times the contract accepts, [EARLIEST_TIME, LATEST_TIME) in UTC. Outside it a time is a data
#: error (a default date, seconds read as milliseconds), and every window, label delay and retry horizon
#: computed from an accepted time stays a representable date.
EARLIEST_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)
TIME_RANGE_TEXT: Final = "a time from 2000-01-01 (included) to 2100-01-01 (excluded), UTC"


def in_time_range(moment: datetime) -> bool:
    """Whether a timezone-aware time is one the contract accepts (see :data:`EARLIEST_TIME`)."""
    return EARLIEST_TIME <= moment < LATEST_TIME


class Check(StrEnum):
    """Value checks beyond the type. Each is declared once, in :data:`events.checks.VALUE_CHECKS`."""

    NON_EMPTY = "non_empty"
    UNIQUE = "unique"
    POSITIVE = "positive"
    NON_NEGATIVE = "non_negative"  # >= 0 (and finite)
    FINITE = "finite"  # not infinite
    CURRENCY = "currency"  # an ISO 4217 code, and the amount has no more decimals than its minor unit
    COUNTRY = "country"  # an ISO 3166-1 alpha-2 code
    BIN = "bin"  # 6 to 8 digits
    YEAR_MONTH = "year_month"  # YYYY-MM, from 2000-01 to 2099-12 (the years of the event times)
    IP = "ip"  # an IPv4 or IPv6 address
    TIME_RANGE = "time_range"  # within [EARLIEST_TIME, LATEST_TIME)
    NOT_AFTER_EVENT = "not_after_event"  # not after the event's own time (an attempt's occurred_at)


@dataclass(frozen=True)
class Column:
    """One field of an event: its type, whether it may be missing, its allowed values and checks."""

    name: str
    type: ColumnType
    required: bool
    doc: str
    values: tuple[str, ...] | None = None
    checks: tuple[Check, ...] = ()

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.type]


class FieldType(StrEnum):
    """The type of a provider's own attempt field (the contract's *extension*), declared with the field.

    * ``key``: an identifier (a merchant terminal, a reseller code, a set-top box serial, an e-mail domain):
      can be a feature entity and the value of a distinct count; stored as text.
    * ``category``: one of a declared, closed set of values (a sales channel): filters, categorical features
      (the code is the value's index in ``values``) and trend segments; stored as text.
    * ``number``: a real number: sums, means, ranges in filters, numeric features; stored as float64.
    * ``time``: a UTC timestamp (account created, card first used): ages; stored as timestamp[us, UTC].
    """

    KEY = "key"
    CATEGORY = "category"
    NUMBER = "number"
    TIME = "time"


#: The column type each extension field type is stored as.
FIELD_COLUMN_TYPES: Final[dict[FieldType, ColumnType]] = {
    FieldType.KEY: ColumnType.STRING,
    FieldType.CATEGORY: ColumnType.STRING,
    FieldType.NUMBER: ColumnType.FLOAT,
    FieldType.TIME: ColumnType.TIMESTAMP,
}

#: A field name: lower snake case, starting with a letter, at most 64 characters.
FIELD_NAME_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"


class ExtensionFieldError(RiskgateError, ValueError):
    """An extension field declaration that cannot be used (bad name, clash with the core, bad values)."""


@dataclass(frozen=True)
class ExtensionField:
    """One of a provider's own attempt fields: always optional, travelling with the attempt everywhere
    (import, both feature engines, the API's ``attributes``, the decision log, trend segments)."""

    name: str
    type: FieldType
    doc: str = ""
    values: tuple[str, ...] | None = None  # category only: the allowed values, in code order

    def __post_init__(self) -> None:
        where = f"extension field {self.name!r}"
        if not re.fullmatch(FIELD_NAME_PATTERN, self.name):
            raise ExtensionFieldError(
                f"{where}: a field name is lower snake case starting with a letter (e.g. 'terminal_id')"
            )
        if self.name in CORE_FIELD_NAMES:
            raise ExtensionFieldError(f"{where}: the core contract already has a field of that name")
        if (self.type is FieldType.CATEGORY) != (self.values is not None):
            raise ExtensionFieldError(f"{where}: values= is required for a category, and only for a category")
        if self.values is not None and (not self.values or len(set(self.values)) != len(self.values)):
            raise ExtensionFieldError(f"{where}: values must be a non-empty list without repeats")

    @property
    def column(self) -> Column:
        """The field as a contract column (optional; category values are its allowed values), with the
        checks of its type: a key is non-blank, a number finite, a time in the contract's range."""
        return Column(
            self.name,
            FIELD_COLUMN_TYPES[self.type],
            False,
            self.doc,
            values=self.values,
            checks=_FIELD_CHECKS[self.type],
        )


_FIELD_CHECKS: Final[dict[FieldType, tuple[Check, ...]]] = {
    FieldType.KEY: (Check.NON_EMPTY,),
    FieldType.CATEGORY: (),
    FieldType.NUMBER: (Check.FINITE,),
    FieldType.TIME: (Check.TIME_RANGE,),
}


def _values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


ATTEMPT_COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "attempt_id",
        ColumnType.STRING,
        True,
        "Unique id of the attempt; the idempotency key everywhere.",
        checks=(Check.NON_EMPTY, Check.UNIQUE),
    ),
    Column(
        "occurred_at",
        ColumnType.TIMESTAMP,
        True,
        "When the attempt is made (UTC).",
        checks=(Check.TIME_RANGE,),
    ),
    Column(
        "account_id",
        ColumnType.STRING,
        True,
        "The customer account (a subscriber, a merchant's customer): the account entity of the features.",
        checks=(Check.NON_EMPTY,),
    ),
    Column(
        "kind",
        ColumnType.STRING,
        False,
        "Why the charge is made. Absent: not told (a card transaction outside a subscription); features "
        "filtered by kind do not count the attempt.",
        values=_values(AttemptKind),
    ),
    Column(
        "plan_tier",
        ColumnType.STRING,
        False,
        "Plan tier. Absent: the attempt pays no plan (or the export does not say which).",
        values=_values(PlanTier),
    ),
    Column(
        "plan_period",
        ColumnType.STRING,
        False,
        "Billing period of the plan. Absent: the attempt pays no plan (or the export does not say which).",
        values=_values(PlanPeriod),
    ),
    Column(
        "amount",
        ColumnType.FLOAT,
        True,
        "Amount in major units (e.g. 12.99), >= 0. A 0 is a real attempt with an outcome: an "
        "authorisation or card-verification check.",
        checks=(Check.NON_NEGATIVE,),
    ),
    Column(
        "currency",
        ColumnType.STRING,
        False,
        "ISO 4217 currency code; the amount has no more decimals than its minor unit. Absent: the amount "
        "is in the provider's one currency, checked only as a finite number >= 0 (any decimals), and "
        "amounts in minor units cannot be converted.",
        checks=(Check.CURRENCY,),
    ),
    Column(
        "payment_method_id",
        ColumnType.STRING,
        True,
        "Token or fingerprint of the payment method (the card entity of the features), never a card "
        "number. Required: an export without one derives it in the mapping (e.g. from the account).",
        checks=(Check.NON_EMPTY,),
    ),
    Column(
        "method_type",
        ColumnType.STRING,
        False,
        "Payment method type. Absent: not told; the card-only rules (expiry, card updates) do not apply.",
        values=_values(MethodType),
    ),
    Column("card_bin", ColumnType.STRING, False, "Card BIN, 6 to 8 digits.", checks=(Check.BIN,)),
    Column("card_funding", ColumnType.STRING, False, "Card funding type.", values=_values(CardFunding)),
    Column(
        "card_country",
        ColumnType.STRING,
        False,
        "Card issuing country (ISO 3166-1 alpha-2).",
        checks=(Check.COUNTRY,),
    ),
    Column(
        "card_exp",
        ColumnType.STRING,
        False,
        "Card expiry, YYYY-MM, from 2000-01 to 2099-12.",
        checks=(Check.YEAR_MONTH,),
    ),
    Column("device_id", ColumnType.STRING, False, "Device the attempt comes from."),
    Column("ip", ColumnType.STRING, False, "IP address the attempt comes from.", checks=(Check.IP,)),
    Column(
        "ip_country",
        ColumnType.STRING,
        False,
        "Country of the IP (ISO 3166-1 alpha-2).",
        checks=(Check.COUNTRY,),
    ),
    Column(
        "billing_country",
        ColumnType.STRING,
        False,
        "Billing country (ISO 3166-1 alpha-2).",
        checks=(Check.COUNTRY,),
    ),
    Column(
        "invoice_id",
        ColumnType.STRING,
        False,
        "Invoice the attempt pays; a retry carries the invoice of the attempt it retries.",
    ),
    Column(
        "retry_number",
        ColumnType.INT,
        False,
        "0 for the first try of an invoice, then 1, 2, ... Absent: the export does not track retries "
        "(unknown, not 0); a mapping default of 0 says every attempt is a first try.",
        checks=(Check.NON_NEGATIVE,),
    ),
    Column(
        "account_created_at",
        ColumnType.TIMESTAMP,
        False,
        "When the account was created (UTC), for history that starts mid-life; not after occurred_at. "
        "Absent: the account's first attempt in the data is its known start.",
        checks=(Check.TIME_RANGE, Check.NOT_AFTER_EVENT),
    ),
    Column(
        "payment_method_first_used_at",
        ColumnType.TIMESTAMP,
        False,
        "When the payment method was first used (UTC), for history that starts mid-life; not after "
        "occurred_at. Absent: its first attempt in the data is its known start.",
        checks=(Check.TIME_RANGE, Check.NOT_AFTER_EVENT),
    ),
)

#: The core attempt fields' names: no extension field may take one.
CORE_FIELD_NAMES: Final[frozenset[str]] = frozenset(column.name for column in ATTEMPT_COLUMNS)

OUTCOME_COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "attempt_id",
        ColumnType.STRING,
        True,
        "The attempt this is the gateway's answer to; one each.",
        checks=(Check.NON_EMPTY, Check.UNIQUE),
    ),
    Column(
        "occurred_at",
        ColumnType.TIMESTAMP,
        True,
        "When the gateway answered (UTC).",
        checks=(Check.TIME_RANGE,),
    ),
    Column("status", ColumnType.STRING, True, "approved, declined or error.", values=_values(OutcomeStatus)),
    Column(
        "decline_code",
        ColumnType.STRING,
        False,
        "Why it was declined (required when declined, empty when approved).",
        values=_values(DeclineCode),
    ),
)

FRAUD_REPORT_COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "report_id",
        ColumnType.STRING,
        True,
        "Unique id of the report.",
        checks=(Check.NON_EMPTY, Check.UNIQUE),
    ),
    Column(
        "attempt_id", ColumnType.STRING, True, "The attempt reported as fraud.", checks=(Check.NON_EMPTY,)
    ),
    Column(
        "reported_at",
        ColumnType.TIMESTAMP,
        True,
        "When the report reached the provider (UTC); usable as a label only from then on.",
        checks=(Check.TIME_RANGE,),
    ),
    Column(
        "report_type", ColumnType.STRING, True, "chargeback or confirmed_fraud.", values=_values(ReportType)
    ),
)

COLUMNS: Final[dict[EventKind, tuple[Column, ...]]] = {
    EventKind.ATTEMPTS: ATTEMPT_COLUMNS,
    EventKind.OUTCOMES: OUTCOME_COLUMNS,
    EventKind.FRAUD_REPORTS: FRAUD_REPORT_COLUMNS,
}


def table_columns(kind: EventKind, extension: tuple[ExtensionField, ...] = ()) -> tuple[Column, ...]:
    """The columns of an event table: the core ones, then (attempts only) the extension's, in its order."""
    if extension and kind is not EventKind.ATTEMPTS:
        raise ExtensionFieldError(f"only attempts have extension fields, not {kind}")
    return COLUMNS[kind] + tuple(field.column for field in extension)


def arrow_schema(kind: EventKind, extension: tuple[ExtensionField, ...] = ()) -> pa.Schema:
    """The Parquet/Arrow schema of an event table, derived from its column declarations (and, for the
    attempts, the provider's extension fields, always nullable, after the core columns)."""
    return pa.schema(
        [
            pa.field(column.name, column.arrow_type, nullable=not column.required)
            for column in table_columns(kind, extension)
        ]
    )


def column_names(kind: EventKind, extension: tuple[ExtensionField, ...] = ()) -> list[str]:
    return [column.name for column in table_columns(kind, extension)]
