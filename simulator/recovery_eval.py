"""The planner against a fixed retry schedule, on the declined renewals of a simulated world.

The population is every first-try renewal declined in the world's *test period* (after ``test_start``; the
planner's model only learns from what happened before it). Each policy gets the same number of retries, and
each retry's outcome is drawn from the simulator's TRUE approval probability at the chosen time
(:func:`simulator.truth.failure_probability`, with the invoice's last decline as its prior), with common
random numbers: the same uniform draws per (invoice, attempt index) for every policy. A declined retry draws
its decline code from the true cause mix, updates the state (the prior decline a next retry carries), and
the hard rules apply to it exactly as in production; the planner then re-plans from the new decline, as the
service is called again after each decline.

Reported per policy: recovered payments and revenue (EUR), retries spent, retries per recovered payment,
median time from the first decline to recovery; and the planner's revenue uplift over the fixed schedule with
a paired bootstrap confidence interval over invoices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel

from core.errors import RiskgateError
from core.progress import NO_PROGRESS, Progress
from events.schema import DECLINE_CODES, AttemptKind, DeclineCode
from recovery.config import FIXED_RETRY_DAYS, RecoveryConfig
from recovery.learned import RetryModel, observed_attempts, retry_history
from recovery.models import FailureModel, FloatArray, ProbabilityScorer
from recovery.planner import Planner, RecoveryCase
from recovery.rules import block_for
from simulator.engine import World
from simulator.replay import AttemptStates, attempt_states, load_world
from simulator.truth import CAUSES, CODE_MIX, failure_probability

if TYPE_CHECKING:
    from features.definitions import FeatureSet

logger = logging.getLogger(__name__)

#: The schedule platforms default to: retries 1, 3, 5 and 7 days after the first decline.
DEFAULT_FIXED_DAYS: Final = FIXED_RETRY_DAYS
_CAUSE_OF: Final = {code.value: CAUSES.index(rule.family) for code, rule in DECLINE_CODES.items()}


class EvaluationError(RiskgateError, ValueError):
    """The world cannot support the evaluation asked for (no test period, no declined renewals...)."""


@dataclass(frozen=True)
class Population:
    """Declined first-try renewals (``cases``: attempt columns + ``decline_code``) and their true states."""

    cases: pd.DataFrame
    states: AttemptStates
    world: World


@dataclass
class Track:
    """Where one invoice's recovery stands: its last decline and the retries made."""

    code: DeclineCode
    declined_at: datetime
    retries: list[datetime]
    recovered_at: datetime | None = None


#: A policy: given the invoice's case row and its track, the next retry time (None: stop).
Policy = Callable[[pd.Series, Track], datetime | None]


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def default_test_start(data_dir: Path, world: World, test_months: int) -> datetime:
    """The first day of the world's last ``test_months`` months."""
    start = pd.Timestamp(world.config.start, tz="UTC")
    months = world.config.months
    if test_months >= months:
        raise EvaluationError(
            f"the world in {data_dir} has {months} months: a test period of {test_months} leaves no months "
            "to learn from; simulate a longer world or shorten the test period"
        )
    return (start + pd.DateOffset(months=months - test_months)).to_pydatetime()


def load_population(
    data_dir: Path, frame: pd.DataFrame, world: World, test_start: datetime, config: RecoveryConfig
) -> Population:
    """The declined first-try renewals from ``test_start`` whose dunning window ends inside the world."""
    end = pd.Timestamp(world.config.start, tz="UTC") + pd.DateOffset(months=world.config.months)
    chosen = frame[
        (frame["kind"] == AttemptKind.RENEWAL.value)
        & (frame["retry_number"] == 0)
        & frame["decline_code"].notna()
        & (frame["occurred_at"] >= test_start)
        & (frame["occurred_at"] + config.window <= end)
    ].reset_index(drop=True)
    if chosen.empty:
        raise EvaluationError(
            f"no declined first-try renewal in {data_dir} between {test_start:%Y-%m-%d} and {end:%Y-%m-%d} "
            "(minus the dunning window): simulate a larger or longer world"
        )
    states = attempt_states(data_dir)
    position = pd.Series(np.arange(len(states)), index=states.attempt_id)
    index = position.loc[chosen["attempt_id"]].to_numpy(np.int64)
    return Population(chosen, states.take(index).declined(), world)


