"""The online store protocol: a key-value store of opaque blobs with atomic read-modify-write and expiry.

The online engine owns the encoding (packed numpy arrays per entity, JSON attempt records); a backend only has
to read several keys at once, run a unit of work atomically (retrying it on a conflict if the backend is
optimistic) and drop keys whose expiry (an event time, in microseconds) has passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeAlias, TypeVar

from core.errors import RiskgateError

T = TypeVar("T")
#: one write of a bulk load: key, value, expiry (event time in µs, or None)
Write: TypeAlias = tuple[str, bytes, int | None]


class StoreError(RiskgateError, RuntimeError):
    """The online store failed (unreachable, conflict retries exhausted, corrupt state)."""


class Transaction(Protocol):
    """Reads and writes inside one atomic unit of work."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Current values (None where absent); the keys are protected against concurrent writers."""
        ...

    def put(self, key: str, value: bytes, expires_us: int | None = None) -> None:
        """Write a value, dropped by :meth:`OnlineStore.expire` once ``expires_us`` (event time) passed."""
        ...

    def delete(self, key: str) -> None: ...


class OnlineStore(Protocol):
    """What the online engine needs from a backend."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read several keys in one round trip (a consistent snapshot where the backend offers one)."""
        ...

    def transact(self, work: Callable[[Transaction], T]) -> T:
        """Run ``work`` atomically; it may be run again if a concurrent writer touched the keys it read."""
        ...

    def put_many(self, writes: Sequence[Write]) -> None:
        """Write many keys at once (a bulk load): atomic where the backend makes it cheap, never interleaved
        with a unit of work on the same keys; callers write keys nobody else is updating."""
        ...

    def expire(self, now_us: int) -> int:
        """Delete every key whose expiry is before ``now_us``; returns how many."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key starting with ``prefix`` (for maintenance, not for the request path)."""
        ...

    def close(self) -> None: ...
