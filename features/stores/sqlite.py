"""The embedded default: SQLite in WAL mode, one file in the service's state directory.

Units of work run in ``BEGIN IMMEDIATE`` transactions, so several processes on one machine can share the file;
readers never block writers (WAL). Expiry times are event times, indexed for the sweep.

Checkpoints (a background thread's; SQLite's automatic one is only a backstop) and waiting for another
process's write lock (short pauses, not SQLite's busy handler) are as :mod:`core.sqlite` describes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from core.sqlite import BACKSTOP_CHECKPOINT_PAGES, open_wal, retry_locked
from features.stores.base import StoreError, T, Write

logger = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL, expires INTEGER) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL",
)


class _SQLiteTransaction:
    """Reads go to the database (or to this unit's own pending writes); writes are kept until :meth:`flush`,
    which sends them as one ``executemany`` per kind instead of a statement per key."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._writes: dict[str, tuple[bytes, int | None] | None] = {}  # None: delete

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        unwritten = [key for key in keys if key not in self._writes]
        found = dict(zip(unwritten, _select(self._connection, unwritten), strict=True))
        return [_value(self._writes[key]) if key in self._writes else found[key] for key in keys]

    def put(self, key: str, value: bytes, expires_us: int | None = None) -> None:
        self._writes[key] = (value, expires_us)

    def delete(self, key: str) -> None:
        self._writes[key] = None

    def flush(self) -> None:
        """Write what the unit of work put and deleted (the last write of each key wins)."""
        puts = [(key, entry[0], entry[1]) for key, entry in self._writes.items() if entry is not None]
        deletes = [(key,) for key, entry in self._writes.items() if entry is None]
        if puts:
            self._connection.executemany("INSERT OR REPLACE INTO kv (k, v, expires) VALUES (?, ?, ?)", puts)
        if deletes:
            self._connection.executemany("DELETE FROM kv WHERE k = ?", deletes)
        self._writes.clear()


def _value(entry: tuple[bytes, int | None] | None) -> bytes | None:
    return None if entry is None else entry[0]


def _select(connection: sqlite3.Connection, keys: Sequence[str]) -> list[bytes | None]:
    if not keys:
        return []
    marks = ",".join("?" * len(keys))
    found = dict(connection.execute(f"SELECT k, v FROM kv WHERE k IN ({marks})", tuple(keys)).fetchall())
    return [found.get(key) for key in keys]


class SQLiteStore:
    """A key-value table in one SQLite file (created with its folder if absent)."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5_000,
        autocheckpoint_pages: int = BACKSTOP_CHECKPOINT_PAGES,
    ) -> None:
        self.path = Path(path)
        self._timeout_s = busy_timeout_ms / 1000
        try:
            self._connection = open_wal(self.path, self._timeout_s, "NORMAL", autocheckpoint_pages)
            for statement in _SCHEMA:
                self._execute(statement)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the online store at {self.path}: {error}") from error
        self._lock = threading.Lock()
        logger.info("online store: SQLite (WAL) at %s", self.path)

    def _execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        return retry_locked(lambda: self._connection.execute(sql, parameters), self._timeout_s)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            return retry_locked(lambda: _select(self._connection, keys), self._timeout_s)

    def transact(self, work: Callable[[_SQLiteTransaction], T]) -> T:
        with self._lock:
            try:
                self._execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreError(f"online store {self.path} is locked by another writer: {error}") from error
            tx = _SQLiteTransaction(self._connection)
            try:
                result = work(tx)
                tx.flush()
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
            return result

    def put_many(self, writes: Sequence[Write]) -> None:
        """All the writes in one transaction (``executemany``)."""

        def work(_: _SQLiteTransaction) -> None:
            self._connection.executemany("INSERT OR REPLACE INTO kv (k, v, expires) VALUES (?, ?, ?)", writes)

        self.transact(work)

    def expire(self, now_us: int) -> int:
        with self._lock:
            cursor = self._execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires < ?", (now_us,))
            return cursor.rowcount

    def keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            rows = self._execute(
                "SELECT k FROM kv WHERE k >= ? AND k < ?", (prefix, prefix + "\U0010ffff")
            ).fetchall()
        for (key,) in rows:
            yield key

    def close(self) -> None:
        with self._lock:
            self._connection.close()
