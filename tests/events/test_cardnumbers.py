import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.cardnumbers import (
    MASK,
    card_number_mask,
    contains_card_number,
    find_card_numbers,
    luhn_valid,
    mask_card_numbers,
    may_hold_card_number,
)


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return digit
    raise AssertionError("unreachable: one digit always completes a Luhn number")


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    return body + luhn_check_digit(body)


@st.composite
def grouped(draw: st.DrawFn, number: str) -> str:
    """``number`` split into groups joined by single spaces or dashes (or not split)."""
    positions = (
        st.sets(st.integers(1, len(number) - 1), max_size=5) if len(number) > 1 else st.just(set[int]())
    )
    cuts = sorted(draw(positions))
    groups = [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    separators = draw(st.lists(st.sampled_from([" ", "-"]), min_size=len(groups), max_size=len(groups)))
    return "".join(group + sep for group, sep in zip(groups, separators, strict=True))[:-1]


wrapping = st.text("abcxyz_:/", max_size=6)


@given(card_numbers().flatmap(grouped), wrapping, wrapping)
def test_luhn_valid_numbers_are_caught_anywhere_with_separators(number: str, before: str, after: str) -> None:
    value = before + number + after
    assert contains_card_number(value)
    assert card_number_mask(pd.Series([value])).tolist() == [True]


@given(card_numbers(), st.integers(1, 9), wrapping, wrapping)
def test_luhn_invalid_numbers_are_not_caught(number: str, change: int, before: str, after: str) -> None:
    wrong = number[:-1] + str((int(number[-1]) + change) % 10)
    value = before + wrong + after
    assert not contains_card_number(value)
    assert card_number_mask(pd.Series([value])).tolist() == [False]


@given(st.text("0123456789", min_size=1, max_size=12).flatmap(grouped), wrapping)
def test_fewer_than_13_digits_are_never_a_card_number(digits: str, around: str) -> None:
    assert not contains_card_number(around + digits + around)


@given(st.text("0123456789", min_size=20, max_size=40))
def test_a_run_longer_than_19_digits_is_an_id_not_a_card_number(digits: str) -> None:
    assert not contains_card_number(f"id-{digits}-x")


@given(st.lists(st.text("0123456789 -x", max_size=40) | st.none(), max_size=30))
def test_vectorised_and_scalar_rules_agree(values: list[str | None]) -> None:
    expected = [value is not None and contains_card_number(value) for value in values]
    assert expected == [value is not None and bool(find_card_numbers(value)) for value in values]
    assert card_number_mask(pd.Series(values, dtype="str")).tolist() == expected
    assert card_number_mask(pa.array(values, pa.string())).tolist() == expected


@given(
    st.lists(st.text("0123456789 -x", max_size=30), max_size=8),
    st.lists(card_numbers().flatmap(grouped), max_size=1),
)
def test_the_joint_prefilter_never_misses_a_card_number(values: list[str], numbers: list[str]) -> None:
    texts = values + numbers
    if any(contains_card_number(text) for text in texts):
        assert may_hold_card_number(texts)
    assert may_hold_card_number(texts) == any(
        may_hold_card_number([text]) for text in texts
    )  # no chain joins


@given(card_numbers().flatmap(grouped), wrapping, wrapping)
def test_masking_removes_every_digit_of_the_number(number: str, before: str, after: str) -> None:
    masked = mask_card_numbers(before + number + after)
    assert masked == before + MASK + after
    assert not contains_card_number(masked)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4111111111111111", True),
        ("pm_4111111111111111", True),
        ("4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        ("378282246310005", True),  # 15-digit Amex test number
        ("6011 0009 9013 9424", True),
        ("4111111111111112", False),  # Luhn fails
        ("4111  1111 1111 1111", False),  # a double space breaks the chain: 4 and 12 digits
        ("acc_12345", False),
        ("", False),
        ("+49 151 2345 6789", False),  # a phone number: 13 digits, Luhn fails
    ],
)
def test_known_values(value: str, expected: bool) -> None:
    assert contains_card_number(value) is expected


def test_spans_point_at_the_number() -> None:
    text = "paid with 4111-1111-1111-1111 today"
    [(start, end)] = find_card_numbers(text)
    assert text[start:end] == "4111-1111-1111-1111"


def test_numbers_stored_as_integers_or_whole_floats_are_caught() -> None:
    assert card_number_mask(pd.Series([4111111111111111, 12], dtype="Int64")).tolist() == [True, False]
    assert card_number_mask(pd.Series([4111111111111111.0, 12.5, np.nan])).tolist() == [True, False, False]


def test_large_columns_are_processed_in_batches() -> None:
    values = pd.Series(["pm_4111111111111111", "pm_4111111111111112"] * 150_000, dtype="str")
    mask = card_number_mask(values)
    assert mask[::2].all()
    assert not mask[1::2].any()
