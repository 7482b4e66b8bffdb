"""Reading and writing event tables as Parquet under a data directory, and the extension recorded there.

A data directory holds one folder per event kind (``attempts/``, ``outcomes/``, ``fraud_reports/``), each a
Parquet dataset of one or more ``part-NNNNN.parquet`` files written with the contract's Arrow schema.
Writing in parts lets a large world be produced, and read, in bounded memory.

The provider's extension (its own typed attempt fields, see :class:`events.schema.ExtensionField`) is
recorded in ``DATA_DIR/extension.json`` by the import that first declares each field; attempt parts carry
the extension's columns after the core ones. A field is never removed or retyped once recorded, so an event
table is always read with one schema: a part written before a column existed (a field added later, a core
column added to the contract) reads as nulls in that column.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import EXIT_FAILURE, RiskgateError
from events.schema import (
    EventKind,
    ExtensionField,
    ExtensionFieldError,
    FieldType,
    arrow_schema,
    table_columns,
)

#: The file, under a data directory, that records the provider's extension fields.
EXTENSION_FILE: Final = "extension.json"
_EXTENSION_VERSION: Final = 1


class EventTableMissingError(RiskgateError, FileNotFoundError):
    """An event table was asked for where there is none."""


class EventFrameError(RiskgateError, ValueError):
    """A frame to be written lacks a required column of its table."""

    exit_code = EXIT_FAILURE  # a bug in the writer's caller: the run did not succeed


class ExtensionRecordError(RiskgateError, ValueError):
    """A data directory's ``extension.json`` that cannot be read."""


def table_dir(data_dir: Path, name: str) -> Path:
    """The folder of one table (an event kind, or another table such as the simulator's truth)."""
    return data_dir / name


def part_path(data_dir: Path, name: str, part: int) -> Path:
    return table_dir(data_dir, name) / f"part-{part:05d}.parquet"


def part_files(data_dir: Path, name: str) -> list[Path]:
    """The Parquet parts of a table, in part order; raises if the table does not exist."""
    folder = table_dir(data_dir, name)
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise EventTableMissingError(
            f"no '{name}' table under {data_dir}: expected Parquet parts in {folder}/ "
            "(run `riskgate simulate` or `riskgate import` first)"
        )
    return parts


# --- the extension record --------------------------------------------------------------------------------


def extension_path(data_dir: Path) -> Path:
    return data_dir / EXTENSION_FILE


def read_extension(data_dir: Path) -> tuple[ExtensionField, ...]:
    """The provider's extension fields recorded under ``data_dir``, in column order (none: ``()``)."""
    path = extension_path(data_dir)
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as error:
        raise ExtensionRecordError(f"{path}: cannot read the recorded extension ({error})") from None
    try:
        return tuple(
            ExtensionField(
                name=str(item["name"]),
                type=FieldType(item["type"]),
                doc=str(item.get("doc", "")),
                values=None if item.get("values") is None else tuple(str(v) for v in item["values"]),
            )
            for item in raw["fields"]
        )
    except (KeyError, TypeError, ValueError, ExtensionFieldError) as error:
        raise ExtensionRecordError(
            f"{path}: not a riskgate extension record ({error}); it is written by `riskgate import`, "
            "do not edit it by hand"
        ) from None


