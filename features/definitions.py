"""The feature vocabulary: every feature is declared once, as data, and both engines read the declaration.

A :class:`FeatureSet` is an ordered tuple of definitions of these kinds:

* :class:`Aggregate` — a point-in-time aggregation over the history of an :class:`Entity` (an account, a card,
  a device, ...): which events (:class:`Source`: attempts, gateway outcomes or fraud reports), which of them
  (:class:`Filter`), over which :class:`Window`, with which :class:`Op`. Its output name is generated:
  ``{entity}_{source}[_{filter}]_{op}[_{value}]_{window}``, e.g. ``card_outcomes_declined_count_24h``.
* :class:`RequestFeature` — computed from the attempt's own fields (amount, plan, card expiry, ...).
* Definitions computed from aggregates of the same feature set (:data:`DERIVED`): :class:`AmountToUsual`, the
  attempt's amount against an aggregate; :class:`ZScore`, the amount standardised by the entity's centre and
  spread; :class:`Ratio`, one aggregate of an entity over another of the same entity.

**A provider's own fields.** A set declares the extension fields it reads in ``FeatureSet.fields``
(:class:`events.schema.ExtensionField`); :class:`AttemptFields` resolves what each can do. A *key* field can
be an entity's key (``Entity("terminal", "terminal_id")``) or a distinct count's value; a key or *category*
field can be filtered on (:class:`Filter`; a category's values are checked); a *number* field (or
``amount``) can be filtered by range (:class:`RangeFilter`) and read as a number; a *time* field gives an
age. Validation is at declaration, naming the feature and what is available. An optional field (``kind``,
``plan_tier``, an extension field...) may be absent from the events: missing everywhere (NaN features,
filters match nothing).

**Time rule (both engines).** An event counts for an attempt made at time ``T`` iff its *event time* is
strictly before ``T`` — an attempt's ``occurred_at``, an outcome's ``occurred_at``, a fraud report's
``reported_at`` — and, for a windowed aggregate of width ``W``, at or after ``T - W``. A *delayed* window
(offset ``D``) holds the events at or after ``T - D - W`` and strictly before ``T - D``. Arrival order never
matters; events sharing a timestamp with the attempt do not count (not even the attempt itself). Where order
within equal timestamps matters (consecutive counts), events are ordered by the 64-bit hash of their id.

**Missing values.** An attempt whose entity key is missing (e.g. no ``device_id``) gets NaN for that entity's
features. Aggregates that have no defined value without history (mean, max, ratio, time since, consecutive
count of an entity never seen) are NaN; counts and sums over an empty window are 0 (a fact, not a guess).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import RiskgateError
from events.schema import (
    ATTEMPT_COLUMNS,
    DECLINE_CODES,
    ColumnType,
    DeclineCode,
    DeclineFamily,
    ExtensionField,
    FieldType,
    OutcomeStatus,
    ReportType,
)

#: Version of the vocabulary and its semantics; part of every feature set's hash.
ENGINE_VERSION: Final = "1"

US_PER_SECOND: Final = 1_000_000


class FeatureDefinitionError(RiskgateError, ValueError):
    """A feature definition is inconsistent (unknown column, op not allowed on a window, duplicate...)."""


@dataclass(frozen=True)
class Entity:
    """Something whose history is aggregated, identified by one key column of the attempt."""

    name: str
    key: str


ACCOUNT: Final = Entity("account", "account_id")
CARD: Final = Entity("card", "payment_method_id")
DEVICE: Final = Entity("device", "device_id")
IP: Final = Entity("ip", "ip")
BIN: Final = Entity("bin", "card_bin")


class Source(StrEnum):
    """Which events an aggregate reads; each has its own event time."""

    ATTEMPTS = "attempts"  # at the attempt's occurred_at
    OUTCOMES = "outcomes"  # at the outcome's occurred_at (the gateway's answer)
    REPORTS = "reports"  # at the fraud report's reported_at: a label counts only once reported


#: The IPTV fields every attempt record carries for filters (outcomes and reports see their attempt's fields).
ATTEMPT_FILTER_FIELDS: Final = ("kind", "method_type", "plan_tier", "plan_period", "card_funding")
#: Each source's own fields a filter may test, with their allowed values (an attempt has none of its own:
#: every source also sees its attempt's fields, see :class:`AttemptFields`).
OWN_FILTER_FIELDS: Final[dict[Source, dict[str, tuple[str, ...]]]] = {
    Source.ATTEMPTS: {},
    Source.OUTCOMES: {
        "status": tuple(s.value for s in OutcomeStatus),
        "decline_code": tuple(c.value for c in DeclineCode),
        "decline_family": tuple(f.value for f in DeclineFamily),
    },
    Source.REPORTS: {"report_type": tuple(r.value for r in ReportType)},
}

#: The attempt's columns, and the allowed values of its enumerated ones (category codes are indices in these).
ATTEMPT_FIELDS: Final = frozenset(c.name for c in ATTEMPT_COLUMNS)
VOCABULARY: Final[dict[str, tuple[str, ...]]] = {c.name: c.values for c in ATTEMPT_COLUMNS if c.values}
#: The core attempt fields by what the vocabulary can do with them.
CORE_TEXT_FIELDS: Final = tuple(c.name for c in ATTEMPT_COLUMNS if c.type == ColumnType.STRING)
CORE_NUMBER_FIELDS: Final = tuple(
    c.name for c in ATTEMPT_COLUMNS if c.type in (ColumnType.FLOAT, ColumnType.INT)
)
#: Times an age can be taken of (the attempt's own ``occurred_at`` is the time ages are taken at).
CORE_TIME_FIELDS: Final = tuple(
    c.name for c in ATTEMPT_COLUMNS if c.type == ColumnType.TIMESTAMP and c.name != "occurred_at"
)

#: Derived field of an outcome: the family of its decline code (see events.schema.DECLINE_CODES).
DECLINE_FAMILY_OF: Final[dict[str, str]] = {
    code.value: rule.family.value for code, rule in DECLINE_CODES.items()
}


@dataclass(frozen=True)
class Filter:
    """Keep only the events whose ``field`` is one of ``values`` (e.g. outcomes with status ``declined``).

    ``field`` is one of the source's own fields (an outcome's status, decline code or family, a report's
    type) or any text field of the attempt: a core one (``kind``, ``card_country``...) or a declared key or
    category extension field.
    """

    name: str
    field: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise FeatureDefinitionError(f"filter {self.name!r} has no values: it would match nothing")

    def matches(self, value: object) -> bool:
        """Whether an event whose field holds ``value`` (a text, or None when missing) passes."""
        return value in self.values


def _number_name(bound: float) -> str:
    """A bound as it appears in a name: ``100``, ``0p01`` (point), ``m5`` (minus)."""
    text = format(Decimal(repr(float(bound))), "f")  # the shortest exact digits, never an exponent
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "m").replace(".", "p")


@dataclass(frozen=True)
class RangeFilter:
    """Keep only the events whose numeric ``field`` is in ``[low, high)`` (a bound left out is open), e.g.
    ``RangeFilter("amount", high=0.01)`` for zero-amount authorisation checks. ``field`` is ``amount``,
    ``retry_number`` or a declared number extension field; a missing value matches no range.

    Its name is generated: ``amount_lt_0p01``, ``amount_ge_100``, ``amount_10_to_50`` (``p`` for the decimal
    point, ``m`` for a minus sign).
    """

    field: str
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        where = f"range filter on {self.field!r}"
        if self.low is None and self.high is None:
            raise FeatureDefinitionError(f"{where}: give low=, high= or both (it would match every value)")
        bounds = [b for b in (self.low, self.high) if b is not None]
        if any(isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b) for b in bounds):
            raise FeatureDefinitionError(f"{where}: bounds must be finite numbers, got {bounds}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise FeatureDefinitionError(f"{where}: low ({self.low}) must be below high ({self.high})")
        for bound in ("low", "high"):  # 20 and 20.0 are one declaration: one name, one hash
            if getattr(self, bound) is not None:
                object.__setattr__(self, bound, float(getattr(self, bound)))

    @property
    def name(self) -> str:
        if self.low is None:
            return f"{self.field}_lt_{_number_name(self.high or 0.0)}"
        if self.high is None:
            return f"{self.field}_ge_{_number_name(self.low)}"
        return f"{self.field}_{_number_name(self.low)}_to_{_number_name(self.high)}"

    def matches(self, value: object) -> bool:
        """Whether an event whose field holds ``value`` (a float, or None when missing) passes."""
        if not isinstance(value, float | int) or isinstance(value, bool):
            return False
        number = float(value)
        return (self.low is None or number >= self.low) and (self.high is None or number < self.high)


#: Either kind of filter.
AnyFilter = Filter | RangeFilter


DECLINED: Final = Filter("declined", "status", ("declined",))
APPROVED: Final = Filter("approved", "status", ("approved",))
RETRIES: Final = Filter("retries", "kind", ("retry",))


def family_filter(family: DeclineFamily) -> Filter:
    """Declines of one decline family, e.g. ``funds`` or ``fraud``."""
    return Filter(f"{family.value}_declines", "decline_family", (family.value,))


@dataclass(frozen=True)
class Window:
    """A trailing window ``[T - seconds, T)``; its name (``1h``, ``7d``) goes into feature names.

    With ``offset_seconds`` it is delayed: ``[T - offset - seconds, T - offset)``, named e.g. ``28d_7d_ago``
    (the 28 days before the last week: reports that had time to arrive). Build one with
    ``days(28).delayed(days(7))``.
    """

    seconds: int
    offset_seconds: int = 0

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise FeatureDefinitionError(f"a window must be positive, got {self.seconds} s")
        if self.offset_seconds < 0:
            raise FeatureDefinitionError(
                f"window {_span(self.seconds)}: the offset must be zero or positive (a delay into the past), "
                f"got {self.offset_seconds} s"
            )

    @property
    def us(self) -> int:
        """The width in microseconds."""
        return self.seconds * US_PER_SECOND

    @property
    def offset_us(self) -> int:
        return self.offset_seconds * US_PER_SECOND

    @property
    def reach_us(self) -> int:
        """How far back from the query time the window reaches (offset + width): what online state keeps."""
        return (self.offset_seconds + self.seconds) * US_PER_SECOND

    @property
    def name(self) -> str:
        if self.offset_seconds:
            return f"{_span(self.seconds)}_{_span(self.offset_seconds)}_ago"
        return _span(self.seconds)

    def delayed(self, by: Window) -> Window:
        """This window moved ``by`` into the past, e.g. ``days(28).delayed(days(7))`` is ``28d_7d_ago``."""
        if by.offset_seconds:
            raise FeatureDefinitionError(
                f"window {self.name}: delay it by a plain duration, not by the delayed window {by.name}"
            )
        return Window(self.seconds, self.offset_seconds + by.seconds)


def _span(seconds: int) -> str:
    """A duration as it appears in names: ``1h``, ``7d``, ``2m``, ``90s``."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def hours(n: int) -> Window:
    return Window(n * 3_600)


