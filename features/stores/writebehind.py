"""A write-behind cache in front of the SQLite online store, for a process that is the store's only writer.

Units of work read and write memory: what they write is *dirty* until :meth:`WriteBehindStore.flush` sends
it to SQLite in one transaction, together with a *marker*, the position in the caller's journal whose effects
that transaction completes. A unit of work therefore costs dictionary lookups instead of SQLite statements
and a commit; durability is the caller's journal (``serving.store.journal``): after a crash, the records
after the
marker are applied again (the online engine's units of work are idempotent by id, so a record whose effects
were flushed before its position was is harmless to apply twice).

Reads see, newest first: the unit's own writes, dirty writes, writes being flushed, then a bounded cache of
clean values (least recently used beyond ``cache_bytes``), then SQLite. Only one process may write the file
this way: the service holds the journal's lock while it runs (see ``serving.store.journal.Journal``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from core.sqlite import Staged
from features.stores.base import T, Transaction, Write
from features.stores.sqlite import SQLiteStore

logger = logging.getLogger(__name__)

#: the key holding the journal position the SQLite file's state includes (outside every feature set's prefix)
MARKER_KEY: Final = "rg:write-behind:applied"
DEFAULT_CACHE_BYTES: Final = 256 * 1024 * 1024

_Entry = tuple[bytes, int | None] | None  # a pending write: (value, expiry) or None for a delete


class _BufferedTransaction:
    """One unit of work's view: its own writes over the store's memory and SQLite."""

    def __init__(self, store: WriteBehindStore) -> None:
        self._store = store
        self.writes: dict[str, _Entry] = {}

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        mine = self.writes
        found = self._store._read([key for key in keys if key not in mine])
        return [_value(mine[key]) if key in mine else found[key] for key in keys]

    def put(self, key: str, value: bytes, expires_us: int | None = None) -> None:
        self.writes[key] = (value, expires_us)

    def delete(self, key: str) -> None:
        self.writes[key] = None


class WriteBehindStore:
    """The :class:`~features.stores.base.OnlineStore` protocol over ``inner``, writing behind (see module)."""

    def __init__(
        self, inner: SQLiteStore, writer: SQLiteStore | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.inner = inner  # reads (what memory does not hold) and maintenance
        self.writer = writer or inner  # flushes: a connection of its own keeps them off the readers' lock
        self.path = inner.path
        self.cache_bytes = cache_bytes
        self._lock = threading.RLock()  # guards the maps below; held for a unit of work
        self._flush_lock = threading.Lock()  # one flush at a time
        self._dirty: Staged[_Entry] = Staged(self._lock)
        self._dirty.applied = self._read_marker()
        self._clean: dict[str, bytes | None] = {}  # None: known to be absent
        self._clean_bytes = 0

    # -- the store protocol ---------------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            found = self._read(keys)
        return [found[key] for key in keys]

    def transact(self, work: Callable[[_BufferedTransaction], T]) -> T:
        with self._lock:
            tx = _BufferedTransaction(self)
            result = work(tx)  # an exception leaves memory untouched: the unit's writes are dropped
            for key, entry in tx.writes.items():
                self._dirty.new[key] = entry
                self._forget(key)
            return result

    def put_many(self, writes: Sequence[Write]) -> None:
        def work(tx: _BufferedTransaction) -> None:
            for key, value, expires in writes:
                tx.put(key, value, expires)

        self.transact(work)

    def expire(self, now_us: int) -> int:
        """Flush, then drop expired keys in SQLite and forget the cache (it may hold some of them)."""
        self.flush()
        with self._flush_lock, self._lock:
            removed = self.inner.expire(now_us)
            self._clean.clear()
            self._clean_bytes = 0
        return removed

    def keys(self, prefix: str) -> Iterator[str]:
        self.flush()
        return self.inner.keys(prefix)

    def close(self) -> None:
        self.flush()
        self.inner.close()
        if self.writer is not self.inner:
            self.writer.close()

    # -- write-behind -------------------------------------------------------------------------------------

    @property
    def dirty(self) -> int:
        """How many keys are written in memory only."""
        with self._lock:
            return len(self._dirty)

    @property
    def applied(self) -> int:
        """The journal position the SQLite file holds every write up to."""
        return self._dirty.applied

    def flush(self, marker: int | None = None) -> int:
        """Send every dirty write to SQLite in one transaction, with ``marker`` (if given and newer).

        The caller reads its journal position *before* calling, so every record up to it has made its
        writes already. Returns how many keys were written; on failure the writes stay dirty (a later flush
        retries them) and the error propagates.
        """
        with self._flush_lock:
            return self._dirty.flush(
                marker,
                lambda batch, newer: self.writer.transact(lambda tx: _write(tx, batch, newer)),
                self._settle,
            )

    def _settle(self, batch: dict[str, _Entry]) -> None:
        """Flushed writes become clean cached values (unless written again meanwhile)."""
        for key, entry in batch.items():
            if key not in self._dirty.new:
                self._remember(key, _value(entry))

    # -- internals ----------------------------------------------------------------------------------------

    def _read(self, keys: Sequence[str]) -> dict[str, bytes | None]:
        """Values of ``keys`` (the caller holds the lock): memory first, SQLite for the rest (then cached)."""
        found: dict[str, bytes | None] = {}
        missing = []
        for key in keys:
            if self._dirty.holds(key):
                found[key] = _value(self._dirty.get(key))
            elif key in self._clean:
                value = self._clean.pop(key)  # re-inserted: most recently used last
                self._clean[key] = value
                found[key] = value
            else:
                missing.append(key)
        if missing:
            for key, value in zip(missing, self.inner.get_many(missing), strict=True):
                found[key] = value
                self._remember(key, value)
        return found

    def _remember(self, key: str, value: bytes | None) -> None:
        self._forget(key)
        self._clean[key] = value
        self._clean_bytes += _size(key, value)
        while self._clean_bytes > self.cache_bytes and self._clean:
            oldest = next(iter(self._clean))
            self._forget(oldest)

    def _forget(self, key: str) -> None:
        if key in self._clean:
            value = self._clean.pop(key)
            self._clean_bytes -= _size(key, value)

    def _read_marker(self) -> int:
        (blob,) = self.inner.get_many([MARKER_KEY])
        return 0 if blob is None else int(blob)


#: what one cached entry costs beyond its key's and value's characters (the str and bytes objects, the dict
#: slot): most entries are small (attempt records, keys known to be absent), so the budget counts it
_ENTRY_OVERHEAD: Final = 160


def _size(key: str, value: bytes | None) -> int:
    return _ENTRY_OVERHEAD + len(key) + (0 if value is None else len(value))


def _value(entry: _Entry) -> bytes | None:
    return None if entry is None else entry[0]


def _write(tx: Transaction, batch: dict[str, _Entry], marker: int | None) -> None:
    for key, entry in batch.items():
        if entry is None:
            tx.delete(key)
        else:
            tx.put(key, entry[0], entry[1])
    if marker is not None:
        tx.put(MARKER_KEY, str(marker).encode())
    logger.debug("write-behind flush: %d keys, marker %s", len(batch), marker)
