"""The review queue's cases in the fleet's PostgreSQL: the :class:`serving.store.cases.CaseStore` every
instance sharing ``RISKGATE_DATABASE_URL`` reads and writes.

As with SQLite, a case is a ``review`` decision of the decision log's ``decisions`` table (read by a join,
never copied) and the store adds its own tables (schema version ``0003``): ``review_values``,
``review_claims``, ``review_resolutions`` and ``review_queue`` (when the queue started). A ``fraud``
resolution writes its fraud report into the log's ``fraud_reports`` in the same transaction: the same
database, so all or nothing as with one SQLite file.

Claims are exclusive across instances: a claim, a resolution or its undoing first locks the case's decision
row (``SELECT ... FOR UPDATE``), then reads the case in a statement of its own (READ COMMITTED: it sees what
the change before it committed) and checks it as SQLite does (:func:`serving.store.cases.check_changeable`).
Two analysts claiming one case on two instances at once: one holds it, the other gets a 409 naming them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import orjson
import psycopg

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
from serving.store.moments import moment
from serving.store.postgres.database import Database

logger = logging.getLogger(__name__)
Connection = psycopg.Connection[Any]

_OPEN_SINCE: Final = "WHERE d.action = 'review' AND d.decided_at >= (SELECT since FROM review_queue)"
_FROM: Final = f"FROM decisions d {CASE_JOINS} {_OPEN_SINCE}"


class PostgresCases(CaseStore):
    """The cases of the PostgreSQL ``database`` (see the module's docstring). Borrows the service's pool;
    :meth:`close` leaves it open."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def keep_values(self, values: Mapping[str, Mapping[str, str]]) -> None:
        rows = [(case_id, orjson.dumps(dict(kept)).decode()) for case_id, kept in values.items()]
        with self.database.transaction() as connection, connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO review_values (attempt_id, vals) VALUES (%s, %s) ON CONFLICT DO NOTHING", rows
            )

    def cases(self, query: CaseQuery) -> CasePage:
        where, parameters = case_filters(query, "%s")
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {CASE_COLUMNS} {_FROM} AND {where} ORDER BY d.decided_at, d.attempt_id LIMIT %s",
                (*parameters, query.limit + 1),
            ).fetchall()
        cases = tuple(case_of(row) for row in rows[: query.limit])
        return CasePage(cases, cases[-1].case_id if len(rows) > query.limit else None)

    def case(self, case_id: str) -> Case:
        with self.database.transaction() as connection:
            return _case(connection, case_id)

    def claim(self, case_id: str, claim: Claim) -> Case:
        with self.database.transaction() as connection:
            check_changeable(_locked(connection, case_id), claim.by, claim.at)
            connection.execute(
                "INSERT INTO review_claims (attempt_id, claimed_by, claimed_at, until) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (attempt_id) DO UPDATE SET "
                "claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at, until = excluded.until",
                (case_id, claim.by, claim.at, claim.until),
            )
            return _case(connection, case_id)

    def resolve(self, case_id: str, resolution: Resolution, now: datetime) -> Case:
        with self.database.transaction() as connection:
            check_changeable(_locked(connection, case_id), resolution.by, now)
            connection.execute(
                "INSERT INTO review_resolutions (attempt_id, outcome, note, resolved_by, resolved_at, "
                "report_id) VALUES (%s, %s, %s, %s, %s, %s)",
                (case_id, resolution.outcome.value, resolution.note, resolution.by, resolution.at,
                 resolution.report_id),
            )  # fmt: skip
            if resolution.report_id is not None:
                connection.execute(
                    "INSERT INTO fraud_reports "
                    "(report_id, attempt_id, reported_at, report_type, received_at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (resolution.report_id, case_id, resolution.at, REPORT_TYPE, resolution.at),
                )
            return _case(connection, case_id)

    def reopen(self, case_id: str, resolution: Resolution) -> None:
        with self.database.transaction() as connection:
            _locked(connection, case_id)
            connection.execute(
                "DELETE FROM review_resolutions WHERE attempt_id = %s AND resolved_at = %s",
                (case_id, resolution.at),
            )
            if resolution.report_id is not None:
                connection.execute("DELETE FROM fraud_reports WHERE report_id = %s", (resolution.report_id,))

    def history(self, account: str, limit: int) -> list[HistoryEntry]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                f"SELECT {HISTORY_COLUMNS} FROM decisions d "
                "LEFT JOIN outcomes o ON o.attempt_id = d.attempt_id "
                "WHERE d.account_key = %s ORDER BY d.occurred_at DESC, d.attempt_id DESC LIMIT %s",
                (account, limit),
            ).fetchall()
        return [history_entry(row) for row in rows]

    def erase_values(self, account: str) -> int:
        with self.database.transaction() as connection:
            return connection.execute(
                "DELETE FROM review_values WHERE attempt_id IN "
                "(SELECT attempt_id FROM decisions WHERE account_key = %s)",
                (account,),
            ).rowcount

    def stats(self) -> QueueStats:
        with self.database.transaction() as connection:
            count, oldest = _row(
                connection.execute(
                    f"SELECT count(*), min(d.decided_at) FROM decisions d {_OPEN_SINCE} AND NOT EXISTS "
                    "(SELECT 1 FROM review_resolutions r WHERE r.attempt_id = d.attempt_id)"
                )
            )
            rows: list[tuple[Any, ...]] = connection.execute(
                "SELECT r.outcome, d.fraud_level, count(*) FROM review_resolutions r "
                "JOIN decisions d ON d.attempt_id = r.attempt_id GROUP BY r.outcome, d.fraud_level"
            ).fetchall()
        return QueueStats(
            int(count),
            None if oldest is None else moment(oldest),
            {(str(outcome), level): int(n) for outcome, level, n in rows},
        )

    def close(self) -> None:
        """Nothing to release: the pool is the service's (closed last, by the service)."""


def _row(cursor: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row: tuple[Any, ...] | None = cursor.fetchone()
    if row is None:  # pragma: no cover - aggregates always give a row
        raise RuntimeError("an aggregate gave no row")
    return row


def _case(connection: Connection, case_id: str) -> Case:
    row = connection.execute(f"SELECT {CASE_COLUMNS} {_FROM} AND d.attempt_id = %s", (case_id,)).fetchone()
    if row is None:
        raise missing_case(case_id)
    return case_of(row)


def _locked(connection: Connection, case_id: str) -> Case:
    """The case, its decision row locked until the transaction ends: changes of one case from any instance
    queue here. Read after the lock is held, in a statement of its own, so it is the case as the change
    before this one left it."""
    locked = connection.execute(
        "SELECT 1 FROM decisions WHERE attempt_id = %s AND action = 'review' FOR UPDATE", (case_id,)
    ).fetchone()
    if locked is None:
        raise missing_case(case_id)
    return _case(connection, case_id)
