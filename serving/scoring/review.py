"""The review queue's desk: what the scoring path does when it decides ``review``, and what analysts (the
admin API, the queue page) and expiry do with a case, over a :class:`serving.store.cases.CaseStore`.

Opening a case costs the scoring path nothing beyond its decision (a case *is* the logged decision); for a
first ``review`` decision the engine calls :meth:`ReviewDesk.opened`, which holds the attempt's raw values a
block list may need in memory (kept in the store off the scoring path) and emits ``review.opened`` (one
append to the outbox when webhooks are configured, errors counted, never refusing the decision).

Resolving is all or nothing: the resolution and, for ``fraud``, its fraud report are one transaction of the
case store; a block-list item asked for in the same call is added after it through
:class:`serving.store.operations.Operations` (checked there), and if that fails the resolution and its report
are undone (:meth:`serving.store.cases.CaseStore.reopen`) before the error is answered. ``review.resolved``
is emitted once everything holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.errors import InputError
from events.cardnumbers import contains_card_number
from rules.lists import ListItem
from serving.errors import ConflictError, NotReadyError
from serving.metrics import ServiceMetrics
from serving.scoring.answers import ScoreAnswer
from serving.scoring.schemas import AttemptIn
from serving.scoring.webhook_events import emit_review
from serving.store.cases import (
    EXPIRY,
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
    report_id,
)
from serving.store.operations import MAX_REASON, NEVER_CARDS, Change, Operations
from serving.store.outbox import EventType, Outbox

logger = logging.getLogger(__name__)

#: The attempt's fields a case keeps for block lists (raw: the decision log keeps only pseudonyms).
BLOCKABLE: Final = ("payment_method_id", "device_id")
#: The longest note a resolution keeps.
MAX_NOTE: Final = 2000


def values_of(attempt: AttemptIn) -> dict[str, str]:
    """The attempt's :data:`BLOCKABLE` values it has."""
    values = {name: getattr(attempt, name) for name in BLOCKABLE}
    return {name: str(value) for name, value in values.items() if value is not None}


