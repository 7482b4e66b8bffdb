from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.mapping import Derivation, TableMapping, TimestampFormat, load_mapping
from events.problems import ProblemCode, as_problems
from events.schema import EventKind, ExtensionField, FieldType
from events.sources import read_source
from events.validate import Known, Validation, guess_kind, validate_source
from tests.events.factories import (
    CARD_MAPPING,
    TEST_PAN,
    attempts,
    card_transactions,
    fraud_reports,
    outcomes,
    with_value,
    write_csv,
)
from tests.events.factories import (
    validate_frame as validate,
)


def codes(validation: Validation) -> set[tuple[int | None, str | None, str]]:
    return {(p.row, p.column, p.code.value) for p in as_problems(validation.problems)}


def only_problem(validation: Validation) -> tuple[int | None, str | None, ProblemCode, str]:
    [problem] = as_problems(validation.problems)
    return problem.row, problem.column, problem.code, problem.message


def test_a_valid_file_has_no_problems_and_contract_types() -> None:
    validation = validate(attempts(4))
    assert validation.accepted
    events = validation.events
    assert str(events["occurred_at"].dtype) == "datetime64[us, UTC]"
    assert events["amount"].tolist() == [12.99] * 4
    assert events["retry_number"].tolist() == [0] * 4


# One bad cell in row 2 (0-based 1): the problem names row 2, the column, and says why.
BAD_ATTEMPT_CELLS = [
    ("amount", "abc", ProblemCode.NOT_A_NUMBER, "'abc' is not a number"),
    ("amount", "12,99", ProblemCode.NOT_A_NUMBER, "'12,99' is not a number"),
    ("amount", "-5.00", ProblemCode.NEGATIVE, "'-5.0' is negative"),
    ("amount", "-0.01", ProblemCode.NEGATIVE, "is negative"),
    ("amount", "inf", ProblemCode.NOT_FINITE, "value is infinite"),
    ("amount", "12.999", ProblemCode.TOO_MANY_DECIMALS, "more decimals than its currency's minor unit (2)"),
    ("currency", "EURO", ProblemCode.UNKNOWN_CURRENCY, "'EURO' is not an ISO 4217 currency code"),
    ("currency", "eur", ProblemCode.UNKNOWN_CURRENCY, "'eur' is not an ISO 4217 currency code"),
    ("currency", "XAU", ProblemCode.UNKNOWN_CURRENCY, "'XAU' is not an ISO 4217 currency code"),
    ("card_country", "XX", ProblemCode.UNKNOWN_COUNTRY, "'XX' is not an ISO 3166-1 alpha-2 country code"),
    ("billing_country", "DEU", ProblemCode.UNKNOWN_COUNTRY, "'DEU' is not an ISO 3166-1 alpha-2"),
    ("card_bin", "41111", ProblemCode.BAD_BIN, "'41111' is not a BIN of 6 to 8 digits"),
    ("card_bin", "4111ab", ProblemCode.BAD_BIN, "is not a BIN of 6 to 8 digits"),
    ("card_exp", "2027-13", ProblemCode.BAD_YEAR_MONTH, "'2027-13' is not a YYYY-MM month"),
    ("card_exp", "09/27", ProblemCode.BAD_YEAR_MONTH, "is not a YYYY-MM month"),
    ("ip", "300.1.1.1", ProblemCode.BAD_IP, "'300.1.1.1' is not an IPv4 or IPv6 address"),
    ("ip", "localhost", ProblemCode.BAD_IP, "is not an IPv4 or IPv6 address"),
    ("kind", "RENEW", ProblemCode.UNKNOWN_VALUE, "'RENEW' is not one of signup, renewal, retry"),
    ("method_type", "CC", ProblemCode.UNKNOWN_VALUE, "map source values under values.method_type"),
    ("occurred_at", "yesterday", ProblemCode.UNPARSEABLE_TIMESTAMP, "'yesterday' is not a timestamp"),
    ("occurred_at", "2025-02-30T10:00:00Z", ProblemCode.UNPARSEABLE_TIMESTAMP, "is not a timestamp"),
    ("occurred_at", "2025-03-01 10:00:00", ProblemCode.NAIVE_TIMESTAMP, "timestamp without a UTC offset"),
    ("occurred_at", "1970-01-01T00:00:00Z", ProblemCode.TIME_OUT_OF_RANGE, "is not a time from 2000-01-01"),
    ("occurred_at", "2000-01-01T00:30:00+01:00", ProblemCode.TIME_OUT_OF_RANGE, "to 2100-01-01 (excluded)"),
    ("occurred_at", "2100-01-01T00:00:00Z", ProblemCode.TIME_OUT_OF_RANGE, "is not a time from 2000-01-01"),
    ("retry_number", "1.5", ProblemCode.NOT_AN_INTEGER, "'1.5' is not a whole number"),
    ("retry_number", "-1", ProblemCode.NEGATIVE, "is negative"),
    ("account_id", None, ProblemCode.MISSING_VALUE, "required value is empty"),
    ("account_id", "  ", ProblemCode.EMPTY_VALUE, "value is blank"),
    ("attempt_id", "att-0", ProblemCode.DUPLICATE_ID, "duplicate attempt_id, first in row 1"),
    ("payment_method_id", "pm_" + TEST_PAN, ProblemCode.CARD_NUMBER, "looks like a card number"),
    ("device_id", "4111 1111 1111 1111", ProblemCode.CARD_NUMBER, "looks like a card number"),
]


