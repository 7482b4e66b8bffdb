"""Each contract check is declared once: its rule over a column (imports) and of one value (the API) agree."""

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.checks import VALUE_CHECKS, ValueCheck
from events.currencies import MINOR_UNITS, fits_minor_unit, fits_minor_units
from events.schema import EARLIEST_TIME, LATEST_TIME, Check

_CODES = st.sampled_from(["EUR", "eur", "XAU", "EURO", "JPY", "DE", "NA", "XX", "DEU", "", " DE"])
_SHAPES = st.from_regex(r"[0-9]{4,9}|[0-9 ]{0,4}|[0-9]{2,4}-[0-9]{1,3}", fullmatch=True)
_TEXT = st.one_of(st.text(max_size=12), _SHAPES, _CODES)
_IPS = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["300.1.1.1", "01.2.3.4", "1.2.3", "::ffff:192.0.2.1", "localhost", "fe80::1%eth0"]),
)
_NUMBERS = st.one_of(st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1e-300, -1e-300]))
_EDGES = st.sampled_from([EARLIEST_TIME, LATEST_TIME])
_TIMES = st.builds(
    lambda edge, step: edge + timedelta(microseconds=step), _EDGES, st.integers(-(10**7), 10**7)
)

#: What each check is fed: odd values near what it refuses.
_VALUES: dict[Check, st.SearchStrategy[Any]] = {
    Check.NON_EMPTY: _TEXT,
    Check.CURRENCY: _TEXT,
    Check.COUNTRY: _TEXT,
    Check.BIN: _TEXT,
    Check.YEAR_MONTH: st.one_of(
        _TEXT, st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1990, 2110), st.integers(0, 13))
    ),
    Check.IP: st.one_of(_IPS, _TEXT),
    Check.FINITE: _NUMBERS,
    Check.POSITIVE: _NUMBERS,
    Check.NON_NEGATIVE: _NUMBERS,
    Check.TIME_RANGE: _TIMES,
    Check.NOT_AFTER_EVENT: _TIMES,
}


def _column(values: list[Any]) -> pd.Series:
    """Values as the import's typed columns hold them."""
    if isinstance(values[0], datetime):
        return pd.Series(values).astype("datetime64[us, UTC]")
    if isinstance(values[0], float):
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype="str")


def test_every_check_of_the_contract_is_declared() -> None:
    assert set(VALUE_CHECKS) == set(Check)
    assert all(check.check is name for name, check in VALUE_CHECKS.items())
    assert set(_VALUES) == {name for name, check in VALUE_CHECKS.items() if not check.import_only}


@pytest.mark.parametrize("name", sorted(_VALUES), ids=str)
@given(data=st.data())
def test_a_check_over_a_column_is_the_check_of_each_value(name: Check, data: st.DataObject) -> None:
    check: ValueCheck = VALUE_CHECKS[name]
    values = data.draw(st.lists(_VALUES[name], min_size=1, max_size=6), label="values")
    column = _column(values)
    if check.against is None:
        expected = [check.accepts_value(value) for value in values]
        assert check.accepts(column).tolist() == expected
    else:
        others = data.draw(st.lists(_TIMES, min_size=len(values), max_size=len(values)), label="others")
        expected = [check.accepts_value(value, other) for value, other in zip(values, others, strict=True)]
        assert check.accepts(column, _column(others)).tolist() == expected


def test_missing_values_pass_every_check() -> None:
    for check in VALUE_CHECKS.values():
        missing = pd.Series([None, None], dtype="str")
        assert check.accepts(missing, missing).all(), check.check


@pytest.mark.parametrize(
    ("card_exp", "accepted"),
    [("2000-01", True), ("2099-12", True), ("2027-09", True), ("1999-12", False), ("2100-01", False)],
)
def test_card_expiry_months_are_those_of_the_contracts_years(card_exp: str, accepted: bool) -> None:
    check = VALUE_CHECKS[Check.YEAR_MONTH]
    assert check.accepts_value(card_exp) is accepted
    assert check.accepts(pd.Series([card_exp], dtype="str")).tolist() == [accepted]


@given(
    minor=st.integers(0, 10**9),
    shift=st.integers(0, 6),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "CLF", "USD"]),
)
def test_an_amounts_decimals_are_checked_alike_over_a_column_and_per_value(
    minor: int, shift: int, currency: str
) -> None:
    amount = minor / 10**shift
    exponent = MINOR_UNITS[currency]
    [over_column] = fits_minor_units(np.array([amount]), np.array([exponent]))
    assert bool(over_column) == fits_minor_unit(amount, currency)
    if shift <= exponent:
        assert fits_minor_unit(amount, currency)
    if minor % 10 != 0 and 0 < shift - exponent <= 5:  # beyond a float's noise (1e-6 of a minor unit)
        assert not fits_minor_unit(amount, currency)


def test_an_unknown_currencys_amount_is_left_to_the_currency_check() -> None:
    assert fits_minor_units(np.array([12.999, np.inf]), np.array([np.nan, 2.0])).tolist() == [True, True]


def test_time_range_edges() -> None:
    check = VALUE_CHECKS[Check.TIME_RANGE]
    tick = timedelta(microseconds=1)
    edges = [EARLIEST_TIME - tick, EARLIEST_TIME, LATEST_TIME - tick, LATEST_TIME]
    assert [check.accepts_value(moment) for moment in edges] == [False, True, True, False]
    assert check.accepts_value(datetime(2025, 1, 1, tzinfo=UTC))
