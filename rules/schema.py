"""What a rule may read: each name's type, each list's kind, and the values of closed vocabularies.

:func:`schema_for` builds the schema of a served feature set: the contract's attempt fields (numbers and
texts; a time is not readable as such: its age is a feature), the provider's extension fields, every feature
of the set by its generated name (all numbers: a categorical feature is its category's code; its field, e.g.
``kind``, is there as text), the model outputs :data:`MODEL_OUTPUTS` and the billing checks
:data:`BILLING_CHECKS`. A rule is type-checked against it when saved (:mod:`rules.checker`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from events.schema import ATTEMPT_COLUMNS, Column, ColumnType, ExtensionField
from features.definitions import FeatureSet
from rules.errors import RuleError
from rules.lists import ListKind, Lists


class Type(StrEnum):
    """The types of the language: every value, name and expression has one."""

    NUMBER = "number"
    STRING = "string"
    BOOL = "bool"

    @property
    def described(self) -> str:
        return {Type.NUMBER: "a number", Type.STRING: "a text", Type.BOOL: "a condition (true or false)"}[
            self
        ]


#: The fraud level's values (a model output; missing when the fraud model is unavailable).
FRAUD_LEVELS: Final = ("normal", "elevated", "highest")
#: The model outputs a rule may read, missing when their model is unavailable.
MODEL_OUTPUTS: Final[dict[str, Type]] = {
    "fraud_probability": Type.NUMBER,
    "fraud_level": Type.STRING,
    "failure_probability": Type.NUMBER,
}
#: The billing checks the decision path computes before the rules (``billing.checks.BillingFields``; a test
#: keeps them equal), missing when a check could not be made (no invoice, no catalogue entry, no known paid
#: period) or the checks are off: ``billing_double_charge`` (the invoice is already paid, or the same try was
#: just submitted), ``billing_price_mismatch`` (a new or renewed plan off its catalogue price),
#: ``billing_early_renewal`` (a renewal before its period allows), ``billing_catalogue_price`` and
#: ``billing_days_since_paid`` (since the start of the account's last paid period).
BILLING_CHECKS: Final[dict[str, Type]] = {
    "billing_double_charge": Type.BOOL,
    "billing_price_mismatch": Type.BOOL,
    "billing_early_renewal": Type.BOOL,
    "billing_catalogue_price": Type.NUMBER,
    "billing_days_since_paid": Type.NUMBER,
}
_COLUMN_TYPES: Final[dict[ColumnType, Type]] = {
    ColumnType.STRING: Type.STRING,
    ColumnType.FLOAT: Type.NUMBER,
    ColumnType.INT: Type.NUMBER,
}


@dataclass(frozen=True)
class Schema:
    """Names (fields, features, model outputs) with their types, lists with their kinds, the allowed values
    of texts with a closed vocabulary, and names the language cannot read with the reason why."""

    names: Mapping[str, Type]
    lists: Mapping[str, ListKind] = field(default_factory=dict)
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def with_lists(self, lists: Lists) -> Schema:
        """This schema with ``lists`` (by name) as the lists rules may test membership of."""
        return replace(self, lists={name: member.kind for name, member in lists.items()})


def schema_for(
    feature_set: FeatureSet,
    extension_fields: Sequence[ExtensionField] = (),
    lists: Mapping[str, ListKind] | None = None,
) -> Schema:
    """The schema of rules over attempts scored with ``feature_set`` (see the module's docstring), with the
    provider's ``extension_fields`` (besides those the set declares) and ``lists`` (name -> kind)."""
    fields = _extension(feature_set.fields, extension_fields)
    names: dict[str, Type] = {}
    unreadable: dict[str, str] = {}
    for column in (*ATTEMPT_COLUMNS, *(f.column for f in fields)):
        if column.type in _COLUMN_TYPES:
            names[column.name] = _COLUMN_TYPES[column.type]
        else:
            unreadable[column.name] = _time_reason(column)
    for name in feature_set.names:
        if names.get(name, Type.NUMBER) is not Type.NUMBER:
            raise RuleError(
                f"feature {name!r} of {feature_set.name!r} has the name of a text field of the attempt"
            )
        names[name] = Type.NUMBER
    for group, outputs in (("a model output", MODEL_OUTPUTS), ("a billing check", BILLING_CHECKS)):
        for name, kind in outputs.items():
            if name in names:
                raise RuleError(f"{name!r} is {group}: no field or feature may take its name")
            names[name] = kind
    values = {
        **feature_set.vocabulary,
        **{f.name: f.values for f in fields if f.values is not None},
        "fraud_level": FRAUD_LEVELS,
    }
    return Schema(names, dict(lists or {}), values, unreadable)


def _extension(declared: Sequence[ExtensionField], given: Sequence[ExtensionField]) -> list[ExtensionField]:
    """The feature set's extension fields and the provider's, once each; a field declared twice differently
    is refused."""
    merged: dict[str, ExtensionField] = {}
    for extension_field in (*declared, *given):
        known = merged.setdefault(extension_field.name, extension_field)
        if (known.type, known.values) != (extension_field.type, extension_field.values):
            raise RuleError(
                f"extension field {extension_field.name!r} is declared as {known.type} and as "
                f"{extension_field.type}: declare it once"
            )
    return list(merged.values())


def _time_reason(column: Column) -> str:
    if column.name == "occurred_at":
        return (
            "occurred_at is the attempt's time: rules read numbers, texts and true/false; use a calendar "
            "feature of it (hour_of_day, day_of_week, ...)"
        )
    return (
        f"{column.name} is a time: rules read numbers, texts and true/false; use a feature of its age "
        f"(a request feature with transform age, e.g. {column.name}_age_days)"
    )