@pytest.mark.parametrize(("column", "value", "code", "message"), BAD_ATTEMPT_CELLS)
def test_each_bad_value_is_refused_with_row_column_and_reason(
    column: str, value: str | None, code: ProblemCode, message: str
) -> None:
    validation = validate(with_value(attempts(3), 1, column, value))
    row, problem_column, problem_code, problem_message = only_problem(validation)
    assert (row, problem_column, problem_code) == (2, column, code)
    assert message in problem_message
    assert validation.bad_rows().tolist() == [1]


def test_a_card_number_is_never_echoed_even_where_another_check_quotes_the_value() -> None:
    frame = with_value(attempts(3), 1, "card_bin", TEST_PAN)
    frame = with_value(frame, 2, "kind", f"x{TEST_PAN}")
    validation = validate(frame)
    assert (2, "card_bin", "card_number") in codes(validation)
    assert (3, "kind", "unknown_value") in codes(validation)
    assert not validation.problems.astype("str").apply(lambda c: c.str.contains(TEST_PAN)).any().any()
    assert validation.problems["message"].str.contains("[card number removed]", regex=False).any()


def test_every_problem_of_a_row_is_reported_not_only_the_first() -> None:
    frame = with_value(with_value(attempts(2), 0, "currency", "EURO"), 0, "card_exp", "27-09")
    assert codes(validate(frame)) == {(1, "currency", "unknown_currency"), (1, "card_exp", "bad_year_month")}


@pytest.mark.parametrize(
    "value", ["NA", "2001:db8::1", "::ffff:192.0.2.1", "10.0.0.1"], ids=["namibia", "ipv6", "mapped", "ipv4"]
)
def test_valid_values_that_look_odd_are_accepted(value: str) -> None:
    column = "billing_country" if value == "NA" else "ip"
    assert validate(with_value(attempts(2), 1, column, value)).accepted


def test_optional_columns_may_be_absent_and_are_then_empty() -> None:
    validation = validate(attempts(2).drop(columns=["ip", "card_bin", "device_id"]))
    assert validation.accepted
    assert validation.events["ip"].isna().all()


def test_missing_and_unexpected_columns_refuse_the_file_whole() -> None:
    frame = attempts(2).drop(columns=["account_id"]).assign(Notes="x")
    validation = validate(frame)
    assert codes(validation) >= {(None, "account_id", "missing_column"), (None, "Notes", "unexpected_column")}
    assert validation.refused_whole
    messages = " ".join(validation.problems["message"])
    assert "missing required column 'account_id'" in messages
    assert "list it under keep or ignore" in messages


