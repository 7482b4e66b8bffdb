"""The decision log in PostgreSQL, shared by every instance of a fleet (``RISKGATE_DATABASE_URL``).

Same tables as the SQLite log (migration ``0001``), same rows (:mod:`serving.store.decision_queries` builds
them and reads ranges for both). What differs is what a fleet relies on:

* One decision per attempt across instances: :meth:`PostgresDecisions.record` inserts with ``ON CONFLICT
  (attempt_id) DO NOTHING``; when another instance's row won, the caller gets that logged decision back and
  answers with it.
* No write-behind: each decision is committed before the answer leaves (a journal is per instance, and which
  decision an attempt has must be settled by the shared database when answering). ``flush``, ``applied``
  and ``held`` are trivial (nothing is ever held); ``restore`` commits at once.
* Erasure, range reads and single reads see every instance's rows at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from serving.store.base import DecisionRecord, DecisionStore, Erasure, LoggedDecision
from serving.store.decision_queries import (
    POSTGRES,
    STORED_COLUMNS,
    RangeQueries,
    decision_row,
    erase_sql,
    erased_answer,
    insert_sql,
    logged,
    now,
    stored,
)
from serving.store.labels import ReportSource, StoredReport
from serving.store.moments import moment
from serving.store.postgres.database import Database, redact

logger = logging.getLogger(__name__)

_INSERT: Final = insert_sql(POSTGRES)
_ERASE: Final = erase_sql(POSTGRES)
_GET: Final = f"SELECT {STORED_COLUMNS} FROM decisions WHERE attempt_id = %s"


class PostgresDecisions(DecisionStore):
    """The decision log and label store in PostgreSQL (:class:`serving.store.base.DecisionStore`) over the
    instance's shared pool; safe to share between threads (each call borrows a connection)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        logger.info("decision log: PostgreSQL at %s (committed per decision, no write-behind)", self)

    def __str__(self) -> str:
        return redact(self.database.url)

    # -- decisions ------------------------------------------------------------------------------------------

    def get(self, attempt_id: str) -> LoggedDecision | None:
        with self.database.transaction() as connection:
            row = connection.execute(_GET, (attempt_id,)).fetchone()
        return None if row is None else stored(row)

    def record(
        self, decision: DecisionRecord, attempt: Mapping[str, object] | None = None, first: bool = False
    ) -> LoggedDecision:
        """Log a decision, committed before returning; if any instance logged the attempt before (or does so
        concurrently), that logged decision wins and is returned. ``attempt`` and ``first`` serve the
        journal, which this store does not have."""
        decided_at = now()
        with self.database.transaction() as connection:
            inserted = connection.execute(_INSERT, decision_row(decision, decided_at)).rowcount == 1
            # a concurrent insert of the same attempt made ours wait for its commit; a new statement sees it
            row = None if inserted else connection.execute(_GET, (decision.attempt_id,)).fetchone()
        if inserted:
            return logged(decision, decided_at)
        if row is None:  # pragma: no cover - the conflicting row is committed and never deleted
            raise RuntimeError(f"decision log {self}: a decision vanished between insert and read")
        return stored(row)

    def last_outcome_of_method(self, method_key: str | None) -> tuple[str | None, str | None]:
        """``(status, decline_code)`` of the latest known outcome of any attempt made with this method."""
        if method_key is None:
            return None, None
        with self.database.transaction() as connection:
            row = connection.execute(
                "SELECT o.status, o.decline_code FROM decisions d "
                "JOIN outcomes o ON o.attempt_id = d.attempt_id "
                "WHERE d.method_key = %s ORDER BY o.occurred_at DESC LIMIT 1",
                (method_key,),
            ).fetchone()
        if row is None:
            return None, None
        return str(row[0]), None if row[1] is None else str(row[1])

    def count(self) -> int:
        with self.database.transaction() as connection:
            row = connection.execute("SELECT count(*) FROM decisions").fetchone()
        return _number(row)

    # -- labels ---------------------------------------------------------------------------------------------

    def record_outcome(
        self, attempt_id: str, occurred_at: datetime, status: str, decline_code: str | None
    ) -> bool:
        """Keep a gateway outcome; False if this attempt's outcome was already received (by any instance)."""
        with self.database.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO outcomes (attempt_id, occurred_at, status, decline_code, received_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (attempt_id) DO NOTHING",
                (attempt_id, occurred_at, status, decline_code, now()),
            )
        return cursor.rowcount == 1

    def record_report(self, report_id: str, attempt_id: str, reported_at: datetime, report_type: str) -> bool:
        """Keep a fraud report; False if this report was already received (by any instance)."""
        with self.database.transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO fraud_reports (report_id, attempt_id, reported_at, report_type, received_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (report_id) DO NOTHING",
                (report_id, attempt_id, reported_at, report_type, now()),
            )
        return cursor.rowcount == 1

    # -- erasure --------------------------------------------------------------------------------------------

    def erase_account(self, account_key: str, online_events: int) -> Erasure:
        """Unlink an account's decisions and drop their personal content, in one transaction, as the SQLite
        log does (:meth:`serving.store.decisions.DecisionLog.erase_account` says what stays and what goes);
        every instance sees it as soon as it returns."""
        erased_at = now()
        with self.database.transaction() as connection:
            rows = connection.execute(
                "SELECT attempt_id, answer FROM decisions WHERE account_key = %s FOR UPDATE", (account_key,)
            ).fetchall()
            attempts = [str(row[0]) for row in rows]
            with connection.cursor() as cursor:
                cursor.executemany(
                    _ERASE, [(erased_answer(str(answer)), erased_at, attempt) for attempt, answer in rows]
                )
            counted = connection.execute(
                "SELECT count(*) FROM outcomes WHERE attempt_id = ANY(%s)", (attempts,)
            ).fetchone()
            connection.execute(
                "INSERT INTO erasures (account_key, erased_at, decisions, online_events) "
                "VALUES (%s, %s, %s, %s)",
                (account_key, erased_at, len(rows), online_events),
            )
        return Erasure(decisions=len(rows), outcomes_kept=_number(counted))

    # -- range reads -----------------------------------------------------------------------------------------

    def ranges(self) -> PostgresRanges:
        """A reader of time ranges over every instance's decisions, on a pooled connection of its own."""
        return PostgresRanges(self.database)

    # -- write-behind: none (each decision is committed when recorded) -------------------------------------

    def restore(self, decision: DecisionRecord, decided_at: str) -> None:
        """Log a decision read back from a journal as it was decided (at ``decided_at``), unless its attempt
        is logged already: nothing is held, so it is committed at once."""
        with self.database.transaction() as connection:
            connection.execute(_INSERT, decision_row(decision, decided_at))

    def flush(self, marker: int | None = None) -> int:
        return 0  # nothing is held

    @property
    def applied(self) -> int:
        return 0  # no journal

    @property
    def held(self) -> int:
        return 0

    # -- the service's life ---------------------------------------------------------------------------------

    def ping(self) -> bool:
        return self.database.ping()

    def close(self) -> None:
        """Nothing to release: the pool is the service's (closed last by it)."""