def days(n: int) -> Window:
    return Window(n * 86_400)


class Op(StrEnum):
    """Aggregations. Codes (``list(Op).index``) are what the numeric kernels dispatch on."""

    COUNT = "count"  # matching events
    SUM = "sum"  # of a numeric value (amount) over matching events; 0 over none
    MEAN = "mean"  # NaN over none
    MAX = "max"  # NaN over none
    DISTINCT = "distinct"  # distinct values of a key column (e.g. payment_method_id) over matching events
    RATIO = "ratio"  # matching events / all events of the source; NaN when there are none
    TIME_SINCE_LAST = "since_last"  # time since the latest matching event; NaN if none (unbounded)
    TIME_SINCE_FIRST = "since_first"  # time since the earliest matching event; NaN if none (unbounded)
    CONSECUTIVE = "consecutive"  # trailing run of matching events; NaN if the entity has no event (unbounded)
    STD = "std"  # population standard deviation (divides by n) of a numeric value; NaN over none, 0 over one
    QUANTILE = "quantile"  # q-quantile of a numeric value (linear interpolation); NaN over none; named pNN


#: Ops that need a numeric value column, ops that need a key column, ops that are always unbounded.
VALUE_OPS: Final = frozenset({Op.SUM, Op.MEAN, Op.MAX, Op.STD, Op.QUANTILE})
KEY_OPS: Final = frozenset({Op.DISTINCT})
UNBOUNDED_OPS: Final = frozenset({Op.TIME_SINCE_LAST, Op.TIME_SINCE_FIRST, Op.CONSECUTIVE})
#: Ops that may also be declared without a window (over the whole history): their state folds into a scalar.
LIFETIME_OPS: Final = frozenset({Op.COUNT}) | UNBOUNDED_OPS
NUMERIC_VALUES: Final = ("amount",)
TIME_UNITS: Final[dict[str, int]] = {"hours": 3_600, "days": 86_400}
#: A quantile's ``q`` is held in millionths (exact in the kernels' integer specs): at most six decimals.
PPM: Final = 1_000_000


