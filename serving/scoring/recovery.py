"""Recovery plans in the service: the planner over the served models, the dunning policy, a fallback.

:class:`RecoveryService` answers ``POST /v1/recovery-plan``. For each case it builds a
:class:`recovery.planner.Planner` over a model of the model pair current *at that request* (a reload never
mixes versions inside one plan):

* **after a decline**, the retry model ``riskgate-retry@champion`` when one is loaded
  (:class:`recovery.learned.RetryModel`: learned from observed retries, it ranks candidate times by the
  decline's family and age, day of month per funding type, amount and retry number; it reads no online
  state);
* otherwise, and **before a renewal is charged** (the retry model knows attempts that follow a decline only),
  riskgate's LightGBM failure model: features from the service's online engine (``features_at`` reads the
  state before each candidate time and never writes, so planning leaves the online store as it was), scores
  from the loaded model's compiled trees and calibration
  (:meth:`serving.scoring.models.ServingModel.score_rows`).

The answer's ``planned_with`` says which (``retry_model``, ``failure_model``, or ``fixed_schedule`` in a
fallback) and ``model`` names the version; ``GET /v1/status`` shows the planner the service uses now.

Whether riskgate blocked the attempt as fraud comes from the decision log (the logged action ``block``), never
from the client; ``now`` is the server's clock.

**Fallback.** Without a failure model (none loaded, or the online store failing), hard-rule plans still answer
(a forbidden or hard decline, a fraud block: no retry). Any other case gets the fixed schedule
:data:`FALLBACK_RETRY_DAYS` after the first decline (moved out of quiet hours, within the window, the attempts
left, the card's expiry and its network caps), with no probabilities, marked ``"fallback": true``.

**Cost.** A plan after a decline evaluates the model at every (previous decline, candidate) pair of the grid
(``grid_hours``, 3 h by default: 79 candidate times right after a decline, on a 14-day window). The online
engine reads the invoice's state once and evaluates all candidate times in one kernel call
(:meth:`features.online.OnlineEngine.features_at`): median 37 ms per plan against 128 ms with one state read
per candidate, side by side on 2 loaded cores (``python -m bench plan``, load ~7; 110-147 ms before this
path existed). A coarser ``grid_hours`` makes it proportionally cheaper. The start-up warm-up plans
one probe decline, so the first request pays no first-use cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, cast

import pandas as pd

from core.errors import RiskgateError
from events.schema import MethodType
from recovery.config import FIXED_RETRY_DAYS, QuietHours, RecoveryConfig, RecoveryConfigError
from recovery.models import FailureModel, FeatureVectorModel, FloatArray
from recovery.planner import PlanInputError, Planner, RecoveryCase, StepKind, Stop
from recovery.rules import CustomerAction, UnknownDeclineCodeError, card_expires_at, card_network, within_caps
from serving.errors import ConfigurationError, RecoveryCaseError
from serving.scoring.answers import ModelRefAnswer, PlannedAnswer, RecoveryPlanAnswer, RecoveryStepAnswer
from serving.scoring.engine import WARM_UP_ATTEMPT, FeatureSource, ScoringEngine
from serving.scoring.models import ModelPair, ServingModel
from serving.scoring.schemas import AttemptIn, RecoveryCaseIn
from serving.scoring.trees import F64
from serving.scoring.webhook_events import emit_customer_actions

logger = logging.getLogger(__name__)

#: The fallback's retries, in days after the first decline (the schedule billing platforms default to; the
#: recovery evaluation's baseline).
FALLBACK_RETRY_DAYS: Final = FIXED_RETRY_DAYS
#: A decline reported this far past the server's clock is refused (clock skew tolerated below it).
CLOCK_SKEW: Final = timedelta(minutes=5)


class FailureModelUnavailableError(RiskgateError, RuntimeError):
    """The failure model cannot score candidates now (not loaded, or its features cannot be read)."""


class _Unavailable:
    """The failure model when none is loaded: planning falls back as soon as a score is needed."""

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        raise FailureModelUnavailableError("no failure model is loaded")


class _ServingScorer:
    """A loaded failure model as the planner's scorer (the serving trees and calibration, no second copy)."""

    def __init__(self, model: ServingModel) -> None:
        self.model = model

    def predict_proba(self, x: FloatArray) -> FloatArray:
        return self.model.score_rows(x)


class _GuardedFeatures:
    """The online engine's ``features_at``, reporting a failing store as an unavailable model."""

    def __init__(self, source: FeatureSource) -> None:
        self.source = source

    def features_at(self, attempt: Mapping[str, object], times: Sequence[datetime]) -> F64:
        try:
            return self.source.features_at(attempt, times)
        except Exception as error:  # the store is down or corrupt: plan with the fallback, never stall
            raise FailureModelUnavailableError(f"online features unavailable: {error}") from error


