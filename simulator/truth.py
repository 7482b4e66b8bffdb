"""The generative truth of payment failure: a pure, vectorised function the simulation itself uses.

:func:`failure_probability` gives, for arrays of payment states and times, the probability that the gateway
declines or errors each attempt, broken down by cause. The simulation draws every outcome from it, and it can
be evaluated for a *hypothetical* attempt, e.g. a retry of a declined invoice at another time::

    state = PaymentState(...)            # the invoice's method, card, customer and last decline
    at = decline_time + np.array([1, 3, 7], dtype="timedelta64[D]")
    risk = failure_probability(state.repeat(3), at, incidents, config.failure)
    risk.p_fail                          # true failure probability of retrying 1, 3 or 7 days later

Causes (log-odds models, parameters in :class:`simulator.config.FailureConfig`), combined as
``p_fail = 1 - Π(1 - p_cause)``:

* ``funds``: funding/method offset + payday swing by day of month (balances lowest before the 1st) + the
  customer's latent fragility + amount + a recent funds decline on the same method, fading as exp(-Δt/τ);
* ``issuer``: issuer quality of the BIN + cross-border use + stolen card + a recent issuer decline fading;
* ``technical``: intercept + gateway incident severity at ``at``;
* ``fraud``: issuer fraud screening, high for stolen and card-testing cards; certain for a blocked card;
* ``invalid``: dead card numbers (card testing);
* ``expired``: certain when ``at`` is after the card's expiry month.

Given a failure, the cause is drawn with probability proportional to ``p_cause`` and the decline code from
:data:`CODE_MIX`; technical failures have outcome status ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from events.schema import DeclineCode, DeclineFamily
from simulator.catalog import CARD, FUNDINGS, METHOD_TYPES
from simulator.config import FailureConfig, IncidentConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
TimeArray = npt.NDArray[np.datetime64]

#: Failure causes, in the column order of :attr:`FailureRisk.by_cause`; each is a decline family.
CAUSES: Final = (
    DeclineFamily.FUNDS,
    DeclineFamily.ISSUER,
    DeclineFamily.TECHNICAL,
    DeclineFamily.FRAUD,
    DeclineFamily.INVALID,
    DeclineFamily.EXPIRED,
)
NO_PRIOR: Final = -1
TECHNICAL: Final = CAUSES.index(DeclineFamily.TECHNICAL)

#: Decline codes of each cause and how often each is the one the gateway returns.
CODE_MIX: Final[dict[DeclineFamily, dict[DeclineCode, float]]] = {
    DeclineFamily.FUNDS: {DeclineCode.INSUFFICIENT_FUNDS: 0.9, DeclineCode.CARD_VELOCITY_EXCEEDED: 0.1},
    DeclineFamily.ISSUER: {
        DeclineCode.DO_NOT_HONOR: 0.5,
        DeclineCode.GENERIC_DECLINE: 0.4,
        DeclineCode.AUTHENTICATION_REQUIRED: 0.1,
    },
    DeclineFamily.TECHNICAL: {
        DeclineCode.PROCESSING_ERROR: 0.6,
        DeclineCode.ISSUER_UNAVAILABLE: 0.25,
        DeclineCode.TRY_AGAIN_LATER: 0.15,
    },
    DeclineFamily.FRAUD: {
        DeclineCode.STOLEN_CARD: 0.35,
        DeclineCode.FRAUDULENT: 0.35,
        DeclineCode.LOST_CARD: 0.2,
        DeclineCode.PICKUP_CARD: 0.1,
    },
    DeclineFamily.INVALID: {
        DeclineCode.INCORRECT_NUMBER: 0.55,
        DeclineCode.TRANSACTION_NOT_ALLOWED: 0.2,
        DeclineCode.INVALID_ACCOUNT: 0.15,
        DeclineCode.DO_NOT_TRY_AGAIN: 0.1,
    },
    DeclineFamily.EXPIRED: {DeclineCode.EXPIRED_CARD: 1.0},
}
#: Every decline code the simulation can emit, in code order (``DECLINE_CODE_NAMES[code]``).
DECLINE_CODE_NAMES: Final = tuple(code.value for cause in CAUSES for code in CODE_MIX[cause])

#: Card status codes of :attr:`PaymentState.card_status`.
CARD_OK: Final = 0
CARD_STOLEN: Final = 1
CARD_TESTED: Final = 2


@dataclass(frozen=True)
class PaymentState:
    """What decides whether one attempt fails, one array element per attempt.

    ``method``: index into :data:`simulator.catalog.METHOD_TYPES`; ``funding``: index into ``FUNDINGS``
    (ignored for non-cards); ``issuer_logit``: the BIN's issuer quality (0 for non-cards);
    ``card_exp_month``: expiry as months since 1970-01 (``datetime64[M]`` as int; huge for non-cards);
    ``card_status``: :data:`CARD_OK` / :data:`CARD_STOLEN` / :data:`CARD_TESTED`; ``blocked_at``: when the
    issuer blocked the card (NaT if never); ``fragility``: the customer's latent funds fragility;
    ``cross_border``: card country ≠ IP country; ``amount_eur``: amount in EUR; ``prior_cause``: cause of the
    last decline *on the same method and invoice* (index into :data:`CAUSES`, or :data:`NO_PRIOR`);
    ``prior_at``: when that decline happened (NaT if none).
    """

    method: IntArray
    funding: IntArray
    issuer_logit: FloatArray
    card_exp_month: IntArray
    card_status: IntArray
    blocked_at: TimeArray
    fragility: FloatArray
    cross_border: BoolArray
    amount_eur: FloatArray
    prior_cause: IntArray
    prior_at: TimeArray

    def __len__(self) -> int:
        return len(self.method)

    def take(self, index: IntArray) -> PaymentState:
        """The states at ``index`` (e.g. ``np.repeat(np.arange(n), k)`` to evaluate k times each)."""
        return PaymentState(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def repeat(self, times: int) -> PaymentState:
        return self.take(np.repeat(np.arange(len(self)), times))


@dataclass(frozen=True)
class GatewayIncidents:
    """Non-overlapping windows ``[starts[i], ends[i])`` when the technical cause gains ``severity[i]``."""

    starts: TimeArray
    ends: TimeArray
    severity: FloatArray

    def boost(self, at: TimeArray) -> FloatArray:
        """Log-odds added to the technical cause at each time."""
        if len(self.starts) == 0:
            return np.zeros(len(at))
        i = np.searchsorted(self.starts, at, side="right") - 1
        inside = (i >= 0) & (at < self.ends[np.maximum(i, 0)])
        return np.where(inside, self.severity[np.maximum(i, 0)], 0.0)


def build_incidents(
    config: IncidentConfig, start: np.datetime64, end: np.datetime64, seed: int
) -> GatewayIncidents:
    """The world's gateway incidents between ``start`` and ``end``: deterministic in the seed."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1_000_002,)))
    span = (end - start) / np.timedelta64(1, "s")
    count = rng.poisson(config.per_month * span / (86400 * 30.44))
    offsets = np.sort(rng.uniform(0, span, size=count))
    hours = config.median_hours * rng.lognormal(0.0, 0.8, size=count)
    starts = start + offsets.astype("int64").astype("timedelta64[s]")
    ends = starts + (hours * 3600).astype("int64").astype("timedelta64[s]")
    ends[:-1] = np.minimum(ends[:-1], starts[1:])  # keep windows disjoint
    low, high = config.severity
    return GatewayIncidents(starts, ends, rng.uniform(low, high, size=count))


