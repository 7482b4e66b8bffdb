"""A provider's own attempt fields over HTTP: the ``attributes`` object of an attempt.

The served feature set declares the extension fields it reads or carries (``FeatureSet.fields``, each an
:class:`events.schema.ExtensionField`). An attempt's ``attributes`` are checked against those declarations
by type when the request is validated, and their values become top-level keys of the attempt mapping the
feature engine reads (:meth:`serving.scoring.schemas.AttemptIn.as_event`):

* ``key``: non-empty text of at most :data:`MAX_KEY_LENGTH` characters (surrounding spaces stripped);
* ``category``: one of the field's declared values;
* ``number``: a finite JSON number (``true``/``false`` and numbers in strings are refused), kept as a float;
* ``time``: an ISO 8601 time with an offset, in the contract's range, kept as an aware UTC datetime.

``null`` means missing, as an absent name does. An undeclared name is refused (naming it), and no message
ever carries a value. The served fields reach validation through pydantic's validation context
(:func:`validation_context`); validated without one, no attribute is declared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from core.errors import InputError
from events.schema import TIME_RANGE_TEXT, ExtensionField, FieldType, in_time_range

MAX_KEY_LENGTH: Final = 256
#: The validation-context entry holding the served fields (name -> declaration).
CONTEXT_KEY: Final = "riskgate_fields"

Attributes = dict[str, str | float | datetime]


class InvalidAttributeError(InputError):
    """An attribute the served feature set does not accept (unknown name, or a value of the wrong type)."""


def validation_context(fields: Iterable[ExtensionField]) -> dict[str, Any]:
    """The pydantic validation context that lets an attempt's ``attributes`` be checked against ``fields``."""
    return {CONTEXT_KEY: {field.name: field for field in fields}}


def served_fields(context: Any) -> Mapping[str, ExtensionField]:
    """The fields a validation context declares (none without a context)."""
    if isinstance(context, dict):
        fields: Mapping[str, ExtensionField] = context.get(CONTEXT_KEY, {})
        return fields
    return {}


def _key(name: str, value: object, field: ExtensionField) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidAttributeError(f"attribute {name!r} is a key: send non-empty text")
    text = value.strip()
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidAttributeError(f"attribute {name!r} is a key of at most {MAX_KEY_LENGTH} characters")
    return text


def _category(name: str, value: object, field: ExtensionField) -> str:
    allowed = field.values or ()
    if not isinstance(value, str) or value.strip() not in allowed:
        raise InvalidAttributeError(f"attribute {name!r} must be one of {', '.join(allowed)}")
    return value.strip()


def _number(name: str, value: object, field: ExtensionField) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAttributeError(
            f"attribute {name!r} is a number: send a finite JSON number (not text, not a bool)"
        )
    return float(value)


def _time(name: str, value: object, field: ExtensionField) -> datetime:
    """An ISO 8601 text (JSON), or an aware datetime (an attempt built in Python: the backtest)."""
    problem = f"attribute {name!r} is a time: send ISO 8601 with an offset, {TIME_RANGE_TEXT}"
    if not isinstance(value, str | datetime):
        raise InvalidAttributeError(problem)
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.strip())
        utc = moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        raise InvalidAttributeError(problem) from None
    if utc is None or not in_time_range(utc):
        raise InvalidAttributeError(problem)
    return utc


_CONVERTERS: Final[dict[FieldType, Callable[[str, object, ExtensionField], str | float | datetime]]] = {
    FieldType.KEY: _key,
    FieldType.CATEGORY: _category,
    FieldType.NUMBER: _number,
    FieldType.TIME: _time,
}


def conform(raw: Mapping[str, object], fields: Mapping[str, ExtensionField]) -> Attributes:
    """``raw`` attributes checked against the declared ``fields`` and converted to their types (``null``s
    dropped: missing). Raises :class:`InvalidAttributeError` naming each attribute refused, never a value."""
    problems: list[str] = []
    values: Attributes = {}
    for name, value in raw.items():
        field = fields.get(name)
        if field is None:
            declared = ", ".join(sorted(fields)) or "none"
            problems.append(f"unknown attribute {name!r}: the served feature set declares {declared}")
            continue
        if value is None:
            continue
        try:
            values[name] = _CONVERTERS[field.type](name, value, field)
        except InvalidAttributeError as error:
            problems.append(str(error))
    if problems:
        raise InvalidAttributeError("; ".join(problems))
    return values


_JSON_TYPES: Final[dict[FieldType, dict[str, Any]]] = {
    FieldType.KEY: {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    FieldType.CATEGORY: {"type": "string"},
    FieldType.NUMBER: {"type": "number"},
    FieldType.TIME: {"type": "string", "format": "date-time"},
}


def attributes_schema(fields: Iterable[ExtensionField] = (), *, closed: bool = False) -> dict[str, Any]:
    """The JSON schema of ``attributes``: an object of text or numbers; with ``fields``, each one listed, and
    ``closed`` (the served set is known, maybe with no field at all) no other name allowed."""
    schema: dict[str, Any] = {
        "type": "object",
        "title": "Attributes",
        "description": "The provider's own attempt fields that the served feature set declares, by name "
        "(key: text; category: one of its values; number: a JSON number; time: ISO 8601 with an offset). "
        "null or absent: missing. An undeclared name is refused (422).",
        "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
    }
    properties = {}
    for field in fields:
        described = {**_JSON_TYPES[field.type], "description": f"{field.type.value}. {field.doc}".strip()}
        if field.values is not None:
            described["enum"] = list(field.values)
        properties[field.name] = {"anyOf": [described, {"type": "null"}]}
    if properties:
        schema["properties"] = properties
    if properties or closed:
        schema["additionalProperties"] = False
    return schema


def describe_served(schemas: dict[str, Any], fields: Iterable[ExtensionField]) -> None:
    """Amend the OpenAPI component ``schemas``: ``AttemptIn.attributes`` lists the served ``fields``."""
    attempt = schemas.get("AttemptIn")
    if attempt is not None:
        attempt["properties"]["attributes"] = {
            "anyOf": [attributes_schema(fields, closed=True), {"type": "null"}],
            "title": "Attributes",
        }