@dataclass(frozen=True)
class Aggregate:
    """A point-in-time aggregation over an entity's history of one source."""

    entity: Entity
    source: Source
    op: Op
    window: Window | None = None
    filter: AnyFilter | None = None
    value: str | None = None  # "amount" for sum/mean/max/std/quantile; a key column or key field for distinct
    unit: str = "hours"  # for time-since ops
    q: float | None = None  # for quantile: in (0, 1), at most six decimals (0.5 is the median)

    def __post_init__(self) -> None:
        if self.op == Op.QUANTILE:
            if self.q is None or not 0.0 < self.q < 1.0:
                raise FeatureDefinitionError(
                    f"{self.entity.name} {self.source.value} quantile: q must be strictly between 0 and 1 "
                    f"(0.5 for the median, 0.9 for p90), got {self.q!r}"
                )
            if round(self.q * PPM) / PPM != self.q:
                raise FeatureDefinitionError(
                    f"{self.entity.name} {self.source.value} quantile: q={self.q!r} has more than six "
                    "decimals; round it (e.g. 0.999)"
                )
        elif self.q is not None:
            raise FeatureDefinitionError(
                f"{self.entity.name} {self.source.value} {self.op.value}: q= is for quantile only"
            )

    @property
    def q_ppm(self) -> int:
        """``q`` in millionths (0 when not a quantile): the kernels' integer parameter."""
        return 0 if self.q is None else round(self.q * PPM)

    @property
    def op_label(self) -> str:
        """The op's part of the name: its value, or ``p90``, ``p99_5`` for quantiles."""
        if self.op != Op.QUANTILE:
            return self.op.value
        whole, rest = divmod(self.q_ppm, PPM // 100)
        return f"p{whole}" if rest == 0 else f"p{whole}_{f'{rest:04d}'.rstrip('0')}"

    @property
    def name(self) -> str:
        return self.named(self.op_label)

    def named(self, op_label: str) -> str:
        """The generated name with ``op_label`` in place of the op's part (derived definitions reuse it)."""
        parts = [self.entity.name, self.source.value]
        if self.filter is not None:
            parts.append(self.filter.name)
        parts.append(op_label)
        if self.value is not None:
            parts.append(self.value)
        if self.op in (Op.TIME_SINCE_LAST, Op.TIME_SINCE_FIRST):
            parts.append(self.unit)
        elif self.window is not None:
            parts.append(self.window.name)
        elif self.op not in UNBOUNDED_OPS:
            parts.append("lifetime")
        return "_".join(parts)

    def validate(self, key_columns: frozenset[str]) -> None:
        where = f"feature {self.name!r}"
        if self.op in VALUE_OPS and self.value in key_columns:
            raise FeatureDefinitionError(
                f"{where}: {self.op.value} works on a numeric value, one of {NUMERIC_VALUES}, not on the key "
                f"column {self.value!r} (count its distinct values with op=distinct)"
            )
        if self.op in VALUE_OPS and self.value not in NUMERIC_VALUES:
            raise FeatureDefinitionError(f"{where}: {self.op.value} needs value= one of {NUMERIC_VALUES}")
        if self.op in KEY_OPS and self.value not in key_columns:
            raise FeatureDefinitionError(
                f"{where}: distinct needs value= a key column, one of {sorted(key_columns)}"
            )
        if self.op not in VALUE_OPS | KEY_OPS and self.value is not None:
            raise FeatureDefinitionError(f"{where}: {self.op.value} takes no value=")
        if self.op in UNBOUNDED_OPS and self.window is not None:
            raise FeatureDefinitionError(f"{where}: {self.op.value} looks at the whole history; drop window=")
        if self.window is None and self.op not in LIFETIME_OPS:
            raise FeatureDefinitionError(f"{where}: {self.op.value} needs a window")
        if self.op == Op.RATIO and self.filter is None:
            raise FeatureDefinitionError(f"{where}: ratio needs a filter (matching events / all events)")
        if self.unit not in TIME_UNITS:
            raise FeatureDefinitionError(f"{where}: unit must be one of {sorted(TIME_UNITS)}")


#: The core key columns a feature set may aggregate by (its default ``key_columns``).
CORE_KEY_COLUMNS: Final = frozenset({"account_id", "payment_method_id", "device_id", "ip", "card_bin"})


@dataclass(frozen=True)
class AttemptFields:
    """The attempt fields a feature set may read, by what it can do with them: the core contract's and the
    set's declared extension fields (:class:`events.schema.ExtensionField`)."""

    keys: frozenset[str]  # entity keys and distinct-count values
    texts: frozenset[str]  # value filters, mismatches, expiry months
    numbers: frozenset[str]  # range filters, numeric request features
    times: frozenset[str]  # ages (a time field other than occurred_at, the attempt's own time)
    vocabulary: dict[str, tuple[str, ...]]  # enumerated fields: category codes are indices in these

    @classmethod
    def of(
        cls, key_columns: frozenset[str] = CORE_KEY_COLUMNS, fields: tuple[ExtensionField, ...] = ()
    ) -> AttemptFields:
        def named(*types: FieldType) -> frozenset[str]:
            return frozenset(f.name for f in fields if f.type in types)

        categories = {f.name: f.values for f in fields if f.values is not None}
        return cls(
            keys=key_columns | named(FieldType.KEY),
            texts=frozenset(CORE_TEXT_FIELDS) | named(FieldType.KEY, FieldType.CATEGORY),
            numbers=frozenset(CORE_NUMBER_FIELDS) | named(FieldType.NUMBER),
            times=frozenset(CORE_TIME_FIELDS) | named(FieldType.TIME),
            vocabulary={**VOCABULARY, **categories},
        )

    @property
    def all(self) -> frozenset[str]:
        return self.keys | self.texts | self.numbers | self.times | {"occurred_at"}


#: The core fields alone (what a definition using no extension field is checked against when declared).
CORE_FIELDS: Final = AttemptFields.of()


def _check_filter(aggregate: Aggregate, fields: AttemptFields) -> None:
    """A filter tests a field its source has (its own, or its attempt's) with values that field can hold."""
    flt = aggregate.filter
    if flt is None:
        return
    where = f"feature {aggregate.name!r}"
    own = OWN_FILTER_FIELDS[aggregate.source]
    if isinstance(flt, RangeFilter):
        if flt.field not in fields.numbers:
            raise FeatureDefinitionError(
                f"{where}: range filter field {flt.field!r} is not a number field of the attempt; "
                f"use one of {sorted(fields.numbers)} (declare a number extension field in FeatureSet.fields)"
            )
        return
    if flt.field not in own and flt.field not in fields.texts:
        raise FeatureDefinitionError(
            f"{where}: filter field {flt.field!r} is not available on {aggregate.source.value}; "
            f"use one of {sorted(own) + sorted(fields.texts)} (or declare a key or category extension field "
            "in FeatureSet.fields)"
        )
    allowed = own[flt.field] if flt.field in own else fields.vocabulary.get(flt.field)
    unknown = [value for value in flt.values if allowed is not None and value not in allowed]
    if unknown:
        raise FeatureDefinitionError(
            f"{where}: filter {flt.name!r} value(s) {unknown} are not among {flt.field!r}'s values {allowed}"
        )


class Transform(StrEnum):
    """How a request-time feature is computed from the attempt's own fields."""

    NUMBER = "number"  # a number field as is (amount, retry_number, a number extension); NaN if missing
    CATEGORY = "category"  # code of an enumerated field (index in its values); NaN if missing or unknown
    MISMATCH = "mismatch"  # 1.0 if two columns differ, 0.0 if equal, NaN if either is missing
    DAYS_TO_EXPIRY = "days_to_expiry"  # days from the attempt to the end of card_exp's month; NaN if missing
    AGE = "age"  # time from a time field to the attempt, in unit= hours or days; NaN if missing
    HOUR_OF_DAY = "hour_of_day"  # 0-23, in timezone= (UTC by default)
    DAY_OF_MONTH = "day_of_month"  # 1-31, in timezone=
    DAY_OF_WEEK = "day_of_week"  # Monday = 0, in timezone=
    IS_WEEKEND = "is_weekend"  # 1.0 on Saturday and Sunday in timezone=, else 0.0
    IS_NIGHT = "is_night"  # 1.0 from NIGHT_START:00 to NIGHT_END:00 (22:00-06:00) in timezone=, else 0.0


#: Transforms of the attempt's time (``occurred_at``) read on the local clock of ``timezone=``.
CALENDAR_TRANSFORMS: Final = frozenset(
    {
        Transform.HOUR_OF_DAY,
        Transform.DAY_OF_MONTH,
        Transform.DAY_OF_WEEK,
        Transform.IS_WEEKEND,
        Transform.IS_NIGHT,
    }
)
#: Night, for IS_NIGHT: local hours NIGHT_START..23 and 0..NIGHT_END-1.
NIGHT_START: Final = 22
NIGHT_END: Final = 6
UTC_NAME: Final = "UTC"


def zone_slug(zone: str) -> str:
    """A time zone as it appears in a feature name: ``Europe/Paris`` -> ``europe_paris``, ``Etc/GMT+5`` ->
    ``etc_gmt_plus_5``."""
    text = zone.lower().replace("+", "_plus_")
    text = re.sub(r"-(?=\d)", "_minus_", text)
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


@dataclass(frozen=True)
class RequestFeature:
    """A feature of the attempt itself, known at request time.

    ``column`` may be a core field or one of the feature set's declared extension fields (checked by the
    :class:`FeatureSet`); ``unit`` is for AGE, ``timezone`` (an IANA name, e.g. ``Europe/Paris``) for the
    calendar transforms, whose names then end with the zone (``hour_of_day_europe_paris``).
    """

    transform: Transform
    column: str = "occurred_at"
    other: str | None = None  # second column of a mismatch
    unit: str | None = None  # AGE: "hours" or "days"
    timezone: str | None = None  # calendar transforms: local clock; None (or "UTC") is UTC

    def __post_init__(self) -> None:
        where = f"request feature {self.transform.value} of {self.column!r}"
        if (self.transform == Transform.MISMATCH) != (self.other is not None):
            raise FeatureDefinitionError(f"{where}: other= is required by mismatch, and only by mismatch")
        if (self.transform == Transform.AGE) != (self.unit is not None):
            raise FeatureDefinitionError(f"{where}: unit= is required by age, and only by age")
        if self.unit is not None and self.unit not in TIME_UNITS:
            raise FeatureDefinitionError(f"{where}: unit must be one of {sorted(TIME_UNITS)}")
        if self.timezone is not None:
            self._check_timezone(where)
        if self.transform in CALENDAR_TRANSFORMS and self.column != "occurred_at":
            raise FeatureDefinitionError(f"{where}: {self.transform.value} reads the attempt's occurred_at")
        if all(column in ATTEMPT_FIELDS for column in self.columns):
            self.validate(CORE_FIELDS)  # core fields only: decidable now; extension ones by the feature set

    def _check_timezone(self, where: str) -> None:
        if self.transform not in CALENDAR_TRANSFORMS:
            raise FeatureDefinitionError(
                f"{where}: timezone= is for {sorted(t.value for t in CALENDAR_TRANSFORMS)} only"
            )
        try:
            ZoneInfo(str(self.timezone))
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise FeatureDefinitionError(
                f"{where}: unknown time zone {self.timezone!r}; use an IANA name such as 'Europe/Paris'"
            ) from error
        if self.timezone == UTC_NAME:
            object.__setattr__(self, "timezone", None)  # one declaration, one name and one hash for UTC

    def validate(self, fields: AttemptFields) -> None:
        """The columns exist and fit the transform (number, enumerated, text or time field)."""
        where = f"request feature {self.name!r}"
        unknown = [c for c in self.columns if c not in fields.all]
        if unknown:
            raise FeatureDefinitionError(
                f"{where}: unknown attempt column(s) {unknown}; the attempt has {sorted(fields.all)} "
                "(declare the provider's own fields in FeatureSet.fields)"
            )
        needs: dict[Transform, tuple[str, frozenset[str] | dict[str, tuple[str, ...]]]] = {
            Transform.NUMBER: ("a number field", fields.numbers),
            Transform.CATEGORY: ("an enumerated column", fields.vocabulary),
            Transform.MISMATCH: ("a text field", fields.texts),
            Transform.DAYS_TO_EXPIRY: ("a text field (YYYY-MM)", fields.texts),
            Transform.AGE: ("a time field other than occurred_at", fields.times),
        }
        if self.transform in needs:
            what, allowed = needs[self.transform]
            wrong = [c for c in self.columns if c not in allowed]
            if wrong:
                raise FeatureDefinitionError(
                    f"{where}: {wrong[0]!r} is not {what}; {self.transform.value} works on {sorted(allowed)}"
                )

    @property
    def name(self) -> str:  # noqa: PLR0911
        if self.transform == Transform.NUMBER:
            return self.column
        if self.transform == Transform.CATEGORY:
            return f"{self.column}_code"
        if self.transform == Transform.MISMATCH:
            return f"{self.column}_ne_{self.other}"
        if self.transform == Transform.DAYS_TO_EXPIRY:
            return f"{self.column}_days_left"
        if self.transform == Transform.AGE:
            return f"{self.column}_age_{self.unit}"
        if self.timezone is not None:
            return f"{self.transform.value}_{zone_slug(self.timezone)}"
        return self.transform.value

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,) if self.other is None else (self.column, self.other)