def test_declared_extra_columns_are_kept_or_ignored() -> None:
    frame = attempts(2).assign(Channel=pd.Series(["web", None], dtype="str"), Note="x")
    validation = validate(frame, mapping=TableMapping(keep=("Channel",), ignore=("Note",)))
    assert validation.accepted
    assert validation.extras.columns.tolist() == ["attempt_id", "Channel"]


def test_a_card_number_in_an_ignored_column_is_still_refused() -> None:
    frame = attempts(2).assign(Note=["ok", TEST_PAN])
    assert codes(validate(frame, mapping=TableMapping(ignore=("Note",)))) == {(2, "Note", "card_number")}


def test_naive_timestamps_are_read_in_the_mapping_time_zone() -> None:
    frame = with_value(attempts(2), 0, "occurred_at", "2025-01-15 10:00:00")
    mapping = TableMapping(timestamps=TimestampFormat(timezone="Europe/Berlin"))
    validation = validate(frame, mapping=mapping)
    assert validation.accepted
    assert validation.events["occurred_at"][0] == pd.Timestamp("2025-01-15T09:00:00Z")
    assert validation.events["occurred_at"][1] == pd.Timestamp("2025-03-01T10:01:00Z")  # offset wins


def test_local_times_skipped_by_daylight_saving_are_refused() -> None:
    frame = with_value(attempts(2), 1, "occurred_at", "2025-03-30 02:30:00")
    validation = validate(frame, mapping=TableMapping(timestamps=TimestampFormat(timezone="Europe/Berlin")))
    row, column, code, message = only_problem(validation)
    assert (row, column, code) == (2, "occurred_at", ProblemCode.NONEXISTENT_LOCAL_TIME)
    assert "daylight-saving" in message


def test_a_strftime_format_is_applied() -> None:
    frame = with_value(attempts(2), 1, "occurred_at", "01/03/2025 10:01")
    frame = with_value(frame, 0, "occurred_at", "2025-03-01T10:00")
    mapping = TableMapping(timestamps=TimestampFormat(format="%d/%m/%Y %H:%M", timezone="UTC"))
    assert codes(validate(frame, mapping=mapping)) == {(1, "occurred_at", "unparseable_timestamp")}


def test_amounts_in_minor_units_use_the_currency_exponent() -> None:
    frame = attempts(4).assign(amount=["1299", "1500", "2500", "12.5"], currency=["EUR", "JPY", "KWD", "EUR"])
    validation = validate(frame, mapping=TableMapping(amount_unit="minor"))
    assert codes(validation) == {(4, "amount", "not_an_integer")}
    assert validation.events["amount"][:3].tolist() == [12.99, 1500.0, 2.5]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10**9), st.sampled_from(["EUR", "JPY", "KWD", "USD", "CLF"]))
def test_minor_units_convert_exactly(minor: int, currency: str) -> None:
    frame = attempts(1).assign(amount=str(minor), currency=currency)
    validation = validate(frame, mapping=TableMapping(amount_unit="minor"))
    assert validation.accepted
    exponent = {"EUR": 2, "JPY": 0, "KWD": 3, "USD": 2, "CLF": 4}[currency]
    assert round(validation.events["amount"][0] * 10**exponent) == minor


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10**7), st.integers(0, 4), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_decimals_beyond_the_minor_unit_are_refused(units: int, decimals: int, currency: str) -> None:
    amount = f"{units / 10**decimals:.{decimals}f}"
    significant = len(amount.split(".")[1].rstrip("0")) if "." in amount else 0
    exponent = {"EUR": 2, "JPY": 0, "KWD": 3}[currency]
    validation = validate(attempts(1).assign(amount=amount, currency=currency))
    assert validation.accepted is (significant <= exponent)


