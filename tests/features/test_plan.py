"""Event encoding shared by both engines: the one-value helpers of the online path equal the column ones."""

from __future__ import annotations

from calendar import timegm
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.definitions import RangeFilter
from features.plan import (
    amount_milli,
    amount_milli_of,
    hash_key,
    hash_keys,
    hash_texts,
    in_range,
    number_or_none,
    to_us,
)

WHOLE_MINUTE_OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@settings(deadline=None)  # the first example loads the compiled hash
@given(st.lists(st.text(max_size=20), max_size=8))
def test_hashing_a_few_texts_at_once_gives_each_ones_column_hash(texts: list[str]) -> None:
    expected = hash_keys(pd.Series(texts, dtype=object)).tolist()
    assert hash_texts(texts) == expected
    assert [hash_key(text) for text in texts] == expected


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-1e6, 1e6),
        st.integers(-(10**6), 10**6).map(lambda cents: cents / 100),
        st.integers(-(10**6), 10**6).map(lambda n: n / 1000 + 0.0005),  # half-way: rounds to even
    )
)
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # NaN, inf: both paths
def test_the_amount_of_one_attempt_is_the_column_encoding(amount: float) -> None:
    (expected,) = amount_milli(np.array([amount])).tolist()
    assert amount_milli_of(amount) == expected


@given(
    st.datetimes(datetime(1900, 1, 2), datetime(2200, 1, 1), timezones=st.just(UTC) | WHOLE_MINUTE_OFFSETS)
)
def test_microseconds_since_the_epoch_are_exact(moment: datetime) -> None:
    assert to_us(moment) == timegm(moment.utctimetuple()) * 1_000_000 + moment.microsecond
    assert to_us(pd.Timestamp(moment)) == to_us(moment)


BOUNDS = st.one_of(st.none(), st.floats(-1e6, 1e6), st.integers(-1000, 1000))


@given(
    values=st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-(10**6), 10**6))),
    low=BOUNDS,
    high=BOUNDS,
)
def test_a_range_filter_passes_the_same_values_one_by_one_and_as_a_column(
    values: list[float | int | None], low: float | None, high: float | None
) -> None:
    """The online engine tests one value (``matches``), the batch engine a float column (``in_range``)."""
    if (low is None and high is None) or (low is not None and high is not None and not low < high):
        return
    flt = RangeFilter("amount", low, high)
    column = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    one_by_one = [flt.matches(number_or_none(v)) for v in values]
    assert in_range(flt, column).tolist() == one_by_one
    assert [flt.matches(v) for v in column.tolist()] == one_by_one  # NaN matches no range
    assert not flt.matches(None)
