"""Request-time features: computed from the attempt's own fields, by the same vectorised code in both engines
(the online engine passes arrays of one element, or takes the scalar forms, which tests hold equal).

Category codes are indices in the feature set's vocabulary (the core's enumerations and its declared category
fields), passed as ``vocabulary``. Calendar transforms read the attempt's time on the local clock of their
``timezone``: one offset function (:func:`local_us` and its scalar form :func:`local_us_one`, both the exact
``zoneinfo`` offset of the instant) serves both engines, so daylight-saving changes fall identically."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.definitions import (
    NIGHT_END,
    NIGHT_START,
    TIME_UNITS,
    US_PER_SECOND,
    VOCABULARY,
    RequestFeature,
    Transform,
)
from features.kernels import F64, I64

US_PER_HOUR: Final = 3_600 * 1_000_000
US_PER_DAY: Final = 24 * US_PER_HOUR
#: A column: an object array (the online engine's one attempt) or a pandas Series (the batch engine, which
#: never turns a million strings into Python objects).
Column = npt.NDArray[np.object_] | pd.Series
#: Up to this many rows (the online engine's single attempt) values are mapped in Python, beyond via pandas.
_SMALL: Final = 32
#: Enumerated fields' values by field name (category codes are indices in these).
Vocabulary = Mapping[str, tuple[str, ...]]


def required_columns(definitions: Sequence[RequestFeature]) -> list[str]:
    columns = {column for d in definitions for column in d.columns if column != "occurred_at"}
    return sorted(columns)


def compute(
    definitions: Sequence[RequestFeature],
    columns: Mapping[str, Column],
    t_us: I64,
    vocabulary: Vocabulary = VOCABULARY,
) -> F64:
    """``out[i, k]``: request feature ``k`` of attempt ``i``."""
    out = np.empty((len(t_us), len(definitions)))
    for k, definition in enumerate(definitions):
        out[:, k] = _one(definition, columns, t_us, vocabulary)
    return out


def compute_one(
    definitions: Sequence[RequestFeature],
    attempt: Mapping[str, object],
    t_us: int,
    vocabulary: Vocabulary = VOCABULARY,
) -> F64:
    """:func:`compute` for a single attempt given as a mapping (the online engine's request path).

    Each transform's arithmetic on one attempt's Python values (:data:`_SCALAR`, the same operations in the
    same order as :func:`_one`, so the same floats; tests hold the two equal on arbitrary attempts). A
    transform without a scalar form goes through :func:`compute`. The online engine builds the row function
    once (:func:`scalar_row`) rather than per call.
    """
    return np.array(scalar_row(definitions, vocabulary)(attempt, t_us), dtype=np.float64)


#: One request feature of one attempt (its fields, its time in µs since the epoch) as a float.
ScalarFeature = Callable[[Mapping[str, object], int], float]
#: Every request feature of a feature set for one attempt, in definition order.
ScalarRow = Callable[[Mapping[str, object], int], list[float]]


def scalar_row(definitions: Sequence[RequestFeature], vocabulary: Vocabulary = VOCABULARY) -> ScalarRow:
    """The function computing :func:`compute_one`'s values, with each definition's work resolved up front
    (its column names, its category table), so a call does only the arithmetic of the attempt: about 5 µs
    for the IPTV set's 13 request features."""
    features = [_scalar_feature(definition, vocabulary) for definition in definitions]

    def row(attempt: Mapping[str, object], t_us: int) -> list[float]:
        return [feature(attempt, t_us) for feature in features]

    return row


def _scalar_feature(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    factory = _SCALAR.get(definition.transform)
    if factory is not None:
        return factory(definition, vocabulary)
    columns = [c for c in definition.columns if c != "occurred_at"]

    def vectorised(attempt: Mapping[str, object], t_us: int) -> float:
        arrays = {c: np.array([attempt.get(c)], dtype=object) for c in columns}
        return float(_one(definition, arrays, np.array([t_us], dtype=np.int64), vocabulary)[0])

    return vectorised


def _scalar_category(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    column, table = definition.column, _codes(vocabulary[definition.column])

    def category(attempt: Mapping[str, object], t_us: int) -> float:
        value = attempt.get(column)
        return table.get(str(value), np.nan) if isinstance(value, str) else np.nan

    return category


def _scalar_mismatch(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    column, other_column = definition.column, str(definition.other)

    def mismatch(attempt: Mapping[str, object], t_us: int) -> float:
        value, other = attempt.get(column), attempt.get(other_column)
        return float(value != other) if isinstance(value, str) and isinstance(other, str) else np.nan

    return mismatch


def _scalar_number(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    column = definition.column

    def number(attempt: Mapping[str, object], t_us: int) -> float:
        value = attempt.get(column)
        if type(value) is float:
            return value
        if type(value) is int:  # exact types only: the conversion numpy makes of them, without numpy
            return float(value)
        converted: float = np.asarray(value, dtype=np.float64).item()  # None -> NaN, bools, numpy scalars
        return converted

    return number


def _scalar_days_to_expiry(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    column = definition.column

    def days_to_expiry(attempt: Mapping[str, object], t_us: int) -> float:
        value = attempt.get(column)
        end = _month_end_of(value) if isinstance(value, str) else np.nan
        return (end - t_us) / US_PER_DAY

    return days_to_expiry


def _scalar_age(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    column, unit_us = definition.column, _unit_us(definition)

    def age(attempt: Mapping[str, object], t_us: int) -> float:
        return (t_us - _time_of(attempt.get(column))) / unit_us

    return age


def _scalar_calendar(definition: RequestFeature, vocabulary: Vocabulary) -> ScalarFeature:
    """A calendar transform of the local time (:func:`local_us_one`); UTC as is."""
    of_utc, zone = _CALENDAR[definition.transform], definition.timezone
    if zone is None:
        return of_utc
    return lambda attempt, t_us: of_utc(attempt, local_us_one(t_us, zone))


@lru_cache(maxsize=4_096)
def _day_of_month(day: int) -> int:
    """The day of the month of a day number since the epoch (the date of its microseconds, UTC)."""
    return (_EPOCH + timedelta(days=day)).day


@lru_cache(maxsize=4_096)
def _month_end_of(card_exp: str) -> float:
    """:func:`_parse_month_end`, remembered: a few hundred expiry months cover every card."""
    return _parse_month_end(card_exp)


#: Calendar transforms of a time (µs since the epoch): of the UTC clock as given, of a local clock once the
#: time is shifted to it (:func:`local_us_one`).
_CALENDAR: Final[dict[Transform, ScalarFeature]] = {
    Transform.HOUR_OF_DAY: lambda attempt, t: float((t // US_PER_HOUR) % 24),
    Transform.DAY_OF_WEEK: lambda attempt, t: float((t // US_PER_DAY + 3) % 7),
    Transform.DAY_OF_MONTH: lambda attempt, t: float(_day_of_month(t // US_PER_DAY)),
    Transform.IS_WEEKEND: lambda attempt, t: float((t // US_PER_DAY + 3) % 7 >= _SATURDAY),
    Transform.IS_NIGHT: lambda attempt, t: float(not NIGHT_END <= (t // US_PER_HOUR) % 24 < NIGHT_START),
}
_SATURDAY: Final = 5  # day_of_week of Saturday (Monday = 0)
_EPOCH: Final = datetime(1970, 1, 1)
#: Per transform, the factory of its scalar form (a closure over the definition's columns and tables).
_SCALAR: Final[dict[Transform, Callable[[RequestFeature, Vocabulary], ScalarFeature]]] = {
    **dict.fromkeys(_CALENDAR, _scalar_calendar),
    Transform.AGE: _scalar_age,
    Transform.NUMBER: _scalar_number,
    Transform.CATEGORY: _scalar_category,
    Transform.MISMATCH: _scalar_mismatch,
    Transform.DAYS_TO_EXPIRY: _scalar_days_to_expiry,
}


def compute_at(
    definitions: Sequence[RequestFeature],
    attempt: Mapping[str, object],
    t_us: I64,
    vocabulary: Vocabulary = VOCABULARY,
) -> F64:
    """:func:`compute` for one attempt's fields made at each of the times ``t_us`` (one row per time).

    A single time (every scoring request) takes :func:`compute_one`'s scalar path: the same floats, about a
    tenth of the cost of one-element arrays.
    """
    n = len(t_us)
    if n == 1:
        return compute_one(definitions, attempt, int(t_us[0]), vocabulary).reshape(1, -1)
    columns = {c: np.full(n, attempt.get(c), dtype=object) for c in required_columns(definitions)}
    return compute(definitions, columns, t_us, vocabulary)


def _calendar(transform: Transform, local: I64) -> F64:
    """A calendar transform of local times (µs since the epoch on the local clock)."""
    if transform == Transform.DAY_OF_MONTH:
        day = local.astype("datetime64[us]").astype("datetime64[D]")
        day_of_month: F64 = ((day - day.astype("datetime64[M]")).astype(np.int64) + 1).astype(np.float64)
        return day_of_month
    hour = (local // US_PER_HOUR) % 24
    weekday = (local // US_PER_DAY + 3) % 7  # 1970-01-01 was a Thursday
    if transform == Transform.HOUR_OF_DAY:
        return hour.astype(np.float64)
    if transform == Transform.DAY_OF_WEEK:
        return weekday.astype(np.float64)
    if transform == Transform.IS_WEEKEND:
        return (weekday >= _SATURDAY).astype(np.float64)
    return ((hour >= NIGHT_START) | (hour < NIGHT_END)).astype(np.float64)


def _one(definition: RequestFeature, columns: Mapping[str, Column], t_us: I64, vocabulary: Vocabulary) -> F64:
    transform = definition.transform
    if transform in _CALENDAR:
        return _calendar(transform, local_us(t_us, definition.timezone))
    values = columns[definition.column]
    if transform == Transform.NUMBER:
        numbers: F64 = np.asarray(values, dtype=np.float64)  # None -> NaN
        return numbers
    if transform == Transform.CATEGORY:
        return _lookup(values, _codes(vocabulary[definition.column]))
    if transform == Transform.AGE:
        ages: F64 = (t_us - _times_us(values)) / _unit_us(definition)
        return ages
    if transform == Transform.MISMATCH:
        other = columns[str(definition.other)]
        present = _present(values) & _present(other)
        if isinstance(values, pd.Series) and isinstance(other, pd.Series):
            unequal = values.ne(other).to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            unequal = (np.asarray(values, dtype=object) != np.asarray(other, dtype=object)).astype(np.float64)
        differs: F64 = np.where(present, unequal, np.nan)
        return differs
    return (_month_end_us(values) - t_us) / US_PER_DAY


def _present(values: Column) -> npt.NDArray[np.bool_]:
    if len(values) <= _SMALL:
        return np.fromiter((isinstance(v, str) for v in values), dtype=np.bool_, count=len(values))
    return np.asarray(pd.notna(values), dtype=np.bool_)


def _map_unique(values: Column, convert: Callable[[object], float]) -> F64:
    """``convert`` of each value (NaN where missing), computed once per distinct value."""
    if len(values) <= _SMALL:
        return np.array([convert(v) if isinstance(v, str) else np.nan for v in values], dtype=np.float64)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([convert(u) for u in uniques] + [np.nan], dtype=np.float64)
    return mapped[codes]  # code -1 (missing) picks the trailing NaN


@cache
def _codes(values: tuple[str, ...]) -> dict[str, float]:
    """Category codes of an enumerated field: the index of each value in its declaration."""
    return {value: float(code) for code, value in enumerate(values)}


def _lookup(values: Column, table: Mapping[str, float]) -> F64:
    return _map_unique(values, lambda value: table.get(str(value), np.nan))


def _month_end_us(card_exp: Column) -> F64:
    """The first microsecond after a ``YYYY-MM`` expiry month, as float (NaN if missing or malformed)."""
    return _map_unique(card_exp, _parse_month_end)


def _parse_month_end(text: object) -> float:
    if not isinstance(text, str) or len(text) != 7 or text[4] != "-":
        return np.nan
    try:
        year, month = int(text[:4]), int(text[5:])
    except ValueError:
        return np.nan
    if not 1 <= month <= 12:
        return np.nan
    next_month = np.datetime64(f"{year + month // 12:04d}-{month % 12 + 1:02d}", "M")
    return float(next_month.astype("datetime64[us]").astype(np.int64))


# -- times: ages of time fields, local clocks -------------------------------------------------------------


def _unit_us(definition: RequestFeature) -> int:
    return TIME_UNITS[str(definition.unit)] * US_PER_SECOND


def _time_of(value: object) -> float:
    """A time field's value as µs since the epoch (a float: exact for every contract time), NaN if missing
    or unreadable. An aware datetime or an ISO 8601 text; one without a zone is UTC (the contract's)."""
    if value is None or value is pd.NaT:
        return np.nan
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return np.nan
    if isinstance(value, pd.Timestamp):
        stamp = value if value.tzinfo is not None else value.tz_localize(UTC)
        return float(stamp.value // 1_000)  # nanoseconds since the epoch
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return float((moment - _EPOCH_UTC) // _ONE_US)
    return np.nan


def _times_us(values: Column) -> F64:
    """:func:`_time_of` of every value; a datetime column (the batch engine's) without Python objects."""
    if isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values.dtype):
        index = pd.DatetimeIndex(values)
        index = (index.tz_localize(UTC) if index.tz is None else index).as_unit("us")
        out = index.asi8.astype(np.float64)
        out[np.asarray(index.isna())] = np.nan
        return out
    if len(values) <= _SMALL:
        return np.array([_time_of(v) for v in values], dtype=np.float64)
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    mapped = np.array([_time_of(u) for u in uniques] + [np.nan], dtype=np.float64)
    return mapped[codes]


_EPOCH_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
#: Offsets are those of times clamped into these years: the contract's times (2000-2100) are inside, and
#: zoneinfo cannot place every int64 microsecond; a time outside is a data error and keeps the edge's offset.
_FIRST_SECOND: Final = int(datetime(1900, 1, 2, tzinfo=UTC).timestamp())
_LAST_SECOND: Final = int(datetime(2199, 12, 31, tzinfo=UTC).timestamp())
_CHANGES: Final = np.iinfo(np.int64).min  # marks an hour within which the offset changes


def _offset_s(second: int, zone: str) -> int:
    """The UTC offset (seconds) of ``zone`` at an instant (seconds since the epoch): zoneinfo's, exactly."""
    clamped = min(max(second, _FIRST_SECOND), _LAST_SECOND)
    offset = datetime.fromtimestamp(clamped, ZoneInfo(zone)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


@lru_cache(maxsize=65_536)
def _hour_offset(zone: str, hour: int) -> int:
    """The offset of ``zone`` throughout one UTC hour (hours since the epoch), or :data:`_CHANGES` when it
    changes within it (offsets change at most once an hour: then each instant is looked up)."""
    first = _offset_s(hour * 3_600, zone)
    return first if first == _offset_s(hour * 3_600 + 3_599, zone) else _CHANGES


def local_us_one(t_us: int, zone: str) -> int:
    """An instant (µs since the epoch) on the local clock of ``zone``, as µs since the epoch."""
    offset = _hour_offset(zone, t_us // US_PER_HOUR)
    if offset == _CHANGES:
        offset = _offset_s(t_us // US_PER_SECOND, zone)
    return t_us + offset * US_PER_SECOND


def local_us(t_us: I64, zone: str | None) -> I64:
    """:func:`local_us_one` of every instant (one offset lookup per distinct UTC hour); None is UTC."""
    if zone is None:
        return t_us
    hours, inverse = np.unique(t_us // US_PER_HOUR, return_inverse=True)
    offsets = np.array([_hour_offset(zone, h) for h in hours.tolist()], dtype=np.int64)[inverse]
    for i in np.flatnonzero(offsets == _CHANGES).tolist():
        offsets[i] = _offset_s(int(t_us[i]) // US_PER_SECOND, zone)
    local: I64 = t_us + offsets * US_PER_SECOND
    return local
