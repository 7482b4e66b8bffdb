"""The scoring engine, callable without HTTP: attempt → features → both models → reasons → policy → log.

:meth:`ScoringEngine.score` is the whole decision: it reads the online features of the attempt (state strictly
before its time) and records the attempt in the online store in one unit of work (each entity blob is read
once), scores both models on the one row with their per-feature contributions, applies the policy table and
writes the decision to the durable log *before* returning it. It is idempotent on ``attempt_id``: a repeat
returns the logged decision (and is refused if its payload differs); the online store counts the attempt once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from functools import partial
from typing import Any, Final, Protocol, cast

import numpy as np

from billing.checks import BillingFields
from events.schema import ExtensionField
from rules.book import RuleAction, RuleSpec
from serving.errors import ConflictError, NotFoundError, NotReadyError
from serving.metrics import ServiceMetrics
from serving.scoring.answers import DecisionAnswer, FailureAnswer, ReasonAnswer, ScoreAnswer
from serving.scoring.attributes import Attributes, validation_context
from serving.scoring.billing import BillingGate, decision_reasons
from serving.scoring.models import ModelHolder, ModelPair, Scored, ServingModel
from serving.scoring.policy import RULES, Action, FraudLevel, Situation, Thresholds, decide, history_of
from serving.scoring.review import ReviewDesk
from serving.scoring.rulebook import RuleBookHolder
from serving.scoring.schemas import AttemptIn, DecidedBy, FraudReportIn, OutcomeIn
from serving.scoring.trees import F64
from serving.scoring.webhook_events import emit_blocked
from serving.store.base import (
    DecisionRecord,
    DecisionStore,
    Erasure,
    LoggedDecision,
    epoch_us,
    features_blob,
    model_ref,
)
from serving.store.kept_fields import kept_fields
from serving.store.outbox import Outbox

logger = logging.getLogger(__name__)

TOP_REASONS: Final = 5
WARM_UP_ATTEMPT: Final = {
    "attempt_id": "riskgate-warm-up", "occurred_at": "2000-01-01T00:00:00Z", "account_id": "warm-up",
    "kind": "signup", "plan_tier": "basic", "plan_period": "monthly", "amount": 1.0, "currency": "EUR",
    "payment_method_id": "warm-up", "method_type": "card", "retry_number": 0,
}  # fmt: skip
#: What an analyst's rule does to the decision when it matches.
RULE_ACTIONS: Final = {
    RuleAction.ALLOW: Action.APPROVE,
    RuleAction.BLOCK: Action.BLOCK,
    RuleAction.REVIEW: Action.REVIEW,
}


class FeatureSource(Protocol):
    """What the engine needs from the online feature engine (:class:`features.online.OnlineEngine`)."""

    def features_for(self, attempt: Mapping[str, object]) -> F64: ...
    def features_at(self, attempt: Mapping[str, object], times: Sequence[datetime]) -> F64: ...
    def record_attempt(self, attempt: Mapping[str, object]) -> bool: ...
    def score_and_record(self, attempt: Mapping[str, object]) -> tuple[F64, bool]: ...
    def record_outcome(self, outcome: Mapping[str, object]) -> bool: ...
    def record_report(self, report: Mapping[str, object]) -> bool: ...
    def erase_account(self, account_id: str) -> int: ...


@dataclass(frozen=True)
class ThresholdOverrides:
    """Configured cut-offs that replace the models' own (``None``: use the model's)."""

    fraud_elevated: float | None = None
    fraud_highest: float | None = None
    failure_defer: float | None = None


@dataclass(frozen=True)
class OutcomeCounts:
    outcomes_recorded: int
    outcomes_duplicate: int
    fraud_reports_recorded: int
    fraud_reports_duplicate: int


class ScoringEngine:
    """Scores attempts and records outcomes; shared by the HTTP routes, the benchmark and tests."""

    def __init__(
        self,
        *,
        features: FeatureSource,
        feature_names: Sequence[str],
        holder: ModelHolder,
        log: DecisionStore,
        pseudonymise: Callable[[str | None], str | None],
        overrides: ThresholdOverrides | None = None,
        metrics: ServiceMetrics | None = None,
        flush: Callable[[], None] | None = None,
        fields: Sequence[ExtensionField] = (),
        rules: RuleBookHolder | None = None,
        outbox: Outbox | None = None,
        review: ReviewDesk | None = None,
        billing: BillingGate | None = None,
    ) -> None:
        self.features = features
        self.review = review  # the review queue: a first ``review`` decision opens a case there
        self.billing = billing  # the billing checks, computed before the rules (None: off)
        self.outbox = outbox  # signed webhooks: decision.blocked (None: no endpoint is configured)
        #: the served feature set's extension fields: what an attempt's ``attributes`` may hold
        self.fields = tuple(fields)
        #: the pydantic validation context that checks attributes against them
        #: (see :mod:`serving.scoring.attributes`)
        self.validation_context = validation_context(self.fields)
        self.feature_names = tuple(feature_names)
        self.holder = holder
        #: the analysts' rules and lists, evaluated after both models (None: the model policy alone decides)
        self.rules = rules
        self.log = log
        self.pseudonymise = pseudonymise
        self.overrides = overrides or ThresholdOverrides()
        self.metrics = metrics or ServiceMetrics()
        self._flush = flush
        # prometheus_client's labels() validates and locks on every call: the children are looked up once
        self._decided: dict[tuple[str, str, bool], Any] = {}
        self._scored = {task: self.metrics.scores.labels(task) for task in ("fraud", "failure")}

    # -- scoring --------------------------------------------------------------------------------------------

    def score(self, attempt: AttemptIn, explain: bool = False) -> ScoreAnswer:
        """The decision for one attempt, as the JSON-ready answer (see
        :class:`serving.scoring.schemas.ScoreOut`)."""
        started = time.perf_counter()
        fingerprint = self._fingerprint(attempt)
        logged = self.log.get(attempt.attempt_id)
        if logged is not None:
            return self._replay(logged, fingerprint, explain, started)
        pair = self.holder.current
        event = attempt.as_event()
        row, first = self._features_and_record(event)
        fraud, failure = _score(pair.fraud, row), _score(pair.failure, row)
        thresholds = self.thresholds(pair)
        method_key = self.pseudonymise(attempt.payment_method_id)
        situation = Situation(
            level=thresholds.fraud_level(None if fraud is None else fraud.probability),
            likely_failure=thresholds.likely_failure(None if failure is None else failure.probability),
            kind=attempt.kind,
            history=history_of(*self.log.last_outcome_of_method(method_key)),
        )
        verdict = decide(situation)
        charge = None if self.billing is None else self.billing.charge(attempt)
        billing = None if self.billing is None or charge is None else self.billing.check(charge)
        spec = self._matching_rule(event, row, fraud, failure, situation.level, billing=billing)
        decision: DecisionAnswer = (
            {
                "action": verdict.action.value,
                "rule": verdict.rule,
                "fallback": verdict.fallback,
                "decided_by": DecidedBy.POLICY.value,
                "reasons": [],
            }
            if spec is None
            else _by_rule(spec)
        )
        answer: ScoreAnswer = {
            "attempt_id": attempt.attempt_id,
            "fraud": {**self._model_part(pair.fraud, fraud, row), "level": situation.level.value},
            "failure": self._model_part(pair.failure, failure, row),
            "decision": decision,
            "replayed": False,
            "features": None
            if row is None
            else dict(zip(self.feature_names, _json_values(row), strict=True)),
            "scoring_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        stored = self.log.record(
            DecisionRecord(
                attempt_id=attempt.attempt_id,
                occurred_at=attempt.occurred_at,
                account_key=self.pseudonymise(attempt.account_id),
                method_key=method_key,
                kind=_value(attempt.kind),
                fingerprint=fingerprint,
                action=decision["action"],
                rule=decision["rule"],
                fallback=decision["fallback"],
                decided_by=decision["decided_by"],
                fraud_probability=None if fraud is None else fraud.probability,
                failure_probability=None if failure is None else failure.probability,
                answer=answer,
                plan_tier=_value(attempt.plan_tier),
                plan_period=_value(attempt.plan_period),
                method_type=_value(attempt.method_type),
                card_funding=_value(attempt.card_funding),
                card_country=attempt.card_country,
                amount=attempt.amount,
                currency=attempt.currency,
                fraud_level=situation.level.value,
                fraud_model=None if fraud is None or pair.fraud is None else model_ref(pair.fraud.ref),
                failure_model=None
                if failure is None or pair.failure is None
                else model_ref(pair.failure.ref),
                features=features_blob(row),
                attributes=_json_attributes(attempt.attributes),
                fields=kept_fields(event),
            ),
            attempt=event,
            first=first,
        )
        if stored.answer is not answer:  # a concurrent request for the same attempt was logged first
            return self._replay(stored, fingerprint, explain, started)
        if self.billing is not None and charge is not None:
            self.billing.decided(charge, decision["action"])
        if self.outbox is not None and decision["action"] == "block":
            emit_blocked(self.outbox, self.metrics, answer, attempt, self.pseudonymise)
        if self.review is not None and decision["action"] == "review":
            self.review.opened(attempt, stored.decided_at, answer, self.pseudonymise(attempt.account_id))
        self._observe(answer, time.perf_counter() - started)
        return _shown(answer, explain)

    def warm_up(self, scratch: FeatureSource | None = None) -> None:
        """Run the whole path once before the first request, so no request pays for jit compilation.

        Writes go to ``scratch`` (a throwaway feature engine of the same feature set, e.g. over an in-memory
        store), never to the real online store or the decision log; the real store is only read.
        """
        probe = AttemptIn.model_validate(WARM_UP_ATTEMPT).as_event()
        row = self._features(probe)
        pair = self.holder.current
        for model in (pair.fraud, pair.failure):
            _score(model, row)
        if scratch is not None:
            scratch.score_and_record(probe)
            scratch.record_outcome({"attempt_id": probe["attempt_id"], "occurred_at": probe["occurred_at"],
                                    "status": "declined", "decline_code": "insufficient_funds"})  # fmt: skip
            # a second event per entity: the kernels see strided columns of a several-row state, a
            # signature of its own that would otherwise be compiled (seconds) by the first such request
            scratch.score_and_record({**probe, "attempt_id": "riskgate-warm-up-2"})
            scratch.features_for({**probe, "attempt_id": "riskgate-warm-up-3"})
            scratch.erase_account(str(probe["account_id"]))
        self.log.get(str(probe["attempt_id"]))
        self.log.last_outcome_of_method(self.pseudonymise("warm-up"))

    def thresholds(self, pair: ModelPair) -> Thresholds:
        """The policy's cut-offs: the models' logged thresholds, replaced by configured overrides."""
        elevated = highest = defer = None
        if pair.fraud is not None:
            levels = pair.fraud.bundle.thresholds.levels
            highest = levels.get("highest", pair.fraud.bundle.thresholds.decision)
            elevated = levels.get("elevated", highest)
        if pair.failure is not None:
            defer = pair.failure.bundle.thresholds.decision
        o = self.overrides
        return Thresholds(
            fraud_elevated=o.fraud_elevated if o.fraud_elevated is not None and pair.fraud else elevated,
            fraud_highest=o.fraud_highest if o.fraud_highest is not None and pair.fraud else highest,
            failure_defer=o.failure_defer if o.failure_defer is not None and pair.failure else defer,
        )

    def flush(self) -> None:
        """Make every answered decision and recorded attempt visible in SQLite (write-behind: see
        :mod:`serving.store.writebehind`; a no-op without it). Readers of whole ranges call this first."""
        if self._flush is not None:
            self._flush()

    def decision(self, attempt_id: str) -> LoggedDecision:
        logged = self.log.get(attempt_id)
        if logged is None:
            raise NotFoundError(f"no decision is logged for attempt {attempt_id!r}")
        return logged

    # -- outcomes and erasure -------------------------------------------------------------------------------

    def record_outcomes(
        self, outcomes: Sequence[OutcomeIn], reports: Sequence[FraudReportIn]
    ) -> OutcomeCounts:
        """Feed outcomes and fraud reports to the online store and keep them; repeats are counted once.

        Durable when this returns: with write-behind, what they changed in the online store is flushed (and
        the decisions they join in the log before them)."""
        self._store_call(self.flush)
        new_outcomes = new_reports = 0
        for outcome in outcomes:
            event = outcome.model_dump(mode="python")
            self._store_call(partial(self.features.record_outcome, event))
            code = None if outcome.decline_code is None else outcome.decline_code.value
            new = self.log.record_outcome(outcome.attempt_id, outcome.occurred_at, outcome.status.value, code)
            new_outcomes += new
            if new and self.billing is not None:
                self.billing.outcome(outcome.attempt_id, outcome.status.value)
            self.metrics.outcomes.labels("outcome", str(new).lower()).inc()
        for report in reports:
            event = report.model_dump(mode="python")
            self._store_call(partial(self.features.record_report, event))
            new = self.log.record_report(
                report.report_id, report.attempt_id, report.reported_at, report.report_type.value
            )
            new_reports += new
            self.metrics.outcomes.labels("fraud_report", str(new).lower()).inc()
        self._store_call(self.flush)
        return OutcomeCounts(
            new_outcomes, len(outcomes) - new_outcomes, new_reports, len(reports) - new_reports
        )

    def erase_account(self, account_id: str) -> tuple[str, int, Erasure]:
        """Erase an account from the online store and unlink it in the decision log."""
        key = self.pseudonymise(account_id) or ""
        self._store_call(self.flush)  # every decision of the account is in SQLite
        removed = self._store_call(partial(self.features.erase_account, account_id))
        if self.review is not None:  # its cases' raw card and device, found by the account's decisions
            self.review.erase(key)
        erasure = self.log.erase_account(key, removed)
        self._store_call(self.flush)  # and the journal holding its raw events is deleted
        logger.info(
            "erased account %s: %d online events, %d decisions unlinked", key, removed, erasure.decisions
        )
        return key, removed, erasure

    # -- internals ------------------------------------------------------------------------------------------

    def _fingerprint(self, attempt: AttemptIn) -> str:
        # without attributes, the payload is dumped as before they existed: a repeat logged by an older
        # riskgate still matches its fingerprint
        without = {"attributes"} if attempt.attributes is None else None
        digest = hashlib.sha256(attempt.model_dump_json(exclude=without).encode()).hexdigest()
        return self.pseudonymise(digest) or digest

    def _replay(self, logged: LoggedDecision, fingerprint: str, explain: bool, started: float) -> ScoreAnswer:
        if logged.fingerprint is not None and not hmac.compare_digest(logged.fingerprint, fingerprint):
            raise ConflictError(
                f"attempt {logged.attempt_id!r} was already scored with a different payload: attempt ids are "
                "idempotency keys, so a new attempt needs a new id"
            )
        # the logged JSON is an answer this engine built (an erased one without its feature vector)
        answer = cast(ScoreAnswer, {**logged.answer, "replayed": True})
        # logged before analysts' rules existed: the model policy decided
        answer["decision"] = {"decided_by": DecidedBy.POLICY.value, "reasons": [], **answer["decision"]}
        answer["features"] = logged.answer.get("features")
        answer["scoring_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return _shown(answer, explain)

    def _matching_rule(
        self,
        event: Mapping[str, object],
        row: F64 | None,
        fraud: Scored | None,
        failure: Scored | None,
        level: FraudLevel,
        *,
        billing: BillingFields | None = None,
    ) -> RuleSpec | None:
        """The analyst's rule that decides the attempt, None when none matches (or none is configured: then
        not even the values are gathered). Lists are read at the attempt's time: their items expire by it."""
        holder = self.rules
        book = None if holder is None else holder.current
        if holder is None or not book:
            return None
        if holder.builtin_only and (billing is None or not billing.failed()):
            return None  # the built-in billing rules alone match only an attempt that fails a check
        values = self._rule_values(event, row, fraud, failure, level)
        if billing is not None:
            values.update(billing.values())
        return book.decide(values, epoch_us(cast(datetime, event["occurred_at"])))

    def _rule_values(
        self,
        event: Mapping[str, object],
        row: F64 | None,
        fraud: Scored | None,
        failure: Scored | None,
        level: FraudLevel,
    ) -> dict[str, object]:
        """What rules read, by name: the attempt's fields and attributes (enum members as their values),
        every feature of the row, and the model outputs (None: that model, or the features, unavailable)."""
        values = {name: v.value if isinstance(v, Enum) else v for name, v in event.items()}
        if row is not None:
            values.update(zip(self.feature_names, row.tolist(), strict=True))
        values["fraud_probability"] = None if fraud is None else fraud.probability
        values["fraud_level"] = None if level is FraudLevel.UNKNOWN else level.value
        values["failure_probability"] = None if failure is None else failure.probability
        return values

    def _features(self, event: Mapping[str, object]) -> F64 | None:
        try:
            return self.features.features_for(event)
        except Exception:  # the store is down or corrupt: answer with the fallback rather than stall
            logger.exception("online features unavailable; answering with the fallback decision")
            self.metrics.count_error("feature_store")
            return None

    def _features_and_record(self, event: Mapping[str, object]) -> tuple[F64 | None, bool]:
        """The attempt's features, recording it in the online store in the same unit of work (one read),
        and whether this call recorded it first (the store's unit of work picks one winner among concurrent
        requests for one attempt: no other decision for it can be on its way to the log).

        If the store fails, the decision is still answered (with the fallback) and logged; the store then
        misses this attempt, as it would miss any write it cannot take.
        """
        try:
            return self.features.score_and_record(event)
        except Exception:  # the store is down or corrupt: answer with the fallback rather than stall
            logger.exception("online features unavailable; answering with the fallback decision")
            self.metrics.count_error("feature_store")
            return None, False

    def _store_call(self, call: Callable[[], int | bool | None]) -> int:
        try:
            return int(call() or 0)
        except Exception as error:
            self.metrics.count_error("feature_store")
            logger.exception("online store call failed")
            raise NotReadyError(
                "the online store is unavailable; retry later (outcomes are idempotent)"
            ) from error

    def _model_part(
        self, model: ServingModel | None, scored: Scored | None, row: F64 | None
    ) -> FailureAnswer:
        """A model's part of the answer (the fraud part adds its ``level``)."""
        if model is None or scored is None or row is None:
            return {"probability": None, "reasons": [], "model": None if model is None else model.ref}
        return {
            "probability": scored.probability,
            "reasons": _reasons(self.feature_names, row, scored.contributions),
            "model": model.ref,
        }

    def _observe(self, answer: ScoreAnswer, seconds: float) -> None:
        decision = answer["decision"]
        self.metrics.scoring.observe(seconds)
        key = (decision["action"], decision["rule"], decision["fallback"])
        counter = self._decided.get(key)
        if counter is None:
            counter = self._decided[key] = self.metrics.decisions.labels(key[0], key[1], str(key[2]).lower())
        counter.inc()
        for part, histogram in (
            (answer["fraud"], self._scored["fraud"]),
            (answer["failure"], self._scored["failure"]),
        ):
            probability = part["probability"]
            if probability is not None:
                histogram.observe(probability)


