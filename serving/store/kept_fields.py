"""Which of an attempt's fields the decision log keeps, so that a draft rule can be replayed over it
(``riskgate rules backtest``, :mod:`serving.readers.rule_backtest`).

The log keeps some fields in columns of their own (:data:`COLUMN_FIELDS`: the segments trends read) and the
account and payment method only as keyed pseudonyms (:data:`PSEUDONYMISED_FIELDS`: a rule comparing them
with a list of raw ids cannot be replayed over the log). Every other field a rule may read (device, IP, IP
and billing country, BIN, ...) is kept as one JSON object per decision (:data:`KEPT_FIELDS`, the log's
``fields`` column), erased with the account like the feature vector and the attributes. Times are not
readable by rules (their features are), so they are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

from events.schema import ATTEMPT_COLUMNS, ColumnType

#: The attempt's fields the log keeps as columns of their own (rules read them from there).
COLUMN_FIELDS: Final = (
    "attempt_id", "kind", "plan_tier", "plan_period", "amount", "currency", "method_type", "card_funding",
    "card_country",
)  # fmt: skip
#: The columns every rule backtest reads (its figures need them), whatever the rule reads.
READ_ALWAYS: Final = ("attempt_id", "amount", "currency")
#: The attempt's fields the log keeps only as keyed pseudonyms (``account_key``, ``method_key``).
PSEUDONYMISED_FIELDS: Final = ("account_id", "payment_method_id")
_READABLE: Final = (ColumnType.STRING, ColumnType.FLOAT, ColumnType.INT)
#: The fields kept in the ``fields`` JSON object: every other field of the contract a rule may read.
KEPT_FIELDS: Final = tuple(
    column.name
    for column in ATTEMPT_COLUMNS
    if column.type in _READABLE and column.name not in (*COLUMN_FIELDS, *PSEUDONYMISED_FIELDS)
)


def kept_fields(event: Mapping[str, object]) -> dict[str, str | float] | None:
    """The :data:`KEPT_FIELDS` the attempt has (enum members as their values), None when it has none."""
    kept: dict[str, str | float] = {}
    for name in KEPT_FIELDS:
        value = event.get(name)
        if value is not None:
            kept[name] = value.value if isinstance(value, Enum) else value  # type: ignore[assignment]
    return kept or None
