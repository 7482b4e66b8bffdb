"""The column-mapping file: how a provider's own export maps onto the event contract.

A mapping is a YAML file with one section per event kind (``attempts``, ``outcomes``, ``fraud_reports``),
each optional. ``events/examples/mapping.example.yaml`` shows every key and ``docs/contract.md`` describes
the contract and the rules. In short, per kind:

* ``columns``: contract column → source column. A contract column not listed is read from the source column
  of the same name, if the file has one (so only renamed columns need listing).
* ``constants``: contract column → one value for every row (``currency: EUR`` for a one-currency export);
  such a column is not read from the file, so it may not also be mapped, derived or defaulted.
* ``defaults``: column → value filling only its missing (empty) values (``retry_number: 0``).
* ``derive``: column → one declared operation over source columns (nothing is evaluated): ``concat`` (with
  ``sep``), ``divide`` by a number, or the ``first`` non-empty of several (:class:`Derivation`).
* ``attributes`` (attempts only): the provider's own typed fields, the contract's *extension*
  (:class:`Attribute`, built as :class:`events.schema.ExtensionField`): ``{column, type, doc, values}``.
  They are validated by type and written as columns of the attempts table.
* ``values``: column → {source value: contract value}, e.g. ``method_type: {CC: card}``. Values
  not listed are taken as they are (and then validated like any other).
* ``timestamps``: ``format`` (``ISO8601``, the default, or a ``strftime`` format) and ``timezone`` (an IANA
  name such as ``Europe/Berlin``) of the source's timestamps. A timestamp without a UTC offset is refused
  unless a time zone is given.
* ``amount_unit``: ``major`` (12.99, the default) or ``minor`` (1299, in the currency's minor unit).
* ``keep`` / ``ignore``: source columns outside the contract to keep untyped (stored beside the table in
  ``<kind>_extra``, which no feature reads: declare an attribute to use a column) or to leave out. Any other
  extra column in the file is a problem, never silently dropped.

Constants, defaults and derived values are validated like values read from the file. The file is
validated strictly: an unknown key or operation, a column that does not exist, a value outside the column's
allowed values, a column set twice, or an unknown time zone is an error naming the file and the key.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import RiskgateError
from events import yamlfile
from events.cardnumbers import contains_card_number
from events.schema import (
    COLUMNS,
    Column,
    ColumnType,
    EventKind,
    ExtensionField,
    ExtensionFieldError,
    FieldType,
)

ISO8601 = "ISO8601"


class MappingError(RiskgateError, ValueError):
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


#: The operations a derived column may use, in the order the docs list them.
OPERATIONS: Final = ("concat", "divide", "first")

#: A constant's or default's value as YAML gives it (validated as text, like a CSV field).
Scalar = str | int | float


class Derivation(_Strict):
    """A column computed from source columns by exactly one declared operation (nothing is evaluated).

    * ``concat: [A, B, ...]`` with ``sep`` (default ``""``): the texts joined; empty if any part is empty
      (a globally unique id from a terminal's id and its own transaction counter);
    * ``divide: [A, number]``: A's numbers divided by a constant (cents to major units: ``[Cents, 100]``);
    * ``first: [A, B, ...]``: per row, the first non-empty of the columns (a token, else a fingerprint).
    """

    concat: tuple[str, ...] | None = None
    sep: str = ""
    divide: tuple[str, float] | None = None
    first: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_operation(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            unknown = [str(key) for key in raw if key not in (*OPERATIONS, "sep")]
            if unknown:
                raise ValueError(
                    f"unknown operation {unknown[0]!r} (operations: concat with sep, divide, first)"
                )
        return raw

    @model_validator(mode="after")
    def _one_operation(self) -> Derivation:
        given = [name for name in OPERATIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one operation of {', '.join(OPERATIONS)} (found {', '.join(given) or 'none'})"
            )
        if self.sep and self.concat is None:
            raise ValueError("sep goes with concat only")
        if not self.sources:
            raise ValueError(f"{given[0]} needs at least one source column")
        if self.divide is not None and (self.divide[1] == 0 or not math.isfinite(self.divide[1])):
            raise ValueError("divide by a finite number other than 0")
        return self

    @property
    def sources(self) -> tuple[str, ...]:
        """The source columns the operation reads."""
        if self.divide is not None:
            return (self.divide[0],)
        return self.concat if self.concat is not None else self.first or ()


class Attribute(_Strict):
    """A provider's own attempt field as the mapping declares it (built as an ExtensionField)."""

    column: str | None = Field(None, description="source column (default: the field's own name)")
    type: FieldType
    doc: str = ""
    values: tuple[str, ...] | None = Field(None, description="category only: the allowed values, in order")

    def field(self, name: str) -> ExtensionField:
        """The declared field; raises :class:`ExtensionFieldError` if the declaration cannot be used."""
        return ExtensionField(name, self.type, self.doc, self.values)


class TableMapping(_Strict):
    """How one source file maps onto one event table."""

    columns: dict[str, str] = Field(default_factory=dict, description="contract column → source column")
    constants: dict[str, Scalar] = Field(default_factory=dict, description="column → value of every row")
    defaults: dict[str, Scalar] = Field(default_factory=dict, description="column → value where missing")
    derive: dict[str, Derivation] = Field(default_factory=dict, description="column → operation")
    attributes: dict[str, Attribute] = Field(default_factory=dict, description="field → declaration")
    values: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="contract column → {source value: contract value}"
    )
    timestamps: TimestampFormat = TimestampFormat()
    amount_unit: Literal["major", "minor"] = "major"
    keep: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @property
    def extension(self) -> tuple[ExtensionField, ...]:
        """The declared attributes as extension fields, in declaration order."""
        return tuple(attribute.field(name) for name, attribute in self.attributes.items())

    def fields(self, kind: EventKind) -> tuple[Column, ...]:
        """The columns a file of ``kind`` is read into: the core ones, then the declared attributes."""
        return COLUMNS[kind] + tuple(field.column for field in self.extension)

    def source_of(self, column: str) -> str | None:
        """The source column a column is read from (``None``: it is a constant or derived, or its
        same-named column is ignored)."""
        if column in self.constants or column in self.derive:
            return None
        if column in self.columns:
            return self.columns[column]
        attribute = self.attributes.get(column)
        if attribute is not None and attribute.column is not None:
            return attribute.column
        return None if column in self.ignore else column

    def must_be_read(self, column: str) -> bool:
        """Whether the mapping says the file has the column's source (mapped, or a declared attribute)."""
        return self.source_of(column) is not None and (column in self.columns or column in self.attributes)

    def problems(self, kind: EventKind) -> list[str]:
        """What is wrong with this section for ``kind``, each message starting with its key."""
        declared = {column.name: column for column in COLUMNS[kind]}
        found = [
            f"{kind}.columns.{name}: not a column of the {kind} contract (columns: {', '.join(declared)})"
            for name in self.columns
            if name not in declared
        ]
        found += self._attribute_problems(kind, declared)
        found += self._setting_problems(kind, declared)
        for name, value_map in self.values.items():
            found.extend(_value_map_problems(kind, name, declared.get(name), value_map))
        if self.amount_unit == "minor" and "amount" not in declared:
            found.append(f"{kind}.amount_unit: the {kind} table has no amount")
        mapped = (
            set(self.columns.values())
            | {source for derivation in self.derive.values() for source in derivation.sources}
            | {attribute.column or name for name, attribute in self.attributes.items()}
        )
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

    def _attribute_problems(self, kind: EventKind, declared: dict[str, Column]) -> list[str]:
        """Problems of the attributes; each valid one is added to ``declared``."""
        if self.attributes and kind is not EventKind.ATTEMPTS:
            return [f"{kind}.attributes: only attempts have provider attributes"]
        found: list[str] = []
        for name, attribute in self.attributes.items():
            try:
                declared[name] = attribute.field(name).column
            except ExtensionFieldError as error:
                found.append(f"{kind}.attributes.{name}: {error}")
        return found

    def _setting_problems(self, kind: EventKind, declared: dict[str, Column]) -> list[str]:
        """Problems of constants, defaults and derived columns: unknown targets, a column set twice, a value
        outside the column's allowed values or holding a card number."""
        found: list[str] = []
        explicit = {*self.columns, *(name for name, a in self.attributes.items() if a.column is not None)}
        settings: dict[str, dict[str, Any]] = {
            "constants": self.constants,
            "defaults": self.defaults,
            "derive": self.derive,
        }
        for key, targets in settings.items():
            for name in targets:
                where = f"{kind}.{key}.{name}"
                if name not in declared:
                    found.append(f"{where}: not a column of the {kind} contract nor a declared attribute")
                elif name in explicit and key != "defaults":
                    found.append(f"{where}: also mapped to a source column: set a column one way only")
        for name, derivation in self.derive.items():
            column = declared.get(name)
            if derivation.divide is not None and column is not None and column.type is not ColumnType.FLOAT:
                found.append(
                    f"{kind}.derive.{name}: divide makes a number, and {name} is a {column.type} column"
                )
        if self.amount_unit == "minor" and "amount" in self.derive:
            found.append(f"{kind}.derive.amount: amount_unit is minor: convert the amount one way only")
        for name in self.constants.keys() & (self.derive.keys() | self.defaults.keys()):
            found.append(f"{kind}.constants.{name}: also under derive or defaults: set a column one way only")
        for name in self.constants.keys() & self.values.keys():
            found.append(f"{kind}.values.{name}: {name} is a constant: give the constant as a contract value")
        for key, given in (("constants", self.constants), ("defaults", self.defaults)):
            found += [
                problem
                for name, value in given.items()
                for problem in _value_problems(f"{kind}.{key}.{name}", declared.get(name), value)
            ]
        return found


def _value_problems(key: str, column: Column | None, value: Scalar) -> list[str]:
    text = str(value)
    if contains_card_number(text):
        return [f"{key}: looks like a card number; card numbers never enter riskgate"]
    if column is not None and column.values is not None and text not in column.values:
        return [f"{key}: {text!r} is not one of {', '.join(column.values)}"]
    return []


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