def _by_rule(spec: RuleSpec) -> DecisionAnswer:
    """The decision an analyst's rule made (not a fallback: the rule decided, whatever the models)."""
    action = RULE_ACTIONS[spec.action].value
    return {
        "action": action,
        "rule": spec.name,
        "fallback": False,
        "decided_by": DecidedBy.RULE.value,
        "reasons": decision_reasons(spec.name),
    }


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _json_attributes(attributes: Attributes | None) -> dict[str, str | float] | None:
    """Attributes as the log keeps them: JSON values (times as ISO 8601 in UTC)."""
    if not attributes:
        return None
    return {name: v.isoformat() if isinstance(v, datetime) else v for name, v in attributes.items()}


def _score(model: ServingModel | None, row: F64 | None) -> Scored | None:
    if model is None or row is None:
        return None
    return model.score(row)


def _json_values(row: F64) -> list[float | None]:
    return [None if math.isnan(value) else float(value) for value in row.tolist()]


def _reasons(names: Sequence[str], row: F64, contributions: F64) -> list[ReasonAnswer]:
    """The features that moved this score most (largest absolute contributions), strongest first."""
    strength = -np.abs(contributions)
    if len(strength) > TOP_REASONS:  # the strongest few, then their order (ties: the earlier feature first)
        few = np.argpartition(strength, TOP_REASONS - 1)[:TOP_REASONS]
        cut = strength[few].max()
        few = np.flatnonzero(strength <= cut)  # every feature tied with the weakest of the few competes
        order = few[np.argsort(strength[few], kind="stable")][:TOP_REASONS]
    else:
        order = np.argsort(strength, kind="stable")
    return [
        {
            "feature": names[i],
            "value": None if math.isnan(row[i]) else float(row[i]),
            "contribution": round(float(contributions[i]), 6),
        }
        for i in order
        if contributions[i] != 0.0
    ]


def _shown(answer: ScoreAnswer, explain: bool) -> ScoreAnswer:
    return answer if explain else {**answer, "features": None}


__all__ = ["RULES", "FeatureSource", "ScoringEngine", "ThresholdOverrides"]
