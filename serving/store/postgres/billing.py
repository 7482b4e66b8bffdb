"""The PostgreSQL billing store (:class:`serving.store.billing.BillingStore`), shared by a fleet of instances.

Tables ``billing_invoices``, ``billing_submissions`` and ``billing_paid_periods`` (schema version 0004). Each
call is one transaction on a pooled connection of the service's :class:`Database`.

:meth:`PostgresBillingStore.update_invoice` is what keeps the double-charge check whole across instances: it
locks the invoice's row (``SELECT ... FOR UPDATE``) before ``change`` reads it, so a concurrent update of the
same invoice waits for this one's commit and then reads what it wrote. An invoice not opened yet has no row
to lock: its first writer inserts it with ``ON CONFLICT DO NOTHING``, and a writer that finds it was opened
meanwhile reads it again (locked, now committed) and decides again.
"""

from __future__ import annotations

import logging
from typing import Final, TypeVar

from billing.checks import Invoice, InvoiceChange, PaidPeriod, Submission
from serving.store.billing import INVOICE_COLUMNS, INVOICE_FIELDS, invoice_row
from serving.store.postgres.database import Database

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SELECT_INVOICE: Final = f"SELECT {INVOICE_COLUMNS} FROM billing_invoices WHERE invoice_id = %s"
_INSERT_INVOICE: Final = (
    f"INSERT INTO billing_invoices (invoice_id, {INVOICE_COLUMNS}) "
    f"VALUES ({', '.join(['%s'] * (1 + len(INVOICE_FIELDS)))}) ON CONFLICT (invoice_id) DO NOTHING"
)
_SET_INVOICE: Final = ", ".join(f"{name} = %s" for name in INVOICE_FIELDS)
_UPDATE_INVOICE: Final = f"UPDATE billing_invoices SET {_SET_INVOICE} WHERE invoice_id = %s"
_PUT_SUBMISSION: Final = (
    "INSERT INTO billing_submissions (attempt_id, invoice_id) VALUES (%s, %s) "
    "ON CONFLICT (attempt_id) DO UPDATE SET invoice_id = EXCLUDED.invoice_id"
)
_PUT_PAID_PERIOD: Final = (
    "INSERT INTO billing_paid_periods (account_id, started_us, plan_period, invoice_id) "
    "VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (account_id) DO UPDATE SET started_us = EXCLUDED.started_us, "
    "plan_period = EXCLUDED.plan_period, invoice_id = EXCLUDED.invoice_id"
)


class PostgresBillingStore:
    """The billing checks' state in PostgreSQL (see the module docstring); safe to share between threads."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def path(self) -> None:
        return None  # no file: nothing to checkpoint

    def invoice(self, invoice_id: str) -> Invoice | None:
        with self.database.transaction() as connection:
            row = connection.execute(_SELECT_INVOICE, (invoice_id,)).fetchone()
        return None if row is None else Invoice(*row)  # type: ignore[arg-type]

    def update_invoice(
        self, invoice_id: str, change: InvoiceChange[T], submission: Submission | None = None
    ) -> T:
        with self.database.transaction() as connection:
            while True:
                row = connection.execute(f"{_SELECT_INVOICE} FOR UPDATE", (invoice_id,)).fetchone()
                current = None if row is None else Invoice(*row)  # type: ignore[arg-type]
                invoice, result = change(current)
                if invoice is None:
                    break
                if current is not None:
                    values = invoice_row(invoice_id, invoice)
                    connection.execute(_UPDATE_INVOICE, (*values[1:], invoice_id))
                    break
                if connection.execute(_INSERT_INVOICE, invoice_row(invoice_id, invoice)).rowcount == 1:
                    break
                logger.debug("invoice %s was opened by another writer meanwhile: deciding again", invoice_id)
            if submission is not None:
                connection.execute(_PUT_SUBMISSION, (submission.attempt_id, submission.invoice_id))
        return result

    def submission(self, attempt_id: str) -> Submission | None:
        with self.database.transaction() as connection:
            row = connection.execute(
                "SELECT attempt_id, invoice_id FROM billing_submissions WHERE attempt_id = %s", (attempt_id,)
            ).fetchone()
        return None if row is None else Submission(str(row[0]), str(row[1]))

    def paid_period(self, account_id: str) -> PaidPeriod | None:
        with self.database.transaction() as connection:
            row = connection.execute(
                "SELECT started_us, plan_period, invoice_id FROM billing_paid_periods WHERE account_id = %s",
                (account_id,),
            ).fetchone()
        return None if row is None else PaidPeriod(int(row[0]), str(row[1]), str(row[2]))  # type: ignore[call-overload]

    def put_paid_period(self, account_id: str, period: PaidPeriod) -> None:
        with self.database.transaction() as connection:
            connection.execute(
                _PUT_PAID_PERIOD, (account_id, period.started_us, period.plan_period, period.invoice_id)
            )

    def close(self) -> None:
        """Nothing to close: the pool is the service's (closed last by it)."""
