"""Online stores: where the online engine keeps per-entity state. One protocol, several backends."""

from features.stores.base import OnlineStore, StoreError, Transaction

__all__ = ["OnlineStore", "StoreError", "Transaction", "open_store"]


def open_store(url: str) -> OnlineStore:
    """A store from a URL: ``sqlite:///path/to/online.db``, ``redis://host:port/db`` or ``memory://``."""
    if url.startswith("sqlite:///"):
        from features.stores.sqlite import SQLiteStore  # noqa: PLC0415 (backends load on demand)

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from features.stores.redis import RedisStore  # noqa: PLC0415

        return RedisStore(url)
    if url == "memory://":
        from features.stores.memory import MemoryStore  # noqa: PLC0415

        return MemoryStore()
    raise StoreError(
        f"unknown online store URL {url!r}: use sqlite:///PATH, redis://HOST:PORT/DB or memory://"
    )
