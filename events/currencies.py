"""ISO 4217 currencies riskgate accepts, with their minor-unit exponents: the one table of them.

pycountry knows the currency codes but not how many decimals each has, so the exponents that differ from
the usual 2 are listed here (ISO 4217 list one, "minor unit" column). Codes that are not money a subscriber
can pay with (precious metals, SDRs, bond-market units, the testing and "no currency" codes) are excluded:
a payment in XAU is a data error, not a risk to score.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pycountry

from core.errors import RiskgateError

#: Currencies whose minor unit is not 2 decimals.
_EXPONENT_EXCEPTIONS: Final[dict[str, int]] = {
    # no minor unit
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # thousandths
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # ten-thousandths (units of account)
    "CLF": 4,
    "UYW": 4,
}

#: ISO 4217 codes that are not a currency a payment can be made in.
_NOT_PAYABLE: Final[frozenset[str]] = frozenset(
    {"XAD", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX"}
)


def _minor_units() -> dict[str, int]:
    codes = {currency.alpha_3 for currency in pycountry.currencies} - _NOT_PAYABLE
    return {code: _EXPONENT_EXCEPTIONS.get(code, 2) for code in sorted(codes)}


#: Every accepted currency code → the number of decimals of its minor unit (EUR → 2, JPY → 0, KWD → 3).
MINOR_UNITS: Final[dict[str, int]] = _minor_units()


class UnknownCurrencyError(RiskgateError, KeyError):
    """A currency code that is not an accepted ISO 4217 code."""


def minor_unit_exponent(code: str) -> int:
    """The number of decimals of ``code``'s minor unit; raises :class:`UnknownCurrencyError` if unknown."""
    try:
        return MINOR_UNITS[code]
    except KeyError:
        raise UnknownCurrencyError(
            f"{code!r} is not an accepted ISO 4217 currency code (use an upper-case code such as EUR or USD)"
        ) from None


#: How far from a whole number of minor units an amount may be: a float's rounding noise (as ``np.isclose``).
_RTOL: Final = 1e-12
_ATOL: Final = 1e-6


def fits_minor_units(amounts: Any, exponents: Any) -> Any:
    """Whether each amount (major units) has no more decimals than its minor unit (``exponents``: decimals,
    NaN where unknown: those pass). The one definition, over a column (numpy arrays: imports) and for one
    value (floats: the API): a float's rounding noise passes; NaN and infinite amounts pass (other checks
    refuse those)."""
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = amounts * 10.0**exponents
        whole = np.round(scaled)
        return np.logical_not(abs(scaled - whole) > _ATOL + _RTOL * abs(whole))


def fits_minor_unit(amount: float, code: str) -> bool:
    """Whether ``amount`` (major units) has no more decimals than ``code``'s minor unit: 14.99 EUR does,
    14.999 EUR and 14.99 JPY do not (:func:`fits_minor_units` on one value)."""
    return bool(fits_minor_units(float(amount), float(minor_unit_exponent(code))))