@dataclass(frozen=True)
class FailureRisk:
    """``by_cause[:, k]`` is the probability that cause ``CAUSES[k]`` makes the attempt fail."""

    by_cause: FloatArray

    @property
    def p_fail(self) -> FloatArray:
        result: FloatArray = 1.0 - np.prod(1.0 - self.by_cause, axis=1)
        return result


def _sigmoid(x: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return result


def _method_key(state: PaymentState) -> IntArray:
    """Funding type for cards, else method type: the index into ``FUNDINGS + METHOD_TYPES``."""
    return np.where(state.method == CARD, state.funding, len(FUNDINGS) + state.method)


def _per_key(values: dict[str, float]) -> FloatArray:
    return np.array([values.get(name, 0.0) for name in (*FUNDINGS, *METHOD_TYPES)])


def _fading(state: PaymentState, at: TimeArray, cause: DeclineFamily, tau_days: float) -> FloatArray:
    """exp(-days since the last decline / tau) where that decline had ``cause``, else 0."""
    days = (at - state.prior_at) / np.timedelta64(1, "D")
    same = (state.prior_cause == CAUSES.index(cause)) & ~np.isnat(state.prior_at)
    return np.where(same, np.exp(-np.clip(np.nan_to_num(days, nan=0.0), 0, None) / tau_days), 0.0)


def day_of_month(at: TimeArray) -> IntArray:
    days = at.astype("datetime64[D]")
    result: IntArray = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    return result


def failure_probability(
    state: PaymentState, at: TimeArray, incidents: GatewayIncidents, params: FailureConfig
) -> FailureRisk:
    """The true probability that each attempt fails, per cause, if made at ``at`` (``datetime64[s]``)."""
    key = _method_key(state)
    is_card = state.method == CARD
    stolen = (state.card_status == CARD_STOLEN).astype(float)
    tested = (state.card_status == CARD_TESTED).astype(float)
    payday = (day_of_month(at) - 1) / 30.0 - 0.5
    funds = (
        params.funds_base
        + _per_key(params.funds_method)[key]
        + _per_key(params.payday_amplitude)[key] * payday
        + state.fragility
        + params.amount_coef * np.log(np.maximum(state.amount_eur, 0.5) / 10.0)
        + params.prior_funds_coef * _fading(state, at, DeclineFamily.FUNDS, params.prior_funds_tau_days)
        + params.tested_funds_coef * tested
    )
    issuer = (
        params.issuer_base
        + np.where(is_card, state.issuer_logit, params.issuer_non_card)
        + params.cross_border_coef * state.cross_border
        + params.stolen_issuer_coef * stolen
        + params.prior_issuer_coef * _fading(state, at, DeclineFamily.ISSUER, params.prior_issuer_tau_days)
    )
    technical = params.technical_base + incidents.boost(at)
    blocked = ~np.isnat(state.blocked_at) & (at >= state.blocked_at)
    fraud = np.where(
        blocked,
        1.0,
        _sigmoid(params.fraud_base + params.fraud_stolen_coef * stolen + params.fraud_tested_coef * tested),
    )
    invalid = np.where(is_card, _sigmoid(params.invalid_base + params.invalid_tested_coef * tested), 0.0)
    month = at.astype("datetime64[M]").astype(np.int64)
    expired = (is_card & (month > state.card_exp_month)).astype(float)
    by_cause = np.column_stack(
        [_sigmoid(funds), _sigmoid(issuer), _sigmoid(technical), fraud, invalid, expired]
    )
    return FailureRisk(by_cause)


def _code_tables() -> tuple[IntArray, FloatArray]:
    """Per cause: the first code index and the cumulative code mix (padded with 1.0)."""
    width = max(len(mix) for mix in CODE_MIX.values())
    first = np.zeros(len(CAUSES), dtype=np.int64)
    cumulative = np.ones((len(CAUSES), width))
    offset = 0
    for k, cause in enumerate(CAUSES):
        shares = np.array(list(CODE_MIX[cause].values()))
        first[k] = offset
        cumulative[k, : len(shares)] = np.cumsum(shares / shares.sum())
        offset += len(shares)
    return first, cumulative


@dataclass(frozen=True)
class SampledOutcome:
    """Drawn outcomes: ``failed``; for failures the ``cause`` (index into CAUSES) and ``code`` (index into
    :data:`DECLINE_CODE_NAMES`), -1 for approvals."""

    failed: BoolArray
    cause: IntArray
    code: IntArray


def sample_outcomes(rng: np.random.Generator, risk: FailureRisk) -> SampledOutcome:
    """Draw each attempt's outcome from its failure risk."""
    n = len(risk.by_cause)
    failed = rng.random(n) < risk.p_fail
    weights = np.cumsum(risk.by_cause, axis=1)
    total = np.maximum(weights[:, -1:], 1e-300)
    cause = (rng.random((n, 1)) * total > weights).sum(axis=1)
    cause = np.minimum(cause, len(CAUSES) - 1)
    first, cumulative = _code_tables()
    within = (rng.random((n, 1)) > cumulative[cause]).sum(axis=1)
    code = first[cause] + within
    return SampledOutcome(failed, np.where(failed, cause, -1), np.where(failed, code, -1))


def fraud_logit_probability(logit: FloatArray) -> FloatArray:
    """The logistic link every fraud scenario uses to turn its traits' log-odds into ``p_fraud``."""
    return _sigmoid(logit)
