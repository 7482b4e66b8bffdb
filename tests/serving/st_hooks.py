"""schemathesis hooks of the suite's run (``SCHEMATHESIS_HOOKS=tests.serving.st_hooks``).

Two rules of the contract are documented in the schema's text but not stated as JSON Schema: an amount has no
more decimals than its currency's minor unit (``multipleOf`` on floats is decided differently by each
validator: 14.99 is not a multiple of 0.01 in binary floating point), and an attempt's known starts
(``account_created_at``, ``payment_method_first_used_at``) are not after its ``occurred_at`` (a rule between
two fields). Schema-valid bodies are generated with amounts rounded to their currency's minor unit and known
starts moved back to the attempt's time when later, as a client that reads the documentation sends them;
schema-violating bodies are left as generated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode

from events.currencies import MINOR_UNITS


def _positive_body(case: schemathesis.Case[Any]) -> bool:
    meta = case._meta  # schemathesis exposes a case's generation mode only here
    if meta is None:
        return False
    body = meta.components.get(ParameterLocation.BODY)
    return body is not None and body.mode == GenerationMode.POSITIVE


def round_amounts(value: Any) -> None:
    """Every ``{"amount": number, "currency": code}`` in ``value`` rounded to the currency's minor unit (and
    at least one minor unit), in place."""
    if isinstance(value, list):
        for item in value:
            round_amounts(item)
    elif isinstance(value, dict):
        amount, currency = value.get("amount"), value.get("currency")
        is_number = isinstance(amount, int | float) and not isinstance(amount, bool)
        if isinstance(amount, int | float) and is_number and currency in MINOR_UNITS:
            exponent = MINOR_UNITS[currency]
            value["amount"] = max(round(amount, exponent), 10.0**-exponent)
        for item in value.values():
            round_amounts(item)


KNOWN_STARTS = ("account_created_at", "payment_method_first_used_at")


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def known_starts_before_use(value: Any) -> None:
    """Every attempt's known start that lies after its ``occurred_at`` set to it, in place."""
    if isinstance(value, list):
        for item in value:
            known_starts_before_use(item)
    elif isinstance(value, dict):
        occurred = _moment(value.get("occurred_at"))
        for name in KNOWN_STARTS:
            start = _moment(value.get(name))
            if occurred is not None and start is not None and start > occurred:
                value[name] = value["occurred_at"]
        for item in value.values():
            known_starts_before_use(item)


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> schemathesis.Case[Any]:
    del context
    if _positive_body(case):
        round_amounts(case.body)
        known_starts_before_use(case.body)
    return case
