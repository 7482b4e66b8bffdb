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
file; the PostgreSQL one (:class:`serving.store.postgres.cases.PostgresCases`) in the fleet's database beside
its decision log. Both select cases with the same columns and filters and read rows and refuse changes the
same way (:func:`case_of`, :func:`case_filters`, :func:`check_changeable`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

import orjson

from serving.errors import ConflictError, NotFoundError
from serving.store.moments import moment

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

    def erase_values(self, account: str) -> int:
        """Drop the raw values kept for the cases of the account's (pseudonym's) decisions (they name its
        card and device); how many cases had them. Erasure calls it before the log unlinks the decisions."""
        ...

    def stats(self) -> QueueStats:
        """Open cases, the oldest one's opening time, resolutions by outcome and fraud level."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


# -- what both backends' tables give back -------------------------------------------------------------------

#: A case's columns (``d``: its decision, ``v``: its values, ``c``: its claim, ``r``: its resolution), as
#: :func:`case_of` reads them.
CASE_COLUMNS: Final = (
    "d.attempt_id, d.decided_at, d.occurred_at, d.account_key, d.kind, d.rule, d.decided_by, "
    "d.fraud_probability, d.fraud_level, d.amount, d.currency, d.answer, v.vals, "
    "c.claimed_by, c.claimed_at, c.until, r.outcome, r.note, r.resolved_by, r.resolved_at, r.report_id"
)
#: What a case joins to its decision ``d``.
CASE_JOINS: Final = (
    "LEFT JOIN review_values v ON v.attempt_id = d.attempt_id "
    "LEFT JOIN review_claims c ON c.attempt_id = d.attempt_id "
    "LEFT JOIN review_resolutions r ON r.attempt_id = d.attempt_id"
)
#: An account's decision with what became of it, as :func:`history_entry` reads it (after ``SELECT``).
HISTORY_COLUMNS: Final = (
    "d.attempt_id, d.occurred_at, d.kind, d.action, d.rule, d.amount, d.currency, d.fraud_level, o.status, "
    "o.decline_code, EXISTS (SELECT 1 FROM fraud_reports f WHERE f.attempt_id = d.attempt_id)"
)


def case_of(row: Sequence[Any]) -> Case:
    """A case of :data:`CASE_COLUMNS`."""
    (case_id, decided_at, occurred_at, account, kind, rule, decided_by, probability, level, amount,
     currency, answer, values, claimed_by, claimed_at, until, outcome, note, resolved_by, resolved_at,
     report) = row  # fmt: skip
    claim = None if claimed_by is None else Claim(str(claimed_by), moment(claimed_at), moment(until))
    resolution = None
    if outcome is not None:
        resolution = Resolution(Outcome(outcome), str(note), str(resolved_by), moment(resolved_at), report)
    return Case(
        case_id=str(case_id),
        opened_at=moment(decided_at),
        occurred_at=moment(occurred_at),
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


def history_entry(row: Sequence[Any]) -> HistoryEntry:
    """A decision of :data:`HISTORY_COLUMNS`."""
    (attempt_id, occurred_at, kind, action, rule, amount, currency, level, status, decline_code,
     reported) = row  # fmt: skip
    return HistoryEntry(
        attempt_id=str(attempt_id),
        occurred_at=moment(occurred_at),
        kind=kind,
        action=str(action),
        rule=str(rule),
        amount=amount,
        currency=currency,
        fraud_level=level,
        status=status,
        decline_code=decline_code,
        fraud_reported=bool(reported),
    )


def case_filters(query: CaseQuery, mark: str) -> tuple[str, list[object]]:
    """The SQL conditions (after ``WHERE d.action = 'review'``) and parameters of a query, ``mark`` being
    the backend's placeholder (times are given as datetimes: the backend writes them as it stores them)."""
    sql = [f"r.attempt_id IS {'NULL' if query.status is CaseStatus.OPEN else 'NOT NULL'}"]
    parameters: list[object] = []
    conditions: tuple[tuple[object, str], ...] = (
        (query.opened_before, "d.decided_at < {}"),
        (query.opened_after, "d.decided_at >= {}"),
        (query.rule, "d.rule = {}"),
        (query.fraud_level, "d.fraud_level = {}"),
        (query.min_amount, "d.amount >= {}"),
        (query.max_amount, "d.amount <= {}"),
        (query.kind, "d.kind = {}"),
    )
    for value, condition in conditions:
        if value is not None:
            sql.append(condition.format(mark))
            parameters.append(value)
    if query.after is not None:
        sql.append(
            "(d.decided_at, d.attempt_id) > "
            f"(SELECT decided_at, attempt_id FROM decisions WHERE attempt_id = {mark})"
        )
        parameters.append(query.after)
    return " AND ".join(sql), parameters


def missing_case(case_id: str) -> NotFoundError:
    """The error of a case that does not exist."""
    return NotFoundError(
        f"there is no review case {case_id!r}: a case is an attempt decided 'review' "
        "(see GET /v1/review/cases)"
    )


def check_changeable(case: Case, by: str, now: datetime) -> None:
    """Refuse (:class:`ConflictError`) a claim or resolution of ``case`` by ``by`` at ``now``: the case is
    closed, or another holds it."""
    if case.resolution is not None:
        made = case.resolution
        raise ConflictError(
            f"review case {case.case_id!r} was resolved already ({made.outcome.value}, by {made.by} at "
            f"{made.at.isoformat()})"
        )
    holder = case.holder(now)
    if holder is not None and holder != by:
        until = case.claim.until.isoformat() if case.claim is not None else "?"
        raise ConflictError(
            f"review case {case.case_id!r} is claimed by {holder} until {until}: wait for the claim to "
            "lapse, or ask them"
        )