class OracleModel:
    """The simulator's true failure probability of candidate retries: the ceiling of any learned model."""

    def __init__(self, population: Population) -> None:
        self.population = population
        self.row_of = {inv: i for i, inv in enumerate(population.cases["invoice_id"])}

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        rows = np.array([self.row_of[inv] for inv in candidates["invoice_id"]], dtype=np.int64)
        at = _utc(candidates["occurred_at"]).dt.tz_convert(None).to_numpy().astype("datetime64[s]")
        prior_at = _utc(candidates["last_declined_at"]).dt.tz_convert(None).to_numpy().astype("datetime64[s]")
        prior_cause = np.array([_CAUSE_OF[c] for c in candidates["last_decline_code"]], dtype=np.int64)
        state = replace(self.population.states.state.take(rows), prior_cause=prior_cause, prior_at=prior_at)
        world = self.population.world
        risk = failure_probability(state, at, world.incidents, world.config.failure)
        return risk.p_fail


def fixed_schedule(days: tuple[float, ...]) -> Policy:
    """Retries at fixed offsets from the first decline (the kind of schedule billing platforms default to)."""

    def next_time(case: pd.Series, track: Track) -> datetime | None:
        first: datetime = case["occurred_at"].to_pydatetime()
        if len(track.retries) >= len(days):
            return None
        return first + timedelta(days=days[len(track.retries)])

    return next_time


def planner_policy(planner: Planner) -> Policy:
    """The planner's next retry, re-planned from the invoice's latest decline."""

    def next_time(case: pd.Series, track: Track) -> datetime | None:
        attempt = case.drop(labels=["decline_code", "status"]).to_dict()
        attempt["retry_number"] = len(track.retries)
        recovery_case = RecoveryCase(
            attempt={str(k): v for k, v in attempt.items()},
            now=track.declined_at,
            decline_code=track.code.value,
            declined_at=track.declined_at,
            first_declined_at=case["occurred_at"].to_pydatetime(),
        )
        step = planner.plan(recovery_case).next_retry
        return None if step is None else step.at

    return next_time


def _draw_code(cause: int, u: float) -> DeclineCode:
    mix = CODE_MIX[CAUSES[cause]]
    shares = np.cumsum(list(mix.values())) / sum(mix.values())
    return list(mix)[int(np.searchsorted(shares, u, side="right").clip(0, len(mix) - 1))]


def _attempt(population: Population, row: int, track: Track, at: datetime, draws: FloatArray) -> bool:
    """Make one retry at ``at`` against the oracle; on a decline, update the track. True if approved."""
    state = population.states.state.take(np.array([row]))
    state = replace(
        state,
        prior_cause=np.array([_CAUSE_OF[track.code.value]]),
        prior_at=np.array([np.datetime64(track.declined_at.replace(tzinfo=None), "s")]),
    )
    world = population.world
    when = np.array([np.datetime64(at.replace(tzinfo=None), "s")])
    risk = failure_probability(state, when, world.incidents, world.config.failure)
    track.retries.append(at)
    if draws[0] >= risk.p_fail[0]:
        track.recovered_at = at
        return True
    weights = np.cumsum(risk.by_cause[0])
    cause = int(min(np.searchsorted(weights, draws[1] * weights[-1], side="right"), len(CAUSES) - 1))
    track.code, track.declined_at = _draw_code(cause, draws[2]), at
    return False


def simulate_policy(
    population: Population, policy: Policy, max_attempts: int, draws: FloatArray
) -> pd.DataFrame:
    """Run one policy over the population; one row per invoice: recovered, retries, hours to recovery."""
    rows = []
    for i, case in population.cases.iterrows():
        row = int(str(i))
        first = case["occurred_at"].to_pydatetime()
        track = Track(DeclineCode(case["decline_code"]), first, [])
        while len(track.retries) < max_attempts and block_for(track.code, fraud_blocked=False) is None:
            at = policy(case, track)
            if at is None or _attempt(population, row, track, at, draws[row, len(track.retries)]):
                break
        recovered = track.recovered_at is not None
        hours = (track.recovered_at - first).total_seconds() / 3600.0 if track.recovered_at else np.nan
        rows.append({"recovered": recovered, "retries": len(track.retries), "hours_to_recovery": hours})
    result = pd.DataFrame(rows)
    result["amount_eur"] = population.states.state.amount_eur
    return result


class PolicyResult(BaseModel):
    """One policy's figures on the population."""

    recovered: int
    recovery_rate: float
    recovered_revenue_eur: float
    retries: int
    retries_per_recovered: float
    median_hours_to_recovery: float | None


