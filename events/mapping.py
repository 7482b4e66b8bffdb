"""The column-mapping file: how a provider's own export maps onto the event contract.

A mapping is a YAML file with one section per event kind (``attempts``, ``outcomes``, ``fraud_reports``),
each optional. ``events/examples/mapping.example.yaml`` documents every key. In short, per kind:

* ``columns``: contract column → source column. A contract column not listed is read from the source column
  of the same name, if the file has one (so only renamed columns need listing).
* ``values``: contract column → {source value: contract value}, e.g. ``method_type: {CC: card}``. Values
  not listed are taken as they are (and then validated like any other).
* ``timestamps``: ``format`` (``ISO8601``, the default, or a ``strftime`` format) and ``timezone`` (an IANA
  name such as ``Europe/Berlin``) of the source's timestamps. A timestamp without a UTC offset is refused
  unless a time zone is given.
* ``amount_unit``: ``major`` (12.99, the default) or ``minor`` (1299, in the currency's minor unit).
* ``keep`` / ``ignore``: source columns outside the contract to keep (stored beside the table, see
  :mod:`events.importer`) or to leave out. Any other extra column in the file is a problem, never silently
  dropped.

The file is validated strictly: an unknown key, a contract column that does not exist, a value-map target
outside the column's allowed values, or an unknown time zone is an error naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events import yamlfile
from events.schema import COLUMNS, Column, ColumnType, EventKind

ISO8601 = "ISO8601"


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimestampFormat(_Strict):
    """How the source writes its timestamps."""

    format: str = Field(ISO8601, description="'ISO8601' or a strftime format such as '%d/%m/%Y %H:%M'.")
    timezone: str | None = Field(
        None, description="IANA time zone of timestamps written without a UTC offset, e.g. 'Europe/Berlin'."
    )

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
                ) from None
        return value

    @field_validator("format")
    @classmethod
    def _has_directives(cls, value: str) -> str:
        if value != ISO8601 and "%" not in value:
            raise ValueError(
                f"{value!r} is neither 'ISO8601' nor a strftime format (such as '%Y-%m-%d %H:%M')"
            )
        return value

    @property
    def has_offset(self) -> bool:
        """Whether a strftime format itself carries the UTC offset or zone name."""
        return "%z" in self.format or "%Z" in self.format


class TableMapping(_Strict):
    """How one source file maps onto one event table."""

    columns: dict[str, str] = Field(default_factory=dict, description="contract column → source column")
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="contract column → {source value: contract value}"
    )
    timestamps: TimestampFormat = TimestampFormat()
    amount_unit: Literal["major", "minor"] = "major"
    keep: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def source_of(self, column: str) -> str | None:
        """The source column a contract column is read from (``None``: its same-named column is ignored)."""
        if column in self.columns:
            return self.columns[column]
        return None if column in self.ignore else column

    def problems(self, kind: EventKind) -> list[str]:
        """What is wrong with this section for ``kind``, each message starting with its key."""
        declared = {column.name: column for column in COLUMNS[kind]}
        found = [
            f"{kind}.columns.{name}: not a column of the {kind} contract (columns: {', '.join(declared)})"
            for name in self.columns
            if name not in declared
        ]
        for name, value_map in self.values.items():
            found.extend(_value_map_problems(kind, name, declared.get(name), value_map))
        if self.amount_unit == "minor" and "amount" not in declared:
            found.append(f"{kind}.amount_unit: the {kind} table has no amount")
        mapped = set(self.columns.values())
        for key in ("keep", "ignore"):
            listed = getattr(self, key)
            found.extend(
                f"{kind}.{key}: {name!r} is also mapped to a contract column"
                for name in listed
                if name in mapped
            )
        found.extend(
            f"{kind}.keep: {name!r} is a contract column; it is imported as such, there is nothing to keep"
            for name in self.keep
            if name in declared and name not in self.columns
        )
        found.extend(
            f"{kind}.keep: {name!r} is also under ignore" for name in set(self.keep) & set(self.ignore)
        )
        return found


def _value_map_problems(
    kind: EventKind, name: str, column: Column | None, value_map: dict[str, str]
) -> list[str]:
    key = f"{kind}.values.{name}"
    if column is None:
        return [f"{key}: not a column of the {kind} contract"]
    if column.type is not ColumnType.STRING:
        return [f"{key}: value maps apply to text columns only ({name} is a {column.type})"]
    if column.values is None:
        return []
    allowed = set(column.values)
    return [
        f"{key}.{source!r}: maps to {target!r}, which is not one of {', '.join(column.values)}"
        for source, target in value_map.items()
        if target not in allowed
    ]


class ColumnMapping(_Strict):
    """A whole mapping file: one optional section per event kind."""

    version: Literal[1] = 1
    attempts: TableMapping = TableMapping()
    outcomes: TableMapping = TableMapping()
    fraud_reports: TableMapping = TableMapping()

    def table(self, kind: EventKind) -> TableMapping:
        mapping: TableMapping = getattr(self, kind.value)
        return mapping

    @model_validator(mode="after")
    def _fits_the_contract(self) -> ColumnMapping:
        found = [problem for kind in EventKind for problem in self.table(kind).problems(kind)]
        if found:
            raise ValueError("; ".join(found))
        return self


def load_mapping(path: Path) -> ColumnMapping:
    """Read and validate a mapping file; raises :class:`MappingError` naming the file and key."""
    return yamlfile.load(
        ColumnMapping,
        path,
        what="mapping file",
        error=MappingError,
        reference="events/examples/mapping.example.yaml",
        expected="a mapping with sections attempts / outcomes / fraud_reports",
    )
