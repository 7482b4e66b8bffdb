"""Times as a store gives them back, whatever its backend: SQLite keeps ISO 8601 texts (as written),
PostgreSQL ``timestamptz`` (given back in the session's time zone, here turned to UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def moment(value: object) -> datetime:
    """A stored time as an aware datetime (a text as written; a ``timestamptz`` in UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value))
