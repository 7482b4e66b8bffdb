"""Import a provider's own export (CSV or Parquet) into the event tables, through the contract.

:func:`import_files` reads up to one file per event kind with a column mapping, validates them together
(outcomes and fraud reports against the attempts already imported plus those of this import), and then
does exactly one of three things:

* **accepted**: every row is valid; each table gets one new Parquet part under the data directory
  (:mod:`events.io`), next to what is already there;
* **refused**: nothing is written, and the problems (file, row, column, why) are returned;
* **quarantined** (only with ``quarantine=DIR``): the good rows are written, the bad ones go to
  ``DIR/<file>.<kind>.<time>.quarantine.csv`` with all their source columns (card numbers masked), their
  1-based ``source_row`` and a ``reasons`` column. A problem with a whole file (a missing column, an
  unexpected one, a malformed CSV) still refuses everything: there are no good rows to speak of.

Nothing is dropped silently: for every file, rows in = rows written + rows quarantined (or all refused),
and the result says so. Ids already imported are refused, so importing a file twice doubles nothing.

The mapping's ``attributes`` (the provider's extension) are written as typed columns of the attempts parts,
after the core ones, and recorded in ``DATA_DIR/extension.json`` (:func:`events.io.read_extension`): an
import may add fields (earlier parts read as null in them) but never retype one (it is refused). Source
columns the mapping lists under ``keep`` are written untyped to a ``<kind>_extra`` table in long form
(id, column, value), whose schema never changes whatever columns are kept.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import EXIT_FAILURE, RiskgateError
from events.cardnumbers import mask_card_numbers
from events.io import (
    EventTableMissingError,
    part_files,
    part_path,
    read_extension,
    to_arrow,
    write_extension,
    write_part,
)
from events.mapping import ColumnMapping
from events.problems import PROBLEM_COLUMNS, summarize
from events.schema import EventKind
from events.sources import read_source
from events.validate import (
    Known,
    Validation,
    existing_attempt_times,
    existing_ids,
    id_column,
    validate_source,
)

logger = logging.getLogger(__name__)

#: Validation order: attempts first, since the others refer to them.
IMPORT_ORDER = (EventKind.ATTEMPTS, EventKind.OUTCOMES, EventKind.FRAUD_REPORTS)


class ImportStatus(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    QUARANTINED = "accepted with rows quarantined"


class ImportCountError(RiskgateError, RuntimeError):
    """Rows in did not equal rows written + quarantined: a bug, reported rather than hidden."""

    exit_code = EXIT_FAILURE  # a bug: the run did not succeed


@dataclass(frozen=True)
class TableImport:
    """What happened to one file."""

    kind: EventKind
    file: str
    rows_in: int
    rows_written: int
    rows_quarantined: int
    problems: int
    part: Path | None = None
    quarantine_file: Path | None = None

    @property
    def rows_refused(self) -> int:
        return self.rows_in - self.rows_written - self.rows_quarantined


@dataclass(frozen=True)
class ImportResult:
    status: ImportStatus
    tables: tuple[TableImport, ...]
    problems: pd.DataFrame
    notes: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return self.status is ImportStatus.REFUSED

    def summary(self, examples: int = 10) -> list[str]:
        """Human lines: the verdict, the counts per file, then the problems (summarised)."""
        lines = [f"import {self.status.value}", *(f"note: {note}" for note in self.notes)]
        for table in self.tables:
            line = (
                f"  {table.kind}: {table.file}: {table.rows_in} rows in, {table.rows_written} written, "
                f"{table.rows_quarantined} quarantined, {table.rows_refused} refused"
            )
            lines.append(line)
            lines += [f"    written to {table.part}"] if table.part else []
            lines += [f"    quarantined to {table.quarantine_file}"] if table.quarantine_file else []
        return lines + summarize(self.problems, examples)


def import_files(
    files: Mapping[EventKind, Path],
    mapping: ColumnMapping,
    data_dir: Path,
    quarantine: Path | None = None,
) -> ImportResult:
    """Validate the given files together and import them whole, refuse them whole, or quarantine bad rows.

    Imports into one data directory are serialised (an exclusive lock on ``DATA_DIR/.import.lock``), so
    two concurrent imports cannot both accept the same ids.
    """
    with _import_lock(data_dir):
        validations = _validate_together(files, mapping, data_dir, quarantine is not None)
        problems = (
            pd.concat([v.problems for v in validations], ignore_index=True) if validations else _no_problems()
        )
        if problems.empty:
            status = ImportStatus.ACCEPTED
        elif quarantine is None or any(v.refused_whole for v in validations):
            status = ImportStatus.REFUSED
        else:
            status = ImportStatus.QUARANTINED
        tables = tuple(_settle(v, data_dir, quarantine, status) for v in validations)
    logger.info("import %s: %s", status.value, ", ".join(f"{t.kind}={t.rows_written}" for t in tables))
    notes: tuple[str, ...] = ()
    if quarantine is not None and status is ImportStatus.REFUSED:
        notes = ("nothing quarantined: a problem concerns a whole file or column (see below), fix it first",)
    return ImportResult(status, tables, problems, notes)


@contextmanager
def _import_lock(data_dir: Path) -> Iterator[None]:
    with (_ensure(data_dir) / ".import.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame(columns=PROBLEM_COLUMNS)


def _validate_together(
    files: Mapping[EventKind, Path], mapping: ColumnMapping, data_dir: Path, quarantining: bool
) -> list[Validation]:
    validations: list[Validation] = []
    attempt_times = existing_attempt_times(data_dir)
    if attempt_times is None:
        attempt_times = pd.Series([], index=pd.Index([], dtype="str"), dtype="datetime64[us, UTC]")
    held_back = pd.Index([], dtype="str")
    extension = read_extension(data_dir)
    for kind in IMPORT_ORDER:
        if kind not in files:
            continue
        recorded = extension if kind is EventKind.ATTEMPTS else ()
        known = Known(existing_ids(data_dir, kind), attempt_times, held_back, recorded)
        validation = validate_source(read_source(files[kind]), kind, mapping.table(kind), known)
        validations.append(validation)
        if kind is EventKind.ATTEMPTS:
            attempt_times = _with_new_attempts(attempt_times, validation, quarantining)
            if quarantining:
                held_back = pd.Index(validation.events["attempt_id"][~validation.good_mask()].dropna())
    return validations


def _with_new_attempts(existing: pd.Series, attempts: Validation, good_only: bool) -> pd.Series:
    """The attempts outcomes may refer to: those imported before, and the new ones (only the good ones
    when quarantining, since only those will be written)."""
    if attempts.events.empty:
        return existing
    new = attempts.events[["attempt_id", "occurred_at"]]
    if good_only:
        new = new[attempts.good_mask()]
    new = new.dropna().drop_duplicates("attempt_id")
    new = new[~new["attempt_id"].isin(existing.index)]
    added = pd.Series(new["occurred_at"].to_numpy(), index=pd.Index(new["attempt_id"]), name="occurred_at")
    return pd.concat([existing, added]) if len(existing) else added


def _settle(
    validation: Validation, data_dir: Path, quarantine: Path | None, status: ImportStatus
) -> TableImport:
    """Write, quarantine or refuse one file's rows according to the import's verdict."""
    part: Path | None = None
    quarantine_file: Path | None = None
    written = quarantined = 0
    if status is not ImportStatus.REFUSED:
        good = validation.good_mask()
        written = int(good.sum())
        if written:
            part = _write_rows(validation, good, data_dir)
        if quarantine is not None and written < validation.rows:
            quarantine_file = write_quarantine(validation, quarantine)
            quarantined = validation.rows - written
    result = TableImport(
        validation.kind,
        validation.file,
        validation.rows,
        written,
        quarantined,
        len(validation.problems),
        part,
        quarantine_file,
    )
    if status is not ImportStatus.REFUSED and result.rows_refused != 0:
        raise ImportCountError(f"{validation.file}: {result} does not add up")
    return result


def next_part_number(data_dir: Path, name: str) -> int:
    """The number of the part that follows a table's existing parts (0 for a new table)."""
    try:
        last = part_files(data_dir, name)[-1]
    except EventTableMissingError:
        return 0
    return int(last.stem.removeprefix("part-")) + 1