def load_recovery_config(path: Path | None) -> RecoveryConfig:
    """The dunning policy from ``path`` (None: the defaults); an unreadable or invalid file stops start-up."""
    if path is None:
        return RecoveryConfig()
    try:
        config = RecoveryConfig.from_yaml(path)
    except RecoveryConfigError as error:
        raise ConfigurationError(f"RISKGATE_RECOVERY_CONFIG: {error}") from error
    logger.info("recovery plans follow the dunning policy in %s", path)
    return config


def planner_model(pair: ModelPair) -> str:
    """What scores a declined attempt's candidate retry times with these models."""
    if pair.retry is not None:
        return "retry_model"
    return "failure_model" if pair.failure is not None else "fixed_schedule"


def _planning_model(
    pair: ModelPair, engine: ScoringEngine, *, declined: bool
) -> tuple[FailureModel, ModelRefAnswer | None, str]:
    """The model a case is planned with, its reference, and its kind (see the module docstring)."""
    if declined and pair.retry is not None:
        return pair.retry.model, pair.retry.ref, "retry_model"
    if pair.failure is None:
        return _Unavailable(), None, "fixed_schedule"
    model = FeatureVectorModel(_GuardedFeatures(engine.features), _ServingScorer(pair.failure))
    return model, pair.failure.ref, "failure_model"


