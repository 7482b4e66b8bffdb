"""Request-time features: computed from the attempt's own fields, by the same vectorised code in both engines
(the online engine passes arrays of one element)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.definitions import VOCABULARY, RequestFeature, Transform
from features.kernels import F64, I64

US_PER_HOUR: Final = 3_600 * 1_000_000
US_PER_DAY: Final = 24 * US_PER_HOUR
#: A column: an object array (the online engine's one attempt) or a pandas Series (the batch engine, which
#: never turns a million strings into Python objects).
Column = npt.NDArray[np.object_] | pd.Series
#: Up to this many rows (the online engine's single attempt) values are mapped in Python, beyond via pandas.
_SMALL: Final = 32


def required_columns(definitions: Sequence[RequestFeature]) -> list[str]:
    columns = {column for d in definitions for column in d.columns if column != "occurred_at"}
    return sorted(columns)


def compute(definitions: Sequence[RequestFeature], columns: Mapping[str, Column], t_us: I64) -> F64:
    """``out[i, k]``: request feature ``k`` of attempt ``i``."""
    out = np.empty((len(t_us), len(definitions)))
    for k, definition in enumerate(definitions):
        out[:, k] = _one(definition, columns, t_us)
    return out


def compute_one(definitions: Sequence[RequestFeature], attempt: Mapping[str, object], t_us: int) -> F64:
    """:func:`compute` for a single attempt given as a mapping (the online engine's request path).

    Each transform's arithmetic on one attempt's Python values (:data:`_SCALAR`, the same operations in the
    same order as :func:`_one`, so the same floats; tests hold the two equal on arbitrary attempts). A
    transform without a scalar form goes through :func:`compute`. The online engine builds the row function
    once (:func:`scalar_row`) rather than per call.
    """
    return np.array(scalar_row(definitions)(attempt, t_us), dtype=np.float64)


#: One request feature of one attempt (its fields, its time in µs since the epoch) as a float.
ScalarFeature = Callable[[Mapping[str, object], int], float]
#: Every request feature of a feature set for one attempt, in definition order.
ScalarRow = Callable[[Mapping[str, object], int], list[float]]


def scalar_row(definitions: Sequence[RequestFeature]) -> ScalarRow:
    """The function computing :func:`compute_one`'s values, with each definition's work resolved up front
    (its column names, its category table), so a call does only the arithmetic of the attempt: about 5 µs
    for the IPTV set's 13 request features."""
    features = [_scalar_feature(definition) for definition in definitions]

    def row(attempt: Mapping[str, object], t_us: int) -> list[float]:
        return [feature(attempt, t_us) for feature in features]

    return row


def _scalar_feature(definition: RequestFeature) -> ScalarFeature:
    factory = _SCALAR.get(definition.transform)
    if factory is not None:
        return factory(definition)
    columns = [c for c in definition.columns if c != "occurred_at"]

    def vectorised(attempt: Mapping[str, object], t_us: int) -> float:
        arrays = {c: np.array([attempt.get(c)], dtype=object) for c in columns}
        return float(_one(definition, arrays, np.array([t_us], dtype=np.int64))[0])

    return vectorised


def _scalar_category(definition: RequestFeature) -> ScalarFeature:
    column, table = definition.column, _codes(definition.column)

    def category(attempt: Mapping[str, object], t_us: int) -> float:
        value = attempt.get(column)
        return table.get(str(value), np.nan) if isinstance(value, str) else np.nan

    return category


def _scalar_mismatch(definition: RequestFeature) -> ScalarFeature:
    column, other_column = definition.column, str(definition.other)

    def mismatch(attempt: Mapping[str, object], t_us: int) -> float:
        value, other = attempt.get(column), attempt.get(other_column)
        return float(value != other) if isinstance(value, str) and isinstance(other, str) else np.nan

    return mismatch


def _scalar_number(definition: RequestFeature) -> ScalarFeature:
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


def _scalar_days_to_expiry(definition: RequestFeature) -> ScalarFeature:
    column = definition.column

    def days_to_expiry(attempt: Mapping[str, object], t_us: int) -> float:
        value = attempt.get(column)
        end = _month_end_of(value) if isinstance(value, str) else np.nan
        return (end - t_us) / US_PER_DAY

    return days_to_expiry


def _scalar_day_of_month(definition: RequestFeature) -> ScalarFeature:
    return lambda attempt, t_us: float(_day_of_month(t_us // US_PER_DAY))


def _scalar_hour_of_day(definition: RequestFeature) -> ScalarFeature:
    return lambda attempt, t_us: float((t_us // US_PER_HOUR) % 24)


def _scalar_day_of_week(definition: RequestFeature) -> ScalarFeature:
    return lambda attempt, t_us: float((t_us // US_PER_DAY + 3) % 7)


@lru_cache(maxsize=4_096)
def _day_of_month(day: int) -> int:
    """The day of the month of a day number since the epoch (the date of its microseconds, UTC)."""
    return (_EPOCH + timedelta(days=day)).day


@lru_cache(maxsize=4_096)
def _month_end_of(card_exp: str) -> float:
    """:func:`_parse_month_end`, remembered: a few hundred expiry months cover every card."""
    return _parse_month_end(card_exp)


_EPOCH: Final = datetime(1970, 1, 1)
#: Per transform, the factory of its scalar form (a closure over the definition's columns and tables).
_SCALAR: Final[dict[Transform, Callable[[RequestFeature], ScalarFeature]]] = {
    Transform.HOUR_OF_DAY: _scalar_hour_of_day,
    Transform.DAY_OF_WEEK: _scalar_day_of_week,
    Transform.DAY_OF_MONTH: _scalar_day_of_month,
    Transform.NUMBER: _scalar_number,
    Transform.CATEGORY: _scalar_category,
    Transform.MISMATCH: _scalar_mismatch,
    Transform.DAYS_TO_EXPIRY: _scalar_days_to_expiry,
}


def compute_at(definitions: Sequence[RequestFeature], attempt: Mapping[str, object], t_us: I64) -> F64:
    """:func:`compute` for one attempt's fields made at each of the times ``t_us`` (one row per time).

    A single time (every scoring request) takes :func:`compute_one`'s scalar path: the same floats, about a
    tenth of the cost of one-element arrays.
    """
    n = len(t_us)
    if n == 1:
        return compute_one(definitions, attempt, int(t_us[0])).reshape(1, -1)
    columns = {c: np.full(n, attempt.get(c), dtype=object) for c in required_columns(definitions)}
    return compute(definitions, columns, t_us)


def _one(definition: RequestFeature, columns: Mapping[str, Column], t_us: I64) -> F64:  # noqa: PLR0911
    transform = definition.transform
    if transform == Transform.HOUR_OF_DAY:
        return ((t_us // US_PER_HOUR) % 24).astype(np.float64)
    if transform == Transform.DAY_OF_WEEK:
        return ((t_us // US_PER_DAY + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    if transform == Transform.DAY_OF_MONTH:
        day = t_us.astype("datetime64[us]").astype("datetime64[D]")
        day_of_month: F64 = ((day - day.astype("datetime64[M]")).astype(np.int64) + 1).astype(np.float64)
        return day_of_month
    values = columns[definition.column]
    if transform == Transform.NUMBER:
        numbers: F64 = np.asarray(values, dtype=np.float64)  # None -> NaN
        return numbers
    if transform == Transform.CATEGORY:
        return _lookup(values, _codes(definition.column))
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
def _codes(column: str) -> dict[str, float]:
    """Category codes of an enumerated column: the index of each value in the contract's declaration."""
    return {value: float(code) for code, value in enumerate(VOCABULARY[column])}


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
