"""Vectorised validation of a provider's file against the event contract of :mod:`events.schema`.

:func:`validate_source` maps a file's columns onto one event table (with a
:class:`~events.mapping.TableMapping`) and checks everything the contract declares, a column at a time
over the whole file (pandas / Arrow, no per-row Python): the columns (missing, unexpected), card numbers
in any column, the types (numbers, integers, timestamps with their UTC offset or the mapping's time
zone), required values, allowed values, each :class:`~events.schema.Check` (declared once, in
:data:`events.checks.VALUE_CHECKS`), the rules between columns (a declined outcome has a decline code, an
approved one has none) and between tables (ids already imported, outcomes and fraud reports of unknown
attempts, reports dated before their attempt).

The result, a :class:`Validation`, holds the typed contract columns, the problems (see
:mod:`events.problems` for row numbering) and which cells hold card numbers, so that the importer can write
the good rows and quarantine the bad ones without reading or checking anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import RiskgateError
from events.cardnumbers import MASK, card_number_mask
from events.checks import VALUE_CHECKS, ValueCheck, too_many_decimals_problem
from events.currencies import MINOR_UNITS, fits_minor_units
from events.io import EventTableMissingError, merge_extension, read_extension, read_table
from events.mapping import ISO8601, ColumnMapping, Derivation, Scalar, TableMapping, TimestampFormat
from events.problems import ProblemCode, ProblemLog, bad_positions, file_level, summarize
from events.schema import (
    COLUMNS,
    Check,
    Column,
    ColumnType,
    EventKind,
    ExtensionField,
    OutcomeStatus,
    table_columns,
)
from events.sources import Source, read_source

logger = logging.getLogger(__name__)

#: How much of a bad value a message quotes (card numbers are always masked first).
ECHO_CHARS: Final = 40

_TIMESTAMP_DTYPE: Final = "datetime64[us, UTC]"
_OFFSET_AT_END: Final = (
    r"[Tt ][0-9]{2}(?::?[0-9]{2}){0,2}(?:[.,][0-9]+)? ?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
)
_INT32_MAX: Final = 2**31 - 1

#: Per kind, the time column compared with the attempt's ``occurred_at``.
_TIME_AFTER_ATTEMPT: Final[dict[EventKind, str]] = {
    EventKind.OUTCOMES: "occurred_at",
    EventKind.FRAUD_REPORTS: "reported_at",
}


def id_column(kind: EventKind) -> str:
    """The column that identifies an event of ``kind`` (the one declared unique)."""
    return next(column.name for column in COLUMNS[kind] if Check.UNIQUE in column.checks)


@dataclass(frozen=True)
class Known:
    """What a file is checked against besides itself.

    ``ids``: ids of this kind already imported (a row with one of them is refused, so that importing the
    same file twice doubles nothing). ``attempt_times``: ``occurred_at`` by ``attempt_id`` of every attempt
    an outcome or fraud report may refer to; ``None`` skips the checks against attempts. ``held_back``:
    attempt ids of this import that will not be written (quarantined), named as such in messages.
    ``extension``: the extension fields recorded under the data directory, which the declared attributes
    must agree with (:func:`events.io.merge_extension`).
    """

    ids: pd.Index = field(default_factory=lambda: pd.Index([], dtype="str"))
    attempt_times: pd.Series | None = None
    held_back: pd.Index = field(default_factory=lambda: pd.Index([], dtype="str"))
    extension: tuple[ExtensionField, ...] = ()


def existing_ids(data_dir: Path, kind: EventKind) -> pd.Index:
    """The ids of ``kind`` already under ``data_dir`` (empty if there is no such table yet)."""
    try:
        table = read_table(data_dir, kind.value, columns=[id_column(kind)])
    except EventTableMissingError:
        return pd.Index([], dtype="str")
    ids: pd.Index = pd.Index(table.column(0).to_pandas())
    return ids


def existing_attempt_times(data_dir: Path) -> pd.Series | None:
    """``occurred_at`` by ``attempt_id`` of the attempts under ``data_dir`` (``None``: no attempts table)."""
    try:
        table = read_table(data_dir, EventKind.ATTEMPTS.value, columns=["attempt_id", "occurred_at"])
    except EventTableMissingError:
        return None
    frame = table.to_pandas()
    return pd.Series(frame["occurred_at"].to_numpy(), index=pd.Index(frame["attempt_id"]), name="occurred_at")


@dataclass(frozen=True)
class Validation:
    """A file checked against one event table. ``events`` has the table's columns, with the ``extension``
    (the recorded fields and those this file declares) after the core ones."""

    file: str
    kind: EventKind
    source: pd.DataFrame
    events: pd.DataFrame
    extras: pd.DataFrame
    problems: pd.DataFrame
    card_cells: dict[str, npt.NDArray[np.bool_]]
    extension: tuple[ExtensionField, ...] = ()

    @property
    def rows(self) -> int:
        return len(self.source)

    @property
    def accepted(self) -> bool:
        return self.problems.empty

    @property
    def refused_whole(self) -> bool:
        """Whether a problem concerns the whole file or a column, so no row can be accepted."""
        return not file_level(self.problems).empty

    def bad_rows(self) -> npt.NDArray[np.int64]:
        """0-based positions of the rows with a problem."""
        return bad_positions(self.problems)

    def good_mask(self) -> npt.NDArray[np.bool_]:
        good = np.ones(self.rows, dtype=bool)
        good[self.bad_rows()] = False
        return good


@dataclass(frozen=True)
class Quoted:
    """A message that quotes each bad value (masked, truncated), built only for the rows with a problem."""

    values: pd.Series
    text: str | pd.Series

    def for_rows(self, flags: npt.NDArray[np.bool_]) -> pd.Series:
        text = self.text[flags] if isinstance(self.text, pd.Series) else self.text
        quoted: pd.Series = _echo(self.values[flags]) + text
        return quoted


@dataclass
class _Run:
    """The state of one validation: the problems so far and the typed columns."""

    kind: EventKind
    mapping: TableMapping
    log: ProblemLog
    rows: int
    typed: dict[str, pd.Series] = field(default_factory=dict)
    raw: dict[str, pd.Series] = field(default_factory=dict)

    def add(
        self,
        mask: pd.Series | npt.NDArray[np.bool_],
        column: str,
        code: ProblemCode,
        message: str | pd.Series | Quoted,
    ) -> None:
        """Problems on the rows where ``mask`` is true (a per-row message is built for those rows only)."""
        flags = mask.to_numpy(dtype=bool, na_value=False) if isinstance(mask, pd.Series) else mask
        if not flags.any():
            return
        if isinstance(message, Quoted):
            message = message.for_rows(flags)
        elif isinstance(message, pd.Series):
            message = message[flags] if len(message) == len(flags) else message
        self.log.add(np.flatnonzero(flags), column, code, message)


def validate_source(
    source: Source, kind: EventKind, mapping: TableMapping, known: Known | None = None
) -> Validation:
    """Check a file as read against the ``kind`` table; never raises for bad data, returns its problems."""
    known = known or Known()
    run = _Run(kind, mapping, source.problems.copy(), len(source.frame))
    card_cells = _card_numbers(run, source.frame)
    extension, conflicts = merge_extension(known.extension, mapping.extension)
    for name, why in conflicts:
        run.log.add_file_problem(name, ProblemCode.EXTENSION_CHANGED, why)
    fields = mapping.fields(kind)
    if source.readable:  # rows of a structurally broken file cannot be numbered or checked reliably
        sources = _resolve_columns(run, source.frame, fields)
        for column in sorted(fields, key=lambda column: column.name != "currency"):
            # currency first: amounts in minor units need its exponent
            _convert(run, column, sources.get(column.name))
        for column in fields:
            _check_column(run, column, known)
        _check_rules(run, known)
    events = _events(run, table_columns(kind, extension) if kind is EventKind.ATTEMPTS else COLUMNS[kind])
    extras = _extras(run, source.frame)
    problems = run.log.table()
    logger.info("validated %s as %s: %d rows, %d problems", source.file, kind, run.rows, len(problems))
    return Validation(source.file, kind, source.frame, events, extras, problems, card_cells, extension)


def _events(run: _Run, columns: tuple[Column, ...]) -> pd.DataFrame:
    """The typed columns of the table (a recorded field this file does not declare: nulls)."""
    if not run.typed:
        return pd.DataFrame()
    return pd.DataFrame(
        {
            column.name: run.typed[column.name] if column.name in run.typed else _nulls(column.type, run.rows)
            for column in columns
        }
    )


# --- columns -------------------------------------------------------------------------------------------


def _resolve_columns(run: _Run, frame: pd.DataFrame, fields: tuple[Column, ...]) -> dict[str, pd.Series]:
    """Column → its values as given (read from the file, a constant, derived; with its default), for those
    the mapping and the file provide; missing and unexpected source columns are problems."""
    mapping = run.mapping
    present = set(frame.columns)
    given: dict[str, pd.Series] = {}
    used = set(mapping.keep) | set(mapping.ignore)
    for column in fields:
        name = mapping.source_of(column.name)
        if column.name in mapping.constants:
            given[column.name] = _constant(mapping.constants[column.name], run.rows)
        elif column.name in mapping.derive:
            derivation = mapping.derive[column.name]
            used.update(derivation.sources)
            derived = _derived(run, column.name, derivation, frame)
            if derived is not None:
                given[column.name] = derived
        elif name is not None and name in present:
            given[column.name] = frame[name].reset_index(drop=True)
            used.add(name)
        elif mapping.must_be_read(column.name) or (column.required and column.name not in mapping.defaults):
            wanted = "" if name == column.name else f" (mapped from source column {name!r})"
            run.log.add_file_problem(
                column.name,
                ProblemCode.MISSING_COLUMN,
                f"missing {'required' if column.required else 'mapped'} column {column.name!r}{wanted}: "
                "add it to the export, or map it under columns, constants, defaults or derive in the mapping",
            )
        if column.name in mapping.defaults:
            given[column.name] = _with_default(
                given.get(column.name), mapping.defaults[column.name], run.rows
            )
    for name in mapping.keep:
        if name not in present:
            run.log.add_file_problem(
                name, ProblemCode.MISSING_COLUMN, f"column {name!r} listed under keep is missing"
            )
    for name in frame.columns:
        if name not in used:
            run.log.add_file_problem(
                str(name),
                ProblemCode.UNEXPECTED_COLUMN,
                f"unexpected column {name!r}: not in the {run.kind} contract; map it under columns, declare "
                "it under attributes, or list it under keep or ignore in the mapping file",
            )
    return given


def _constant(value: Scalar, rows: int) -> pd.Series:
    """A constant as a text column, read like a CSV field."""
    return pd.Series([str(value)] * rows, dtype="str")


def _with_default(values: pd.Series | None, default: Scalar, rows: int) -> pd.Series:
    """``values`` with the missing (or blank) ones set to ``default`` (all of them if there are none)."""
    if values is None:
        return _constant(default, rows)
    if pd.api.types.is_string_dtype(values):
        text = values.astype("str")
        return text.where(text.notna() & (text.str.strip() != ""), str(default)).astype("str")
    if pd.api.types.is_numeric_dtype(values) and isinstance(default, int | float):
        return values.fillna(default)
    text = _as_text(values)
    return text.where(text.notna(), str(default)).astype("str")


def _derived(run: _Run, target: str, derivation: Derivation, frame: pd.DataFrame) -> pd.Series | None:
    """The values of a derived column (``None``, with a problem, if a source column is missing)."""
    missing = [name for name in derivation.sources if name not in frame.columns]
    for name in missing:
        run.log.add_file_problem(
            target,
            ProblemCode.MISSING_COLUMN,
            f"derive.{target}: source column {name!r} is missing: add it to the export or fix the mapping",
        )
    if missing:
        return None
    parts = [frame[name].reset_index(drop=True) for name in derivation.sources]
    if derivation.divide is not None:
        return parts[0]  # divided once read as numbers (see _to_float), so bad values are quoted as given
    texts = [_as_text(part) for part in parts]
    if derivation.concat is not None:
        joined = texts[0]
        for text in texts[1:]:
            joined = joined + derivation.sep + text  # missing if any part is missing
        derived = joined.astype("str")
    else:
        derived = texts[0]
        for text in texts[1:]:
            derived = derived.where(derived.notna() & (derived.str.strip() != ""), text)
        derived = derived.astype("str")
    run.add(
        card_number_mask(derived),
        target,
        ProblemCode.CARD_NUMBER,
        f"derive.{target} makes what looks like a card number of its source columns: card numbers must "
        "never enter riskgate; derive it from other columns",
    )
    return derived


def _card_numbers(run: _Run, frame: pd.DataFrame) -> dict[str, npt.NDArray[np.bool_]]:
    """Cells of every source column that hold a card number, reported without the number."""
    cells: dict[str, npt.NDArray[np.bool_]] = {}
    for name in frame.columns:
        if not (pd.api.types.is_string_dtype(frame[name]) or pd.api.types.is_numeric_dtype(frame[name])):
            continue
        mask = card_number_mask(frame[name])
        if mask.any():
            cells[str(name)] = mask
            run.add(
                mask,
                str(name),
                ProblemCode.CARD_NUMBER,
                "holds what looks like a card number (13-19 digits passing the Luhn check): card numbers "
                "must never be exported; replace them with the gateway's token or fingerprint",
            )
    return cells


def _extras(run: _Run, frame: pd.DataFrame) -> pd.DataFrame:
    """The id column and the source columns the mapping keeps, as text."""
    identity = id_column(run.kind)
    if not run.mapping.keep or identity not in run.typed:
        return pd.DataFrame()
    kept = {name: _as_text(frame[name]) for name in run.mapping.keep if name in frame.columns}
    return pd.DataFrame({identity: run.typed[identity], **kept})


# --- conversion to the contract's types ----------------------------------------------------------------


def _convert(run: _Run, column: Column, values: pd.Series | None) -> None:
    if values is None:
        run.typed[column.name] = _nulls(column.type, run.rows)
        return
    run.raw[column.name] = values
    converters: dict[ColumnType, Callable[[_Run, Column, pd.Series], pd.Series]] = {
        ColumnType.STRING: _to_text,
        ColumnType.FLOAT: _to_float,
        ColumnType.INT: _to_int,
        ColumnType.TIMESTAMP: _to_timestamp,
    }
    run.typed[column.name] = converters[column.type](run, column, values)


def _nulls(kind: ColumnType, rows: int) -> pd.Series:
    dtypes = {
        ColumnType.STRING: "str",
        ColumnType.FLOAT: "float64",
        ColumnType.INT: "Int64",
        ColumnType.TIMESTAMP: _TIMESTAMP_DTYPE,
    }
    return pd.Series([None] * rows, dtype=dtypes[kind])


def _as_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_string_dtype(values):
        return values.astype("str")
    return values.astype("str").where(values.notna())


def _wrong_type(run: _Run, column: Column, values: pd.Series, expected: str) -> pd.Series:
    run.log.add_file_problem(
        column.name,
        ProblemCode.WRONG_TYPE,
        f"column {column.name!r} holds {values.dtype} values where {expected} are expected",
    )
    return _nulls(column.type, len(values))


def _to_text(run: _Run, column: Column, values: pd.Series) -> pd.Series:
    if not (pd.api.types.is_string_dtype(values) or pd.api.types.is_integer_dtype(values)):
        return _wrong_type(run, column, values, "text (or whole numbers)")
    text = _as_text(values)
    value_map = run.mapping.values.get(column.name)
    if value_map:
        mapped = text.map(value_map)
        text = mapped.where(mapped.notna(), text).astype("str")
    return text


def _numbers(run: _Run, column: Column, values: pd.Series) -> pd.Series:
    """The values as float64 (NaN where missing or not a number; those not a number are problems)."""
    if pd.api.types.is_bool_dtype(values):
        return _wrong_type(run, column, values, "numbers")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    if not pd.api.types.is_string_dtype(values):
        return _wrong_type(run, column, values, "numbers")
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    run.add(
        values.notna() & numbers.isna(),
        column.name,
        ProblemCode.NOT_A_NUMBER,
        Quoted(values, " is not a number (write it with a dot for decimals and no thousands separator)"),
    )
    return numbers


def _to_float(run: _Run, column: Column, values: pd.Series) -> pd.Series:
    numbers = _numbers(run, column, values)
    derivation = run.mapping.derive.get(column.name)
    if derivation is not None and derivation.divide is not None:
        numbers = numbers / derivation.divide[1]
    if column.name == "amount" and run.mapping.amount_unit == "minor":
        return _from_minor_units(run, column, numbers)
    return numbers


def _from_minor_units(run: _Run, column: Column, minor: pd.Series) -> pd.Series:
    whole = _whole(minor)
    run.add(
        minor.notna() & np.isfinite(minor) & ~whole,
        column.name,
        ProblemCode.NOT_AN_INTEGER,
        Quoted(minor, " is not a whole number of minor units (amount_unit is minor in the mapping)"),
    )
    currency = run.typed["currency"]
    run.add(
        minor.notna() & currency.isna(),
        column.name,
        ProblemCode.NO_CURRENCY,
        "an amount in minor units needs its currency to be converted: export or map the currency, set it "
        "under constants, or derive the amount (derive: {amount: {divide: [column, 100]}})",
    )
    exponent = currency.map(MINOR_UNITS)
    return (minor / 10.0 ** exponent.astype("float64")).where(whole)


def _whole(numbers: pd.Series) -> pd.Series:
    finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
    return pd.Series(finite & (np.floor(np.where(finite, numbers, 0.0)) == np.where(finite, numbers, 0.5)))


def _to_int(run: _Run, column: Column, values: pd.Series) -> pd.Series:
    numbers = _numbers(run, column, values)
    whole = _whole(numbers) & (numbers.abs() <= _INT32_MAX)
    run.add(
        numbers.notna() & ~whole,
        column.name,
        ProblemCode.NOT_AN_INTEGER,
        Quoted(values, f" is not a whole number (between -{_INT32_MAX} and {_INT32_MAX})"),
    )
    return numbers.where(whole).astype("Int64")


def _to_timestamp(run: _Run, column: Column, values: pd.Series) -> pd.Series:
    timestamps = run.mapping.timestamps
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = values.dt.tz_convert("UTC").astype(_TIMESTAMP_DTYPE)
        return converted
    if pd.api.types.is_datetime64_dtype(values):
        return _localize(run, column, values, timestamps)
    if not pd.api.types.is_string_dtype(values):
        return _wrong_type(run, column, values, "timestamps")
    present = values.notna().to_numpy(dtype=bool)
    if timestamps.format == ISO8601:
        aware = present & values.str.contains(_OFFSET_AT_END, regex=True, na=False).to_numpy(dtype=bool)
    else:
        aware = present & timestamps.has_offset
    parsed = pd.Series(pd.NaT, index=values.index, dtype=_TIMESTAMP_DTYPE)
    failed = np.zeros(len(values), dtype=bool)
    if aware.any():
        parsed[aware] = pd.to_datetime(values[aware], format=timestamps.format, utc=True, errors="coerce")
        failed |= aware & parsed.isna().to_numpy(dtype=bool)
    naive_rows = present & ~aware
    if naive_rows.any():
        naive = pd.to_datetime(values[naive_rows], format=timestamps.format, errors="coerce")
        failed[np.flatnonzero(naive_rows)[naive.isna().to_numpy(dtype=bool)]] = True
        parsed[naive_rows] = _localize(run, column, naive, timestamps, np.flatnonzero(naive_rows))
    run.add(
        failed,
        column.name,
        ProblemCode.UNPARSEABLE_TIMESTAMP,
        Quoted(values, f" is not a timestamp in the format {timestamps.format}"),
    )
    return parsed


def _localize(
    run: _Run,
    column: Column,
    naive: pd.Series,
    timestamps: TimestampFormat,
    positions: npt.NDArray[np.int64] | None = None,
) -> pd.Series:
    """Naive timestamps (at row ``positions``) read in the mapping's time zone; problems if it gives none."""
    rows = np.arange(len(naive)) if positions is None else positions
    parsed = naive.notna().to_numpy(dtype=bool)
    if timestamps.timezone is None:
        run.add(
            _flags(run.rows, rows[parsed]),
            column.name,
            ProblemCode.NAIVE_TIMESTAMP,
            "timestamp without a UTC offset: export offsets (2024-05-01T10:00:00+02:00) "
            "or give timestamps.timezone in the mapping",
        )
        return pd.Series(pd.NaT, index=naive.index, dtype=_TIMESTAMP_DTYPE)
    local = naive.dt.tz_localize(timestamps.timezone, ambiguous="NaT", nonexistent="NaT")
    run.add(
        _flags(run.rows, rows[parsed & local.isna().to_numpy(dtype=bool)]),
        column.name,
        ProblemCode.NONEXISTENT_LOCAL_TIME,
        f"local time that is skipped or repeated in {timestamps.timezone} (a daylight-saving change): "
        "export UTC offsets to make it unambiguous",
    )
    utc: pd.Series = local.dt.tz_convert("UTC").astype(_TIMESTAMP_DTYPE)
    return utc