class RecoveryService:
    """Recovery plans for the HTTP routes (and any caller holding the scoring engine)."""

    def __init__(
        self, config: RecoveryConfig, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.config = config
        self.clock = clock

    def plan(self, case: RecoveryCaseIn, engine: ScoringEngine) -> RecoveryPlanAnswer:
        """The plan of one case as the JSON-ready answer (see
        :class:`serving.scoring.schemas.RecoveryPlanOut`)."""
        started = time.perf_counter()
        recovery_case = self._case(case, engine)
        pair = engine.holder.current
        model, ref, kind = _planning_model(pair, engine, declined=recovery_case.decline_code is not None)
        try:
            # the planner's JSON (a lower layer, untyped here) holds PlannedAnswer's keys but ``fallback``
            planned = Planner(model, self.config).plan(recovery_case).as_json()
            answer = cast(PlannedAnswer, {**planned, "fallback": False})
        except FailureModelUnavailableError as error:
            logger.warning("recovery plan without the failure model (%s): fixed schedule", error)
            engine.metrics.count_error("recovery_fallback")
            answer = fallback_plan(recovery_case, self.config)
        except (PlanInputError, UnknownDeclineCodeError) as error:
            raise RecoveryCaseError(f"cannot plan attempt {case.attempt.attempt_id!r}: {error}") from error
        plan: RecoveryPlanAnswer = {
            **answer,
            "model": None if answer["fallback"] else ref,
            "planned_with": "fixed_schedule" if answer["fallback"] else kind,
            "planning_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if engine.outbox is not None:
            emit_customer_actions(engine.outbox, engine.metrics, plan, case.attempt, engine.pseudonymise)
        return plan

    def warm_up(self, engine: ScoringEngine) -> float:
        """Plan one probe decline before the first request (pandas, planner, multi-time kernels, trees), so no
        plan pays for first-use costs; reads the online store, writes nothing. Returns the seconds it took."""
        started = time.perf_counter()
        probe = AttemptIn.model_validate(WARM_UP_ATTEMPT).as_event()
        declined_at = _aware(probe["occurred_at"])
        case = RecoveryCase(
            attempt=probe, now=declined_at, decline_code="insufficient_funds", declined_at=declined_at
        )
        pair = engine.holder.current
        paths = {
            kind: model
            for model, _, kind in (_planning_model(pair, engine, declined=d) for d in (True, False))
        }
        for kind, model in paths.items():
            if kind == "fixed_schedule":
                continue
            try:
                Planner(model, self.config).plan(case)
            except FailureModelUnavailableError as error:  # the store is down: requests will fall back too
                logger.warning("recovery warm-up without the failure model: %s", error)
        fallback_plan(case, self.config)
        return time.perf_counter() - started

    def _case(self, case: RecoveryCaseIn, engine: ScoringEngine) -> RecoveryCase:
        now = self.clock()
        if case.declined_at is not None and case.declined_at > now + CLOCK_SKEW:
            raise RecoveryCaseError(
                f"attempt {case.attempt.attempt_id!r}: declined_at is in the future by the server's clock; "
                "send the time the gateway declined it"
            )
        logged = engine.log.get(case.attempt.attempt_id)
        blocked = logged is not None and logged.answer.get("decision", {}).get("action") == "block"
        return RecoveryCase(
            attempt=case.attempt.as_event(),
            now=now,
            decline_code=None if case.decline_code is None else case.decline_code.value,
            declined_at=case.declined_at,
            first_declined_at=case.first_declined_at,
            card_retry_times=tuple(case.card_retry_times),
            fraud_blocked=blocked,
        )


# -- the fallback plan --------------------------------------------------------------------------------------


def fallback_plan(case: RecoveryCase, config: RecoveryConfig) -> PlannedAnswer:
    """The plan without a failure model: the charge as scheduled, or the fixed retry schedule."""
    attempt = case.attempt
    occurred_at = _aware(attempt["occurred_at"])
    if case.decline_code is None:
        steps = _expiry_steps(attempt, case.now, occurred_at, "the renewal")
        steps.append(_step(StepKind.CHARGE, occurred_at, "scheduled renewal (no failure model: no forecast)"))
        return _fallback_answer(attempt, steps, Stop.NOT_DECLINED)
    declined_at = case.declined_at or occurred_at
    first = case.first_declined_at or declined_at
    window_end = first + config.window
    left = config.max_attempts - int(str(attempt["retry_number"]))
    retries = _fixed_retries(case, config, earliest=max(case.now, declined_at + config.min_gap), left=left)
    steps = _expiry_steps(attempt, case.now, window_end, "the dunning window ends")
    for at in retries:
        days = (at - first).total_seconds() / 86_400.0
        reason = f"fixed schedule, day {days:.1f} after the first decline (the failure model is unavailable)"
        steps.append(_step(StepKind.RETRY, at, reason))
    stop = Stop.MAX_ATTEMPTS if len(retries) >= left else Stop.NO_CANDIDATE
    return _fallback_answer(attempt, steps, stop)


def _fixed_retries(
    case: RecoveryCase, config: RecoveryConfig, *, earliest: datetime, left: int
) -> list[datetime]:
    attempt = case.attempt
    first = case.first_declined_at or case.declined_at or _aware(attempt["occurred_at"])
    end = first + config.window
    expires = _card_expiry(attempt)
    if expires is not None:
        end = min(end, expires)
    caps = config.caps_for(card_network(_text(attempt, "card_bin")))
    retries: list[datetime] = []
    for days in FALLBACK_RETRY_DAYS:
        at = outside_quiet_hours(first + timedelta(days=days), config.quiet_hours)
        if len(retries) >= left or at >= end:
            break
        if at < earliest or (retries and at - retries[-1] < config.min_gap):
            continue
        if not within_caps([*case.card_retry_times, *retries], at, caps):
            break
        retries.append(at)
    return retries


def outside_quiet_hours(at: datetime, quiet: QuietHours) -> datetime:
    """``at``, or the first whole hour after it when retries are allowed again."""
    moved = at
    for _ in range(24):
        if not quiet.is_quiet(moved.hour):
            return moved
        moved = moved.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return at  # every hour is quiet: impossible with a valid QuietHours (equal hours mean none)


def _expiry_steps(
    attempt: Mapping[str, object], now: datetime, until: datetime, what: str
) -> list[RecoveryStepAnswer]:
    expires = _card_expiry(attempt)
    if expires is None or expires > until:
        return []
    reason = f"the card expires on {expires:%Y-%m-%d}, before {what}: ask for the new card first"
    return [_step(StepKind.CUSTOMER, now, reason, CustomerAction.UPDATE_CARD)]


def _card_expiry(attempt: Mapping[str, object]) -> datetime | None:
    if attempt.get("method_type") != MethodType.CARD.value:
        return None
    return card_expires_at(_text(attempt, "card_exp"))


def _step(
    kind: StepKind, at: datetime, reason: str, action: CustomerAction | None = None
) -> RecoveryStepAnswer:
    return {
        "kind": kind.value,
        "at": at.isoformat(),
        "success_probability": None,
        "action": None if action is None else action.value,
        "reason": reason,
    }


def _fallback_answer(
    attempt: Mapping[str, object], steps: list[RecoveryStepAnswer], stop: Stop
) -> PlannedAnswer:
    ordered = sorted(steps, key=lambda s: (datetime.fromisoformat(s["at"]), s["kind"] != StepKind.CUSTOMER))
    return {
        "invoice_id": _text(attempt, "invoice_id"),
        "steps": ordered,
        "recovery_probability": None,
        "expected_attempts": None,
        "stop": stop.value,
        "hard_rule": None,
        "candidates": 0,
        "fallback": True,
    }


def _aware(value: object) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise PlanInputError(f"expected a datetime, got {type(value).__name__}")
    return value.astimezone(UTC)


def _text(attempt: Mapping[str, object], name: str) -> str | None:
    value = attempt.get(name)
    return value if isinstance(value, str) and value else None


__all__ = ["FALLBACK_RETRY_DAYS", "RecoveryService", "fallback_plan", "load_recovery_config", "planner_model"]
