"""Reading a provider's export (CSV or Parquet) exactly as written, before any mapping or validation.

CSV files are read with every column as text, so nothing is guessed or converted on the way in: an empty
field is the only missing value ("NA" stays the text "NA", which is Namibia's country code). Parquet files
keep their own types. Structural faults (an unreadable file, duplicate column names, rows with the wrong
number of fields) are returned as file-level problems; their messages never quote the file's content.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from core.errors import RiskgateError
from events.cardnumbers import mask_card_numbers
from events.problems import ProblemCode, ProblemLog

logger = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


class UnsupportedFileError(RiskgateError, ValueError):
    """A file whose format riskgate does not read."""


@dataclass(frozen=True)
class Source:
    """A file as read: its columns (text for CSV), and the problems that prevented reading it properly."""

    file: str
    frame: pd.DataFrame
    problems: ProblemLog

    @property
    def readable(self) -> bool:
        return self.problems.table().empty


def read_source(path: Path) -> Source:
    """Read a CSV or Parquet export; structural faults become file-level problems, not exceptions."""
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise UnsupportedFileError(
            f"{path}: unsupported file type {suffix or '(none)'!r}: give a .csv or .parquet file"
        )
    problems = ProblemLog(str(path))
    try:
        frame = _read_parquet(path) if suffix in PARQUET_SUFFIXES else _read_csv(path, problems)
    except UnicodeDecodeError as error:
        problems.add_file_problem(
            None,
            ProblemCode.UNREADABLE_FILE,
            f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}): "
            "export it as UTF-8",
        )
        frame = pd.DataFrame()
    except (OSError, pa.ArrowException, csv.Error) as error:
        # Arrow's messages may quote a line of the file: mask anything that looks like a card number.
        problems.add_file_problem(
            None, ProblemCode.UNREADABLE_FILE, f"cannot read: {mask_card_numbers(str(error))}"
        )
        frame = pd.DataFrame()
    logger.info("read %s: %d rows, %d columns", path, len(frame), len(frame.columns))
    return Source(str(path), frame, problems)


def _read_parquet(path: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def _read_csv(path: Path, problems: ProblemLog) -> pd.DataFrame:
    header = _csv_header(path)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    for name in duplicates:
        problems.add_file_problem(
            name, ProblemCode.DUPLICATE_COLUMN, f"the header names column {name!r} more than once"
        )
    if not header or duplicates:
        if not header:
            problems.add_file_problem(None, ProblemCode.UNREADABLE_FILE, "the file is empty (no header line)")
        return pd.DataFrame()
    table, malformed = _parse_csv(path, header, threads=True)
    if any(line is None for line, _, _ in malformed):
        # Arrow numbers bad lines only when reading on one thread: read again to say where they are.
        table, malformed = _parse_csv(path, header, threads=False)
    for line, expected, actual in malformed:
        problems.add_file_problem(
            None,
            ProblemCode.MALFORMED_ROW,
            f"line {line} has {actual} fields where the header has {expected} "
            "(check quoting and delimiters; the rows after it cannot be numbered reliably)",
        )
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _parse_csv(
    path: Path, header: list[str], threads: bool
) -> tuple[pa.Table, list[tuple[int | None, int, int]]]:
    """The CSV as text columns, skipping rows with the wrong number of fields, and those rows' (line,
    expected fields, actual fields)."""
    malformed: list[tuple[int | None, int, int]] = []

    def skip_and_record(row: pa_csv.InvalidRow) -> str:
        malformed.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    table = pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(use_threads=threads, block_size=1 << 24),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=skip_and_record),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return table, malformed