def _write_rows(validation: Validation, good: np.ndarray, data_dir: Path) -> Path:
    """Write the good rows as a new part (recording the extension first, so that no part ever has a column
    the record lacks) and the kept columns beside them."""
    events = validation.events[good].reset_index(drop=True)
    if validation.kind is EventKind.ATTEMPTS and validation.extension != read_extension(data_dir):
        write_extension(data_dir, validation.extension)
        logger.info("recorded the extension: %s", ", ".join(field.name for field in validation.extension))
    table = to_arrow(validation.kind, events, validation.extension)
    part = _write_atomically(data_dir, validation.kind.value, table)
    if not validation.extras.empty:
        _write_atomically(data_dir, f"{validation.kind.value}_extra", _extras_long(validation, good))
    return part


def _extras_long(validation: Validation, good: np.ndarray) -> pa.Table:
    """Kept source columns in long form: one (id, column, value) row per non-empty kept value."""
    identity = id_column(validation.kind)
    long = validation.extras[good].melt(id_vars=[identity], var_name="column", value_name="value").dropna()
    return pa.Table.from_pandas(
        long.astype("str"),
        schema=pa.schema([(identity, pa.string()), ("column", pa.string()), ("value", pa.string())]),
        preserve_index=False,
    )


def _write_atomically(data_dir: Path, name: str, table: pa.Table) -> Path:
    """Write the next part of a table in a staging folder, then link it into place: no reader ever sees a
    half-written part, and an existing part is never replaced."""
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=_ensure(data_dir)))
    try:
        staged = write_part(staging, name, 0, table)
        _ensure(data_dir / name)
        while True:
            final = part_path(data_dir, name, next_part_number(data_dir, name))
            try:
                os.link(staged, final)
                break
            except FileExistsError:  # another writer (a simulator, say) took that number meanwhile
                continue
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d rows to %s", table.num_rows, final)
    return final


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_quarantine(validation: Validation, folder: Path) -> Path:
    """Write a file's bad rows (source columns, card numbers masked) with their reasons; returns the file."""
    bad = validation.bad_rows()
    rows = validation.source.iloc[bad].reset_index(drop=True)
    for column, cells in validation.card_cells.items():
        flagged = cells[bad]
        if flagged.any():
            text = rows[column].astype("str").where(rows[column].notna()).astype(object)
            text[flagged] = np.array([mask_card_numbers(str(value)) for value in text[flagged]], dtype=object)
            rows[column] = text
    rows.insert(0, "source_row", bad + 1)
    rows["reasons"] = _reasons(validation.problems).reindex(bad + 1).to_numpy()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = _ensure(folder) / f"{Path(validation.file).stem}.{validation.kind.value}.{stamp}.quarantine.csv"
    rows.to_csv(path, index=False)
    logger.info("quarantined %d rows of %s to %s", len(rows), validation.file, path)
    return path


def _reasons(problems: pd.DataFrame) -> pd.Series:
    """Per 1-based row, its problems as one text: ``column: code: message | ...``."""
    rows = problems.dropna(subset=["row"])
    text = rows["column"].fillna("") + ": " + rows["code"] + ": " + rows["message"]
    return text.groupby(rows["row"].astype("int64").to_numpy()).agg(" | ".join)
