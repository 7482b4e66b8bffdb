"""Times as a store gives them back, whatever its backend: SQLite keeps ISO 8601 texts, PostgreSQL
``timestamptz`` (given back in the session's time zone); both as aware datetimes in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def moment(value: object) -> datetime:
    """A stored time (an ISO 8601 text, or a ``timestamptz``) as an aware datetime in UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC)
