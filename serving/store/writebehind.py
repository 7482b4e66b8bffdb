"""Write-behind: decisions durable in a journal at once, in SQLite a few milliseconds later, in batches.

Without it, every decision costs two SQLite transactions on the request path (the online store's unit of work
and the decision log's insert): ~0.35 ms of a decision's CPU, and the commits' page writes. With it (the
default for one process over the SQLite store, ``RISKGATE_WRITE_BEHIND``):

1. the online store's unit of work runs in memory (:class:`features.stores.writebehind.WriteBehindStore`);
2. the decision and the attempt it answered are appended to the journal
(:class:`serving.store.journal.Journal`),
   one ``write``, *before* the answer leaves: from then on a ``kill -9`` loses nothing;
3. a background thread (:class:`WriteBehind`) flushes every ``interval``: it starts a new journal segment,
   writes the online store's dirty keys and the held decisions into SQLite (one transaction per file, each
   recording the journal position it completes), then deletes the segments both files hold.

A restart (:meth:`WriteBehind.recover`) applies the journal's records after each file's position again (the
online engine records an attempt once, by id; the log holds a decision once, by attempt id) and flushes.
Paths that read SQLite as a whole or must be durable on their own (outcomes and fraud reports, erasure,
trends, drift, reports, expiry) flush first (:meth:`WriteBehind.flush`), so they see every answered decision.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from features.stores.writebehind import WriteBehindStore
from serving.store.base import DecisionStore
from serving.store.journal import Journal, from_journal

logger = logging.getLogger(__name__)


class Recorder(Protocol):
    """What recovery needs of the online engine."""

    def record_attempt(self, attempt: Mapping[str, object]) -> bool: ...


class WriteBehind:
    """Flushes the write-behind store and the decision log from the journal, in the background and on call."""

    def __init__(
        self,
        journal: Journal,
        log: DecisionStore,
        store: WriteBehindStore | None,
        interval: float,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.journal = journal
        self.log = log
        self.store = store  # None: the online store writes through (Redis); only the log is behind
        self.interval = interval
        self.on_failure = on_failure  # e.g. count it in the service's metrics
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.failing = False  # the last background flush failed (readiness reports it)
        journal.advance(max(log.applied, 0 if store is None else store.applied))

    def recover(self, features: Recorder) -> int:
        """Apply the journal's records that SQLite does not hold yet, then flush; returns how many records."""
        replayed = 0
        store_at = self.store.applied if self.store is not None else None
        for position, payload in self.journal.replay():
            decision, decided_at, attempt = from_journal(payload)
            if store_at is not None and position > store_at and attempt is not None:
                features.record_attempt(attempt)
            if position > self.log.applied:
                self.log.restore(decision, decided_at)
            replayed += 1
        self.flush()
        if replayed:
            logger.info("write-behind: %d journal records applied again after a restart", replayed)
        return replayed

    def flush(self) -> None:
        """Write everything journaled so far into SQLite, then delete the journal segments it came from."""
        with self._lock:
            through = self.journal.rotate()  # every record up to here has made its writes already
            if self.store is not None:
                self.store.flush(through)
            self.log.flush(through)
            self.journal.release(through)

    def start(self) -> WriteBehind:
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
                self.failing = False
            except Exception:  # the records stay journaled and held: the next round tries again
                self.failures += 1
                self.failing = True
                if self.on_failure is not None:
                    self.on_failure()
                logger.exception("write-behind flush failed (%d so far); retrying", self.failures)

    def stop(self) -> None:
        """Stop the thread and flush what is left (shutdown)."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30.0)
        self.flush()

    def close(self) -> None:
        self.stop()
        self.journal.close()
