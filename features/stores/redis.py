"""Redis backend, for several service instances sharing one online state.

Units of work are optimistic transactions (WATCH the keys read, MULTI/EXEC the writes) retried on conflict.
Expiry times are event times kept in one sorted set, swept atomically by a small Lua script.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis as redis_client
from redis.exceptions import RedisError, WatchError

from features.stores.base import StoreError, T, Write

logger = logging.getLogger(__name__)

_EXPIRE_SCRIPT = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for _, key in ipairs(stale) do
  redis.call('DEL', key)
end
if #stale > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
end
return #stale
"""


class _RedisTransaction:
    def __init__(self, pipe: Any, expiry_key: str) -> None:
        self._pipe = pipe
        self._expiry_key = expiry_key
        self.writes: list[tuple[str, bytes | None, int | None]] = []

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        self._pipe.watch(*keys)
        values: list[bytes | None] = self._pipe.mget(list(keys))
        return values

    def put(self, key: str, value: bytes, expires_us: int | None = None) -> None:
        self.writes.append((key, value, expires_us))

    def delete(self, key: str) -> None:
        self.writes.append((key, None, None))

    def commit(self) -> None:
        self._pipe.multi()
        for key, value, expires in self.writes:
            if value is None:
                self._pipe.delete(key)
                self._pipe.zrem(self._expiry_key, key)
                continue
            self._pipe.set(key, value)
            if expires is None:
                self._pipe.zrem(self._expiry_key, key)
            else:
                self._pipe.zadd(self._expiry_key, {key: expires})
        self._pipe.execute()


class RedisStore:
    """Keys live in one Redis database (``url``, e.g. ``redis://localhost:6379/0``) under ``namespace``."""

    def __init__(self, url: str, *, namespace: str = "riskgate", max_retries: int = 50) -> None:
        self.url = url
        self._client = redis_client.Redis.from_url(url)
        self._expiry_key = f"{namespace}:__expiry__"
        self._max_retries = max_retries
        try:
            self._client.ping()
        except RedisError as error:
            raise StoreError(f"cannot reach the Redis online store at {url}: {error}") from error
        self._expire = self._client.register_script(_EXPIRE_SCRIPT)
        logger.info("online store: Redis at %s", url)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values: list[bytes | None] = self._client.mget(list(keys))  # type: ignore[assignment]
        return values

    def transact(self, work: Callable[[_RedisTransaction], T]) -> T:
        for _ in range(self._max_retries):
            with self._client.pipeline(transaction=True) as pipe:
                tx = _RedisTransaction(pipe, self._expiry_key)
                try:
                    result = work(tx)
                    tx.commit()
                except WatchError:
                    continue
                return result
        raise StoreError(
            f"Redis online store {self.url}: gave up after {self._max_retries} conflicting concurrent updates"
        )

    def put_many(self, writes: Sequence[Write]) -> None:
        """The writes in one MULTI/EXEC pipeline: values, then their expiry entries in one ZADD/ZREM each."""
        expiring = {key: expires for key, _, expires in writes if expires is not None}
        lasting = [key for key, _, expires in writes if expires is None]
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.mset({key: value for key, value, _ in writes})
                if expiring:
                    pipe.zadd(self._expiry_key, expiring)
                if lasting:
                    pipe.zrem(self._expiry_key, *lasting)
                pipe.execute()
        except RedisError as error:
            raise StoreError(f"Redis online store {self.url}: bulk write failed: {error}") from error

    def expire(self, now_us: int) -> int:
        return int(self._expire(keys=[self._expiry_key], args=[now_us]))

    def keys(self, prefix: str) -> Iterator[str]:
        for key in self._client.scan_iter(match=_escape(prefix) + "*", count=1000):
            yield key.decode()

    def close(self) -> None:
        self._client.close()


def _escape(prefix: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in prefix)
