"""Background WAL checkpoints for the service's SQLite files, off the request path.

SQLite checkpoints the write-ahead log from inside a commit once it passes ``wal_autocheckpoint`` pages, and a
checkpoint waits for an fsync (milliseconds on ordinary disks): that would land in some unlucky request's
latency. The service's connections keep the automatic checkpoint only as a far-off backstop
(:data:`core.sqlite.BACKSTOP_CHECKPOINT_PAGES`) and this thread runs passive checkpoints
instead, on its own connection; writers never wait for them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)


class Checkpointer:
    """Checkpoints one SQLite database in WAL mode every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"checkpoint-{path.name}", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            while not self._stop.wait(self.interval):
                self._checkpoint(db, "PASSIVE")
            self._checkpoint(db, "TRUNCATE")
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection, mode: str) -> None:
        try:
            db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as error:  # busy or locked: the next round catches up
            logger.debug("checkpoint of %s skipped: %s", self.path, error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
