"""Detection of card numbers (PANs) anywhere inside a value, so that none is ever stored or echoed.

The rule, for integrators (the API and the imports apply it to every string, field names and paths included):

* **Written together**: a run of 13 to 19 ASCII digits that passes the Luhn check is a card number, wherever
  it is (``4111111111111111``, ``pm_4111111111111111``). A run of more than 19 digits is not split: it is a
  long numeric id, not a card number.
* **Written in groups**: digit groups joined by one and the same separator (a single space or a single dash)
  are a card number when their lengths are one of the networks' usual groupings (:data:`GROUPINGS`:
  4-4-4-4, 4-4-4-4-3, 4-6-5, 4-6-4, 4-4-5) and their digits together pass the Luhn check
  (``4111 1111 1111 1111``, ``3782-822463-10005``), unless they are joined by dashes and a letter touches
  the first or the last group (then the groups are part of a word, such as a UUID's
  ``...e5467-8388-4332-8640-b49...``). Other groupings
  are not joined: an id like ``kb1796652151-103`` (an epoch and a counter) holds runs of 10 and 3 digits,
  neither of them a card number.

So an id never collides with a card number unless it holds 13 to 19 digits in a row, or groups shaped like a
card's; on a generated corpus of 1,000,000 realistic ids (UUIDs, ULIDs, epoch-plus-counter ids, order
numbers, invoice ids; :mod:`bench.cardnumbers`) none is refused. An id that does hold 13 to 19 digits in a
row (say, epoch milliseconds) passes the Luhn check one time in ten and is then refused as a card number: ids
should not.

Two entry points share that rule:

* :func:`contains_card_number` for one string (a precompiled pattern rejects strings without a candidate in
  well under a microsecond);
* :func:`card_number_mask` for a whole column (pandas or Arrow): a regular-expression pass in Arrow
  finds the candidates, and a numpy pass over the candidates' bytes does the Luhn arithmetic, so millions
  of values take a fraction of a second.

Nothing here ever puts the digits it finds into a message, a log line or an exception: callers get
booleans, spans or a masked copy (:func:`mask_card_numbers`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

MIN_DIGITS: Final = 13
MAX_DIGITS: Final = 19

#: The networks' usual groupings of a card number written in groups (lengths of the groups, in order):
#: 16 digits 4-4-4-4 (Visa, Mastercard, Discover, JCB, UnionPay), 19 digits 4-4-4-4-3 (Visa, Maestro,
#: UnionPay), 15 digits 4-6-5 (American Express), 14 digits 4-6-4 (Diners Club), 13 digits 4-4-5 (Visa).
GROUPINGS: Final[tuple[tuple[int, ...], ...]] = (
    (4, 4, 4, 4),
    (4, 4, 4, 4, 3),
    (4, 6, 5),
    (4, 6, 4),
    (4, 4, 5),
)
_SEPARATORS: Final = frozenset(" -")

#: What replaces a card number in a masked copy of a value.
MASK: Final = "[card number removed]"

#: The cheap test every card number passes: 13 digits in a row, or the start of a grouping (4-4-4 or 4-6-4
#: digits with separators; runs are maximal, so every grouping begins with one of them).
_CANDIDATE_PATTERN: Final = r"[0-9]{13}|[0-9]{4}[ -][0-9]{4}(?:[0-9]{2})?[ -][0-9]{4}"
_CANDIDATE = re.compile(_CANDIDATE_PATTERN)
_RUN = re.compile(r"[0-9]+")
_LETTER = re.compile(r"[A-Za-z]")

#: Luhn: the digit sum of twice each digit.
_DOUBLED: Final[tuple[int, ...]] = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_DOUBLED_ARRAY: Final = np.array(_DOUBLED, dtype=np.int64)
_DOUBLED_BYTES: Final = bytes.maketrans(b"0123456789", bytes(_DOUBLED))

#: Rows handled at once by the vectorised pass (bounds its memory to a few tens of MB).
_BATCH_ROWS: Final = 200_000


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn (mod 10) check."""
    raw = digits.encode("ascii")
    undoubled, doubled = raw[-1::-2], raw[-2::-2]
    return (sum(undoubled) - 48 * len(undoubled) + sum(doubled.translate(_DOUBLED_BYTES))) % 10 == 0


def _grouped(text: str, runs: list[re.Match[str]], first: int, grouping: tuple[int, ...]) -> bool:
    """Whether the runs from ``first`` on have the lengths of ``grouping``, joined by one same separator."""
    window = runs[first : first + len(grouping)]
    if len(window) < len(grouping) or any(
        len(run.group()) != size for run, size in zip(window, grouping, strict=True)
    ):
        return False
    gaps = {text[a.end() : b.start()] for a, b in itertools.pairwise(window)}
    before, after = text[window[0].start() - 1 : window[0].start()], text[window[-1].end() :][:1]
    if len(gaps) != 1 or not gaps <= _SEPARATORS:
        return False
    return gaps != {"-"} or not (_LETTER.match(before) or _LETTER.match(after))