def test_declined_outcomes_need_a_code_and_approved_ones_have_none() -> None:
    frame = outcomes(["att-0", "att-1", "att-2"])
    frame = with_value(with_value(frame, 2, "decline_code", None), 0, "decline_code", "do_not_honor")
    validation = validate(frame, EventKind.OUTCOMES)
    assert codes(validation) == {
        (3, "decline_code", "decline_code_missing"),
        (1, "decline_code", "decline_code_unexpected"),
    }


def test_outcomes_and_reports_must_follow_a_known_attempt() -> None:
    times = pd.Series(pd.to_datetime(["2025-03-01T10:00Z", "2025-05-01T00:00Z"]), index=["att-0", "att-1"])
    known = Known(attempt_times=times)
    outcome = validate(outcomes(["att-0", "att-9"]), EventKind.OUTCOMES, known=known)
    assert codes(outcome) == {(2, "attempt_id", "unknown_attempt")}
    report = validate(fraud_reports(["att-0", "att-1"]), EventKind.FRAUD_REPORTS, known=known)
    row, column, code, message = only_problem(report)
    assert (row, column, code) == (2, "reported_at", ProblemCode.BEFORE_ATTEMPT)
    assert "before the attempt's occurred_at" in message


def test_ids_already_imported_are_refused() -> None:
    validation = validate(attempts(3), known=Known(ids=pd.Index(["att-1"])))
    assert codes(validation) == {(2, "attempt_id", "already_imported")}


def test_csv_is_read_as_text_with_only_empty_fields_missing(tmp_path: Path) -> None:
    frame = with_value(attempts(2), 0, "card_country", "NA")
    validation = validate_source(
        read_source(write_csv(frame, tmp_path / "a.csv")), EventKind.ATTEMPTS, TableMapping()
    )
    assert validation.accepted
    assert validation.events["card_country"][0] == "NA"


def test_duplicate_headers_and_malformed_rows_refuse_the_file(tmp_path: Path) -> None:
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("attempt_id,attempt_id\n1,2\n")
    assert codes(validate_source(read_source(duplicate), EventKind.ATTEMPTS, TableMapping())) >= {
        (None, "attempt_id", "duplicate_column")
    }
    ragged = tmp_path / "ragged.csv"
    write_csv(attempts(3), ragged)
    lines = ragged.read_text().splitlines()
    lines[2] += f",{TEST_PAN}"
    ragged.write_text("\n".join(lines) + "\n")
    validation = validate_source(read_source(ragged), EventKind.ATTEMPTS, TableMapping())
    assert (None, None, "malformed_row") in codes(validation)
    assert "line 3 has 21 fields where the header has 20" in " ".join(validation.problems["message"])
    assert TEST_PAN not in validation.problems.to_csv()


def test_parquet_sources_keep_their_types(tmp_path: Path) -> None:
    frame = attempts(3).assign(
        occurred_at=pd.to_datetime(attempts(3)["occurred_at"]),
        amount=[12.99, 5.0, 7.5],
        retry_number=pd.array([0, 1, 2], dtype="Int64"),
        device_id=pd.array([1, 4111111111111111, 3], dtype="Int64"),
    )
    path = tmp_path / "attempts.parquet"
    frame.to_parquet(path)
    validation = validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping())
    assert codes(validation) == {(2, "device_id", "card_number")}
    assert validation.events["amount"].tolist() == [12.99, 5.0, 7.5]


def test_a_column_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "attempts.parquet"
    attempts(2).assign(amount=[True, False]).to_parquet(path)
    validation = validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping())
    assert codes(validation) == {(None, "amount", "wrong_type")}
    assert "holds bool values where numbers are expected" in validation.problems["message"][0]


