"""Request schemas mirror the event contract; card numbers are refused wherever they hide."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from events.cardnumbers import GROUPINGS, luhn_valid
from events.schema import (
    ATTEMPT_COLUMNS,
    EARLIEST_TIME,
    FRAUD_REPORT_COLUMNS,
    LATEST_TIME,
    OUTCOME_COLUMNS,
    Column,
    in_time_range,
)
from serving.scoring.schemas import TIME_PATTERN, AttemptIn, FraudReportIn, OutcomeIn
from tests.events.factories import attempts, validate_frame
from tests.serving.factories import attempt


def test_request_schemas_have_exactly_the_contract_fields() -> None:
    assert list(AttemptIn.model_fields) == [*(c.name for c in ATTEMPT_COLUMNS), "attributes"]
    assert list(OutcomeIn.model_fields) == [c.name for c in OUTCOME_COLUMNS]
    assert list(FraudReportIn.model_fields) == [c.name for c in FRAUD_REPORT_COLUMNS]


@pytest.mark.parametrize("column", ATTEMPT_COLUMNS, ids=lambda c: c.name)
def test_an_attempt_may_leave_out_exactly_what_the_contract_declares_optional(column: Column) -> None:
    body = attempt(1)
    body.pop(column.name, None)  # the factory leaves some optional fields out already
    if column.required and column.name != "retry_number":  # retry_number: 0 while the contract requires it
        with pytest.raises(ValidationError, match=column.name):
            AttemptIn(**body)
    else:
        parsed = AttemptIn(**body)
        assert getattr(parsed, column.name) == (0 if column.required else None)


def test_enumerated_columns_accept_exactly_the_contract_values() -> None:
    for column in ATTEMPT_COLUMNS:
        for value in column.values or ():
            AttemptIn(**attempt(1, **{column.name: value}))


def _pan(prefix: str, length: int) -> str:
    body = prefix + "7" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


@given(
    length=st.integers(13, 19),
    prefix=st.sampled_from(["4", "51", "37", "6011"]),
    field=st.sampled_from(["payment_method_id", "account_id", "device_id", "invoice_id"]),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_any_card_number_in_any_text_field_is_refused_without_echo(
    length: int, prefix: str, field: str, separator: str
) -> None:
    pan = _pan(prefix, length)
    grouping = next((g for g in GROUPINGS if sum(g) == length), (length,))  # 17, 18: written together
    cuts = list(itertools.accumulate(grouping, initial=0))
    written = separator.join(pan[a:b] for a, b in itertools.pairwise(cuts))
    with pytest.raises(ValidationError) as raised:
        AttemptIn(**attempt(1, **{field: f"tok_{written}"}))
    errors = raised.value.errors(include_input=False, include_context=False)
    assert "card number" in errors[0]["msg"]
    assert pan not in str(errors)


def test_ids_that_only_look_long_are_accepted() -> None:
    AttemptIn(**attempt(1, payment_method_id="pm_1234567890123"))  # 13 digits failing Luhn
    AttemptIn(**attempt(1, account_id="12345678901234567890123"))  # a long numeric id, not a PAN


def test_times_are_normalised_to_utc() -> None:
    parsed = AttemptIn(**attempt(1, occurred_at="2026-03-01T13:00:00+01:00"))
    assert parsed.occurred_at.isoformat() == "2026-03-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("occurred_at", "accepted"),
    [
        ("2000-01-01T00:00:00Z", True),
        ("2099-12-31T23:59:59.999999Z", True),
        ("2000-01-01T00:30:00+01:00", False),  # 1999-12-31 in UTC
        ("2100-01-01T00:00:00Z", False),
        ("1970-01-01T00:00:00Z", False),
        ("0001-01-01T00:00:00+14:00", False),  # no UTC time at all: before year 1
        ("9999-12-31T23:59:59-14:00", False),  # after year 9999 in UTC
    ],
)
def test_times_outside_the_contracts_range_are_refused_by_name(occurred_at: str, accepted: bool) -> None:
    if accepted:
        assert AttemptIn(**attempt(1, occurred_at=occurred_at)).occurred_at.tzinfo is not None
        return
    with pytest.raises(ValidationError) as refused:
        AttemptIn(**attempt(1, occurred_at=occurred_at))
    assert "occurred_at" in str(refused.value)
    assert "must be a time from 2000-01-01 (included) to 2100-01-01 (excluded), UTC" in str(refused.value)


# -- the API and imports give the same verdict on the same values -------------------------------------------

#: Both paths' attempt at one time (the import's one-row file, the API's body).
_AT = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def _written(moment: datetime, offset_minutes: int) -> str:
    """``moment`` in RFC 3339, at an offset from UTC."""
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return local.isoformat(timespec="microseconds").replace("+00:00", "Z")


_EDGE_TIMES = st.builds(
    _written,
    st.builds(
        lambda edge, step: edge + timedelta(microseconds=step),
        st.sampled_from([EARLIEST_TIME, LATEST_TIME]),
        st.integers(-3 * 3600 * 10**6, 3 * 3600 * 10**6),
    ),
    st.sampled_from([0, 60, -60, 330, -14 * 60, 14 * 60]),
).filter(lambda text: re.fullmatch(TIME_PATTERN, text) or not in_time_range(datetime.fromisoformat(text)))
# Not sent: an in-range time whose offset moves its written date past the first or last day (2000-01-01T01:00
# +01:00): the API's pattern (the schema's, which keeps every schema-valid time in range) refuses it.

_AMOUNTS = st.one_of(
    st.builds(
        lambda minor, shift, currency: {"amount": minor / 10**shift, "currency": currency},
        st.integers(0, 10**6),
        st.integers(0, 5),
        st.sampled_from(["EUR", "JPY", "KWD", "CLF", "USD", "BHD"]),
    ),
    st.builds(lambda minor: {"amount": -minor / 100, "currency": "EUR"}, st.integers(1, 10**6)),
    st.builds(lambda code: {"amount": 12.0, "currency": code}, st.sampled_from(["eur", "XAU", "EURO", "E"])),
)

#: Changes to one valid attempt (a column, or an amount with its currency), valid or not.
_CHANGES = st.one_of(
    _AMOUNTS,
    st.builds(lambda v: {"card_bin": v}, st.from_regex(r"[0-9]{4,9}|[0-9]{5}[a-z]", fullmatch=True)),
    st.builds(lambda y, m: {"card_exp": f"{y:04d}-{m:02d}"}, st.integers(1990, 2110), st.integers(0, 13)),
    st.builds(
        lambda column, code: {column: code},
        st.sampled_from(["card_country", "ip_country", "billing_country"]),
        st.sampled_from(["DE", "NA", "US", "XX", "de", "DEU", "D"]),
    ),
    st.builds(
        lambda v: {"ip": v},
        st.one_of(
            st.ip_addresses().map(str),
            st.sampled_from(["300.1.1.1", "01.2.3.4", "1.2.3", "::ffff:192.0.2.1", "localhost", "1.2.3.4.5"]),
        ),
    ),
    st.builds(lambda v: {"occurred_at": v}, _EDGE_TIMES),
    st.builds(
        lambda column, step: {column: _written(_AT + timedelta(microseconds=step), 60)},
        st.sampled_from(["account_created_at", "payment_method_first_used_at"]),
        st.integers(-2, 2),
    ),
    st.builds(lambda v: {"account_id": v}, st.sampled_from(["", " ", "\t", "acc-1"])),
    st.builds(lambda v: {"retry_number": v}, st.integers(-3, 3)),
)


def _import_refuses(change: dict[str, Any]) -> set[str]:
    """The columns an import refuses in a one-row attempts file with ``change``."""
    frame = attempts(1)
    frame["occurred_at"] = _written(_AT, 0)
    for column, value in change.items():
        frame[column] = [value if isinstance(value, str) else repr(value)]
    return set(validate_frame(frame).problems["column"])


def _api_refuses(change: dict[str, Any]) -> set[str]:
    """The columns ``POST /v1/score`` refuses in an attempt with ``change`` (as its 422 names them)."""
    try:
        AttemptIn.model_validate(attempt(0, **{"occurred_at": _written(_AT, 0), **change}))
    except ValidationError as refused:
        named = set()
        for error in refused.errors(include_input=False):
            if error["loc"]:
                named.add(str(error["loc"][0]))
            else:  # a model check: "<column> must ...; <column> ..."
                named |= {part.split()[0] for part in error["msg"].removeprefix("Value error, ").split("; ")}
        return named
    return set()


@settings(max_examples=300, deadline=None)
@given(change=_CHANGES)
def test_the_api_and_imports_accept_and_refuse_the_same_values(change: dict[str, Any]) -> None:
    assert _api_refuses(change) == _import_refuses(change)


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"amount": 14.999, "currency": "EUR"}, {"amount"}),
        ({"amount": 14.99, "currency": "JPY"}, {"amount"}),
        ({"amount": 0.0, "currency": "EUR"}, set()),
        ({"card_exp": "2100-01"}, {"card_exp"}),
        ({"card_exp": "1999-12"}, {"card_exp"}),
        ({"card_exp": "2099-12"}, set()),
        ({"occurred_at": "2100-01-01T00:00:00Z"}, {"occurred_at"}),
        ({"occurred_at": "2000-01-01T00:00:00Z"}, set()),
        ({"account_created_at": "2025-03-01T10:00:00.000001Z"}, {"account_created_at"}),
    ],
)
def test_known_disagreements_of_the_past_are_settled(change: dict[str, Any], refused: set[str]) -> None:
    assert _api_refuses(change) == _import_refuses(change) == refused
