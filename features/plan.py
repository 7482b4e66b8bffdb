"""From a feature set to what the kernels run: aggregates grouped by (entity, source), and event encoding.

Both engines encode events with the functions here, so an event means the same numbers in both: its time in
microseconds, the 64-bit hash of its id (the tie-break among equal times), one 0/1 mask per filter and the
value columns the group's aggregates read (amounts in thousandths; key columns as hashes, coded densely
before aggregation). A filter passes an event as :meth:`~features.definitions.Filter.matches` says: on the
field's text (None when missing), or on its number (:func:`number_or_none`; :func:`in_range` for a column).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from features.definitions import (
    TIME_UNITS,
    US_PER_SECOND,
    Aggregate,
    AmountToUsual,
    AnyFilter,
    Derived,
    Entity,
    FeatureSet,
    RangeFilter,
    Source,
    ZScore,
)
from features.kernels import F64, I64, OP_CODE, SPEC_WIDTH, hash_strings

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
MISSING: Final = -1
_EXACT: Final = 2.0**53  # integers up to this are exact doubles, so ``round`` and ``np.rint`` agree
#: Small arrays (the online engine's single events) are matched in Python; large ones through pandas.
_SMALL: Final = 32
ObjectArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class GroupPlan:
    """The aggregates of one entity over one source, and the event columns they need."""

    entity: Entity
    source: Source
    aggregates: tuple[Aggregate, ...]
    filters: tuple[AnyFilter, ...]
    values: tuple[str, ...]
    specs: I64 = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.entity.name}/{self.source.value}"

    @property
    def distinct_columns(self) -> list[int]:
        """Indices of the value columns holding key hashes (to be coded densely before aggregation)."""
        return [index for index, name in enumerate(self.values) if name != "amount"]


def plan(feature_set: FeatureSet) -> list[GroupPlan]:
    """Group the feature set's aggregates by (entity, source), in first-use order."""
    grouped: dict[tuple[str, Source], list[Aggregate]] = {}
    for aggregate in feature_set.aggregates:
        grouped.setdefault((aggregate.entity.name, aggregate.source), []).append(aggregate)
    return [_group(aggregates) for aggregates in grouped.values()]


def _group(aggregates: list[Aggregate]) -> GroupPlan:
    filters = tuple(dict.fromkeys(a.filter for a in aggregates if a.filter is not None))
    values = tuple(dict.fromkeys(a.value for a in aggregates if a.value is not None))
    specs = np.array(
        [
            (
                OP_CODE[a.op],
                -1 if a.window is None else a.window.us,
                -1 if a.filter is None else filters.index(a.filter),
                -1 if a.value is None else values.index(a.value),
                TIME_UNITS[a.unit] * US_PER_SECOND,
                0 if a.window is None else a.window.offset_us,
                a.q_ppm,
            )
            for a in aggregates
        ],
        dtype=np.int64,
    ).reshape(len(aggregates), SPEC_WIDTH)
    return GroupPlan(aggregates[0].entity, aggregates[0].source, tuple(aggregates), filters, values, specs)


def derive(definition: Derived, amount: F64 | float, inputs: Sequence[F64]) -> F64:
    """A derived definition's values from the attempts' amounts and its inputs' values (``inputs`` in
    ``definition.inputs`` order): the one formula both engines apply to the same aggregate values."""
    if isinstance(definition, AmountToUsual):  # the scoring path's usual case: no error-state switch
        return np.asarray(amount / inputs[0], dtype=np.float64)  # a zero usual gives inf
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the NaN cases are chosen below
        if isinstance(definition, ZScore):
            centre, spread = inputs
            return np.where(spread > 0.0, (amount - centre) / spread, np.nan)
        numerator, denominator = inputs
        return np.where(denominator != 0.0, numerator / denominator, np.nan)  # NaN stays NaN


def hash_key(value: str) -> int:
    """Stable 64-bit hash of a string key (ids, key columns); persisted in online state, so it depends on
    neither the process (unlike ``hash()``) nor a library version. Same function as :func:`hash_keys`."""
    return hash_texts([value])[0]


def hash_texts(values: Sequence[str]) -> list[int]:
    """:func:`hash_key` of each of a few strings, in one kernel call (an online event's id and key values)."""
    encoded = [value.encode() for value in values]
    offsets = np.array([0, *accumulate(len(data) for data in encoded)], dtype=np.int64)
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    hashes: list[int] = hash_strings(data, offsets, np.ones(len(encoded), dtype=np.uint8)).tolist()
    return hashes


def hash_keys(values: pd.Series) -> I64:
    """:func:`hash_key` of every value of a string column, straight from its Arrow buffers; ``MISSING`` where
    the value is missing."""
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _, offsets, data = array.buffers()
    n = len(array)
    offsets_array = np.frombuffer(offsets, dtype=np.int64, count=n + 1, offset=array.offset * 8)
    data_array = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, np.uint8)
    valid = np.asarray(array.is_valid(), dtype=np.uint8)
    hashes: I64 = hash_strings(data_array, offsets_array, valid)
    return hashes


def amount_milli(amounts: npt.NDArray[np.float64]) -> I64:
    """Amounts in thousandths of the currency unit: exact integer sums in both engines."""
    return np.rint(np.asarray(amounts, dtype=np.float64) * 1000.0).astype(np.int64)


def amount_milli_of(amount: float) -> int:
    """:func:`amount_milli` of one amount (the online engine's attempt), without building an array: Python's
    ``round`` rounds half to even like ``np.rint``. Values outside the exactly representable range (and NaN)
    take the array path, so they get what it gives."""
    scaled = amount * 1000.0
    if -_EXACT < scaled < _EXACT:
        return round(scaled)
    return int(amount_milli(np.array([amount]))[0])


def to_us(moment: datetime) -> int:
    """A tz-aware datetime as integer microseconds since the epoch (exact)."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no time zone: pass a tz-aware (UTC) datetime")
    if isinstance(moment, pd.Timestamp):
        return int(moment.value // 1_000)  # nanoseconds since the epoch
    return (moment - EPOCH) // _ONE_US  # exact: timedelta counts whole microseconds


def series_to_us(series: pd.Series) -> I64:
    """A timestamp column as integer microseconds since the epoch (UTC)."""
    index = pd.DatetimeIndex(pd.to_datetime(series, utc=True)).as_unit("us")
    return np.asarray(index.asi8, dtype=np.int64)


def number_or_none(value: object) -> float | None:
    """A number field's value as both engines test it: a float; None when missing (None, NaN) or not a
    number (a text, a bool)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def in_range(flt: RangeFilter, values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """:meth:`RangeFilter.matches` of every value of a float column (NaN, missing, matches no range)."""
    keep = ~np.isnan(values)
    if flt.low is not None:
        keep &= values >= flt.low
    if flt.high is not None:
        keep &= values < flt.high
    return keep