def _spans(text: str) -> Iterator[tuple[int, int]]:
    """The spans of the card numbers of ``text`` by the module's rule (possibly overlapping)."""
    runs = list(_RUN.finditer(text))
    for index, run in enumerate(runs):
        digits = run.group()
        if MIN_DIGITS <= len(digits) <= MAX_DIGITS and luhn_valid(digits):
            yield run.start(), run.end()
        if len(digits) != 4:  # every grouping starts with 4 digits
            continue
        for grouping in GROUPINGS:
            if _grouped(text, runs, index, grouping):
                last = runs[index + len(grouping) - 1]
                if luhn_valid("".join(r.group() for r in runs[index : index + len(grouping)])):
                    yield run.start(), last.end()


def find_card_numbers(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of the card numbers in ``text`` (overlapping spans merged)."""
    if len(text) < MIN_DIGITS or _CANDIDATE.search(text) is None:
        return []
    merged: list[tuple[int, int]] = []
    for start, end in sorted(_spans(text)):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds a card number anywhere (see the module docstring for the exact rule)."""
    if len(text) < MIN_DIGITS or _CANDIDATE.search(text) is None:
        return False
    return next(_spans(text), None) is not None


def may_hold_card_number(texts: Iterable[str]) -> bool:
    """Whether any of ``texts`` *could* hold a card number (the candidate pattern): one search over them
    all, joined by a character no grouping crosses. False means none does; True means check each with
    :func:`contains_card_number`."""
    return _CANDIDATE.search("\n".join(texts)) is not None


def mask_card_numbers(text: str) -> str:
    """``text`` with every card number replaced by :data:`MASK`; other characters are kept."""
    spans = find_card_numbers(text)
    if not spans:
        return text
    pieces: list[str] = []
    previous = 0
    for start, end in spans:
        pieces.extend((text[previous:start], MASK))
        previous = end
    pieces.append(text[previous:])
    return "".join(pieces)


#: A column of values: an Arrow array (chunked or not) or a pandas Series.
ColumnValues: TypeAlias = pa.Array | pa.ChunkedArray | pd.Series


def _as_large_strings(values: ColumnValues) -> pa.Array:
    """The values as one Arrow ``large_string`` array (numbers are written out in decimal)."""
    if isinstance(values, pd.Series):
        values = pa.array(values, from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_floating(values.type):
        values = _whole_floats_as_integers(values)
    return pc.cast(values, pa.large_string())


def _whole_floats_as_integers(values: pa.Array) -> pa.Array:
    """Floats written out as integers where they are whole numbers (a card number stored as a double)."""
    floats = values.to_numpy(zero_copy_only=False)
    finite = np.isfinite(floats) & (np.abs(floats) < 9e18)
    whole = finite & (np.floor(np.where(finite, floats, 0.0)) == np.where(finite, floats, 0.5))
    integers = np.where(whole, floats, 0.0).astype(np.int64)
    return pa.array(integers, mask=~whole)


def card_number_mask(values: ColumnValues) -> npt.NDArray[np.bool_]:
    """For each value of a column, whether it holds a card number (nulls never do)."""
    strings = _as_large_strings(values)
    candidates = pc.fill_null(pc.match_substring_regex(strings, _CANDIDATE_PATTERN), False)
    result = np.zeros(len(strings), dtype=bool)
    rows = np.flatnonzero(candidates.to_numpy(zero_copy_only=False))
    for begin in range(0, len(rows), _BATCH_ROWS):
        batch = rows[begin : begin + _BATCH_ROWS]
        result[batch] = _luhn_rows(strings.take(pa.array(batch)))
    return result


def _luhn_rows(strings: pa.Array) -> npt.NDArray[np.bool_]:
    """The vectorised rule over a ``large_string`` array without nulls: whether each value holds a PAN."""
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64)[
        strings.offset : strings.offset + len(strings) + 1
    ]
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    row_of_byte = np.repeat(np.arange(len(strings)), np.diff(offsets))
    is_digit = (data >= 48) & (data <= 57)
    first_byte, last_byte = _digit_runs(is_digit, row_of_byte)
    length = last_byte - first_byte + 1
    joined, separator = _joins(data, row_of_byte, first_byte, last_byte)
    lettered = _touches_letter(data, row_of_byte, first_byte, last_byte)
    digit_index = np.cumsum(is_digit) - 1  # compact index of each digit byte
    run_first, run_last = digit_index[first_byte], digit_index[last_byte]
    sums = _LuhnPrefixSums(data[is_digit].astype(np.int64) - 48)
    hits = np.zeros(len(strings), dtype=bool)
    alone = np.flatnonzero((length >= MIN_DIGITS) & (length <= MAX_DIGITS))
    valid = sums.window_total(run_first[alone], run_last[alone]) % 10 == 0
    hits[row_of_byte[first_byte[alone[valid]]]] = True
    for grouping in GROUPINGS:
        count = len(run_first) - len(grouping) + 1
        if count <= 0:
            continue
        first = np.arange(count)
        shaped = np.ones(count, dtype=bool)
        for offset, size in enumerate(grouping):
            shaped &= length[first + offset] == size
            if offset < len(grouping) - 1:
                shaped &= joined[first + offset] & (separator[first + offset] == separator[first])
        last = first + len(grouping) - 1
        shaped &= (separator[first] != 45) | ~(lettered[0][first] | lettered[1][last])
        first, last = first[shaped], last[shaped]
        valid = sums.window_total(run_first[first], run_last[last]) % 10 == 0
        hits[row_of_byte[first_byte[first[valid]]]] = True
    return hits


def _digit_runs(
    is_digit: npt.NDArray[np.bool_], row_of_byte: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First and last byte index of every run of digits (runs never cross a value's boundary)."""
    same_row_as_previous = np.concatenate(([False], row_of_byte[1:] == row_of_byte[:-1]))
    previous_digit = np.concatenate(([False], is_digit[:-1])) & same_row_as_previous
    same_row_as_next = np.concatenate((row_of_byte[:-1] == row_of_byte[1:], [False]))
    next_digit = np.concatenate((is_digit[1:], [False])) & same_row_as_next
    return np.flatnonzero(is_digit & ~previous_digit), np.flatnonzero(is_digit & ~next_digit)


def _touches_letter(
    data: npt.NDArray[np.uint8],
    row_of_byte: npt.NDArray[np.int64],
    first_byte: npt.NDArray[np.int64],
    last_byte: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """For each run, whether an ASCII letter of the same value directly precedes it, and follows it."""
    upper = data | 0x20  # ASCII letters folded to lower case
    is_letter = (upper >= 97) & (upper <= 122)
    before = np.maximum(first_byte - 1, 0)
    after = np.minimum(last_byte + 1, len(data) - 1)
    return (
        (first_byte > 0) & is_letter[before] & (row_of_byte[before] == row_of_byte[first_byte]),
        (last_byte < len(data) - 1) & is_letter[after] & (row_of_byte[after] == row_of_byte[last_byte]),
    )


def _joins(
    data: npt.NDArray[np.uint8],
    row_of_byte: npt.NDArray[np.int64],
    first_byte: npt.NDArray[np.int64],
    last_byte: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint8]]:
    """For each run, whether the next run follows it after exactly one space or dash in the same value, and
    that separator's byte (0 where there is no next run)."""
    joined = np.zeros(len(first_byte), dtype=bool)
    separator = np.zeros(len(first_byte), dtype=np.uint8)
    if len(first_byte) < 2:
        return joined, separator
    separator[:-1] = data[np.minimum(last_byte[:-1] + 1, len(data) - 1)]
    joined[:-1] = (
        (first_byte[1:] == last_byte[:-1] + 2)
        & ((separator[:-1] == 32) | (separator[:-1] == 45))
        & (row_of_byte[first_byte[1:]] == row_of_byte[last_byte[:-1]])
    )
    return joined, separator


class _LuhnPrefixSums:
    """Prefix sums of digits and doubled digits by position parity: any window's Luhn total in O(1)."""

    def __init__(self, digits: npt.NDArray[np.int64]) -> None:
        even = (np.arange(len(digits)) % 2) == 0
        doubled = _DOUBLED_ARRAY[digits]
        self.plain = (self._prefix(np.where(even, digits, 0)), self._prefix(np.where(even, 0, digits)))
        self.doubled = (self._prefix(np.where(even, doubled, 0)), self._prefix(np.where(even, 0, doubled)))

    @staticmethod
    def _prefix(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.concatenate(([0], np.cumsum(values)))

    def window_total(
        self, first: npt.NDArray[np.int64], last: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Luhn total of digits ``first..last``: the last digit and every second one leftwards undoubled."""
        last_even = (last % 2) == 0

        def between(prefix: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
            return prefix[last + 1] - prefix[first]

        plain = np.where(last_even, between(self.plain[0]), between(self.plain[1]))
        doubled = np.where(last_even, between(self.doubled[1]), between(self.doubled[0]))
        return plain + doubled