@dataclass
class ReviewDesk:
    """Cases as the service works them (see the module's docstring).

    ``flush``: makes every answered decision visible in the store (write-behind) before a read; ``claim_for``:
    how long a claim holds; ``report_online``: feeds a fraud report to the online features (as
    ``POST /v1/outcomes`` does), so that the next attempt of the card or account sees it.

    A case's blockable values are held in memory when it opens (the scoring path never waits for a write of
    the queue) and kept in the store by :meth:`keep_pending`: before every read or change of the queue, by
    the queue's background job about every second (:class:`serving.scoring.review_expiry.ExpiryJob`), and
    when it stops. A process killed in between loses those cases' values (not the cases: a case is its
    logged decision): they cannot be block-listed by them.
    """

    cases: CaseStore
    metrics: ServiceMetrics
    flush: Callable[[], None]
    claim_for: timedelta = timedelta(minutes=30)
    outbox: Outbox | None = None
    report_online: Callable[[Mapping[str, object]], object] | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self._pending: dict[str, dict[str, str]] = {}  # blockable values of cases opened since the last keep
        self._pending_lock = threading.Lock()
        self.metrics.registry.register(QueueCollector(self))

    # -- the scoring path -----------------------------------------------------------------------------------

    def opened(
        self, attempt: AttemptIn, decided_at: datetime, answer: ScoreAnswer, account: str | None
    ) -> None:
        """A first ``review`` decision was logged: hold its blockable values, emit ``review.opened``."""
        values = values_of(attempt)
        with self._pending_lock:
            self._pending[attempt.attempt_id] = values
        if self.outbox is None:
            return
        fraud, decision = answer["fraud"], answer["decision"]
        payload = {
            "case_id": attempt.attempt_id,
            "attempt_id": attempt.attempt_id,
            "account": account,
            "rule": decision["rule"],
            "fraud_probability": fraud["probability"],
            "fraud_level": fraud["level"],
            "amount": attempt.amount,
            "currency": attempt.currency,
            "opened_at": decided_at.isoformat(),
        }
        emit_review(self.outbox, self.metrics, EventType.REVIEW_OPENED, payload)

    def keep_pending(self) -> int:
        """Keep the held values of the cases opened since the last call in the store (one write); how many
        cases. If the store fails they stay held for the next call and the error propagates."""
        with self._pending_lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            self.cases.keep_values(batch)
        except BaseException:
            with self._pending_lock:
                self._pending = {**batch, **self._pending}
            raise
        return len(batch)

    def _current(self) -> None:
        """Every answered decision and every held value in the store, before the queue is read or changed."""
        self.flush()
        self.keep_pending()

    # -- reads ----------------------------------------------------------------------------------------------

    def page(self, query: CaseQuery) -> CasePage:
        self._current()
        return self.cases.cases(query)

    def case(self, case_id: str) -> Case:
        self._current()
        return self.cases.case(case_id)

    def erase(self, account: str) -> int:
        """Erasure of an account (pseudonym): the raw values its cases kept go, those held in memory too;
        how many cases had them. Called before the decision log unlinks the account's decisions."""
        self._current()
        return self.cases.erase_values(account)

    def history(self, case: Case, limit: int) -> list[HistoryEntry]:
        """The case's account's latest ``limit`` decisions (none for an erased account)."""
        return [] if case.account is None or limit == 0 else self.cases.history(case.account, limit)

    # -- changes --------------------------------------------------------------------------------------------

    def claim(self, case_id: str, by: str) -> Case:
        """Hold a case for ``by`` (409 while another holds it); claiming it again extends the claim."""
        self._current()
        now = self.clock()
        return self.cases.claim(case_id, Claim(by, now, now + self.claim_for))

    def resolve(
        self,
        case_id: str,
        outcome: Outcome,
        note: str,
        by: str,
        *,
        block_list: str | None = None,
        operations: Operations | None = None,
    ) -> Case:
        """Close a case with ``outcome`` and ``note`` (see the module's docstring): ``fraud`` records the
        fraud report; ``block_list`` adds the attempt's value of the list's field to it."""
        if contains_card_number(note):
            raise InputError(f"the note {NEVER_CARDS}")
        self._current()
        case = self.cases.case(case_id)
        item = None
        if block_list is not None:
            item = self._block_item(case, outcome, note, block_list, operations)
        now = self.clock()
        resolution = Resolution(
            outcome, note, by, now, report_id(case_id) if outcome is Outcome.FRAUD else None
        )
        closed = self.cases.resolve(case_id, resolution, now)
        if item is not None and operations is not None and block_list is not None:
            try:
                operations.add_items(block_list, [item], Change(by, now, item.reason))
            except BaseException:
                self.cases.reopen(case_id, resolution)
                raise
        if resolution.report_id is not None:
            self._report_online(closed, resolution)
        self._resolved(closed)
        return closed

    def _block_item(
        self, case: Case, outcome: Outcome, note: str, name: str, operations: Operations | None
    ) -> ListItem:
        if outcome is not Outcome.FRAUD:
            raise InputError(
                "block_list is only for a fraud resolution: a case resolved otherwise blocks nothing"
            )
        if operations is None:
            raise NotReadyError(
                "this service has no store of rules and lists: start it with `riskgate serve`"
            )
        field = operations.store.list_info(name).field
        value = case.values.get(field)
        if value is None:
            raise InputError(
                f"block_list {name!r} holds {field}, which review case {case.case_id!r} did not keep "
                f"(a case keeps {', '.join(BLOCKABLE)} when its attempt has them): pick a list of those"
            )
        reason = f"review case {case.case_id}: fraud" + (f" ({note})" if note else "")
        return ListItem(value, reason[:MAX_REASON], None)

    def _report_online(self, case: Case, resolution: Resolution) -> None:
        if self.report_online is None:
            return
        report = {
            "report_id": resolution.report_id,
            "attempt_id": case.case_id,
            "reported_at": resolution.at,
            "report_type": REPORT_TYPE,
        }
        try:
            self.report_online(report)
            self.flush()  # under write-behind, what it changed in the online store is durable now
        except Exception:  # the report is kept in the log (the label); the online features miss it
            self.metrics.count_error("feature_store")
            logger.exception("review case %s: the fraud report did not reach the online store", case.case_id)

    def _resolved(self, case: Case) -> None:
        made = case.resolution
        if self.outbox is None or made is None:
            return
        payload = {
            "case_id": case.case_id,
            "attempt_id": case.case_id,
            "account": case.account,
            "outcome": made.outcome.value,
            "resolved_at": made.at.isoformat(),
        }
        emit_review(self.outbox, self.metrics, EventType.REVIEW_RESOLVED, payload)

    # -- expiry ---------------------------------------------------------------------------------------------

    def expire(
        self, due: Callable[[Case, datetime], tuple[Outcome, str] | None], oldest_first: int = 200
    ) -> int:
        """Resolve every open case ``due`` says has expired (with its outcome and note) as :data:`EXPIRY`;
        cases an analyst holds wait for the claim to lapse. Returns how many were resolved."""
        self._current()
        now = self.clock()
        resolved, after = 0, None
        while True:
            page = self.cases.cases(
                CaseQuery(CaseStatus.OPEN, opened_before=now, limit=oldest_first, after=after)
            )
            for case in page.cases:
                verdict = due(case, now)
                if verdict is None:
                    continue
                try:
                    closed = self.cases.resolve(
                        case.case_id, Resolution(verdict[0], verdict[1], EXPIRY, now), now
                    )
                except ConflictError:  # claimed by an analyst, or resolved meanwhile
                    continue
                self._resolved(closed)
                resolved += 1
            if page.next_after is None:
                return resolved
            after = page.next_after


