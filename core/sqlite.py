"""SQLite as riskgate's stores use it: connections for several processes sharing one file, and writes held in
memory until SQLite takes them (write-behind). Shared by the online feature store
(:mod:`features.stores.sqlite`, :mod:`features.stores.writebehind`) and the decision log
(:mod:`serving.store.decisions`).

Checkpoints: SQLite copies the write-ahead log back into the database from inside whichever commit pushes the
log past ``wal_autocheckpoint`` pages (an fsync: milliseconds in one unlucky request). The service checkpoints
its files from a background thread (:mod:`serving.store.upkeep`), so the automatic one is only a backstop,
set far above what that thread lets the log reach (:data:`BACKSTOP_CHECKPOINT_PAGES`).

Waiting for another process's write lock (``riskgate serve --workers N`` shares the files): SQLite's own busy
handler sleeps 1, 2, 5, 10, 15, 20, 25, ... ms between tries, so two processes whose units of work take a
fraction of a millisecond queue behind each other for tens to hundreds of milliseconds. Connections here are
opened without a busy timeout (:func:`connect`) and :func:`retry_locked` retries a locked statement after
short pauses (50 µs doubling to 1 ms) until its timeout has passed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final, Generic, Literal, TypeVar

T = TypeVar("T")
V = TypeVar("V")

#: automatic checkpoint threshold (pages of 4 KiB: about 40 MiB of log), a backstop for background checkpoints
BACKSTOP_CHECKPOINT_PAGES: Final = 10_000

#: the first and the longest pause between two tries of a statement that found the database locked
FIRST_PAUSE_S: Final = 50e-6
LONGEST_PAUSE_S: Final = 1e-3
_LOCKED: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def retry_locked(statement: Callable[[], T], timeout_s: float) -> T:
    """Run ``statement``, trying again after short pauses while another connection holds the lock it needs.

    Gives up (re-raising SQLite's "database is locked") once ``timeout_s`` has passed since the first try.
    """
    deadline: float | None = None
    pause = FIRST_PAUSE_S
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) not in _LOCKED:
                raise
            now = time.monotonic()
            deadline = now + timeout_s if deadline is None else deadline
            if now >= deadline:
                raise
            time.sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE_S)


def connect(path: Path) -> sqlite3.Connection:
    """A connection for :func:`retry_locked`: autocommit, shareable between threads behind a lock, and no
    busy handler of SQLite's own (it would sleep milliseconds at a time before the retry loop sees a lock)."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.0)


def open_wal(
    path: Path,
    timeout_s: float,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    autocheckpoint_pages: int = BACKSTOP_CHECKPOINT_PAGES,
) -> sqlite3.Connection:
    """A :func:`connect`-ion to the file at ``path`` (its directory made if missing) in write-ahead-log mode,
    committing with ``synchronous`` (``FULL``: an fsync per commit) and checkpointing automatically only as a
    backstop: what every store of the service opens its file with."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    for statement in (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={synchronous}",
        f"PRAGMA wal_autocheckpoint={int(autocheckpoint_pages)}",
    ):
        retry_locked(lambda sql=statement: db.execute(sql), timeout_s)  # type: ignore[misc]
    return db


class Staged(Generic[V]):
    """Writes held in memory until SQLite takes them: the new ones, and the batch being flushed.

    One protocol for every write-behind part (this store, the decision log): :meth:`flush` moves the new
    writes aside, hands them to a writer outside the lock (reads still see them, in :attr:`flushing`), and
    forgets them once written; if the writer fails they are new again (writes made since win). The caller
    owns ``lock`` and holds it around :meth:`get` and its own additions to :attr:`new`.
    """

    def __init__(self, lock: AbstractContextManager[object]) -> None:
        self.lock = lock
        self.new: dict[str, V] = {}
        self.flushing: dict[str, V] = {}
        self.applied = 0  # the journal position the file holds everything up to

    def holds(self, key: str) -> bool:
        return key in self.new or key in self.flushing

    def get(self, key: str) -> V | None:
        """The held write of ``key``, None if none (where a held value may be None, ask :meth:`holds`)."""
        return self.new[key] if key in self.new else self.flushing.get(key)

    def __len__(self) -> int:
        return len(self.new) + len(self.flushing)

    def flush(
        self,
        marker: int | None,
        write: Callable[[dict[str, V], int | None], None],
        settled: Callable[[dict[str, V]], None] | None = None,
    ) -> int:
        """Write the new writes with ``write(batch, marker)``; ``marker`` is passed only if newer than
        :attr:`applied` (the caller read its journal position before calling). ``settled(batch)`` runs under
        the lock once written. Returns how many were written; on failure they stay held and it raises."""
        with self.lock:
            batch, self.new = self.new, {}
            self.flushing = batch
        newer = marker if marker is not None and marker > self.applied else None
        if not batch and newer is None:
            return 0
        try:
            write(batch, newer)
        except BaseException:
            with self.lock:
                self.new = {**batch, **self.new}
                self.flushing = {}
            raise
        with self.lock:
            self.flushing = {}
            if settled is not None:
                settled(batch)
            if newer is not None:
                self.applied = newer
        return len(batch)