@dataclass(frozen=True)
class AmountToUsual:
    """The attempt's amount divided by an aggregate of amounts (e.g. the account's mean approved amount)."""

    usual: Aggregate

    @property
    def name(self) -> str:
        return f"amount_to_{self.usual.name}"

    @property
    def inputs(self) -> tuple[Aggregate, ...]:
        return (self.usual,)


#: Ops a z-score may centre on (quantile: a median-centred, robust score).
CENTRE_OPS: Final = frozenset({Op.MEAN, Op.QUANTILE})


@dataclass(frozen=True)
class ZScore:
    """How unusual the attempt's amount is for the entity: ``(amount - centre) / spread``.

    ``centre`` (a mean or a quantile, e.g. the median) and ``spread`` (a standard deviation) are aggregates of
    amounts over the same entity, source, filter and window. NaN when the spread is 0 (one event, or equal
    amounts) or undefined (no event, no entity key). Named like the centre with both ops in the op's place,
    e.g. ``amount_z_account_attempts_mean_std_amount_30d``; :func:`zscore` builds that usual one.
    """

    centre: Aggregate
    spread: Aggregate

    def __post_init__(self) -> None:
        where = f"z-score of {self.centre.name!r} by {self.spread.name!r}"
        if self.centre.op not in CENTRE_OPS:
            raise FeatureDefinitionError(
                f"{where}: the centre must be one of {sorted(op.value for op in CENTRE_OPS)}, "
                f"not {self.centre.op.value}"
            )
        if self.spread.op != Op.STD:
            raise FeatureDefinitionError(f"{where}: the spread must be a std, not {self.spread.op.value}")
        centre, spread = self.centre, self.spread
        if (centre.entity, centre.source, centre.filter, centre.window, centre.value) != (
            spread.entity,
            spread.source,
            spread.filter,
            spread.window,
            spread.value,
        ):
            raise FeatureDefinitionError(
                f"{where}: centre and spread must aggregate the same events (entity, source, filter, window "
                "and value)"
            )
        if centre.value != "amount":
            raise FeatureDefinitionError(f"{where}: the attempt's amount is standardised: use value='amount'")

    @property
    def name(self) -> str:
        return "amount_z_" + self.centre.named(f"{self.centre.op_label}_{self.spread.op_label}")

    @property
    def inputs(self) -> tuple[Aggregate, ...]:
        return (self.centre, self.spread)