def _flags(rows: int, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    flags = np.zeros(rows, dtype=bool)
    flags[positions] = True
    return flags


def _echo(values: pd.Series) -> pd.Series:
    """Values quoted for a message: truncated, with any card number masked."""
    text = _as_text(values).fillna("").str.slice(0, ECHO_CHARS)
    masked = text.where(~card_number_mask(text), MASK)
    return "'" + masked + "'"


# --- checks ----------------------------------------------------------------------------------------------


def _check_column(run: _Run, column: Column, known: Known) -> None:
    if column.name not in run.raw:
        return
    typed = run.typed[column.name]
    if column.required:
        run.add(
            run.raw[column.name].isna(), column.name, ProblemCode.MISSING_VALUE, "required value is empty"
        )
    if column.values is not None:
        run.add(
            typed.notna() & ~typed.isin(column.values),
            column.name,
            ProblemCode.UNKNOWN_VALUE,
            Quoted(
                typed,
                f" is not one of {', '.join(column.values)} "
                f"(map source values under values.{column.name} in the mapping file)",
            ),
        )
    for check in column.checks:
        _apply(run, column, VALUE_CHECKS[check], typed, known)


def _apply(run: _Run, column: Column, check: ValueCheck, values: pd.Series, known: Known) -> None:
    """One declared check over a column (those it includes first), and what is specific to imports: ids
    repeated in the file or imported before, an amount's decimals against its currency."""
    for included in check.includes:
        _apply(run, column, VALUE_CHECKS[included], values, known)
    if check.check is Check.UNIQUE:
        _check_unique(run, column, values, known)
        return
    other = run.typed[check.against] if check.against is not None else None
    message = Quoted(values, check.problem) if check.quote else check.problem
    run.add(~check.accepts(values, other), column.name, check.code, message)
    if check.check is Check.CURRENCY:
        _check_minor_units(run, values)


def _check_unique(run: _Run, column: Column, values: pd.Series, known: Known) -> None:
    present = values.notna()
    repeated = present & values.duplicated(keep="first")
    if repeated.any():
        firsts = values[present & ~repeated]
        first_row = pd.Series(firsts.index + 1, index=firsts.to_numpy())
        rows = values[repeated].map(first_row).astype("int64").astype("str")
        run.add(
            repeated,
            column.name,
            ProblemCode.DUPLICATE_ID,
            "duplicate " + column.name + ", first in row " + rows,
        )
    run.add(
        present & values.isin(known.ids),
        column.name,
        ProblemCode.ALREADY_IMPORTED,
        f"{column.name} already imported: a file is imported once (remove the rows already imported)",
    )


def _check_minor_units(run: _Run, currency: pd.Series) -> None:
    """Amounts in major units with more decimals than their currency's minor unit (the ``currency`` check's
    second half; amounts given in minor units were checked whole when converted)."""
    amount = run.typed.get("amount")
    if amount is None or run.mapping.amount_unit == "minor":
        return
    exponent = currency.map(MINOR_UNITS).astype("float64")
    excess = ~fits_minor_units(amount.to_numpy(dtype="float64", na_value=np.nan), exponent.to_numpy())
    if excess.any():
        decimals = exponent.astype("Int64").astype("str")
        problem = too_many_decimals_problem(decimals)
        run.add(excess, "amount", ProblemCode.TOO_MANY_DECIMALS, Quoted(amount, problem))


# --- rules between columns and tables ----------------------------------------------------------------


def _check_rules(run: _Run, known: Known) -> None:
    if run.kind is EventKind.OUTCOMES:
        _check_decline_codes(run)
    if run.kind in _TIME_AFTER_ATTEMPT and known.attempt_times is not None and "attempt_id" in run.raw:
        _check_against_attempts(run, known, known.attempt_times)


def _check_decline_codes(run: _Run) -> None:
    status, code = run.typed["status"], run.typed["decline_code"]
    run.add(
        (status == OutcomeStatus.DECLINED.value) & code.isna(),
        "decline_code",
        ProblemCode.DECLINE_CODE_MISSING,
        "a declined outcome needs a decline_code (map the gateway's codes under values.decline_code)",
    )
    run.add(
        (status == OutcomeStatus.APPROVED.value) & code.notna(),
        "decline_code",
        ProblemCode.DECLINE_CODE_UNEXPECTED,
        "an approved outcome has no decline_code (leave it empty)",
    )


def _check_against_attempts(run: _Run, known: Known, attempt_times: pd.Series) -> None:
    attempt_id = run.typed["attempt_id"]
    found = attempt_id.isin(attempt_times.index)
    held_back = attempt_id.isin(known.held_back)
    run.add(
        attempt_id.notna() & ~found & ~held_back,
        "attempt_id",
        ProblemCode.UNKNOWN_ATTEMPT,
        "no attempt with this attempt_id: not among the attempts already imported nor those of this import "
        "(import the attempts first, or together)",
    )
    run.add(
        ~found & held_back,
        "attempt_id",
        ProblemCode.UNKNOWN_ATTEMPT,
        "its attempt is quarantined in this import: fix the attempt and import both again",
    )
    time_column = _TIME_AFTER_ATTEMPT[run.kind]
    attempt_at = attempt_id.map(attempt_times).astype(_TIMESTAMP_DTYPE)
    run.add(
        found & (run.typed[time_column] < attempt_at),
        time_column,
        ProblemCode.BEFORE_ATTEMPT,
        f"{time_column} is before the attempt's occurred_at",
    )


# --- one file, as `riskgate validate` checks it -------------------------------------------------------


class UnknownKindError(RiskgateError, ValueError):
    """The event kind of a file could not be told from its name."""


_KIND_HINTS: Final[dict[EventKind, str]] = {
    EventKind.ATTEMPTS: "attempt",
    EventKind.OUTCOMES: "outcome",
    EventKind.FRAUD_REPORTS: "fraud",
}


def parse_kind(name: str) -> EventKind:
    """The event kind called ``name``; raises :class:`UnknownKindError` listing the kinds."""
    try:
        return EventKind(name)
    except ValueError:
        raise UnknownKindError(
            f"unknown event kind {name!r}: use one of {', '.join(kind.value for kind in EventKind)}"
        ) from None


def guess_kind(path: Path) -> EventKind:
    """The event kind a file name suggests (``attempts.csv``, ``2025-03-outcomes.parquet``, ``fraud...``)."""
    matches = [kind for kind, hint in _KIND_HINTS.items() if hint in path.stem.lower()]
    if len(matches) != 1:
        raise UnknownKindError(
            f"{path}: cannot tell the event kind from the file name; give --kind "
            f"({' | '.join(kind.value for kind in EventKind)})"
        )
    return matches[0]


@dataclass(frozen=True)
class FileCheck:
    """A file validated on its own, against the tables already under a data directory."""

    validation: Validation
    notes: tuple[str, ...]

    def summary(self, examples: int = 10) -> list[str]:
        validation = self.validation
        verdict = "valid" if validation.accepted else "refused"
        lines = [f"{validation.file}: {validation.kind}, {validation.rows} rows: {verdict}"]
        return lines + [f"note: {note}" for note in self.notes] + summarize(validation.problems, examples)


def check_file(path: Path, kind: EventKind, mapping: ColumnMapping, data_dir: Path) -> FileCheck:
    """Validate one file as an import would, against the ids and attempts already under ``data_dir``."""
    notes: list[str] = []
    attempt_times = existing_attempt_times(data_dir) if kind is not EventKind.ATTEMPTS else None
    if kind is not EventKind.ATTEMPTS and attempt_times is None:
        notes.append(
            f"no attempts under {data_dir}: the attempt ids were not checked "
            "(`riskgate import` checks them against the attempts imported with or before them)"
        )
    extension = read_extension(data_dir) if kind is EventKind.ATTEMPTS else ()
    known = Known(existing_ids(data_dir, kind), attempt_times, extension=extension)
    return FileCheck(validate_source(read_source(path), kind, mapping.table(kind), known), tuple(notes))