def test_many_problems_are_collected_as_arrays() -> None:
    frame = attempts(50_000).assign(currency="EURO")
    validation = validate(frame)
    assert len(validation.problems) == 50_000
    assert np.array_equal(validation.bad_rows(), np.arange(50_000))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("attempts.csv", EventKind.ATTEMPTS),
        ("2025-03-Outcomes.parquet", EventKind.OUTCOMES),
        ("fraud.csv", EventKind.FRAUD_REPORTS),
    ],
)
def test_the_kind_is_told_from_the_file_name(name: str, kind: EventKind) -> None:
    assert guess_kind(Path(name)) is kind


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty (no header line)"),
        ("attempt_id,account_id\n1,M\xfcller\n".encode("latin-1"), "not UTF-8 text (byte 0xfc at offset"),
    ],
)
def test_unreadable_csv_files_are_refused_with_the_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "attempts.csv"
    path.write_bytes(content)
    validation = validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping())
    assert validation.refused_whole
    assert (None, None, "unreadable_file") in codes(validation)
    assert message in " ".join(validation.problems["message"])


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = tmp_path / "attempts.csv"
    path.write_bytes(b"\xef\xbb\xbf" + attempts(2).to_csv(index=False).encode())
    assert validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping()).accepted


def test_a_broken_parquet_file_is_refused_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "attempts.parquet"
    path.write_bytes(b"not parquet")
    validation = validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping())
    assert codes(validation) >= {(None, None, "unreadable_file")}


def test_naive_parquet_timestamps_need_a_time_zone(tmp_path: Path) -> None:
    path = tmp_path / "attempts.parquet"
    naive = pd.to_datetime(attempts(2)["occurred_at"]).dt.tz_localize(None)
    attempts(2).assign(occurred_at=naive).to_parquet(path)
    refused = validate_source(read_source(path), EventKind.ATTEMPTS, TableMapping())
    assert codes(refused) == {(1, "occurred_at", "naive_timestamp"), (2, "occurred_at", "naive_timestamp")}
    mapping = TableMapping(timestamps=TimestampFormat(timezone="America/New_York"))
    accepted = validate_source(read_source(path), EventKind.ATTEMPTS, mapping)
    assert accepted.events["occurred_at"][0] == pd.Timestamp("2025-03-01T15:00:00Z")


# --- a card export: optional core fields, constants, defaults, derived columns, typed attributes ---------


def card_mapping(tmp_path: Path) -> TableMapping:
    path = tmp_path / "card.yaml"
    path.write_text(CARD_MAPPING)
    return load_mapping(path).attempts


def test_an_export_without_the_subscription_fields_is_valid_and_leaves_them_empty() -> None:
    frame = attempts(3).drop(columns=["kind", "plan_tier", "plan_period", "currency", "method_type"])
    validation = validate(frame.drop(columns=["retry_number"]))
    assert validation.accepted
    for column in ["kind", "plan_tier", "plan_period", "currency", "method_type", "retry_number"]:
        assert validation.events[column].isna().all()


def test_a_zero_amount_is_a_real_attempt() -> None:
    validation = validate(with_value(attempts(2), 1, "amount", "0"))
    assert validation.accepted
    assert validation.events["amount"].tolist() == [12.99, 0.0]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 4))
def test_without_a_currency_any_decimals_of_a_finite_amount_are_accepted(units: int, decimals: int) -> None:
    amount = f"{units / 10**decimals:.{decimals}f}"
    validation = validate(attempts(1).drop(columns=["currency"]).assign(amount=amount))
    assert validation.accepted
    assert validation.events["amount"][0] == float(amount)


def test_minor_units_need_a_currency() -> None:
    frame = with_value(attempts(2), 1, "currency", None).assign(amount="1299")
    row, column, code, message = only_problem(validate(frame, mapping=TableMapping(amount_unit="minor")))
    assert (row, column, code) == (2, "amount", ProblemCode.NO_CURRENCY)
    assert "needs its currency to be converted" in message


