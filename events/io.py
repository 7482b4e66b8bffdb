"""Reading and writing event tables as Parquet under a data directory.

A data directory holds one folder per event kind (``attempts/``, ``outcomes/``, ``fraud_reports/``), each a
Parquet dataset of one or more ``part-NNNNN.parquet`` files written with the contract's Arrow schema.
Writing in parts lets a
large world be produced, and read, in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from events.schema import EventKind, arrow_schema


class EventTableMissingError(FileNotFoundError):
    """An event table was asked for where there is none."""


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


def to_arrow(kind: EventKind, frame: pd.DataFrame) -> pa.Table:
    """Convert a frame holding the contract's columns to an Arrow table of the contract's schema."""
    schema = arrow_schema(kind)
    return pa.Table.from_arrays([_column_array(frame[f.name], f.type) for f in schema], schema=schema)


def _column_array(series: pd.Series, arrow_type: pa.DataType) -> pa.Array:
    """One column as Arrow. Timezone-aware timestamps go through naive UTC values, because pandas 3
    deprecates the ``Series.values`` that pyarrow would otherwise read them through."""
    if pa.types.is_timestamp(arrow_type) and isinstance(series.dtype, pd.DatetimeTZDtype):
        return pa.array(series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), type=arrow_type)
    return pa.array(series, type=arrow_type, from_pandas=True)


def write_part(data_dir: Path, name: str, part: int, table: pa.Table) -> Path:
    """Write one part of a table (creating its folder); returns the file written."""
    path = part_path(data_dir, name, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


def read_table(data_dir: Path, name: str, columns: list[str] | None = None) -> pa.Table:
    """Read a whole table (all its parts) into memory."""
    return pa.concat_tables([pq.read_table(path, columns=columns) for path in part_files(data_dir, name)])


def iter_parts(data_dir: Path, name: str, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Read a table part by part, for bounded-memory passes over a large world."""
    for path in part_files(data_dir, name):
        yield pq.read_table(path, columns=columns)


def read_events(data_dir: Path, kind: EventKind, columns: list[str] | None = None) -> pd.DataFrame:
    """Read an event table as a pandas frame with the contract's dtypes."""
    frame: pd.DataFrame = read_table(data_dir, kind.value, columns).to_pandas()
    return frame
