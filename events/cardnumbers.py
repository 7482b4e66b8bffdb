"""Detection of card numbers (PANs) anywhere inside a value, so that none is ever stored or echoed.

A value *holds a card number* when it contains 13 to 19 digits, written together or in groups joined by
single spaces or dashes, that pass the Luhn check: ``4111111111111111``, ``4111 1111 1111 1111``,
``4111-1111-1111-1111``, or buried in a token such as ``pm_4111111111111111``. Precisely: split the value
into runs of ASCII digits; runs separated by exactly one space or dash form a *chain*; any consecutive runs
of one chain whose digits number 13 to 19 and pass the Luhn check are a card number. (A run of more than
19 digits on its own, such as a long numeric id, is not a card number: it is not split inside a run.)

Two entry points share that rule:

* :func:`contains_card_number` for one string (the API checks every request field with it: a precompiled
  pattern rejects strings without 13 digits in a row in well under a microsecond);
* :func:`card_number_mask` for a whole column (pandas or Arrow): a regular-expression pass in Arrow
  finds the candidates, and a numpy pass over the candidates' bytes does the Luhn arithmetic, so millions
  of values take a fraction of a second.

Nothing here ever puts the digits it finds into a message, a log line or an exception: callers get
booleans, spans or a masked copy (:func:`mask_card_numbers`).
"""

from __future__ import annotations

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

#: What replaces a card number in a masked copy of a value.
MASK: Final = "[card number removed]"

#: 13 digits in a row, each optionally preceded by one separator: the cheap test every card number passes.
_CANDIDATE_PATTERN: Final = r"[0-9](?:[ -]?[0-9]){12}"
_CANDIDATE = re.compile(_CANDIDATE_PATTERN)
_CHAIN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_RUN = re.compile(r"[0-9]+")

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


def _spans_in_chain(chain: re.Match[str]) -> Iterator[tuple[int, int]]:
    runs = [
        (run.start() + chain.start(), run.end() + chain.start(), run.group())
        for run in _RUN.finditer(chain.group())
    ]
    for first in range(len(runs)):
        digits = ""
        for last in range(first, len(runs)):
            digits += runs[last][2]
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and luhn_valid(digits):
                yield runs[first][0], runs[last][1]


def find_card_numbers(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of the card numbers in ``text`` (overlapping spans merged)."""
    if len(text) < MIN_DIGITS or _CANDIDATE.search(text) is None:
        return []
    spans = sorted(span for chain in _CHAIN.finditer(text) for span in _spans_in_chain(chain))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def contains_card_number(text: str) -> bool:
    """Whether ``text`` holds a card number anywhere (see the module docstring for the exact rule)."""
    if len(text) < MIN_DIGITS or _CANDIDATE.search(text) is None:
        return False
    return any(_chain_holds_card_number(chain) for chain in _CHAIN.findall(text))


def may_hold_card_number(texts: Iterable[str]) -> bool:
    """Whether any of ``texts`` *could* hold a card number (13 digits with at most single separators in a
    row): one pattern search over them all, joined by a character no chain crosses. False means none does;
    True means check each with :func:`contains_card_number`."""
    return _CANDIDATE.search("\n".join(texts)) is not None


def _chain_holds_card_number(chain: str) -> bool:
    runs = chain.replace("-", " ").split(" ")
    if len(runs) == 1:  # the usual case: one run of digits
        return MIN_DIGITS <= len(chain) <= MAX_DIGITS and luhn_valid(chain)
    for first in range(len(runs)):
        digits = ""
        for run in runs[first:]:
            digits += run
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and luhn_valid(digits):
                return True
    return False


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
    chained = _chained_to_next(data, row_of_byte, first_byte, last_byte)
    chain_id = np.concatenate(([0], np.cumsum(~chained[:-1]))) if len(chained) else chained.astype(np.int64)
    digit_values = data[is_digit].astype(np.int64) - 48
    digit_index = np.cumsum(is_digit) - 1  # compact index of each digit byte
    run_first, run_last = digit_index[first_byte], digit_index[last_byte]
    sums = _LuhnPrefixSums(digit_values)
    hits = np.zeros(len(strings), dtype=bool)
    for span in range(MAX_DIGITS):  # windows of span + 1 consecutive runs
        first = np.arange(len(run_first) - span)
        last = first + span
        length = run_last[last] - run_first[first] + 1
        reachable = (chain_id[first] == chain_id[last]) & (length <= MAX_DIGITS)
        if not reachable.any():
            break  # every longer window contains one of these, so is longer still
        window = reachable & (length >= MIN_DIGITS)
        first, last = first[window], last[window]
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


def _chained_to_next(
    data: npt.NDArray[np.uint8],
    row_of_byte: npt.NDArray[np.int64],
    first_byte: npt.NDArray[np.int64],
    last_byte: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """For each run, whether the next run follows it after exactly one space or dash in the same value."""
    chained = np.zeros(len(first_byte), dtype=bool)
    if len(first_byte) < 2:
        return chained
    gap_ok = first_byte[1:] == last_byte[:-1] + 2
    separator = data[np.minimum(last_byte[:-1] + 1, len(data) - 1)]
    chained[:-1] = (
        gap_ok
        & ((separator == 32) | (separator == 45))
        & (row_of_byte[first_byte[1:]] == row_of_byte[last_byte[:-1]])
    )
    return chained


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
