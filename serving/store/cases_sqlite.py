"""The review queue's cases in the decision log's SQLite file: :class:`serving.store.cases.CaseStore` of a
single machine.

Why the decision log's file and not one of its own: a case *is* a logged ``review`` decision (read by a join,
never copied), a ``fraud`` resolution writes its fraud report into the log's ``fraud_reports`` in the same
transaction as the resolution (all or nothing without a protocol between two files), and a case's account
history is a query of the same log. The store adds three small tables (``review_values``: the raw values a
block list needs, kept soon after the decision; ``review_claims``; ``review_resolutions``), one partial
index on the decisions (``action = 'review'`` only, so other decisions never pay for it) and
``review_queue``, the time the queue started in this log: review decisions logged before it (when no queue
existed) are not cases. The tables are
created when the store opens the file; the decision log never reads them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import orjson

from core.sqlite import open_wal, retry_locked
from serving.store.cases import (
    CASE_COLUMNS,
    CASE_JOINS,
    HISTORY_COLUMNS,
    REPORT_TYPE,
    Case,
    CasePage,
    CaseQuery,
    CaseStore,
    Claim,
    HistoryEntry,
    QueueStats,
    Resolution,
    case_filters,
    case_of,
    check_changeable,
    history_entry,
    missing_case,
)
from serving.store.decisions import DecisionLog
from serving.store.moments import moment

logger = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_S: Final = 10.0
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS review_values (
        attempt_id TEXT PRIMARY KEY,
        vals TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS review_claims (
        attempt_id TEXT PRIMARY KEY,
        claimed_by TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        until TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS review_resolutions (
        attempt_id TEXT PRIMARY KEY,
        outcome TEXT NOT NULL,
        note TEXT NOT NULL,
        resolved_by TEXT NOT NULL,
        resolved_at TEXT NOT NULL,
        report_id TEXT
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS decisions_review ON decisions (decided_at, attempt_id) "
    "WHERE action = 'review'",
    "CREATE TABLE IF NOT EXISTS review_queue (since TEXT NOT NULL)",
)
_FROM: Final = (
    f"FROM decisions d INDEXED BY decisions_review {CASE_JOINS} "
    "WHERE d.action = 'review' AND d.decided_at >= (SELECT since FROM review_queue)"
)


def _text(moment: datetime) -> str:
    """A time as the log writes it (ISO 8601 in UTC), so that texts compare as times."""
    return moment.astimezone(UTC).isoformat()


class SQLiteCases(CaseStore):
    """The cases of the decision log at ``path`` (see the module's docstring); one connection, one lock."""

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self._timeout_s = busy_timeout_s
        DecisionLog(path).close()  # the log's own tables, created or migrated by their owner first
        self._db = open_wal(path, busy_timeout_s)
        self._lock = threading.Lock()
        self._write(_create)

    def _read(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return retry_locked(lambda: self._db.execute(sql, parameters).fetchall(), self._timeout_s)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in one write transaction, waiting while another connection holds the write lock."""
        with self._lock:
            retry_locked(lambda: self._db.execute("BEGIN IMMEDIATE"), self._timeout_s)
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return result

    def keep_values(self, values: Mapping[str, Mapping[str, str]]) -> None:
        rows = [(case_id, orjson.dumps(dict(kept)).decode()) for case_id, kept in values.items()]
        self._write(
            lambda db: db.executemany(
                "INSERT OR IGNORE INTO review_values (attempt_id, vals) VALUES (?, ?)", rows
            )
        )

    def cases(self, query: CaseQuery) -> CasePage:
        where, parameters = case_filters(query, "?")
        written = [_text(p) if isinstance(p, datetime) else p for p in parameters]
        rows = self._read(
            f"SELECT {CASE_COLUMNS} {_FROM} AND {where} ORDER BY d.decided_at, d.attempt_id LIMIT ?",
            (*written, query.limit + 1),
        )
        cases = tuple(case_of(row) for row in rows[: query.limit])
        return CasePage(cases, cases[-1].case_id if len(rows) > query.limit else None)

    def case(self, case_id: str) -> Case:
        with self._lock:
            return retry_locked(lambda: case_of(_one(self._db, case_id)), self._timeout_s)

    def claim(self, case_id: str, claim: Claim) -> Case:
        def work(db: sqlite3.Connection) -> Case:
            check_changeable(case_of(_one(db, case_id)), claim.by, claim.at)
            db.execute(
                "INSERT OR REPLACE INTO review_claims (attempt_id, claimed_by, claimed_at, until) "
                "VALUES (?, ?, ?, ?)",
                (case_id, claim.by, _text(claim.at), _text(claim.until)),
            )
            return case_of(_one(db, case_id))

        return self._write(work)

    def resolve(self, case_id: str, resolution: Resolution, now: datetime) -> Case:
        def work(db: sqlite3.Connection) -> Case:
            check_changeable(case_of(_one(db, case_id)), resolution.by, now)
            at = _text(resolution.at)
            db.execute(
                "INSERT INTO review_resolutions "
                "(attempt_id, outcome, note, resolved_by, resolved_at, report_id) VALUES (?, ?, ?, ?, ?, ?)",
                (case_id, resolution.outcome.value, resolution.note, resolution.by, at, resolution.report_id),
            )
            if resolution.report_id is not None:
                db.execute(
                    "INSERT OR IGNORE INTO fraud_reports "
                    "(report_id, attempt_id, reported_at, report_type, received_at) VALUES (?, ?, ?, ?, ?)",
                    (resolution.report_id, case_id, at, REPORT_TYPE, at),
                )
            return case_of(_one(db, case_id))

        return self._write(work)

    def reopen(self, case_id: str, resolution: Resolution) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "DELETE FROM review_resolutions WHERE attempt_id = ? AND resolved_at = ?",
                (case_id, _text(resolution.at)),
            )
            if resolution.report_id is not None:
                db.execute("DELETE FROM fraud_reports WHERE report_id = ?", (resolution.report_id,))

        self._write(work)

    def history(self, account: str, limit: int) -> list[HistoryEntry]:
        rows = self._read(
            f"SELECT {HISTORY_COLUMNS} FROM decisions d LEFT JOIN outcomes o ON o.attempt_id = d.attempt_id "
            "WHERE d.account_key = ? ORDER BY d.occurred_at DESC, d.attempt_id DESC LIMIT ?",
            (account, limit),
        )
        return [history_entry(row) for row in rows]

    def erase_values(self, account: str) -> int:
        return self._write(
            lambda db: (
                db.execute(
                    "DELETE FROM review_values WHERE attempt_id IN "
                    "(SELECT attempt_id FROM decisions WHERE account_key = ?)",
                    (account,),
                ).rowcount
            )
        )

    def stats(self) -> QueueStats:
        ((count, oldest),) = self._read(
            "SELECT count(*), min(d.decided_at) FROM decisions d INDEXED BY decisions_review "
            "WHERE d.action = 'review' AND d.decided_at >= (SELECT since FROM review_queue) "
            "AND NOT EXISTS (SELECT 1 FROM review_resolutions r WHERE r.attempt_id = d.attempt_id)"
        )
        rows = self._read(
            "SELECT r.outcome, d.fraud_level, count(*) FROM review_resolutions r "
            "JOIN decisions d ON d.attempt_id = r.attempt_id GROUP BY r.outcome, d.fraud_level"
        )
        return QueueStats(
            int(count),
            None if oldest is None else moment(oldest),
            {(str(outcome), level): int(n) for outcome, level, n in rows},
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _create(db: sqlite3.Connection) -> None:
    """The tables, and when the queue started (a log's earlier review decisions, made when nobody worked a
    queue, are not cases: they would all expire at once)."""
    for statement in _SCHEMA:
        db.execute(statement)
    if db.execute("SELECT count(*) FROM review_queue").fetchone() == (0,):
        db.execute("INSERT INTO review_queue (since) VALUES (?)", (_text(datetime.now(UTC)),))


def _one(db: sqlite3.Connection, case_id: str) -> tuple[Any, ...]:
    """The row of one case (the caller holds the connection's lock)."""
    row: tuple[Any, ...] | None = db.execute(
        f"SELECT {CASE_COLUMNS} {_FROM} AND d.attempt_id = ?", (case_id,)
    ).fetchone()
    if row is None:
        raise missing_case(case_id)
    return row