def write_extension(data_dir: Path, fields: tuple[ExtensionField, ...]) -> Path:
    """Record the extension fields under ``data_dir`` (atomically: a reader sees the old or the new)."""
    path = extension_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "version": _EXTENSION_VERSION,
        "fields": [
            {
                "name": field.name,
                "type": field.type.value,
                "doc": field.doc,
                "values": None if field.values is None else list(field.values),
            }
            for field in fields
        ],
    }
    handle, staged = tempfile.mkstemp(prefix=".extension-", suffix=".json", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    Path(staged).replace(path)
    return path


def merge_extension(
    recorded: tuple[ExtensionField, ...], declared: tuple[ExtensionField, ...]
) -> tuple[tuple[ExtensionField, ...], list[tuple[str, str]]]:
    """The extension after an import declaring ``declared``, and the conflicts (field, why) with the record.

    A recorded field keeps its place and type; a category may gain values at the end of its list (the codes
    of the others stay); a new field is added at the end; a recorded field the import does not declare stays
    (its rows of this import are null). A declared doc replaces the recorded one. Any other change (a type,
    a category's values reordered or removed) is a conflict, and the record is returned unchanged for it.
    """
    by_name = {field.name: field for field in declared}
    merged: list[ExtensionField] = []
    conflicts: list[tuple[str, str]] = []
    for old in recorded:
        new = by_name.pop(old.name, None)
        if new is None:
            merged.append(old)
            continue
        why = _incompatibility(old, new)
        if why:
            conflicts.append((old.name, why))
        merged.append(old if why else new)
    merged.extend(by_name.values())
    return tuple(merged), conflicts


def _incompatibility(old: ExtensionField, new: ExtensionField) -> str | None:
    where = f"attribute {old.name!r} is recorded in the data directory's {EXTENSION_FILE} as a {old.type}"
    fix = "a field never changes once imported: declare a new field name (or use a new data directory)"
    if old.type is not new.type:
        return f"{where} but declared here as a {new.type}: {fix}"
    if old.values is not None and new.values is not None and new.values[: len(old.values)] != old.values:
        return (
            f"{where} with values {', '.join(old.values)} but declared here with {', '.join(new.values)}: "
            f"values may only be added at the end of the list; {fix}"
        )
    return None


# --- writing -------------------------------------------------------------------------------------------


def to_arrow(kind: EventKind, frame: pd.DataFrame, extension: tuple[ExtensionField, ...] = ()) -> pa.Table:
    """Convert a frame holding the contract's columns (and the extension's) to an Arrow table of the
    contract's schema. An optional column the frame lacks is written as nulls, so every part of a table has
    the same schema; a required one it lacks is an :class:`EventFrameError`."""
    columns = table_columns(kind, extension)
    missing = [column.name for column in columns if column.required and column.name not in frame.columns]
    if missing:
        raise EventFrameError(
            f"cannot write {kind}: the frame lacks the required column(s) {', '.join(missing)}"
        )
    schema = arrow_schema(kind, extension)
    return pa.Table.from_arrays(
        [
            _column_array(frame[f.name], f.type) if f.name in frame.columns else pa.nulls(len(frame), f.type)
            for f in schema
        ],
        schema=schema,
    )


def _column_array(series: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    """One column as Arrow. Timezone-aware timestamps go through naive UTC values, because pandas 3
    deprecates the ``Series.values`` that pyarrow would otherwise read them through."""
    if series.isna().all():  # an optional column left empty, whatever dtype pandas gave it
        return pa.nulls(len(series), arrow_type)
    if pa.types.is_timestamp(arrow_type) and isinstance(series.dtype, pd.DatetimeTZDtype):
        return pa.array(series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), type=arrow_type)
    return pa.array(series, type=arrow_type, from_pandas=True)


def write_part(data_dir: Path, name: str, part: int, table: pa.Table) -> Path:
    """Write one part of a table (creating its folder); returns the file written."""
    path = part_path(data_dir, name, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


# --- reading -------------------------------------------------------------------------------------------


def table_schema(data_dir: Path, name: str) -> pa.Schema | None:
    """The schema an event table is read with (the attempts: with the recorded extension); ``None`` for
    another table, read as written."""
    try:
        kind = EventKind(name)
    except ValueError:
        return None
    return arrow_schema(kind, read_extension(data_dir) if kind is EventKind.ATTEMPTS else ())


def read_table(data_dir: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """Read a whole table (all its parts) into memory; an event table with its one schema."""
    return pa.concat_tables(list(iter_parts(data_dir, name, columns)))


def iter_parts(data_dir: Path, name: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Read a table part by part, for bounded-memory passes over a large world."""
    parts = part_files(data_dir, name)
    schema = table_schema(data_dir, name)
    for path in parts:
        yield pq.read_table(path, columns=columns) if schema is None else _conformed(path, schema, columns)


def _conformed(path: Path, schema: pa.Schema, columns: list[str] | None) -> pa.Table:
    """One part with exactly the table's (selected) columns and types; those it lacks are nulls."""
    wanted = schema if columns is None else pa.schema([_field(schema, name, path) for name in columns])
    with pq.ParquetFile(path) as file:
        present = set(file.schema_arrow.names)
        table = file.read(columns=[name for name in wanted.names if name in present])
        rows = file.metadata.num_rows
    return pa.Table.from_arrays(
        [table.column(f.name).cast(f.type) if f.name in present else pa.nulls(rows, f.type) for f in wanted],
        schema=wanted,
    )


def _field(schema: pa.Schema, name: str, path: Path) -> pa.Field:
    index = schema.get_field_index(name)
    if index < 0:
        raise KeyError(
            f"{path.parent}: the table has no column {name!r} (columns: {', '.join(schema.names)})"
        )
    return schema.field(index)


def read_events(data_dir: Path, kind: EventKind, columns: list[str] | None = None) -> pd.DataFrame:
    """Read an event table as a pandas frame with the contract's dtypes (and the attempts' extension)."""
    frame: pd.DataFrame = read_table(data_dir, kind.value, columns).to_pandas()
    return frame