class QueueCollector(Collector):
    """The queue's Prometheus metrics, computed from the store at scrape time (so they hold across restarts
    and worker processes): open cases, the oldest one's age, resolutions by outcome and the model's fraud
    level at decision time, and how often analysts found fraud per level (their agreement with the model)."""

    def __init__(self, desk: ReviewDesk) -> None:
        self.desk = desk

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        try:
            self.desk.flush()  # every answered decision counts (write-behind flushes this often anyway)
            stats = self.desk.cases.stats()
        except Exception:  # a scrape never fails for the queue: its numbers are left out this time
            self.desk.metrics.count_error("review")
            logger.exception("review queue metrics unavailable")
            return
        yield from self._families(stats)

    def _families(self, stats: QueueStats | None = None) -> Iterator[Metric]:
        length = GaugeMetricFamily("riskgate_review_open_cases", "Open review cases.")
        oldest = GaugeMetricFamily(
            "riskgate_review_oldest_open_age_seconds", "Age of the oldest open review case (0: none open)."
        )
        resolved = CounterMetricFamily(
            "riskgate_review_resolutions",
            "Resolved review cases by outcome and the model's fraud level at decision time.",
            labels=("outcome", "fraud_level"),
        )
        agreement = GaugeMetricFamily(
            "riskgate_review_fraud_share",
            "Of the cases analysts resolved fraud or not_fraud, the share found fraud, by the model's fraud "
            "level: how often analysts agree with the model's level.",
            labels=("fraud_level",),
        )
        if stats is not None:
            length.add_metric([], stats.open)
            age = (
                0.0
                if stats.oldest_opened_at is None
                else (self.desk.clock() - stats.oldest_opened_at).total_seconds()
            )
            oldest.add_metric([], max(0.0, age))
            judged: dict[str, list[int]] = {}
            for (outcome, level), count in sorted(stats.resolutions.items(), key=str):
                resolved.add_metric([outcome, level or "unknown"], count)
                if outcome in (Outcome.FRAUD, Outcome.NOT_FRAUD):
                    pair = judged.setdefault(level or "unknown", [0, 0])
                    pair[outcome == Outcome.FRAUD] += count
            for level, (not_fraud, fraud) in sorted(judged.items()):
                agreement.add_metric([level], fraud / (fraud + not_fraud))
        yield from (length, oldest, resolved, agreement)
