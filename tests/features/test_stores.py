"""Every online store backend honours the same contract: batched reads, atomic units of work, expiry."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.sqlite import retry_locked
from features.stores import OnlineStore, StoreError, Transaction, open_store
from features.stores.memory import MemoryStore
from features.stores.redis import RedisStore
from features.stores.sqlite import SQLiteStore


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "state" / "online.db")
        yield sqlite
        sqlite.close()
    else:
        yield request.getfixturevalue("redis_store")


def test_reads_writes_and_deletes(store: OnlineStore) -> None:
    def write(tx: Transaction) -> None:
        tx.put("k:1", b"one")
        tx.put("k:2", b"two", expires_us=10)

    store.transact(write)
    assert store.get_many(["k:1", "k:2", "k:3"]) == [b"one", b"two", None]
    store.transact(lambda tx: tx.delete("k:1"))
    assert store.get_many(["k:1"]) == [None]
    assert store.get_many([]) == []


def test_a_unit_of_work_sees_its_own_reads_and_fails_as_a_whole(store: OnlineStore) -> None:
    store.transact(lambda tx: tx.put("n", b"1"))

    def fail(tx: Transaction) -> None:
        tx.put("n", b"2")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transact(fail)
    assert store.get_many(["n"]) == [b"1"]


def test_concurrent_increments_are_not_lost(store: OnlineStore) -> None:
    store.transact(lambda tx: tx.put("counter", b"0"))

    def increment(tx: Transaction) -> None:
        (current,) = tx.get_many(["counter"])
        tx.put("counter", str(int(current or b"0") + 1).encode())

    def worker() -> None:
        for _ in range(25):
            store.transact(increment)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get_many(["counter"]) == [b"100"]


def test_expiry_uses_event_time(store: OnlineStore) -> None:
    def write(tx: Transaction) -> None:
        tx.put("old", b"x", expires_us=100)
        tx.put("new", b"y", expires_us=200)
        tx.put("kept", b"z")

    store.transact(write)
    assert store.expire(150) == 1
    assert store.get_many(["old", "new", "kept"]) == [None, b"y", b"z"]
    store.transact(lambda tx: tx.put("new", b"y2"))  # rewritten without expiry: kept
    assert store.expire(10**18) == 0
    assert sorted(store.keys("")) == ["kept", "new"]


def test_keys_by_prefix(store: OnlineStore) -> None:
    def write(tx: Transaction) -> None:
        for key in ("a:1", "a:2", "b:1", "a*"):
            tx.put(key, b".")

    store.transact(write)
    assert sorted(store.keys("a:")) == ["a:1", "a:2"]


def test_open_store_by_url(tmp_path: Path, redis_url: str) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/online.db"), SQLiteStore)
    assert isinstance(open_store(redis_url), RedisStore)
    with pytest.raises(StoreError, match="unknown online store URL"):
        open_store("postgres://nope")


def test_unreachable_redis_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot reach"):
        RedisStore("redis://127.0.0.1:1/0")


def _put(store: SQLiteStore, key: str, value: bytes) -> None:
    def write(tx: Transaction) -> None:
        tx.put(key, value)

    store.transact(write)


def test_sqlite_commits_leave_checkpoints_to_the_background(tmp_path: Path) -> None:
    """Past SQLite's default of 1000 pages the log keeps growing: no request pays for a checkpoint."""
    store = SQLiteStore(tmp_path / "online.db")
    wal = tmp_path / "online.db-wal"
    blob = bytes(range(256)) * 64  # 16 KiB: four pages a write
    for n in range(320):  # ~1300 pages of log, one commit each, as requests commit
        _put(store, f"k{n}", blob)
    assert wal.stat().st_size > 1_100 * 4096
    store.close()


def test_sqlite_backstop_checkpoint_bounds_the_log(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "online.db", autocheckpoint_pages=100)
    blob = bytes(range(256)) * 64
    for n in range(320):
        _put(store, f"k{n}", blob)
    assert (tmp_path / "online.db-wal").stat().st_size < 200 * 4096
    assert store.get_many(["k0", "k319"]) == [blob, blob]
    store.close()


def test_put_many_writes_values_and_their_expiry(store: OnlineStore) -> None:
    store.put_many([("b:1", b"one", None), ("b:2", b"two", 10), ("b:3", b"three", 30)])
    assert store.get_many(["b:1", "b:2", "b:3"]) == [b"one", b"two", b"three"]
    store.put_many([("b:3", b"THREE", None)])  # replaces the value, and the key no longer expires
    assert store.expire(now_us=100) == 1
    assert store.get_many(["b:1", "b:2", "b:3"]) == [b"one", None, b"THREE"]


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Another process's writer, as seen by SQLite: a connection holding the write lock for ``seconds``."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    taken.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


def test_sqlite_waits_briefly_for_another_writer_then_runs(tmp_path: Path) -> None:
    """A unit of work queued behind another connection's write lock runs soon after the lock is released,
    not after SQLite's own millisecond back-off (worker processes share the file)."""
    store = SQLiteStore(tmp_path / "online.db")
    taken = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(store.path, 0.2, taken))
    holder.start()
    taken.wait(5)
    started = time.monotonic()
    _put(store, "k", b"v")
    waited = time.monotonic() - started
    holder.join()
    assert store.get_many(["k"]) == [b"v"]
    assert 0.15 < waited < 0.2 + 0.1
    store.close()


def test_sqlite_gives_up_on_a_lock_held_past_the_busy_timeout(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "online.db", busy_timeout_ms=100)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(store.path, 0.5, taken))
    holder.start()
    taken.wait(5)
    started = time.monotonic()
    with pytest.raises(StoreError, match="locked by another writer"):
        _put(store, "k", b"v")
    assert 0.09 < time.monotonic() - started < 0.4
    holder.join()
    _put(store, "k", b"v")  # the connection is usable once the other writer is done
    assert store.get_many(["k"]) == [b"v"]
    store.close()


def test_retry_locked_reraises_other_errors_at_once() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: kv")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_locked(broken, timeout_s=5.0)
    assert calls == [1]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_unit_of_work_reads_its_own_writes(kind: str, tmp_path: Path) -> None:
    """SQLite holds a unit's writes until its commit (one executemany): reads inside it still see them."""
    store: OnlineStore = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "kv.sqlite")
    store.put_many([("a", b"1", None), ("b", b"2", None)])

    def work(tx: Transaction) -> list[bytes | None]:
        tx.put("a", b"new", expires_us=5)
        tx.delete("b")
        tx.put("c", b"3")
        tx.put("c", b"4")  # the last write of a key wins
        return tx.get_many(["a", "b", "c", "d"])

    assert store.transact(work) == [b"new", None, b"4", None]
    assert store.get_many(["a", "b", "c"]) == [b"new", None, b"4"]
    assert store.expire(6) == 1
    assert store.get_many(["a"]) == [None]
    store.close()