@pytest.mark.parametrize("column", ["account_created_at", "payment_method_first_used_at"])
def test_an_entity_start_is_a_time_in_range_not_after_the_attempt(column: str) -> None:
    frame = attempts(4).assign(**{column: "2024-01-01T00:00:00Z"})
    frame = with_value(frame, 1, column, "2025-03-01T10:01:01Z")  # one second after its attempt
    frame = with_value(frame, 2, column, "1999-12-31T23:59:59Z")
    frame = with_value(frame, 3, column, "2025-03-01T10:03:00Z")  # the attempt's own time: accepted
    validation = validate(frame)
    assert codes(validation) == {(2, column, "after_event"), (3, column, "time_out_of_range")}
    assert "is after the attempt's occurred_at" in " ".join(validation.problems["message"])
    assert validation.events[column][0] == pd.Timestamp("2024-01-01T00:00:00Z")


def test_the_card_mapping_makes_ids_amounts_and_constants(tmp_path: Path) -> None:
    validation = validate(card_transactions(4), mapping=card_mapping(tmp_path))
    assert validation.accepted, validation.problems
    events = validation.events
    assert events["attempt_id"].tolist() == ["T0-1000", "T1-1001", "T0-1002", "T1-1003"]
    assert events["amount"].tolist() == [0.0, 2.51, 2.52, 0.0]
    assert set(events["currency"]) == {"EUR"}
    assert set(events["method_type"]) == {"card"}
    assert events["retry_number"].tolist() == [0] * 4
    assert events["kind"].isna().all()
    assert events["occurred_at"][0] == pd.Timestamp("2025-06-01T12:00:00Z")  # 14:00 in Paris
    assert events["account_created_at"].isna().tolist() == [True, False, True, False]
    assert events.columns.tolist()[-4:] == ["terminal_id", "channel", "acquirer_score", "card_first_seen_at"]
    assert events["channel"].tolist() == ["pos", "ecom", "pos", "ecom"]
    assert events["acquirer_score"].tolist() == [0.0, 0.1, 0.2, 0.3]
    assert events["card_first_seen_at"][0] == pd.Timestamp("2024-12-24T17:30:00Z")


def test_defaults_fill_only_missing_values() -> None:
    frame = with_value(with_value(attempts(3), 1, "retry_number", None), 2, "retry_number", " ")
    frame = with_value(frame, 0, "retry_number", "2")
    validation = validate(frame, mapping=TableMapping(defaults={"retry_number": 0, "device_id": "unknown"}))
    assert validation.accepted
    assert validation.events["retry_number"].tolist() == [2, 0, 0]
    assert validation.events["device_id"].tolist() == ["dev-0", "dev-1", "dev-2"]


def test_constants_are_validated_like_values_read_from_the_file() -> None:
    frame = attempts(2).drop(columns=["currency"])
    validation = validate(frame, mapping=TableMapping(constants={"currency": "EURO"}))
    assert codes(validation) == {(1, "currency", "unknown_currency"), (2, "currency", "unknown_currency")}


def test_derived_columns() -> None:
    frame = attempts(3).assign(
        A=pd.Series(["x", "y", None], dtype="str"),
        B=pd.Series(["1", None, "3"], dtype="str"),
        Cents=["1299", "0", "abc"],
    )
    mapping = TableMapping(
        derive={
            "invoice_id": Derivation(concat=("A", "B"), sep=":"),
            "device_id": Derivation(first=("A", "B")),
            "amount": Derivation(divide=("Cents", 100)),
        },
        ignore=("invoice_id", "device_id", "amount"),
    )
    validation = validate(frame, mapping=mapping)
    assert codes(validation) == {(3, "amount", "not_a_number")}
    assert "'abc' is not a number" in validation.problems["message"][0]
    events = validation.events
    assert events["invoice_id"].tolist()[:1] == ["x:1"]
    assert events["invoice_id"][1:].isna().all()  # a part is missing
    assert events["device_id"].tolist() == ["x", "y", "3"]
    assert events["amount"][:2].tolist() == [12.99, 0.0]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**9))
def test_cents_divided_by_100_pass_the_minor_unit_check(cents: int) -> None:
    frame = attempts(1).assign(Cents=str(cents))
    mapping = TableMapping(derive={"amount": Derivation(divide=("Cents", 100))}, ignore=("amount",))
    validation = validate(frame, mapping=mapping)
    assert validation.accepted
    assert round(validation.events["amount"][0] * 100) == cents


