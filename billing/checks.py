"""The billing checks: one state machine over attempts and gateway outcomes in time order.

:class:`BillingChecks` reads and writes a small state (:class:`BillingState`: per invoice, per attempt and
per account) and answers, for each attempt, :class:`BillingFields`:

* **double charge** (``billing_double_charge``): the attempt's invoice already has an approved charge, or an
  attempt of the same invoice with the same ``retry_number`` was submitted to the gateway less than
  :attr:`BillingPolicy.double_submission_window_s` ago and has no outcome yet (a double submission). A retry
  (a higher ``retry_number`` after a decline) is not a double charge. Without an ``invoice_id``: not checked.
* **price mismatch** (``billing_price_mismatch``): the amount of a new subscription or a renewal (a
  ``signup`` or ``renewal``, and the retries of their invoices) differs from the catalogue price of its
  (tier, period, currency) by more than :attr:`BillingPolicy.price_tolerance` of the price (at least half a
  minor unit); a retry is priced by the plan of its invoice's first try. Upgrades are prorated and one-off
  purchases have no plan price: not checked. Without a catalogue, or without an entry for that (tier,
  period, currency): not checked, and counted as such.
* **early renewal** (``billing_early_renewal``): a renewal invoice opened sooner after the start of the
  account's last paid period than that period's length (:attr:`BillingPolicy.period_days`, the shortest a
  period can be) minus :attr:`BillingPolicy.grace_days`. Without a known paid period: not checked. A paid
  period starts when the invoice paying it was first tried (a renewal recovered by a retry days later still
  pays the period from its due date), and an early renewal never moves it.

A check that was not made answers None: a rule reading it does not match (the rule language's missing
value), so an unchecked attempt is never blocked for it. The same machine runs in the service (its state in
``serving.store``) and offline over a data directory (:mod:`billing.replay`, state in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final, Protocol, TypeAlias, TypeVar

from billing.catalogue import Catalogue
from events.currencies import MINOR_UNITS
from events.schema import AttemptKind, OutcomeStatus

US_PER_DAY: Final = 86_400 * 1_000_000
#: The kinds whose first try sets the invoice's plan price (retries of their invoices are checked too).
PRICED_KINDS: Final = frozenset({AttemptKind.SIGNUP.value, AttemptKind.RENEWAL.value})


class BillingCheck(StrEnum):
    """The checks, by the name rules read them under (and the name of the built-in rule of each)."""

    DOUBLE_CHARGE = "billing_double_charge"
    PRICE_MISMATCH = "billing_price_mismatch"
    EARLY_RENEWAL = "billing_early_renewal"


#: The reason a decision made by a billing check gives.
BILLING_ERROR_REASON: Final = "billing_error"


def _default_period_days() -> dict[str, float]:
    return {"monthly": 28.0, "quarterly": 89.0, "annual": 365.0}


@dataclass(frozen=True)
class BillingPolicy:
    """The checks' stated tolerances."""

    #: a price mismatch is a difference above this share of the catalogue price (and half a minor unit)
    price_tolerance: float = 0.01
    #: an attempt of the same invoice and retry number within this many seconds of a submitted one with no
    #: outcome yet is a double submission
    double_submission_window_s: float = 3600.0
    #: the shortest length of each billing period in days (calendar months are 28 to 31 days long)
    period_days: Mapping[str, float] = field(default_factory=_default_period_days)
    #: a renewal this many days before its period allows is still on time (billing runs, time zones)
    grace_days: float = 2.0


@dataclass(frozen=True)
class Charge:
    """What the checks read from an attempt (times in microseconds since the epoch, UTC)."""

    attempt_id: str
    occurred_us: int
    account_id: str
    kind: str | None
    invoice_id: str | None
    retry_number: int
    amount: float
    currency: str | None
    plan_tier: str | None
    plan_period: str | None


