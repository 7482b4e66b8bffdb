"""The contract's value checks (:class:`events.schema.Check`), each declared once, for both paths.

A :class:`ValueCheck` holds one rule and the words for a value it refuses. The rule is applied over a
whole column by imports (:mod:`events.validate`, pandas, no per-row Python) and to one value by the API
(:mod:`serving.scoring.schemas`): :meth:`ValueCheck.accepts` and :meth:`ValueCheck.accepts_value` are built
from
the same definition (one expression that works on a column and on a value, one pattern, one set of codes),
so the two paths cannot drift apart; ``tests/events/test_checks.py`` sends the same values through both.

``card_exp`` (``year_month``) is a month from 2000-01 to 2099-12: the years of the contract's event times
(:data:`events.schema.EARLIEST_TIME` to :data:`events.schema.LATEST_TIME`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pycountry

from events.currencies import MINOR_UNITS
from events.problems import ProblemCode
from events.schema import EARLIEST_TIME, LATEST_TIME, TIME_RANGE_TEXT, Check

#: Every ISO 3166-1 alpha-2 country code (upper case), the ``country`` check's set.
COUNTRIES: Final[frozenset[str]] = frozenset(country.alpha_2 for country in pycountry.countries)

#: A BIN: 6 to 8 digits (the ``bin`` check; the API's schema states it as its pattern).
BIN_PATTERN: Final = r"[0-9]{6,8}"
#: A card expiry month, YYYY-MM, from 2000-01 to 2099-12: the years of the contract's event times.
YEAR_MONTH_PATTERN: Final = r"20[0-9]{2}-(?:0[1-9]|1[0-2])"
_IPV4_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: Dotted IPv4, as :func:`ipaddress.ip_address` reads it (no leading zeros): a column's fast path.
_IPV4: Final = rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}"

ColumnRule = Callable[..., Any]
ValueRule = Callable[..., bool]


@dataclass(frozen=True)
class ValueCheck:
    """One contract check: its rule over a column and of one value (built together from one definition),
    the import's problem code and wording (``problem``, after the quoted value unless ``quote`` is false)
    and the API's (``requirement``, after the field's name).

    ``against``: the column the rule compares with (its second argument), e.g. the event's own time.
    ``includes``: checks applied with this one (a positive amount is also finite). ``import_only``: a
    check of a whole file (``unique``), which a single request cannot fail.
    """

    check: Check
    code: ProblemCode
    problem: str
    requirement: str
    over_column: ColumnRule
    of_value: ValueRule
    quote: bool = True
    against: str | None = None
    includes: tuple[Check, ...] = ()
    import_only: bool = False

    def accepts(self, values: pd.Series, other: pd.Series | None = None) -> npt.NDArray[np.bool_]:
        """Whether each value of a column passes (missing values pass: ``required`` is another check)."""
        arguments = (values,) if self.against is None else (values, other)
        passed = np.asarray(self.over_column(*arguments), dtype=bool)
        return passed | values.isna().to_numpy(dtype=bool)

    def accepts_value(self, value: Any, other: Any = None) -> bool:
        """Whether one present value passes (with ``other``, the value of :attr:`against`, if any)."""
        if self.against is not None:
            return other is None or self.of_value(value, other)
        return self.of_value(value)


def _everywhere(rule: Callable[..., Any]) -> tuple[ColumnRule, ValueRule]:
    """A rule written with operators and numpy functions that work on a column and on one value alike."""
    return rule, lambda *values: bool(rule(*values))


def _pattern(pattern: str) -> tuple[ColumnRule, ValueRule]:
    """Text matching ``pattern`` whole."""
    compiled = re.compile(pattern)
    return (
        lambda values: values.str.fullmatch(pattern, na=True),
        lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None,
    )


def _member(codes: frozenset[str] | Mapping[str, int]) -> tuple[ColumnRule, ValueRule]:
    """One of ``codes`` (exactly: case and spaces matter)."""
    return lambda values: values.isin(codes), lambda value: value in codes


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (the contract's ``ip`` check, one value)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ips(values: pd.Series) -> pd.Series:
    """:func:`is_ip` over a column: dotted IPv4 by a pattern, :func:`is_ip` on each other distinct value."""
    ipv4 = values.str.fullmatch(_IPV4, na=True)
    others = values[~ipv4].dropna().unique()
    refused = [value for value in others if not is_ip(str(value))]
    return ipv4 | ~values.isin(refused)


def _numbers(values: Any) -> Any:
    """A column as float64 (missing: NaN); one value as it is."""
    return values.to_numpy(dtype="float64", na_value=np.nan) if isinstance(values, pd.Series) else values


def _blank(values: Any) -> Any:
    """Text that is only white space (as ``str.strip`` sees it)."""
    return values.str.strip() == "" if isinstance(values, pd.Series) else not str(values).strip()


def _declare(*checks: ValueCheck) -> dict[Check, ValueCheck]:
    table = {check.check: check for check in checks}
    missing = set(Check) - set(table)
    if missing:
        raise RuntimeError(f"events.checks declares no rule for {sorted(missing)}: add a ValueCheck for each")
    return table


#: Each check of the contract, declared once (see the module's docstring).
VALUE_CHECKS: Final[dict[Check, ValueCheck]] = _declare(
    ValueCheck(
        Check.NON_EMPTY,
        ProblemCode.EMPTY_VALUE,
        "value is blank",
        "must not be empty",
        *_everywhere(lambda values: np.logical_not(_blank(values))),
        quote=False,
    ),
    ValueCheck(
        Check.UNIQUE,
        ProblemCode.DUPLICATE_ID,
        "duplicate",
        "",
        *_everywhere(lambda values: np.ones(np.shape(values), dtype=bool)),
        import_only=True,  # rows of one file, ids imported before: see events.validate
    ),
    ValueCheck(
        Check.FINITE,
        ProblemCode.NOT_FINITE,
        "value is infinite",
        "must be a finite number",
        *_everywhere(lambda values: np.logical_not(np.isinf(_numbers(values)))),
        quote=False,
    ),
    ValueCheck(
        Check.POSITIVE,
        ProblemCode.NOT_POSITIVE,
        " is not > 0",
        "must be greater than 0",
        *_everywhere(lambda values: np.logical_not(_numbers(values) <= 0)),
        includes=(Check.FINITE,),
    ),
    ValueCheck(
        Check.NON_NEGATIVE,
        ProblemCode.NEGATIVE,
        " is negative",
        "must not be negative",
        *_everywhere(lambda values: np.logical_not(_numbers(values) < 0)),
        includes=(Check.FINITE,),
    ),
    ValueCheck(
        Check.CURRENCY,
        ProblemCode.UNKNOWN_CURRENCY,
        " is not an ISO 4217 currency code (upper case, e.g. EUR, USD, GBP)",
        "must be an ISO 4217 currency code (upper case, e.g. EUR)",
        *_member(MINOR_UNITS),
    ),
    ValueCheck(
        Check.COUNTRY,
        ProblemCode.UNKNOWN_COUNTRY,
        " is not an ISO 3166-1 alpha-2 country code (upper case, e.g. DE, US, GB)",
        "must be an ISO 3166-1 alpha-2 country code (e.g. DE)",
        *_member(COUNTRIES),
    ),
    ValueCheck(
        Check.BIN,
        ProblemCode.BAD_BIN,
        " is not a BIN of 6 to 8 digits",
        "must be a BIN of 6 to 8 digits",
        *_pattern(BIN_PATTERN),
    ),
    ValueCheck(
        Check.YEAR_MONTH,
        ProblemCode.BAD_YEAR_MONTH,
        " is not a YYYY-MM month from 2000-01 to 2099-12",
        "must be a YYYY-MM month from 2000-01 to 2099-12",
        *_pattern(YEAR_MONTH_PATTERN),
    ),
    ValueCheck(
        Check.IP,
        ProblemCode.BAD_IP,
        " is not an IPv4 or IPv6 address",
        "must be an IPv4 or IPv6 address",
        _ips,
        is_ip,
    ),
    ValueCheck(
        Check.TIME_RANGE,
        ProblemCode.TIME_OUT_OF_RANGE,
        f" is not {TIME_RANGE_TEXT}",
        f"must be {TIME_RANGE_TEXT}",
        *_everywhere(lambda values: np.logical_and(values >= EARLIEST_TIME, values < LATEST_TIME)),
    ),
    ValueCheck(
        Check.NOT_AFTER_EVENT,
        ProblemCode.AFTER_EVENT,
        " is after the attempt's occurred_at (a start cannot follow the attempt)",
        "must not be after occurred_at (a known start precedes use)",
        *_everywhere(lambda values, event_time: np.logical_not(values > event_time)),
        against="occurred_at",
    ),
)


def too_many_decimals_problem(decimals: pd.Series) -> pd.Series:
    """The import's words for amounts with more decimals than their currency allows (after each value),
    given each currency's decimals as text."""
    problem: pd.Series = " has more decimals than its currency's minor unit (" + decimals + ")"
    return problem


def too_many_decimals_requirement(currency: str) -> str:
    """The API's words for the same (after ``amount``)."""
    return f"has more decimals than {currency}'s minor unit ({MINOR_UNITS[currency]})"
