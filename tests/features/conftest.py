"""Fixtures for the feature engines: online engines over each store (redis-server: tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from features.stores.redis import RedisStore


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore(redis_url)
    redis.Redis.from_url(redis_url).flushdb()
    yield store
    store.close()