class PostgresRanges(RangeQueries):
    """Read-only range queries over the PostgreSQL decision log (:class:`serving.store.base.DecisionRanges`).

    The reader holds one pooled connection in a read-only ``REPEATABLE READ`` transaction: its queries see the
    log as of its first one (as a SQLite reader sees its WAL snapshot), while every instance keeps writing.
    ``owned``: the reader closes the pool too (a command-line reader opened it for itself).
    """

    dialect = POSTGRES

    def __init__(self, database: Database, *, owned: bool = False) -> None:
        self.database = database
        self._stack = ExitStack()
        if owned:
            self._stack.callback(database.close)
        try:
            self._connection = self._stack.enter_context(database.transaction())
            self._connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        except BaseException:
            self._stack.close()
            raise

    def __str__(self) -> str:
        return redact(self.database.url)

    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> Iterable[Sequence[Any]]:
        return self._connection.execute(sql, parameters).fetchall()

    def _numbers(self, sql: str, parameters: Sequence[object], width: int) -> npt.NDArray[np.float64]:
        """The rows as one float array, copied out in PostgreSQL's binary format and read by numpy in one
        call: no Python object per cell (twice as fast as fetching rows for a year of trends)."""
        names = [f"c{i}" for i in range(width)]
        floats = ", ".join(f"coalesce({name}::float8, 'NaN')" for name in names)
        copy_sql = f"COPY (SELECT {floats} FROM ({sql}) AS q({', '.join(names)})) TO STDOUT (FORMAT BINARY)"
        with self._connection.cursor() as cursor, cursor.copy(copy_sql, parameters) as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
        return binary_floats(data, width)

    def close(self) -> None:
        self._stack.close()


class PostgresReports(ReportSource):
    """The fraud reports of the PostgreSQL decision log (:class:`serving.store.labels.ReportSource`)."""

    def __init__(self, database: Database, *, owned: bool = False) -> None:
        self.database = database
        self._owned = owned

    def __str__(self) -> str:
        return redact(self.database.url)

    def reports(self) -> list[StoredReport]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                "SELECT report_id, attempt_id, reported_at, report_type FROM fraud_reports "
                'ORDER BY reported_at, report_id COLLATE "C"'
            ).fetchall()
        return [StoredReport(str(r[0]), str(r[1]), moment(_time(r[2])), str(r[3])) for r in rows]

    def close(self) -> None:
        if self._owned:
            self.database.close()


def _time(value: object) -> datetime:
    if not isinstance(value, datetime):  # pragma: no cover - a timestamptz column
        raise TypeError(f"fraud_reports.reported_at: expected a timestamptz, got {type(value).__name__}")
    return value


def _number(row: tuple[object, ...] | None) -> int:
    """The count a ``SELECT count(*)`` gave."""
    value = None if row is None else row[0]
    return value if isinstance(value, int) else 0


#: PostgreSQL's binary COPY signature, then 32-bit flags and header-extension length (both 0).
_COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER: Final = b"\xff\xff"


def binary_floats(data: bytes, width: int) -> npt.NDArray[np.float64]:
    """The float8 columns of a binary COPY without NULLs (``data``: the whole output) as rows of ``width``.

    Each row is a 16-bit field count, then per field a 32-bit length (8) and the big-endian value."""
    fields = [
        (f"{part}{i}", kind) for i in range(width) for part, kind in (("length", ">i4"), ("value", ">f8"))
    ]
    row = np.dtype([("count", ">i2"), *fields])
    body = data[len(_COPY_HEADER) : len(data) - len(_COPY_TRAILER)]
    if not (data.startswith(_COPY_HEADER) and data.endswith(_COPY_TRAILER) and len(body) % row.itemsize == 0):
        raise ValueError(f"not a binary COPY of {width} float8 columns without NULLs ({len(data)} bytes)")
    rows = np.frombuffer(body, dtype=row)
    lengths = [rows[f"length{i}"] for i in range(width)]
    if not ((rows["count"] == width).all() and all((length == 8).all() for length in lengths)):
        raise ValueError(f"not a binary COPY of {width} float8 columns without NULLs")
    table = np.empty((len(rows), width), dtype=np.float64)
    for i in range(width):
        table[:, i] = rows[f"value{i}"]
    return table