class Evaluation(BaseModel):
    """Fixed schedule vs planner on the same declined renewals, with the same draws."""

    data_dir: str
    model: str
    test_start: str
    model_trained_until: str | None = None
    invoices: int
    max_attempts: int
    window_days: float
    fixed_days: list[float]
    fixed: PolicyResult
    planner: PolicyResult
    revenue_uplift: float
    revenue_uplift_ci95: tuple[float, float]
    retries_ratio: float
    seconds: float

    def headline(self) -> str:
        low, high = self.revenue_uplift_ci95
        return (
            f"planner vs fixed {self.fixed_days} on {self.invoices} declined renewals from {self.test_start} "
            f"(max {self.max_attempts} retries, {self.model} model): recovered revenue "
            f"{self.planner.recovered_revenue_eur:,.2f} vs {self.fixed.recovered_revenue_eur:,.2f} EUR "
            f"({self.revenue_uplift:+.1%}, 95% CI {low:+.1%} to {high:+.1%}), retries "
            f"{self.planner.retries} vs {self.fixed.retries}, retries per recovered payment "
            f"{self.planner.retries_per_recovered:.2f} vs {self.fixed.retries_per_recovered:.2f}, "
            f"median hours to recovery {self.planner.median_hours_to_recovery} "
            f"vs {self.fixed.median_hours_to_recovery}"
        )


def summarise(outcome: pd.DataFrame) -> PolicyResult:
    recovered = outcome[outcome["recovered"]]
    median = float(recovered["hours_to_recovery"].median()) if len(recovered) else None
    return PolicyResult(
        recovered=len(recovered),
        recovery_rate=round(len(recovered) / len(outcome), 4),
        recovered_revenue_eur=round(float(recovered["amount_eur"].sum()), 2),
        retries=int(outcome["retries"].sum()),
        retries_per_recovered=round(float(outcome["retries"].sum()) / max(len(recovered), 1), 3),
        median_hours_to_recovery=None if median is None else round(median, 1),
    )


def bootstrap_uplift(
    fixed: pd.DataFrame, planned: pd.DataFrame, seed: int, rounds: int = 2000
) -> tuple[float, float]:
    """95% interval of the revenue uplift, resampling invoices (paired: both policies share each draw)."""
    rng = np.random.default_rng(seed)
    a = (fixed["recovered"] * fixed["amount_eur"]).to_numpy(np.float64)
    b = (planned["recovered"] * planned["amount_eur"]).to_numpy(np.float64)
    index = rng.integers(0, len(a), size=(rounds, len(a)))
    uplift = b[index].sum(axis=1) / np.maximum(a[index].sum(axis=1), 1e-9) - 1.0
    low, high = np.quantile(uplift, [0.025, 0.975])
    return round(float(low), 4), round(float(high), 4)


class ModelChoice(StrEnum):
    """The failure model the planner uses in the evaluation."""

    RETRY = "retry"  # learned from the retries observed before the test period
    REGISTERED_RETRY = "registered-retry"  # a registered riskgate-retry version (what the service serves)
    RISKGATE = (
        "riskgate"  # riskgate's trained failure model (a registered bundle) over replayed online features
    )
    ORACLE = "oracle"  # the simulator's truth: the ceiling, not a result


def _model(
    choice: ModelChoice,
    *,
    frame: pd.DataFrame,
    population: Population,
    test_start: datetime,
    data_dir: Path,
    scorer: ProbabilityScorer | None,
    retry_model: RetryModel | None,
    feature_set: FeatureSet | None,
) -> FailureModel:
    if choice is ModelChoice.ORACLE:
        return OracleModel(population)
    if choice is ModelChoice.REGISTERED_RETRY and retry_model is not None:  # evaluate() checked it is given
        return retry_model
    if choice is ModelChoice.RISKGATE:
        if scorer is None:
            raise EvaluationError("model 'riskgate' needs the failure bundle to score with (scorer=...)")
        from features.registry import load_feature_set  # noqa: PLC0415 - only this choice needs the engine
        from recovery.replay import ReplayedFailureModel  # noqa: PLC0415

        return ReplayedFailureModel(data_dir, feature_set or load_feature_set(None), scorer)
    retries, failed = retry_history(frame, test_start)
    logger.info(
        "retry model: learning from %d attempts that follow a decline, before %s", len(retries), test_start
    )
    return RetryModel().fit(retries, failed)


