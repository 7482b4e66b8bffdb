"""The embedded default: SQLite in WAL mode, one file in the service's state directory.

Units of work run in ``BEGIN IMMEDIATE`` transactions, so several processes on one machine can share the file;
readers never block writers (WAL). Expiry times are event times, indexed for the sweep.

Checkpoints: SQLite copies the write-ahead log back into the database from inside whichever commit pushes the
log past ``wal_autocheckpoint`` pages (an fsync: milliseconds in one unlucky request). The service checkpoints
its files from a background thread (:mod:`serving.upkeep`), so the automatic one is only a backstop here, set
far above what that thread lets the log reach (:data:`BACKSTOP_CHECKPOINT_PAGES`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from features.stores.base import StoreError, T, Write

logger = logging.getLogger(__name__)

#: automatic checkpoint threshold (pages of 4 KiB: about 40 MiB of log), a backstop for background checkpoints
BACKSTOP_CHECKPOINT_PAGES: Final = 10_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB NOT NULL, expires INTEGER) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL",
)


class _SQLiteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return _select(self._connection, keys)

    def put(self, key: str, value: bytes, expires_us: int | None = None) -> None:
        self._connection.execute(
            "INSERT OR REPLACE INTO kv (k, v, expires) VALUES (?, ?, ?)", (key, value, expires_us)
        )

    def delete(self, key: str) -> None:
        self._connection.execute("DELETE FROM kv WHERE k = ?", (key,))


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint_pages)}")
            for statement in _SCHEMA:
                self._connection.execute(statement)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the online store at {self.path}: {error}") from error
        self._lock = threading.Lock()
        logger.info("online store: SQLite (WAL) at %s", self.path)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            return _select(self._connection, keys)

    def transact(self, work: Callable[[_SQLiteTransaction], T]) -> T:
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise StoreError(f"online store {self.path} is locked by another writer: {error}") from error
            try:
                result = work(_SQLiteTransaction(self._connection))
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
            cursor = self._connection.execute(
                "DELETE FROM kv WHERE expires IS NOT NULL AND expires < ?", (now_us,)
            )
            return cursor.rowcount

    def keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT k FROM kv WHERE k >= ? AND k < ?", (prefix, prefix + "\U0010ffff")
            ).fetchall()
        for (key,) in rows:
            yield key

    def close(self) -> None:
        with self._lock:
            self._connection.close()