def test_a_missing_source_of_a_derived_column_refuses_the_file() -> None:
    mapping = TableMapping(derive={"invoice_id": Derivation(concat=("A", "Nope"))})
    validation = validate(attempts(2).drop(columns=["invoice_id"]).assign(A="a"), mapping=mapping)
    assert codes(validation) == {(None, "invoice_id", "missing_column")}
    assert "derive.invoice_id: source column 'Nope' is missing" in validation.problems["message"][0]


def test_a_derived_card_number_is_refused_and_never_echoed() -> None:
    frame = attempts(2).assign(A=["4111", "1"], B=["111111111111", "2"])
    mapping = TableMapping(derive={"device_id": Derivation(concat=("A", "B"))}, ignore=("device_id",))
    validation = validate(frame, mapping=mapping)
    assert codes(validation) == {(1, "device_id", "card_number")}
    assert TEST_PAN not in validation.problems.to_csv()


# One bad attribute value in row 2: refused with the row, the field and why, like a core column.
BAD_ATTRIBUTE_CELLS = [
    ("Score", "high", ProblemCode.NOT_A_NUMBER, "acquirer_score", "'high' is not a number"),
    ("Score", "-inf", ProblemCode.NOT_FINITE, "acquirer_score", "value is infinite"),
    ("CardSeen", "24/12/2024", ProblemCode.UNPARSEABLE_TIMESTAMP, "card_first_seen_at", "is not a timestamp"),
    (
        "CardSeen",
        "1970-01-01 00:00:00",
        ProblemCode.TIME_OUT_OF_RANGE,
        "card_first_seen_at",
        "from 2000-01-01",
    ),
    ("CardSeen", "2025-03-30 02:30:00", ProblemCode.NONEXISTENT_LOCAL_TIME, "card_first_seen_at", "skipped"),
    ("Channel", "FAX", ProblemCode.UNKNOWN_VALUE, "channel", "'FAX' is not one of ecom, pos, moto"),
    ("TerminalID", " ", ProblemCode.EMPTY_VALUE, "terminal_id", "value is blank"),
    ("TerminalID", TEST_PAN, ProblemCode.CARD_NUMBER, "TerminalID", "looks like a card number"),
]


@pytest.mark.parametrize(("source", "value", "code", "column", "message"), BAD_ATTRIBUTE_CELLS)
def test_each_bad_attribute_value_is_refused_with_row_column_and_reason(
    tmp_path: Path, source: str, value: str, code: ProblemCode, column: str, message: str
) -> None:
    frame = with_value(card_transactions(3), 1, source, value)
    validation = validate(frame, mapping=card_mapping(tmp_path))
    found = [(row, name, kind) for row, name, kind in codes(validation) if name == column]
    assert found == [(2, column, code.value)]
    assert message in " ".join(validation.problems["message"])
    assert TEST_PAN not in validation.problems.to_csv()


def test_a_declared_attribute_whose_column_is_missing_refuses_the_file(tmp_path: Path) -> None:
    validation = validate(card_transactions(2).drop(columns=["Score"]), mapping=card_mapping(tmp_path))
    assert codes(validation) == {(None, "acquirer_score", "missing_column")}
    assert "mapped from source column 'Score'" in validation.problems["message"][0]


def test_an_attribute_retyped_against_the_record_refuses_the_file(tmp_path: Path) -> None:
    recorded = (ExtensionField("terminal_id", FieldType.NUMBER),)
    validation = validate(
        card_transactions(2), mapping=card_mapping(tmp_path), known=Known(extension=recorded)
    )
    row, column, code, message = only_problem(validation)
    assert (row, column, code) == (None, "terminal_id", ProblemCode.EXTENSION_CHANGED)
    assert "recorded in the data directory's extension.json as a number but declared here as a key" in message
    assert validation.refused_whole