def evaluate(
    data_dir: Path,
    config: RecoveryConfig,
    *,
    model: ModelChoice = ModelChoice.RETRY,
    fixed_days: tuple[float, ...] = DEFAULT_FIXED_DAYS,
    test_months: int = 3,
    limit: int | None = None,
    seed: int = 7,
    scorer: ProbabilityScorer | None = None,
    retry_model: RetryModel | None = None,
    test_start: datetime | None = None,
    feature_set: FeatureSet | None = None,
    progress: Progress = NO_PROGRESS,
) -> Evaluation:
    """Fixed schedule vs planner (same maximum number of retries, same draws) on a world's test period.

    The test period starts at ``test_start``, else where a registered retry model's training data ends, else
    ``test_months`` before the world's end.

    ``scorer``: the failure bundle of ``model='riskgate'`` (e.g. ``models:/riskgate-failure@champion``), whose
    online features are replayed from the world in time order (:mod:`recovery.replay`); the cases are then
    taken in time order too. ``retry_model``: the registered retry model of ``model='registered-retry'``
    (e.g. ``models:/riskgate-retry@champion``); one fitted on data from the test period is refused.
    ``feature_set``: the features ``scorer`` reads (None: the default IPTV set). ``progress`` hears each step.
    """
    started = time.perf_counter()
    if len(fixed_days) != config.max_attempts:
        raise EvaluationError(
            f"the fixed schedule has {len(fixed_days)} retries but the planner may make "
            f"{config.max_attempts}: compare them with the same maximum (set max_attempts or the schedule)"
        )
    progress.stage("load the world")
    world = load_world(data_dir)
    trained_until = _trained_until(retry_model) if model is ModelChoice.REGISTERED_RETRY else None
    if test_start is None:
        test_start = trained_until or default_test_start(data_dir, world, test_months)
    if trained_until is not None and test_start < trained_until:
        raise EvaluationError(
            f"the retry model was fitted on data up to {trained_until:%Y-%m-%d %H:%M} UTC, which overlaps "
            f"the evaluation period starting {test_start:%Y-%m-%d %H:%M}: evaluate from "
            f"{trained_until:%Y-%m-%d %H:%M} on (the default for a registered model), or retrain it on data "
            "before the period"
        )
    progress.stage("find the declined renewals")
    frame = observed_attempts(data_dir)
    population = load_population(data_dir, frame, world, test_start, config)
    if model is ModelChoice.RISKGATE:
        population = _take(population, np.argsort(population.cases["occurred_at"].to_numpy(), kind="stable"))
    if limit is not None:
        population = _head(population, limit)
    draws = np.random.default_rng(seed).random((len(population.cases), config.max_attempts, 3))
    progress.stage(f"prepare the {model.value} model")
    failure_model = _model(
        model,
        frame=frame,
        population=population,
        test_start=test_start,
        data_dir=data_dir,
        scorer=scorer,
        retry_model=retry_model,
        feature_set=feature_set,
    )
    planner = Planner(failure_model, config)
    progress.stage(f"simulate the fixed schedule on {len(population.cases)} invoices")
    fixed = simulate_policy(population, fixed_schedule(fixed_days), config.max_attempts, draws)
    progress.stage(f"simulate the planner on {len(population.cases)} invoices")
    planned = simulate_policy(population, planner_policy(planner), config.max_attempts, draws)
    progress.stage("summarise and bootstrap")
    fixed_result, planned_result = summarise(fixed), summarise(planned)
    return Evaluation(
        data_dir=str(data_dir),
        model=model.value,
        test_start=f"{test_start:%Y-%m-%d %H:%M}",
        model_trained_until=None if trained_until is None else trained_until.isoformat(),
        invoices=len(population.cases),
        max_attempts=config.max_attempts,
        window_days=config.window_days,
        fixed_days=list(fixed_days),
        fixed=fixed_result,
        planner=planned_result,
        revenue_uplift=round(
            planned_result.recovered_revenue_eur / max(fixed_result.recovered_revenue_eur, 1e-9) - 1.0, 4
        ),
        revenue_uplift_ci95=bootstrap_uplift(fixed, planned, seed),
        retries_ratio=round(planned_result.retries / max(fixed_result.retries, 1), 4),
        seconds=round(time.perf_counter() - started, 1),
    )


def _trained_until(model: RetryModel | None) -> datetime:
    """Where a registered retry model's training data ends (recorded by ``riskgate train``)."""
    if model is None:
        raise EvaluationError("model 'registered-retry' needs the retry model to plan with (retry_model=...)")
    recorded = model.info_.get("trained_until")
    if recorded is None:
        raise EvaluationError(
            "the retry model does not record where its training data ends, so it cannot be checked against "
            "the evaluation period: retrain it with `riskgate train --task retry`"
        )
    return pd.Timestamp(recorded).to_pydatetime()


def _head(population: Population, limit: int) -> Population:
    """The first ``limit`` invoices in table order (roughly by time): for quick runs."""
    return _take(population, np.arange(min(limit, len(population.cases))))


def _take(population: Population, index: npt.NDArray[np.int64]) -> Population:
    return Population(
        population.cases.iloc[index].reset_index(drop=True), population.states.take(index), population.world
    )
