"""The recovery plan of one renewal about to be charged, or of one attempt just declined.

After a decline, the planner

1. applies the hard rules (:mod:`recovery.rules`): a forbidden or hard decline, or a fraud block, gets no
   retry, only the customer action that should come first;
2. lays a grid of candidate retry times over what is left of the dunning window (every ``grid_hours``, not in
   quiet hours, at least ``min_gap_hours`` after the decline, before the card expires);
3. evaluates the failure model at every (previous decline, candidate) pair: the candidate is the invoice
   retried at that time (``retry_number`` + 1, ``occurred_at`` = the candidate time) with, as context, the
   decline it follows: the one just received, or an earlier planned retry assumed declined with the same code
   (so the model sees the time since the *previous* retry: successive retries are not independent);
4. chooses the sequence of up to the attempts left that maximises the expected recovered amount net of the
   attempts' cost (:func:`recovery.optimise.best_schedule`, exact dynamic programming over the grid; the
   amount is discounted per day of delay), stopping where a further retry would not pay for itself; then
   drops any retry that would break the card network's caps.

Each step's probability is conditional on the retries before it being declined. Only the next retry of a
plan is a commitment: the service is called again after each decline and re-plans from the decline received.

Before a renewal is charged, the plan holds the charge with its success probability, a reminder when the
failure probability is high, and a card update when the card expires before the charge.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import InputError
from events.schema import AttemptKind, DeclineCode, MethodType
from recovery.config import RecoveryConfig
from recovery.models import FailureModel
from recovery.optimise import Schedule, best_schedule
from recovery.rules import (
    Block,
    CustomerAction,
    block_for,
    card_expires_at,
    card_network,
    decline_code,
    within_caps,
)

logger = logging.getLogger(__name__)


class PlanInputError(InputError):
    """A recovery case misses a field or holds an unusable value."""


class StepKind(StrEnum):
    CHARGE = "charge"  # the renewal itself, before it is charged
    RETRY = "retry"
    CUSTOMER = "customer"


class Stop(StrEnum):
    """Why the plan holds no further retry."""

    HARD_RULE = "hard_rule"
    MAX_ATTEMPTS = "max_attempts"
    NO_CANDIDATE = "no_candidate"  # window over, quiet hours, card expiry or network caps
    NOT_WORTH_IT = "not_worth_it"  # no further retry recovers more than it costs
    NOT_DECLINED = "not_declined"  # a renewal about to be charged: re-plan after its outcome


@dataclass(frozen=True)
class Step:
    """One step of a plan: a retry (or the charge) at a time, or a customer action."""

    kind: StepKind
    at: datetime
    reason: str
    success_probability: float | None = None
    action: CustomerAction | None = None


@dataclass(frozen=True)
class RecoveryCase:
    """What the planner knows about one invoice.

    ``attempt``: the contract fields of the declined attempt (or of the renewal about to be charged, when
    ``decline_code`` is None). ``declined_at``: when it was declined (default: its ``occurred_at``);
    ``first_declined_at``: the invoice's first decline, which opens the dunning window (default:
    ``declined_at``). ``card_retry_times``: the card's retries in the last 30 days, for the network caps.
    ``fraud_blocked``: riskgate blocked the attempt as fraud.
    """

    attempt: Mapping[str, object]
    now: datetime
    decline_code: str | None = None
    declined_at: datetime | None = None
    first_declined_at: datetime | None = None
    card_retry_times: tuple[datetime, ...] = ()
    fraud_blocked: bool = False


@dataclass(frozen=True)
class RecoveryPlan:
    """The steps in time order, the probability that the planned retries recover the payment, and why the
    plan stops where it does."""

    invoice_id: str | None
    steps: tuple[Step, ...]
    recovery_probability: float
    expected_attempts: float
    stop: Stop
    blocked_by: Block | None = None
    candidates: int = 0

    @property
    def retries(self) -> tuple[Step, ...]:
        return tuple(step for step in self.steps if step.kind is StepKind.RETRY)

    @property
    def next_retry(self) -> Step | None:
        retries = self.retries
        return retries[0] if retries else None

    def as_json(self) -> dict[str, object]:
        """The plan as a JSON-ready answer (what ``POST /v1/recovery-plan`` returns)."""
        return {
            "invoice_id": self.invoice_id,
            "steps": [
                {
                    "kind": step.kind.value,
                    "at": step.at.isoformat(),
                    "success_probability": step.success_probability,
                    "action": None if step.action is None else step.action.value,
                    "reason": step.reason,
                }
                for step in self.steps
            ],
            "recovery_probability": self.recovery_probability,
            "expected_attempts": self.expected_attempts,
            "stop": self.stop.value,
            "hard_rule": None if self.blocked_by is None else self.blocked_by.rule.value,
            "candidates": self.candidates,
        }


def _utc(value: object, name: str) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime) or value.tzinfo is None:
        got = "a naive datetime" if isinstance(value, datetime) else type(value).__name__  # never the value
        raise PlanInputError(f"{name} must be a timezone-aware datetime (UTC), got {got}")
    return value.astimezone(UTC)


def _field(attempt: Mapping[str, object], name: str) -> object:
    if name not in attempt or attempt[name] is None:
        raise PlanInputError(f"the attempt misses '{name}', which the recovery planner needs")
    return attempt[name]


def _text(attempt: Mapping[str, object], name: str) -> str | None:
    value = attempt.get(name)
    return value if isinstance(value, str) and value else None


class Planner:
    """Recovery plans from a failure model and a dunning policy."""

    def __init__(self, model: FailureModel, config: RecoveryConfig) -> None:
        self.model = model
        self.config = config

    def plan(self, case: RecoveryCase) -> RecoveryPlan:
        invoice = _text(case.attempt, "invoice_id")
        if case.decline_code is None:
            return self._before_charge(case, invoice)
        code = decline_code(case.decline_code)
        block = block_for(code, fraud_blocked=case.fraud_blocked)
        now = _utc(case.now, "now")
        if block is not None:
            step = Step(StepKind.CUSTOMER, now, block.reason, action=block.action)
            return RecoveryPlan(invoice, (step,), 0.0, 0.0, Stop.HARD_RULE, blocked_by=block)
        return self._after_decline(case, code, invoice, now)

    # -- before the charge ---------------------------------------------------------------------------

    def _before_charge(self, case: RecoveryCase, invoice: str | None) -> RecoveryPlan:
        now = _utc(case.now, "now")
        charge_at = _utc(_field(case.attempt, "occurred_at"), "attempt.occurred_at")
        frame = pd.DataFrame([dict(case.attempt)])
        frame["last_decline_code"] = None  # no decline yet: the model sees the renewal as it is
        frame["last_declined_at"] = pd.NaT
        frame["first_declined_at"] = pd.NaT
        p_success = 1.0 - float(self.model(frame)[0])
        steps = [*self._expiry_steps(case.attempt, now, charge_at, "the renewal")]
        if 1.0 - p_success >= self.config.reminder_threshold:
            remind_at = max(now, charge_at - timedelta(hours=self.config.reminder_lead_hours))
            reason = f"the renewal is likely to fail (P(fail) = {1.0 - p_success:.2f}): remind the customer"
            steps.append(Step(StepKind.CUSTOMER, remind_at, reason, action=CustomerAction.REMINDER))
        steps.append(Step(StepKind.CHARGE, charge_at, "scheduled renewal", p_success))
        ordered = tuple(sorted(steps, key=lambda s: s.at))
        return RecoveryPlan(invoice, ordered, p_success, 1.0, Stop.NOT_DECLINED)

    def _expiry_steps(
        self, attempt: Mapping[str, object], now: datetime, until: datetime, what: str
    ) -> list[Step]:
        expires = card_expires_at(_text(attempt, "card_exp"))
        if expires is None or expires > until or attempt.get("method_type") != MethodType.CARD.value:
            return []
        reason = f"the card expires on {expires:%Y-%m-%d}, before {what}: ask for the new card first"
        return [Step(StepKind.CUSTOMER, now, reason, action=CustomerAction.UPDATE_CARD)]

    # -- after a decline -----------------------------------------------------------------------------

    def _after_decline(
        self, case: RecoveryCase, code: DeclineCode, invoice: str | None, now: datetime
    ) -> RecoveryPlan:
        declined_at = _utc(case.declined_at or _field(case.attempt, "occurred_at"), "declined_at")
        first = _utc(case.first_declined_at or declined_at, "first_declined_at")
        window_end = first + self.config.window
        used = int(str(_field(case.attempt, "retry_number")))
        left = self.config.max_attempts - used
        customer = self._expiry_steps(case.attempt, now, window_end, "the dunning window ends")
        if left <= 0:
            return RecoveryPlan(invoice, tuple(customer), 0.0, 0.0, Stop.MAX_ATTEMPTS)
        times = self._candidate_times(case.attempt, max(now, declined_at + self.config.min_gap), window_end)
        if not times:
            return RecoveryPlan(invoice, tuple(customer), 0.0, 0.0, Stop.NO_CANDIDATE)
        schedule = self._schedule(case, code, times=times, declined_at=declined_at, first=first, left=left)
        retries, stop = self._within_caps(case, times, schedule, left)
        steps = [*customer, *self._retry_steps(retries, code, declined_at, len(times))]
        recovery = 1.0 - float(np.prod([1.0 - step_p for _, step_p in retries]))
        if recovery < self.config.other_method_below:
            reason = f"retries recover this payment with probability {recovery:.2f} only"
            steps.append(Step(StepKind.CUSTOMER, now, reason, action=CustomerAction.OTHER_METHOD))
        logger.debug("plan for %s: %d retries, P(recover)=%.3f", invoice, len(retries), recovery)
        ordered = tuple(sorted(steps, key=lambda s: (s.at, s.kind != StepKind.CUSTOMER)))
        attempts = float(sum(np.prod([1.0 - q for _, q in retries[:n]]) for n in range(len(retries))))
        return RecoveryPlan(invoice, ordered, recovery, attempts, stop, candidates=len(times))

    def _schedule(
        self,
        case: RecoveryCase,
        code: DeclineCode,
        *,
        times: list[datetime],
        declined_at: datetime,
        first: datetime,
        left: int,
    ) -> Schedule:
        """Score every (previous decline, candidate) pair with the model and optimise the sequence."""
        seconds = np.array([t.timestamp() for t in times])
        previous = np.r_[declined_at.timestamp(), seconds]
        j, i = np.nonzero(seconds[None, :] - previous[:, None] >= self.config.min_gap.total_seconds())
        last = [declined_at if n == 0 else times[n - 1] for n in j]
        frame = candidate_frame(
            case.attempt,
            [times[n] for n in i],
            code=code,
            last_declined=last,
            first_declined_at=first,
            depth=np.minimum(j, 1),
        )
        p = np.full((len(times) + 1, len(times)), np.nan)
        p[j, i] = 1.0 - self.model(frame)
        days = (seconds - first.timestamp()) / 86_400.0
        amount = float(str(_field(case.attempt, "amount")))
        value = amount * np.clip(1.0 - self.config.daily_discount * days, 0.0, None)
        return best_schedule(p, value, self.config.attempt_cost, left)

    def _within_caps(
        self, case: RecoveryCase, times: list[datetime], schedule: Schedule, left: int
    ) -> tuple[list[tuple[datetime, float]], Stop]:
        """The schedule's retries up to the first that would break the card network's caps."""
        caps = self.config.caps_for(card_network(_text(case.attempt, "card_bin")))
        kept: list[tuple[datetime, float]] = []
        for index, p in zip(schedule.candidates, schedule.p, strict=True):
            at = times[index]
            if not within_caps([*case.card_retry_times, *(t for t, _ in kept)], at, caps):
                return kept, Stop.NO_CANDIDATE
            kept.append((at, p))
        return kept, Stop.MAX_ATTEMPTS if len(kept) == left else Stop.NOT_WORTH_IT

    def _candidate_times(
        self, attempt: Mapping[str, object], start: datetime, end: datetime
    ) -> list[datetime]:
        """Grid times in [start, end), outside quiet hours and before the card expires."""
        grid = self.config.grid_hours * 3600.0
        expires = card_expires_at(_text(attempt, "card_exp"))
        if expires is not None and attempt.get("method_type") == MethodType.CARD.value:
            end = min(end, expires)
        first = math.ceil(start.timestamp() / grid) * grid
        times = []
        t = first
        while t < end.timestamp():
            at = datetime.fromtimestamp(t, UTC)
            if not self.config.quiet_hours.is_quiet(at.hour):
                times.append(at)
            t += grid
        return times

    def _retry_steps(
        self, retries: list[tuple[datetime, float]], code: DeclineCode, declined_at: datetime, candidates: int
    ) -> list[Step]:
        steps = []
        for n, (at, p) in enumerate(retries):
            hours = (at - declined_at).total_seconds() / 3600.0
            given = "" if n == 0 else ", if the retry before it is declined"
            reason = (
                f"{hours:.0f} h after the '{code.value}' decline, day {at.day} of the month: "
                f"P(success) = {p:.2f}{given}; chosen among {candidates} candidate times"
            )
            steps.append(Step(StepKind.RETRY, at, reason, p))
        return steps


def candidate_frame(
    attempt: Mapping[str, object],
    times: Sequence[datetime],
    *,
    code: DeclineCode,
    last_declined: datetime | Sequence[datetime],
    first_declined_at: datetime,
    depth: npt.NDArray[np.int64] | None = None,
) -> pd.DataFrame:
    """The declined attempt's invoice retried at each time: contract columns plus the planner's context.

    ``last_declined``: the decline each candidate follows (one time for all, or one per candidate: a planned
    retry assumed declined with the same code); ``depth``: retries between the decline and the candidate
    (0: the next retry), added to its ``retry_number``.
    """
    n = len(times)
    retry_number = int(str(_field(attempt, "retry_number"))) + 1
    attempt_id = str(_field(attempt, "attempt_id"))
    frame = pd.DataFrame([dict(attempt)]).take(np.zeros(n, dtype=np.int64)).reset_index(drop=True)
    ids = {t: f"{attempt_id}~retry@{t:%Y%m%dT%H%M}" for t in set(times)}
    frame["attempt_id"] = [ids[t] for t in times]
    frame["occurred_at"] = pd.DatetimeIndex(list(times)).tz_convert(UTC)
    frame["kind"] = AttemptKind.RETRY.value
    frame["retry_number"] = retry_number + (np.zeros(n, dtype=np.int64) if depth is None else depth)
    frame["last_decline_code"] = code.value
    if isinstance(last_declined, datetime):
        frame["last_declined_at"] = pd.Timestamp(last_declined)
    else:
        frame["last_declined_at"] = pd.DatetimeIndex(list(last_declined)).tz_convert(UTC)
    frame["first_declined_at"] = pd.Timestamp(first_declined_at)
    return frame