def zscore(entity: Entity, source: Source, window: Window, filter: Filter | None = None) -> ZScore:
    """The attempt's amount standardised by the entity's mean and standard deviation of amounts."""
    mean = Aggregate(entity, source, Op.MEAN, window, filter, value="amount")
    return ZScore(mean, Aggregate(entity, source, Op.STD, window, filter, value="amount"))


@dataclass(frozen=True)
class Ratio:
    """One aggregate of an entity divided by another of the same entity (any sources, ops and windows).

    E.g. fraud reports on a card in a delayed window over the card's attempts in the same window, or the
    card's attempts in the last hour over those in the last 30 days. NaN when the denominator is 0 or NaN.
    Both must be of one entity: the ratio describes that entity (and the batch engine builds each entity's
    features from that entity's history alone). Named ``{numerator}_per_{denominator without the entity}``,
    e.g. ``card_reports_count_28d_7d_ago_per_attempts_count_28d_7d_ago``.
    """

    numerator: Aggregate
    denominator: Aggregate

    def __post_init__(self) -> None:
        where = f"ratio of {self.numerator.name!r} to {self.denominator.name!r}"
        if self.numerator.entity != self.denominator.entity:
            raise FeatureDefinitionError(
                f"{where}: both aggregates must be of the same entity (here {self.numerator.entity.name} and "
                f"{self.denominator.entity.name})"
            )
        if self.numerator.name == self.denominator.name:
            raise FeatureDefinitionError(f"{where}: a ratio of an aggregate with itself is 1 or NaN")

    @property
    def name(self) -> str:
        denominator = self.denominator.name.removeprefix(f"{self.denominator.entity.name}_")
        return f"{self.numerator.name}_per_{denominator}"

    @property
    def inputs(self) -> tuple[Aggregate, ...]:
        return (self.numerator, self.denominator)