@dataclass(frozen=True)
class Invoice:
    """An invoice as the checks know it: what its first try was for, and where its charges stand."""

    account_id: str
    kind: str | None  # the kind of its first try: what the invoice pays
    opened_us: int  # the first try's time: the start of the period a renewal pays
    plan_period: str | None  # the plan of its first try (a retry repeats it, whatever the plan is now)
    plan_tier: str | None
    currency: str | None
    approved_attempt: str | None = None  # its approved charge, if any
    pending_attempt: str | None = None  # submitted to the gateway, no outcome yet
    pending_retry: int | None = None
    pending_us: int | None = None


@dataclass(frozen=True)
class Submission:
    """An attempt seen by the checks: its invoice (an outcome names only the attempt)."""

    attempt_id: str
    invoice_id: str


@dataclass(frozen=True)
class PaidPeriod:
    """The account's last paid period: when it started, how long it is and the invoice that paid it."""

    started_us: int
    plan_period: str
    invoice_id: str


T = TypeVar("T")
#: What :meth:`BillingState.update_invoice` makes of an invoice (None: not opened yet): the invoice to write
#: (None: none) and a result for the caller.
InvoiceChange: TypeAlias = Callable[[Invoice | None], tuple[Invoice | None, T]]


class BillingState(Protocol):
    """What the checks keep: a backend (memory, SQLite, PostgreSQL) implements these five calls.

    :meth:`update_invoice` is the one write of an invoice: it reads the invoice, writes what ``change``
    makes of it (and the attempt's ``submission``, if any) in one transaction that excludes every other
    update of that invoice, for a shared backend across processes and instances too. That is what keeps the
    double-charge check whole when two instances see two attempts of one invoice at once. ``change`` returns
    the invoice to write (None: leave it as it is) and a result handed back to the caller; it may be called
    more than once (a backend retries when another writer opened the same invoice first), so it reads only
    its argument. A put replaces the record of its key whole."""

    def invoice(self, invoice_id: str) -> Invoice | None: ...
    def update_invoice(
        self, invoice_id: str, change: InvoiceChange[T], submission: Submission | None = None
    ) -> T: ...
    def submission(self, attempt_id: str) -> Submission | None: ...
    def paid_period(self, account_id: str) -> PaidPeriod | None: ...
    def put_paid_period(self, account_id: str, period: PaidPeriod) -> None: ...


@dataclass
class MemoryBillingState:
    """:class:`BillingState` in dictionaries (the offline replay, tests)."""

    invoices: dict[str, Invoice] = field(default_factory=dict)
    submissions: dict[str, Submission] = field(default_factory=dict)
    periods: dict[str, PaidPeriod] = field(default_factory=dict)

    def invoice(self, invoice_id: str) -> Invoice | None:
        return self.invoices.get(invoice_id)

    def update_invoice(
        self, invoice_id: str, change: InvoiceChange[T], submission: Submission | None = None
    ) -> T:
        invoice, result = change(self.invoices.get(invoice_id))
        if invoice is not None:
            self.invoices[invoice_id] = invoice
        if submission is not None:
            self.submissions[submission.attempt_id] = submission
        return result

    def submission(self, attempt_id: str) -> Submission | None:
        return self.submissions.get(attempt_id)

    def paid_period(self, account_id: str) -> PaidPeriod | None:
        return self.periods.get(account_id)

    def put_paid_period(self, account_id: str, period: PaidPeriod) -> None:
        self.periods[account_id] = period


def _pending(invoice: Invoice, charge: Charge) -> Invoice:
    """``invoice`` with ``charge`` submitted to the gateway (its pending attempt)."""
    return replace(
        invoice,
        pending_attempt=charge.attempt_id,
        pending_retry=charge.retry_number,
        pending_us=charge.occurred_us,
    )


def _settled(invoice: Invoice) -> Invoice:
    """``invoice`` with no pending attempt."""
    return replace(invoice, pending_attempt=None, pending_retry=None, pending_us=None)


