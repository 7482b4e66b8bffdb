"""Where the service keeps the billing checks' state (:class:`billing.checks.BillingState`).

:class:`BillingStore` is that state plus what a service needs to run it: its file (checkpointed while the
service runs, if any) and ``close``. SQLite implements it (:mod:`serving.store.billing_sqlite`,
``STATE_DIR/billing.sqlite``); a second backend (PostgreSQL, issue 18) implements the same nine members:

* ``invoice(invoice_id)`` / ``put_invoice(invoice_id, invoice)``: per invoice, the kind and time of its first
  try, the plan period, its approved charge and its pending submission (attempt, retry number, time);
* ``submission(attempt_id)``: the invoice of each attempt seen (an outcome names only its attempt);
* ``put_attempt(invoice_id, invoice, submission)``: an attempt seen, its invoice and its submission in one
  transaction (the one write on the scoring path);
* ``paid_period(account_id)`` / ``put_paid_period(account_id, period)``: per account (its pseudonym), the
  start, period and invoice of the last paid period;
* ``path`` (None when not a file) and ``close()``.

A put replaces the record of its key whole (an upsert); the checks call them under one lock per service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from billing.checks import BillingState


class BillingStore(BillingState, Protocol):
    """The billing checks' state as the service keeps it (see the module docstring)."""

    @property
    def path(self) -> Path | None: ...

    def close(self) -> None: ...
