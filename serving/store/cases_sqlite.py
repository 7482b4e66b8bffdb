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
from serving.errors import ConflictError, NotFoundError
from serving.store.cases import (
    REPORT_TYPE,
    Case,
    CasePage,
    CaseQuery,
    CaseStatus,
    CaseStore,
    Claim,
    HistoryEntry,
    Outcome,
    QueueStats,
    Resolution,
)
from serving.store.decisions import DecisionLog

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
_COLUMNS: Final = (
    "d.attempt_id, d.decided_at, d.occurred_at, d.account_key, d.kind, d.rule, d.decided_by, "
    "d.fraud_probability, d.fraud_level, d.amount, d.currency, d.answer, v.vals, "
    "c.claimed_by, c.claimed_at, c.until, r.outcome, r.note, r.resolved_by, r.resolved_at, r.report_id"
)
_FROM: Final = (
    "FROM decisions d INDEXED BY decisions_review "
    "LEFT JOIN review_values v ON v.attempt_id = d.attempt_id "
    "LEFT JOIN review_claims c ON c.attempt_id = d.attempt_id "
    "LEFT JOIN review_resolutions r ON r.attempt_id = d.attempt_id "
    "WHERE d.action = 'review' AND d.decided_at >= (SELECT since FROM review_queue)"
)


def _text(moment: datetime) -> str:
    """A time as the log writes it (ISO 8601 in UTC), so that texts compare as times."""
    return moment.astimezone(UTC).isoformat()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _case(row: Sequence[Any]) -> Case:
    (case_id, decided_at, occurred_at, account, kind, rule, decided_by, probability, level, amount,
     currency, answer, values, claimed_by, claimed_at, until, outcome, note, resolved_by, resolved_at,
     report) = row  # fmt: skip
    claim = None if claimed_by is None else Claim(str(claimed_by), _at(claimed_at), _at(until))
    resolution = None
    if outcome is not None:
        resolution = Resolution(Outcome(outcome), str(note), str(resolved_by), _at(resolved_at), report)
    return Case(
        case_id=str(case_id),
        opened_at=_at(decided_at),
        occurred_at=_at(occurred_at),
        account=account,
        kind=kind,
        rule=str(rule),
        decided_by=str(decided_by or "policy"),
        fraud_probability=probability,
        fraud_level=level,
        amount=amount,
        currency=currency,
        answer=orjson.loads(answer),
        values={} if values is None else orjson.loads(values),
        claim=claim,
        resolution=resolution,
    )


def _filters(query: CaseQuery) -> tuple[str, list[object]]:
    """The SQL conditions (after ``WHERE d.action = 'review'``) and parameters of a query."""
    sql = [f"r.attempt_id IS {'NULL' if query.status is CaseStatus.OPEN else 'NOT NULL'}"]
    parameters: list[object] = []
    conditions: tuple[tuple[object, str], ...] = (
        (query.opened_before, "d.decided_at < ?"),
        (query.opened_after, "d.decided_at >= ?"),
        (query.rule, "d.rule = ?"),
        (query.fraud_level, "d.fraud_level = ?"),
        (query.min_amount, "d.amount >= ?"),
        (query.max_amount, "d.amount <= ?"),
        (query.kind, "d.kind = ?"),
    )
    for value, condition in conditions:
        if value is not None:
            sql.append(condition)
            parameters.append(_text(value) if isinstance(value, datetime) else value)
    if query.after is not None:
        sql.append(
            "(d.decided_at, d.attempt_id) > "
            "(SELECT decided_at, attempt_id FROM decisions WHERE attempt_id = ?)"
        )
        parameters.append(query.after)
    return " AND ".join(sql), parameters


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
        where, parameters = _filters(query)
        rows = self._read(
            f"SELECT {_COLUMNS} {_FROM} AND {where} ORDER BY d.decided_at, d.attempt_id LIMIT ?",
            (*parameters, query.limit + 1),
        )
        cases = tuple(_case(row) for row in rows[: query.limit])
        return CasePage(cases, cases[-1].case_id if len(rows) > query.limit else None)

    def case(self, case_id: str) -> Case:
        with self._lock:
            return retry_locked(lambda: _case(_one(self._db, case_id)), self._timeout_s)

    def claim(self, case_id: str, claim: Claim) -> Case:
        def work(db: sqlite3.Connection) -> Case:
            case = _case(_one(db, case_id))
            _check_open(case)
            holder = case.holder(claim.at)
            if holder is not None and holder != claim.by:
                raise _held(case, holder)
            db.execute(
                "INSERT OR REPLACE INTO review_claims (attempt_id, claimed_by, claimed_at, until) "
                "VALUES (?, ?, ?, ?)",
                (case_id, claim.by, _text(claim.at), _text(claim.until)),
            )
            return _case(_one(db, case_id))

        return self._write(work)

    def resolve(self, case_id: str, resolution: Resolution, now: datetime) -> Case:
        def work(db: sqlite3.Connection) -> Case:
            case = _case(_one(db, case_id))
            _check_open(case)
            holder = case.holder(now)
            if holder is not None and holder != resolution.by:
                raise _held(case, holder)
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
            return _case(_one(db, case_id))

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
            "SELECT d.attempt_id, d.occurred_at, d.kind, d.action, d.rule, d.amount, d.currency, "
            "d.fraud_level, o.status, o.decline_code, "
            "EXISTS (SELECT 1 FROM fraud_reports f WHERE f.attempt_id = d.attempt_id) "
            "FROM decisions d LEFT JOIN outcomes o ON o.attempt_id = d.attempt_id "
            "WHERE d.account_key = ? ORDER BY d.occurred_at DESC, d.attempt_id DESC LIMIT ?",
            (account, limit),
        )
        return [
            HistoryEntry(
                attempt_id=str(row[0]),
                occurred_at=_at(row[1]),
                kind=row[2],
                action=str(row[3]),
                rule=str(row[4]),
                amount=row[5],
                currency=row[6],
                fraud_level=row[7],
                status=row[8],
                decline_code=row[9],
                fraud_reported=bool(row[10]),
            )
            for row in rows
        ]

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
            None if oldest is None else _at(oldest),
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
        f"SELECT {_COLUMNS} {_FROM} AND d.attempt_id = ?", (case_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(
            f"there is no review case {case_id!r}: a case is an attempt decided 'review' "
            "(see GET /v1/review/cases)"
        )
    return row


def _check_open(case: Case) -> None:
    if case.resolution is not None:
        made = case.resolution
        raise ConflictError(
            f"review case {case.case_id!r} was resolved already ({made.outcome.value}, by {made.by} at "
            f"{made.at.isoformat()})"
        )


def _held(case: Case, holder: str) -> ConflictError:
    until = case.claim.until.isoformat() if case.claim is not None else "?"
    return ConflictError(
        f"review case {case.case_id!r} is claimed by {holder} until {until}: wait for the claim to lapse, "
        "or ask them"
    )
