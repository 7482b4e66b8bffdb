"""Request schemas mirror the event contract; card numbers are refused wherever they hide."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from events.cardnumbers import GROUPINGS, luhn_valid
from events.schema import ATTEMPT_COLUMNS, FRAUD_REPORT_COLUMNS, OUTCOME_COLUMNS, Column
from serving.schemas import AttemptIn, FraudReportIn, OutcomeIn
from tests.serving.factories import attempt


def test_request_schemas_have_exactly_the_contract_fields() -> None:
    assert list(AttemptIn.model_fields) == [*(c.name for c in ATTEMPT_COLUMNS), "attributes"]
    assert list(OutcomeIn.model_fields) == [c.name for c in OUTCOME_COLUMNS]
    assert list(FraudReportIn.model_fields) == [c.name for c in FRAUD_REPORT_COLUMNS]


@pytest.mark.parametrize("column", ATTEMPT_COLUMNS, ids=lambda c: c.name)
def test_an_attempt_may_leave_out_exactly_what_the_contract_declares_optional(column: Column) -> None:
    body = attempt(1)
    body.pop(column.name, None)  # the factory leaves some optional columns out already
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
