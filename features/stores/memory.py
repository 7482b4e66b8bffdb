"""An in-process store: a dict behind a lock. For tests, notebooks and single-process replays."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from features.stores.base import T, Write


class _MemoryTransaction:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._writes: dict[str, tuple[bytes, int | None] | None] = {}

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self._store._read(keys, self._writes)

    def put(self, key: str, value: bytes, expires_us: int | None = None) -> None:
        self._writes[key] = (value, expires_us)

    def delete(self, key: str) -> None:
        self._writes[key] = None


class MemoryStore:
    """Keeps everything in memory; a unit of work is applied only if it completes."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, int | None]] = {}
        self._lock = threading.RLock()

    def _read(
        self, keys: Sequence[str], writes: dict[str, tuple[bytes, int | None] | None]
    ) -> list[bytes | None]:
        out: list[bytes | None] = []
        for key in keys:
            entry = writes[key] if key in writes else self._data.get(key)
            out.append(None if entry is None else entry[0])
        return out

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            return self._read(keys, {})

    def transact(self, work: Callable[[_MemoryTransaction], T]) -> T:
        with self._lock:
            tx = _MemoryTransaction(self)
            result = work(tx)
            for key, entry in tx._writes.items():
                if entry is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = entry
            return result

    def put_many(self, writes: Sequence[Write]) -> None:
        with self._lock:
            self._data.update((key, (value, expires)) for key, value, expires in writes)

    def expire(self, now_us: int) -> int:
        with self._lock:
            stale = [
                key for key, (_, expires) in self._data.items() if expires is not None and expires < now_us
            ]
            for key in stale:
                del self._data[key]
            return len(stale)

    def keys(self, prefix: str) -> Iterator[str]:
        with self._lock:
            found = [key for key in self._data if key.startswith(prefix)]
        yield from found

    def close(self) -> None:
        """Nothing to release."""
