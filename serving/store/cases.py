"""The review queue's cases: what any store of them keeps (:class:`CaseStore`) and the values it takes and
gives.

A case is a first ``review`` decision of the decision log, named by its attempt's id (``case_id ==
attempt_id``): a replay or a concurrent duplicate of the attempt is the same logged decision, so it can never
open a second case, and the case exists as soon as its decision does (nothing else has to be written for it).
The store adds what happens to a case: who claims it (a claim lapses at its ``until``), and how it was
resolved (outcome, note, who, when), with, for a ``fraud`` resolution, the fraud report the models learn
from, kept in the same transaction. Beside the decision, a case may hold the attempt's raw values a block
list needs (its payment method and device: the log keeps only pseudonyms), kept soon after the decision is
made (:meth:`CaseStore.keep_values`; a case without them can still be resolved, only not block-listed by
them).

The SQLite store (:class:`serving.store.cases_sqlite.SQLiteCases`) keeps its tables in the decision log's
file; a second backend (PostgreSQL) implements the same methods over the same database as its decision log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

#: Who resolves a case that expired (:mod:`serving.scoring.review_expiry`).
EXPIRY: Final = "expiry"
#: The fraud report a ``fraud`` resolution records: its type in the event contract (an analyst confirmed it)
#: and its id (one per case).
REPORT_TYPE: Final = "confirmed_fraud"
REPORT_PREFIX: Final = "review-"
#: The most cases one page holds.
MAX_PAGE: Final = 200


def report_id(case_id: str) -> str:
    """The id of the fraud report a ``fraud`` resolution of ``case_id`` records."""
    return f"{REPORT_PREFIX}{case_id}"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Outcome(StrEnum):
    """How a case was resolved. ``declined``: only expiry resolves so (its configured outcome)."""

    APPROVED = "approved"
    FRAUD = "fraud"
    NOT_FRAUD = "not_fraud"
    CUSTOMER_CONTACTED = "customer_contacted"
    DECLINED = "declined"


@dataclass(frozen=True)
class Claim:
    """Who holds a case, since when, until when (after ``until`` anyone may claim it)."""

    by: str
    at: datetime
    until: datetime


@dataclass(frozen=True)
class Resolution:
    """How a case was closed. ``report_id``: the fraud report it recorded (``fraud`` only)."""

    outcome: Outcome
    note: str
    by: str
    at: datetime
    report_id: str | None = None


@dataclass(frozen=True)
class Case:
    """A case: its decision as logged (``answer`` is the logged answer, with the reasons), what the block
    lists may need (``values``: raw payment method and device, when kept), its claim and its resolution."""

    case_id: str
    opened_at: datetime  # when the decision was made
    occurred_at: datetime
    account: str | None  # the decision log's pseudonym (None: erased)
    kind: str | None
    rule: str
    decided_by: str
    fraud_probability: float | None
    fraud_level: str | None
    amount: float | None
    currency: str | None
    answer: Mapping[str, Any]
    values: Mapping[str, str]
    claim: Claim | None
    resolution: Resolution | None

    @property
    def status(self) -> CaseStatus:
        return CaseStatus.OPEN if self.resolution is None else CaseStatus.CLOSED

    def holder(self, now: datetime) -> str | None:
        """Who holds the case at ``now`` (None: nobody, or the claim lapsed)."""
        if self.claim is None or self.claim.until <= now:
            return None
        return self.claim.by


@dataclass(frozen=True)
class CaseQuery:
    """Which cases to list, oldest first: a status, optional filters, and a page (``after``: the last case id
    of the previous page)."""

    status: CaseStatus = CaseStatus.OPEN
    opened_before: datetime | None = None
    opened_after: datetime | None = None
    rule: str | None = None
    fraud_level: str | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    kind: str | None = None
    limit: int = 50
    after: str | None = None


@dataclass(frozen=True)
class CasePage:
    """A page of cases, oldest first; ``next_after``: the ``after`` of the next page (None: the last)."""

    cases: tuple[Case, ...]
    next_after: str | None


@dataclass(frozen=True)
class HistoryEntry:
    """One earlier (or later) decision of the case's account, with what became of it."""

    attempt_id: str
    occurred_at: datetime
    kind: str | None
    action: str
    rule: str
    amount: float | None
    currency: str | None
    fraud_level: str | None
    status: str | None  # the gateway's outcome (None: not known)
    decline_code: str | None
    fraud_reported: bool


@dataclass(frozen=True)
class QueueStats:
    """What the metrics read: open cases, the oldest one's opening, and resolutions counted by outcome and
    the model's fraud level at decision time (``None``: no level)."""

    open: int
    oldest_opened_at: datetime | None
    resolutions: Mapping[tuple[str, str | None], int]


class CaseStore(Protocol):
    """The review queue's cases over the decision log (see the module's docstring); safe to share between
    threads. A write that finds its case missing raises :class:`serving.errors.NotFoundError`; one the case's
    state refuses (closed, held by someone else) :class:`serving.errors.ConflictError`. Reads see the
    decisions the log holds (under write-behind the service flushes first)."""

    def keep_values(self, values: Mapping[str, Mapping[str, str]]) -> None:
        """Keep cases' raw values for block lists, by case id, in one write (once per case: values kept for
        a case before stay)."""
        ...

    def cases(self, query: CaseQuery) -> CasePage:
        """A page of the cases ``query`` selects, oldest first (by decision time, then case id)."""
        ...

    def case(self, case_id: str) -> Case:
        """One case (:class:`NotFoundError` if the attempt has no ``review`` decision)."""
        ...

    def claim(self, case_id: str, claim: Claim) -> Case:
        """Hold an open case for ``claim.by`` until ``claim.until``: refused while another holds it."""
        ...

    def resolve(self, case_id: str, resolution: Resolution, now: datetime) -> Case:
        """Close an open case not held by another at ``now``; with ``resolution.report_id``, record the fraud
        report (reported at the resolution's time) in the same transaction."""
        ...

    def reopen(self, case_id: str, resolution: Resolution) -> None:
        """Undo ``resolution`` (just made) and its fraud report: what a resolution whose other half failed
        (a block list) does, so that the call changes all or nothing."""
        ...

    def history(self, account: str, limit: int) -> list[HistoryEntry]:
        """The account's (pseudonym's) latest ``limit`` decisions, newest first, with outcomes and reports."""
        ...

    def stats(self) -> QueueStats:
        """Open cases, the oldest one's opening time, resolutions by outcome and fraud level."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...
