"""The SQLite billing store (:class:`serving.store.billing.BillingStore`): ``STATE_DIR/billing.sqlite`` (WAL).

Tables ``invoices``, ``submissions`` and ``paid_periods``, one row per key (times in microseconds since the
epoch). The schema's version is SQLite's ``user_version`` (:data:`BILLING_VERSION`); a file from a newer
riskgate is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from billing.checks import Invoice, InvoiceChange, PaidPeriod, Submission
from core.errors import RiskgateError
from core.sqlite import open_wal, retry_locked
from serving.store.billing import INVOICE_COLUMNS, INVOICE_FIELDS, invoice_row

#: The billing store's schema version (``PRAGMA user_version``): 1 = invoices, submissions, paid periods.
BILLING_VERSION: Final = 1
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS invoices (
        invoice_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        kind TEXT,
        opened_us INTEGER NOT NULL,
        plan_period TEXT,
        plan_tier TEXT,
        currency TEXT,
        approved_attempt TEXT,
        pending_attempt TEXT,
        pending_retry INTEGER,
        pending_us INTEGER
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS submissions (
        attempt_id TEXT PRIMARY KEY,
        invoice_id TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS paid_periods (
        account_id TEXT PRIMARY KEY,
        started_us INTEGER NOT NULL,
        plan_period TEXT NOT NULL,
        invoice_id TEXT NOT NULL
    ) WITHOUT ROWID""",
)
_PUT_INVOICE: Final = (
    f"INSERT OR REPLACE INTO invoices (invoice_id, {INVOICE_COLUMNS}) "
    f"VALUES ({', '.join('?' * (1 + len(INVOICE_FIELDS)))})"
)
_PUT_SUBMISSION: Final = "INSERT OR REPLACE INTO submissions (attempt_id, invoice_id) VALUES (?, ?)"
_SELECT_INVOICE: Final = f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE invoice_id = ?"


T = TypeVar("T")


class BillingStoreVersionError(RiskgateError):
    """The billing store's file was written by a newer riskgate (its schema version is unknown here)."""


class SQLiteBillingStore:
    """The billing checks' state in one SQLite file; one connection behind a lock."""

    def __init__(
        self, path: Path, synchronous: Literal["NORMAL", "FULL"] = "NORMAL", busy_timeout_s: float = 10.0
    ) -> None:
        self._path = path
        self._timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._db = open_wal(path, busy_timeout_s, synchronous)
        self._create()

    @property
    def path(self) -> Path | None:
        return self._path

    def _execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        with self._lock:
            return retry_locked(lambda: self._db.execute(sql, parameters), self._timeout_s)

    def _one(self, sql: str, key: str) -> Any:
        return self._execute(sql, (key,)).fetchone()

    def _create(self) -> None:
        (version,) = self._execute("PRAGMA user_version").fetchone()
        if version > BILLING_VERSION:
            raise BillingStoreVersionError(
                f"billing store {self._path} has schema version {version}, newer than this riskgate's "
                f"{BILLING_VERSION}: upgrade riskgate, or move the file aside to start a new billing store"
            )
        for statement in _SCHEMA:
            self._execute(statement)
        self._execute(f"PRAGMA user_version = {BILLING_VERSION}")

    def invoice(self, invoice_id: str) -> Invoice | None:
        row = self._one(_SELECT_INVOICE, invoice_id)
        return None if row is None else Invoice(*row)

    def update_invoice(
        self, invoice_id: str, change: InvoiceChange[T], submission: Submission | None = None
    ) -> T:
        """The invoice's read and write under ``BEGIN IMMEDIATE`` (the file's write lock: the processes of
        ``riskgate serve --workers N`` sharing the file take turns)."""
        with self._lock:
            retry_locked(lambda: self._db.execute("BEGIN IMMEDIATE"), self._timeout_s)
            try:
                row = self._db.execute(_SELECT_INVOICE, (invoice_id,)).fetchone()
                invoice, result = change(None if row is None else Invoice(*row))
                if invoice is not None:
                    self._db.execute(_PUT_INVOICE, invoice_row(invoice_id, invoice))
                if submission is not None:
                    self._db.execute(_PUT_SUBMISSION, (submission.attempt_id, submission.invoice_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return result

    def submission(self, attempt_id: str) -> Submission | None:
        row = self._one("SELECT attempt_id, invoice_id FROM submissions WHERE attempt_id = ?", attempt_id)
        return None if row is None else Submission(*row)

    def paid_period(self, account_id: str) -> PaidPeriod | None:
        sql = "SELECT started_us, plan_period, invoice_id FROM paid_periods WHERE account_id = ?"
        row = self._one(sql, account_id)
        return None if row is None else PaidPeriod(*row)

    def put_paid_period(self, account_id: str, period: PaidPeriod) -> None:
        self._execute(
            "INSERT OR REPLACE INTO paid_periods (account_id, started_us, plan_period, invoice_id) "
            "VALUES (?, ?, ?, ?)",
            (account_id, period.started_us, period.plan_period, period.invoice_id),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