@dataclass(frozen=True)
class BillingFields:
    """The checks' answer for one attempt; None: not checked (see the module docstring)."""

    billing_double_charge: bool | None
    billing_price_mismatch: bool | None
    billing_early_renewal: bool | None
    #: the catalogue price of the attempt's plan (None: not a priced charge, or no catalogue entry)
    billing_catalogue_price: float | None
    #: days since the start of the account's last paid period (None: a renewal's first try only)
    billing_days_since_paid: float | None

    def values(self) -> dict[str, bool | float | None]:
        """The fields by the names rules read them under."""
        return dict(vars(self))

    def failed(self) -> tuple[BillingCheck, ...]:
        """The checks this attempt fails, in :class:`BillingCheck` order."""
        return tuple(check for check in BillingCheck if getattr(self, check.value) is True)


#: Every field of :class:`BillingFields`, by name (the rule schema's billing group must equal it).
BILLING_FIELD_NAMES: Final = tuple(BillingFields.__dataclass_fields__)


class BillingChecks:
    """The state machine: :meth:`claim` an attempt (its checks, and its claim on its invoice when it is not a
    double charge), then :meth:`record_attempt` it once decided (with whether it went to the gateway), and
    :meth:`record_outcome` the gateway's answer when it comes. :meth:`check` answers without writing (the
    offline replay, which decides nothing between an attempt's check and its record)."""

    def __init__(
        self, state: BillingState, catalogue: Catalogue | None, policy: BillingPolicy | None = None
    ) -> None:
        self.state = state
        self.catalogue = catalogue
        self.policy = policy or BillingPolicy()

    def check(self, charge: Charge) -> BillingFields:
        """The billing fields of ``charge`` given what came before it (nothing is written)."""
        invoice = None if charge.invoice_id is None else self.state.invoice(charge.invoice_id)
        renews = (charge.kind if invoice is None else invoice.kind) == AttemptKind.RENEWAL.value
        return self._fields(charge, invoice, self.state.paid_period(charge.account_id) if renews else None)

    def claim(self, charge: Charge) -> BillingFields:
        """:meth:`check` ``charge`` and, unless it is a double charge, make it its invoice's pending attempt
        at once, in one update of the invoice (:meth:`BillingState.update_invoice`): of two attempts of one
        invoice checked at the same time, in this process or on another instance, the second is the double
        charge. :meth:`record_attempt` keeps the claim (submitted) or drops it; a dropped claim that had
        replaced another pending attempt (an earlier retry's) leaves none."""
        if charge.invoice_id is None:
            return self.check(charge)
        paid = self.state.paid_period(charge.account_id)

        def change(invoice: Invoice | None) -> tuple[Invoice | None, BillingFields]:
            fields = self._fields(charge, invoice, paid)
            if fields.billing_double_charge:
                return None, fields
            return _pending(self._opened(charge, invoice), charge), fields

        return self.state.update_invoice(charge.invoice_id, change)

    def record_attempt(self, charge: Charge, *, submitted: bool) -> None:
        """Remember ``charge``: it opens its invoice if new; ``submitted`` (riskgate let it go to the gateway)
        makes it the invoice's pending attempt until its outcome comes, otherwise its claim is dropped."""
        if charge.invoice_id is None:
            return

        def change(invoice: Invoice | None) -> tuple[Invoice | None, None]:
            opened = self._opened(charge, invoice)
            if submitted:
                return _pending(opened, charge), None
            return (_settled(opened) if opened.pending_attempt == charge.attempt_id else opened), None

        submission = Submission(charge.attempt_id, charge.invoice_id)
        self.state.update_invoice(charge.invoice_id, change, submission)

    def record_outcome(self, attempt_id: str, status: str) -> None:
        """The gateway's answer for an attempt: an approval marks its invoice paid (and, for a new or renewed
        plan on time, starts the account's paid period); any answer ends its pending submission."""
        submission = self.state.submission(attempt_id)
        if submission is None:
            return  # an attempt the checks never saw (no invoice): nothing to update

        def change(invoice: Invoice | None) -> tuple[Invoice | None, Invoice | None]:
            if invoice is None:
                return None, None
            if invoice.pending_attempt == attempt_id:
                invoice = _settled(invoice)
            if status == OutcomeStatus.APPROVED.value and invoice.approved_attempt is None:
                paid = replace(invoice, approved_attempt=attempt_id)
                return paid, paid
            return invoice, None

        paid = self.state.update_invoice(submission.invoice_id, change)
        if paid is not None:
            self._paid(submission.invoice_id, paid)

    @staticmethod
    def _opened(charge: Charge, invoice: Invoice | None) -> Invoice:
        """``invoice``, or the one ``charge`` opens (its first try)."""
        return invoice or Invoice(
            account_id=charge.account_id,
            kind=charge.kind,
            opened_us=charge.occurred_us,
            plan_period=charge.plan_period,
            plan_tier=charge.plan_tier,
            currency=charge.currency,
        )

    def _fields(self, charge: Charge, invoice: Invoice | None, paid: PaidPeriod | None) -> BillingFields:
        """The billing fields of ``charge`` over its invoice and the account's paid period (read before)."""
        purpose = charge.kind if invoice is None else invoice.kind
        price = self._catalogue_price(charge, invoice, purpose)
        early, days = self._early(charge, invoice, purpose, paid)
        return BillingFields(
            billing_double_charge=self._double(charge, invoice),
            billing_price_mismatch=None if price is None else self._mismatch(charge, price),
            billing_early_renewal=early,
            billing_catalogue_price=price,
            billing_days_since_paid=days,
        )

    # -- the checks -----------------------------------------------------------------------------------------

    def _double(self, charge: Charge, invoice: Invoice | None) -> bool | None:
        if charge.invoice_id is None:
            return None
        if invoice is None:
            return False
        if invoice.approved_attempt not in (None, charge.attempt_id):
            return True
        return (
            invoice.pending_attempt not in (None, charge.attempt_id)
            and invoice.pending_retry == charge.retry_number
            and invoice.pending_us is not None
            and charge.occurred_us - invoice.pending_us <= self.policy.double_submission_window_s * 1e6
        )

    def _catalogue_price(self, charge: Charge, invoice: Invoice | None, purpose: str | None) -> float | None:
        """The price of the invoice's plan: of its first try's (tier, period, currency) for a retry."""
        if self.catalogue is None or purpose not in PRICED_KINDS:
            return None
        if invoice is None:
            return self.catalogue.price(charge.plan_tier, charge.plan_period, charge.currency)
        return self.catalogue.price(invoice.plan_tier, invoice.plan_period, invoice.currency)

    def _mismatch(self, charge: Charge, price: float) -> bool:
        half_unit = 0.5 * 10.0 ** -MINOR_UNITS.get(charge.currency or "", 2)
        return abs(charge.amount - price) > max(self.policy.price_tolerance * price, half_unit)

    def _early(
        self, charge: Charge, invoice: Invoice | None, purpose: str | None, paid: PaidPeriod | None
    ) -> tuple[bool | None, float | None]:
        if purpose != AttemptKind.RENEWAL.value:
            return None, None
        if paid is None or (invoice is not None and paid.invoice_id == charge.invoice_id):
            return None, None
        opened = charge.occurred_us if invoice is None else invoice.opened_us
        return self._too_soon(opened, paid), (opened - paid.started_us) / US_PER_DAY

    def _too_soon(self, opened_us: int, paid: PaidPeriod) -> bool | None:
        days = self.policy.period_days.get(paid.plan_period)
        if days is None:
            return None
        return opened_us - paid.started_us < (days - self.policy.grace_days) * US_PER_DAY

    def _paid(self, invoice_id: str, invoice: Invoice) -> None:
        """A new or renewed plan was paid: it starts the account's paid period, unless it renews too early
        (a billing error does not move the account's cycle) or is older than the period known."""
        if invoice.kind not in PRICED_KINDS or invoice.plan_period is None:
            return
        current = self.state.paid_period(invoice.account_id)
        if current is not None and (
            invoice.opened_us <= current.started_us or self._too_soon(invoice.opened_us, current)
        ):
            return
        self.state.put_paid_period(
            invoice.account_id, PaidPeriod(invoice.opened_us, invoice.plan_period, invoice_id)
        )
