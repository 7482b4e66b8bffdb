"""Where the service keeps the billing checks' state (:class:`billing.checks.BillingState`).

:class:`BillingStore` is that state plus what a service needs to run it: its file (checkpointed while the
service runs, if any) and ``close``. SQLite implements it (:mod:`serving.store.billing_sqlite`,
``STATE_DIR/billing.sqlite``), and PostgreSQL (:mod:`serving.store.postgres.billing`, shared by a fleet of
instances); both implement the same seven members:

* ``invoice(invoice_id)``: per invoice, the kind and time of its first try, the plan period, its approved
  charge and its pending submission (attempt, retry number, time);
* ``update_invoice(invoice_id, change, submission)``: the one write of an invoice, a read and a write in one
  transaction that excludes any other update of the same invoice (from another thread, process or instance),
  with the submission of an attempt seen (its invoice: an outcome names only its attempt);
* ``submission(attempt_id)``: the invoice of each attempt seen;
* ``paid_period(account_id)`` / ``put_paid_period(account_id, period)``: per account (its pseudonym), the
  start, period and invoice of the last paid period;
* ``path`` (None when not a file) and ``close()``.

Both backends keep the same three tables (invoices, submissions, paid periods; times in microseconds since
the epoch); the invoice's columns are :data:`INVOICE_FIELDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Protocol

from billing.checks import BillingState, Invoice

#: The invoice's columns, in the order of :class:`billing.checks.Invoice`'s fields (after ``invoice_id``).
INVOICE_FIELDS: Final = tuple(Invoice.__dataclass_fields__)
INVOICE_COLUMNS: Final = ", ".join(INVOICE_FIELDS)


def invoice_row(invoice_id: str, invoice: Invoice) -> tuple[object, ...]:
    """The invoice's row: its id, then its fields in :data:`INVOICE_FIELDS` order."""
    return (invoice_id, *(getattr(invoice, name) for name in INVOICE_FIELDS))


class BillingStore(BillingState, Protocol):
    """The billing checks' state as the service keeps it (see the module docstring)."""

    @property
    def path(self) -> Path | None: ...

    def close(self) -> None: ...
