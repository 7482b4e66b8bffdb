import pytest

from events.currencies import MINOR_UNITS, UnknownCurrencyError, minor_unit_exponent


@pytest.mark.parametrize(
    ("code", "exponent"), [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("CLF", 4)]
)
def test_minor_unit_exponents(code: str, exponent: int) -> None:
    assert minor_unit_exponent(code) == exponent


@pytest.mark.parametrize("code", ["XAU", "XTS", "XXX", "eur", "EURO", ""])
def test_metals_test_codes_and_non_codes_are_not_currencies(code: str) -> None:
    assert code not in MINOR_UNITS
    with pytest.raises(UnknownCurrencyError, match="not an accepted ISO 4217 currency code"):
        minor_unit_exponent(code)


def test_every_exponent_is_a_valid_number_of_decimals() -> None:
    assert set(MINOR_UNITS.values()) <= {0, 2, 3, 4}
    assert len(MINOR_UNITS) > 150