Derived = AmountToUsual | ZScore | Ratio
#: Definitions computed from aggregates of the same feature set (and the attempt's amount).
DERIVED: Final = (AmountToUsual, ZScore, Ratio)
Definition = Aggregate | RequestFeature | AmountToUsual | ZScore | Ratio


@dataclass(frozen=True)
class FeatureSet:
    """An ordered, named, hashed set of feature definitions: the contract between training and serving."""

    name: str
    definitions: tuple[Definition, ...]
    key_columns: frozenset[str] = field(default=CORE_KEY_COLUMNS)
    #: The provider's own attempt fields (the contract's extension) this set reads or carries: a key field
    #: can be an entity's key or a distinct count's value; any can be filtered on or read by request features.
    fields: tuple[ExtensionField, ...] = ()

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise FeatureDefinitionError(f"feature set {self.name!r}: a field is declared twice in {names}")
        fields = self.attempt_fields
        seen: set[str] = set()
        for definition in self.definitions:
            if definition.name in seen:
                raise FeatureDefinitionError(
                    f"feature set {self.name!r}: duplicate feature {definition.name!r}"
                )
            seen.add(definition.name)
            for aggregate in _aggregates_of(definition):
                aggregate.validate(fields.keys)
                if aggregate.entity.key not in fields.keys:
                    raise FeatureDefinitionError(
                        f"feature {aggregate.name!r}: entity key {aggregate.entity.key!r} is not one of the "
                        f"feature set's key columns or key fields {sorted(fields.keys)} (declare it in "
                        "FeatureSet.fields as a key field)"
                    )
                _check_filter(aggregate, fields)
            if isinstance(definition, RequestFeature):
                definition.validate(fields)
            if isinstance(definition, AmountToUsual) and definition.usual.value != "amount":
                raise FeatureDefinitionError(f"feature {definition.name!r}: the usual must be an amount")
        if not self.definitions:
            raise FeatureDefinitionError(f"feature set {self.name!r} is empty")

    @cached_property
    def attempt_fields(self) -> AttemptFields:
        """The attempt fields this set may read: the core's and its declared extension fields."""
        return AttemptFields.of(self.key_columns, self.fields)

    @property
    def vocabulary(self) -> dict[str, tuple[str, ...]]:
        """The values of every enumerated field (core and declared categories): category codes index these."""
        return self.attempt_fields.vocabulary

    @property
    def filtered_fields(self) -> tuple[str, ...]:
        """The attempt fields the set's filters test, which every event of an attempt carries: the IPTV ones
        (:data:`ATTEMPT_FILTER_FIELDS`, always), then any other in first-use order."""
        found = dict.fromkeys(ATTEMPT_FILTER_FIELDS)
        for aggregate in self.aggregates:
            flt = aggregate.filter
            if flt is not None and flt.field not in OWN_FILTER_FIELDS[aggregate.source]:
                found.setdefault(flt.field)
        return tuple(found)

    @property
    def names(self) -> list[str]:
        return [definition.name for definition in self.definitions]

    @property
    def categorical(self) -> list[str]:
        return [
            d.name
            for d in self.definitions
            if isinstance(d, RequestFeature) and d.transform == Transform.CATEGORY
        ]

    @property
    def aggregates(self) -> list[Aggregate]:
        """Every aggregate the set needs, including those only used inside other definitions, once each."""
        found: dict[str, Aggregate] = {}
        for definition in self.definitions:
            for aggregate in _aggregates_of(definition):
                found.setdefault(aggregate.name, aggregate)
        return list(found.values())

    @property
    def entities(self) -> list[Entity]:
        return list({aggregate.entity.name: aggregate.entity for aggregate in self.aggregates}.values())

    @property
    def longest_window_us(self) -> int:
        windows = [a.window.reach_us for a in self.aggregates if a.window is not None]
        return max(windows, default=0)

    @property
    def hash(self) -> str:
        """Content hash of the definitions, the contract's vocabularies and the engine's semantics version."""
        payload = json.dumps(
            {
                "engine": ENGINE_VERSION,
                "name": self.name,
                "keys": sorted(self.key_columns),
                "vocabulary": VOCABULARY,  # category codes are indices in these
                "decline_families": DECLINE_FAMILY_OF,  # what decline_family filters match
                "definitions": [_describe(d) for d in self.definitions],
                **({"fields": [asdict(f) for f in self.fields]} if self.fields else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def contract(self) -> dict[str, Any]:
        """What a trained model stores, and what serving checks against the code."""
        return {
            "name": self.name,
            "hash": self.hash,
            "version": ENGINE_VERSION,
            "names": self.names,
            "categorical": self.categorical,
        }


def _aggregates_of(definition: Definition) -> Iterator[Aggregate]:
    if isinstance(definition, Aggregate):
        yield definition
    elif isinstance(definition, DERIVED):
        yield from definition.inputs


#: Fields added after feature sets were first hashed, with their defaults: described only when set, so the
#: hash of a set that does not use them does not change.
_LATER_FIELDS: Final[dict[str, object]] = {"offset_seconds": 0, "q": None, "timezone": None}
#: A request feature's ``unit`` came later too (an aggregate's has always been described).
_LATER_REQUEST_FIELDS: Final[dict[str, object]] = {**_LATER_FIELDS, "unit": None}


def _describe(definition: Definition) -> dict[str, Any]:
    later = _LATER_REQUEST_FIELDS if isinstance(definition, RequestFeature) else _LATER_FIELDS
    described: dict[str, Any] = _without_later_defaults(asdict(definition), later)
    return {"type": type(definition).__name__, **described}


def _without_later_defaults(value: Any, later: dict[str, object]) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_later_defaults(item, later)
            for key, item in value.items()
            if not (key in later and item == later[key])
        }
    return value
