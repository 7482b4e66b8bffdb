"""The PostgreSQL outbox (:class:`serving.store.outbox.Outbox`), shared by a fleet of instances.

Tables ``outbox_events`` and ``outbox_deliveries`` (schema version 0005), as the SQLite outbox's. Every
instance emits into it and runs its own deliverer over it; what keeps them from getting in each other's way:

* **emit**: an event with a key is inserted ``ON CONFLICT DO NOTHING`` on the unique (type, key) index, so
  the same event emitted on two instances at once is kept once (both get its id);
* **fan-out**: the unfanned events are taken ``FOR UPDATE SKIP LOCKED``, so two deliverers fan out disjoint
  events, and each (event, endpoint) pair is unique besides: every event is fanned out once;
* **claim**: due deliveries not under a lease are taken ``FOR UPDATE SKIP LOCKED`` and given a lease in the
  same statement: a delivery is posted by one deliverer at a time, and one whose deliverer died (a killed
  instance) is claimed by another once its lease ends.

Each call is one transaction on a pooled connection of the service's :class:`Database`; times are the
caller's (``now``), as timestamptz.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from serving.store.outbox import (
    Claimed,
    Delivery,
    DeliveryState,
    EventType,
    Outbox,
    delivery_of,
    new_event,
    settled_state,
)
from serving.store.postgres.database import Database

logger = logging.getLogger(__name__)

_SELECT_DELIVERY: Final = (
    "SELECT d.id, e.id, e.type, d.endpoint, d.state, d.attempts, d.last_status, d.last_error, d.next_try, "
    "e.created_at, d.settled_at FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq"
)
_CLAIM: Final = (
    "WITH due AS (SELECT id FROM outbox_deliveries WHERE state = 'pending' AND next_try <= %(now)s "
    "AND (claimed_until IS NULL OR claimed_until <= %(now)s) ORDER BY next_try, id LIMIT %(limit)s "
    "FOR UPDATE SKIP LOCKED) "
    "UPDATE outbox_deliveries d SET claimed_until = %(until)s FROM due, outbox_events e "
    "WHERE d.id = due.id AND e.seq = d.event_seq "
    "RETURNING d.id, e.id, e.type, d.endpoint, e.body, e.created_at, d.attempts, d.next_try"
)


def _read_time(value: datetime | None) -> datetime | None:
    """A timestamptz as psycopg reads it: an aware datetime already (None stays None)."""
    return value


class PostgresOutbox(Outbox):
    """The outbox in PostgreSQL (see the module docstring); safe to share between threads and instances."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # -- emitting -------------------------------------------------------------------------------------------

    def emit(self, event_type: EventType, payload: Mapping[str, Any], key: str | None = None) -> str:
        event_id, created, body = new_event(event_type, payload)
        with self.database.transaction() as connection:
            inserted = connection.execute(
                "INSERT INTO outbox_events (id, type, body, created_at, key) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (type, key) WHERE key IS NOT NULL DO NOTHING",
                (event_id, event_type.value, body, created, key),
            ).rowcount
            if inserted == 1 or key is None:
                return event_id
            row = connection.execute(
                "SELECT id FROM outbox_events WHERE type = %s AND key = %s", (event_type.value, key)
            ).fetchone()
        if row is None:  # pragma: no cover - the conflict was on this very row, and events are never deleted
            raise RuntimeError(f"outbox event ({event_type.value}, {key!r}) conflicted but is not there")
        return str(row[0])

    # -- delivering -----------------------------------------------------------------------------------------

    def fan_out(self, endpoints_for: Callable[[str], Sequence[str]], now: datetime) -> int:
        with self.database.transaction() as connection:
            events = connection.execute(
                "SELECT seq, type FROM outbox_events WHERE NOT fanned ORDER BY seq FOR UPDATE SKIP LOCKED"
            ).fetchall()
            if not events:
                return 0
            rows = [
                (seq, endpoint, DeliveryState.PENDING.value, now)
                for seq, event_type in events
                for endpoint in endpoints_for(str(event_type))
            ]
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO outbox_deliveries (event_seq, endpoint, state, next_try) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (event_seq, endpoint) DO NOTHING",
                    rows,
                )
            connection.execute(
                "UPDATE outbox_events SET fanned = true WHERE seq = ANY(%s)", ([seq for seq, _ in events],)
            )
        return len(rows)

    def claim(self, now: datetime, limit: int, lease_s: float) -> list[Claimed]:
        until = now + timedelta(seconds=lease_s)
        with self.database.transaction() as connection:
            rows = connection.execute(_CLAIM, {"now": now, "limit": limit, "until": until}).fetchall()
        rows.sort(key=lambda row: (row[7], row[0]))  # oldest due first, as claimed
        return [
            Claimed(int(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4]), r[5], int(r[6]))  # type: ignore[arg-type, call-overload]
            for r in rows
        ]

    def settle(
        self,
        delivery_id: int,
        now: datetime,
        *,
        status: int | None,
        error: str | None = None,
        next_try: datetime | None = None,
    ) -> None:
        state = settled_state(status, next_try)
        delivered = state is DeliveryState.DELIVERED
        with self.database.transaction() as connection:
            connection.execute(
                "UPDATE outbox_deliveries SET state = %s, attempts = attempts + 1, last_status = %s, "
                "last_error = %s, next_try = %s, claimed_until = NULL, settled_at = %s WHERE id = %s",
                (
                    state.value,
                    status,
                    None if delivered else error,
                    None if delivered else next_try,
                    None if state == DeliveryState.PENDING else now,
                    delivery_id,
                ),
            )

    # -- admin ----------------------------------------------------------------------------------------------

    def deliveries(self, limit: int, before: int | None = None) -> list[Delivery]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"{_SELECT_DELIVERY} WHERE d.id < %s ORDER BY d.id DESC LIMIT %s",
                (before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [delivery_of(row, _read_time) for row in rows]

    def retry(self, delivery_id: int, now: datetime) -> Delivery | None:
        with self.database.transaction() as connection:
            connection.execute(
                "UPDATE outbox_deliveries SET state = 'pending', next_try = %s, claimed_until = NULL, "
                "settled_at = NULL WHERE id = %s",
                (now, delivery_id),
            )
            row = connection.execute(f"{_SELECT_DELIVERY} WHERE d.id = %s", (delivery_id,)).fetchone()
        return None if row is None else delivery_of(row, _read_time)

    def close(self) -> None:
        """Nothing to close: the pool is the service's (closed last by it)."""
