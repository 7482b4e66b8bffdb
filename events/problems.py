"""Problems found in a provider's file: what they are, how they are collected, summarised and reported.

A problem names the file, the row, the column, a code and a message saying why and what to do. Rows are
**1-based data rows**: row 1 is the first record after the header, the same for CSV and Parquet (in a CSV
file without line breaks inside quoted values, data row N is on line N + 1). A problem about a whole file or
a whole column (a missing column, an unreadable file) has no row: such a problem refuses the whole file,
even when bad rows could otherwise be quarantined.

Validation collects problems column by column, as arrays (one entry per bad row), so a file with a million
bad rows costs a few arrays rather than a million Python objects. Messages never contain a card number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd


class ProblemCode(StrEnum):
    """Why a file, column or value is refused."""

    UNREADABLE_FILE = "unreadable_file"
    MALFORMED_ROW = "malformed_row"
    DUPLICATE_COLUMN = "duplicate_column"
    MISSING_COLUMN = "missing_column"
    UNEXPECTED_COLUMN = "unexpected_column"
    WRONG_TYPE = "wrong_type"
    CARD_NUMBER = "card_number"
    MISSING_VALUE = "missing_value"
    EMPTY_VALUE = "empty_value"
    NOT_A_NUMBER = "not_a_number"
    NOT_AN_INTEGER = "not_an_integer"
    NOT_FINITE = "not_finite"
    NOT_POSITIVE = "not_positive"
    NEGATIVE = "negative"
    TOO_MANY_DECIMALS = "too_many_decimals"
    NO_CURRENCY = "no_currency"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    NAIVE_TIMESTAMP = "naive_timestamp"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    AFTER_EVENT = "after_event"
    UNKNOWN_VALUE = "unknown_value"
    UNKNOWN_CURRENCY = "unknown_currency"
    UNKNOWN_COUNTRY = "unknown_country"
    BAD_BIN = "bad_bin"
    BAD_YEAR_MONTH = "bad_year_month"
    BAD_IP = "bad_ip"
    DUPLICATE_ID = "duplicate_id"
    ALREADY_IMPORTED = "already_imported"
    DECLINE_CODE_MISSING = "decline_code_missing"
    DECLINE_CODE_UNEXPECTED = "decline_code_unexpected"
    UNKNOWN_ATTEMPT = "unknown_attempt"
    BEFORE_ATTEMPT = "before_attempt"
    EXTENSION_CHANGED = "extension_changed"


@dataclass(frozen=True)
class Problem:
    """One reason a file, column or row is refused. ``row`` is the 1-based data row, ``None`` for the file."""

    file: str
    row: int | None
    column: str | None
    code: ProblemCode
    message: str


#: The columns of a problems table (and of a report file), in order.
PROBLEM_COLUMNS: Final = ["file", "row", "column", "code", "message"]


class ProblemLog:
    """Collects the problems of one file, column by column, as arrays."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._parts: list[pd.DataFrame] = []

    def copy(self) -> ProblemLog:
        """A new log holding the problems so far (adding to it leaves this one as it is)."""
        log = ProblemLog(self.file)
        log._parts = list(self._parts)
        return log

    def add_file_problem(self, column: str | None, code: ProblemCode, message: str) -> None:
        """A problem with the whole file, or a whole column (it refuses the file)."""
        self._parts.append(
            pd.DataFrame(
                {
                    "row": pd.array([None], dtype="Int64"),
                    "column": [column],
                    "code": [code.value],
                    "message": [message],
                }
            )
        )

    def add(
        self,
        positions: npt.NDArray[np.int64],
        column: str | None,
        code: ProblemCode,
        message: str | pd.Series,
    ) -> None:
        """Problems on rows at 0-based ``positions``; ``message`` is one text, or one per position."""
        if len(positions) == 0:
            return
        messages = message.to_numpy(dtype=object) if isinstance(message, pd.Series) else message
        self._parts.append(
            pd.DataFrame(
                {
                    "row": pd.array(positions + 1, dtype="Int64"),
                    "column": column,
                    "code": code.value,
                    "message": messages,
                }
            )
        )

    def table(self) -> pd.DataFrame:
        """Every problem so far as a frame of :data:`PROBLEM_COLUMNS`: file-level first, then by row."""
        if not self._parts:
            frame = pd.DataFrame(
                {"row": pd.array([], dtype="Int64"), "column": [], "code": [], "message": []}
            )
        else:
            frame = pd.concat(self._parts, ignore_index=True)
        frame.insert(0, "file", self.file)
        ordered = frame.sort_values("row", na_position="first", kind="stable", ignore_index=True)
        return ordered[PROBLEM_COLUMNS]


def as_problems(table: pd.DataFrame, limit: int | None = None) -> list[Problem]:
    """Problem objects for (the first ``limit`` rows of) a problems table."""
    head = table if limit is None else table.head(limit)
    return [
        Problem(
            file=str(file),
            row=None if pd.isna(row) else int(row),
            column=None if pd.isna(column) else str(column),
            code=ProblemCode(code),
            message=str(message),
        )
        for file, row, column, code, message in zip(
            head["file"].tolist(),
            head["row"].tolist(),
            head["column"].tolist(),
            head["code"].tolist(),
            head["message"].tolist(),
            strict=True,
        )
    ]


def bad_positions(table: pd.DataFrame) -> npt.NDArray[np.int64]:
    """The 0-based positions of the rows that have at least one problem."""
    rows = table["row"].dropna().astype("int64").to_numpy()
    return np.unique(rows - 1)


def file_level(table: pd.DataFrame) -> pd.DataFrame:
    """The problems that concern a whole file or column (and so refuse the file whole)."""
    return table[table["row"].isna()]


def summarize(table: pd.DataFrame, examples: int = 10) -> list[str]:
    """Human lines: counts per file, column and code, then the first ``examples`` problems."""
    if table.empty:
        return []
    counts = (
        table.fillna({"column": "(file)"})
        .groupby(["file", "column", "code"], sort=False)
        .size()
        .reset_index(name="count")
    )
    lines = [f"{len(table)} problem(s) (rows are data rows: row 1 is the first after the header):"]
    lines += [
        f"  {row.file}: {row.column}: {row.code} ×{row.count}" for row in counts.itertuples(index=False)
    ]
    lines.append(f"first {min(examples, len(table))}:")
    lines += [f"  {_where(problem)}: {problem.message}" for problem in as_problems(table, examples)]
    return lines


def _where(problem: Problem) -> str:
    row = "" if problem.row is None else f" row {problem.row}"
    column = "" if problem.column is None else f" column {problem.column}"
    return f"{problem.file}{row}{column} [{problem.code}]"


def write_report(table: pd.DataFrame, path: Path) -> Path:
    """Write every problem to ``path``: JSON (a list of objects) if it ends in .json, CSV otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        records = [
            {"file": p.file, "row": p.row, "column": p.column, "code": p.code.value, "message": p.message}
            for p in as_problems(table)
        ]
        path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        table.to_csv(path, index=False)
    return path
