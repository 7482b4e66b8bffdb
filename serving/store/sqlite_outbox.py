"""The SQLite outbox (:class:`serving.store.outbox.Outbox`): one file, ``STATE_DIR/outbox.sqlite`` (WAL).

* ``events``: id, type, the body sent (JSON: ``{"id", "type", "created_at", "data"}``, signed as stored),
  creation time, an optional de-duplication key, and whether it was fanned out to the endpoints yet.
* ``deliveries``: one per event and endpoint URL (never its secret): state, tries, last status or error,
  when it is due next and until when a deliverer holds it.

Times are integer microseconds since the epoch. The schema's version is SQLite's ``user_version``
(:data:`OUTBOX_VERSION`); a file from a newer riskgate is refused rather than misread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from core.errors import RiskgateError
from core.sqlite import open_wal, retry_locked
from serving.store.base import epoch_us
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

logger = logging.getLogger(__name__)

#: The outbox's schema version (``PRAGMA user_version``): 1 = events and deliveries.
OUTBOX_VERSION: Final = 1
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        body BLOB NOT NULL,
        created_us INTEGER NOT NULL,
        key TEXT,
        fanned INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_key ON events (type, key) WHERE key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_unfanned ON events (seq) WHERE fanned = 0",
    """CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES events (seq),
        endpoint TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_status INTEGER,
        last_error TEXT,
        next_us INTEGER,
        claimed_until_us INTEGER,
        settled_us INTEGER,
        UNIQUE (event_seq, endpoint)
    )""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_us) WHERE state = 'pending'",
)
_SELECT_DELIVERY: Final = (
    "SELECT d.id, e.id, e.type, d.endpoint, d.state, d.attempts, d.last_status, d.last_error, d.next_us, "
    "e.created_us, d.settled_us FROM deliveries d JOIN events e ON e.seq = d.event_seq"
)


class OutboxVersionError(RiskgateError):
    """The outbox file was written by a newer riskgate (its schema version is unknown here)."""


def _time(us: int | None) -> datetime | None:
    if us is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


class SQLiteOutbox(Outbox):
    """The outbox in one SQLite file; one connection behind a lock, shared by emitters and the deliverer."""

    def __init__(
        self,
        path: Path,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = path
        self._timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._db = open_wal(path, busy_timeout_s, synchronous)
        self._transaction(self._create)

    def _execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        return retry_locked(lambda: self._db.execute(sql, parameters), self._timeout_s)

    def _transaction(self, work: Callable[[], Any]) -> Any:
        """``work`` in one write transaction, under the connection's lock."""
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                result = work()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return result

    def _create(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > OUTBOX_VERSION:
            raise OutboxVersionError(
                f"outbox {self.path} has schema version {version}, newer than this riskgate's "
                f"{OUTBOX_VERSION}: upgrade riskgate, or move the file aside to start a new outbox"
            )
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._db.execute(f"PRAGMA user_version = {OUTBOX_VERSION}")

    # -- emitting -------------------------------------------------------------------------------------------

    def emit(self, event_type: EventType, payload: Mapping[str, Any], key: str | None = None) -> str:
        event_id, created, body = new_event(event_type, payload)
        with self._lock:
            inserted = self._execute(
                "INSERT OR IGNORE INTO events (id, type, body, created_us, key) VALUES (?, ?, ?, ?, ?)",
                (event_id, event_type.value, body, epoch_us(created), key),
            ).rowcount
            if inserted == 1 or key is None:
                return event_id
            (existing,) = self._execute(
                "SELECT id FROM events WHERE type = ? AND key = ?", (event_type.value, key)
            ).fetchone()
        return str(existing)

    # -- delivering -----------------------------------------------------------------------------------------

    def fan_out(self, endpoints_for: Callable[[str], Sequence[str]], now: datetime) -> int:
        def work() -> int:
            events = self._db.execute("SELECT seq, type FROM events WHERE fanned = 0 ORDER BY seq").fetchall()
            rows = [
                (seq, endpoint, DeliveryState.PENDING.value, epoch_us(now))
                for seq, event_type in events
                for endpoint in endpoints_for(event_type)
            ]
            self._db.executemany(
                "INSERT OR IGNORE INTO deliveries (event_seq, endpoint, state, next_us) VALUES (?, ?, ?, ?)",
                rows,
            )
            self._db.executemany("UPDATE events SET fanned = 1 WHERE seq = ?", [(e[0],) for e in events])
            return len(rows)

        with self._lock:
            (unfanned,) = self._execute("SELECT EXISTS (SELECT 1 FROM events WHERE fanned = 0)").fetchone()
        return int(self._transaction(work)) if unfanned else 0

    def claim(self, now: datetime, limit: int, lease_s: float) -> list[Claimed]:
        at = epoch_us(now)

        def work() -> list[Claimed]:
            rows = self._db.execute(
                "SELECT d.id, e.id, e.type, d.endpoint, e.body, e.created_us, d.attempts "
                "FROM deliveries d JOIN events e ON e.seq = d.event_seq "
                "WHERE d.state = 'pending' AND d.next_us <= ? "
                "AND (d.claimed_until_us IS NULL OR d.claimed_until_us <= ?) "
                "ORDER BY d.next_us, d.id LIMIT ?",
                (at, at, limit),
            ).fetchall()
            until = at + int(lease_s * 1_000_000)
            self._db.executemany(
                "UPDATE deliveries SET claimed_until_us = ? WHERE id = ?", [(until, r[0]) for r in rows]
            )
            return [Claimed(r[0], r[1], r[2], r[3], bytes(r[4]), _time(r[5]) or now, int(r[6])) for r in rows]

        claimed: list[Claimed] = self._transaction(work)
        return claimed

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
        with self._lock:
            self._execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?, "
                "next_us = ?, claimed_until_us = NULL, settled_us = ? WHERE id = ?",
                (
                    state.value,
                    status,
                    None if delivered else error,
                    None if next_try is None or delivered else epoch_us(next_try),
                    None if state == DeliveryState.PENDING else epoch_us(now),
                    delivery_id,
                ),
            )

    # -- admin ----------------------------------------------------------------------------------------------

    def deliveries(self, limit: int, before: int | None = None) -> list[Delivery]:
        with self._lock:
            rows = self._execute(
                f"{_SELECT_DELIVERY} WHERE d.id < ? ORDER BY d.id DESC LIMIT ?",
                (before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        return [delivery_of(row, _time) for row in rows]

    def retry(self, delivery_id: int, now: datetime) -> Delivery | None:
        with self._lock:
            self._execute(
                "UPDATE deliveries SET state = 'pending', next_us = ?, claimed_until_us = NULL, "
                "settled_us = NULL WHERE id = ?",
                (epoch_us(now), delivery_id),
            )
            row = self._execute(f"{_SELECT_DELIVERY} WHERE d.id = ?", (delivery_id,)).fetchone()
        return None if row is None else delivery_of(row, _time)

    def close(self) -> None:
        with self._lock:
            self._db.close()
