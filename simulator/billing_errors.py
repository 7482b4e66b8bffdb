"""The billing system's errors, added to a simulated block, and the world's price catalogue.

:func:`add_billing_errors` takes a block's attempts (after :meth:`simulator.engine.BlockSimulator.run`) and
adds, at the rates of :class:`simulator.config.BillingErrorConfig`, from a random stream of its own:

* wrong amounts: every try of a few signup and renewal invoices is charged another tier's price (same period
  and currency) or the right price scaled away from it;
* double charges: copies of a few approved first-try renewals, same invoice and retry number, sent before the
  first answer came back or minutes to days later, approved;
* early renewals: a renewal of the next period (new invoice, the plan's price) a fraction of the period
  after a few approved first-try renewals, approved.

Added attempts take the truth of the attempt they copy (never fraud, no report); the outcomes of the block's
own attempts are left as drawn (a wrong amount does not redraw its outcome), so the rest of the world is
exactly the world without billing errors. The failure truth (``p_fail`` and its causes) of every attempt
changed or added is that of its own amount and time, as :mod:`simulator.replay` rebuilds it. Each attempt's
errors are the boolean columns :data:`ERROR_COLUMNS`.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from billing.catalogue import Price
from billing.checks import BillingCheck
from simulator.catalog import COUNTRIES, PLAN_PERIODS, PLAN_TIERS, local_price
from simulator.config import WorldConfig
from simulator.engine import (
    DAY,
    P_RENEWAL,
    P_SIGNUP,
    RENEWAL_KIND,
    SIGNUP_KIND,
    Batch,
    BlockSimulator,
    _seconds,
)
from simulator.state import NO_SCHEME
from simulator.truth import CAUSES, failure_probability

#: The truth table's billing-error columns: named as the checks that should catch them.
ERROR_COLUMNS: Final = tuple(check.value for check in BillingCheck)
_DOUBLE, _PRICE, _EARLY = ERROR_COLUMNS
#: A stream of its own per block, so the billing errors do not change the rest of the world's draws.
_STREAM: Final = 2_000_001


def catalogue_prices(config: WorldConfig) -> list[Price]:
    """The world's price list: every plan (tier, period) in every currency its countries bill in."""
    monthly = config.plans.monthly_price_eur
    factor = config.plans.period_price_factor
    prices: dict[tuple[str, str, str], Price] = {}
    for index, country in enumerate(COUNTRIES):
        for tier in PLAN_TIERS:
            for period in PLAN_PERIODS:
                eur = np.array([monthly[tier] * factor[period]])
                price = float(local_price(eur, np.array([index]))[0])
                entry = Price(tier, period, country.currency, price)
                known = prices.setdefault(entry.key, entry)
                if known.price != price:  # pragma: no cover - the catalog gives a currency one rate
                    raise ValueError(f"countries billing in {country.currency} price {tier}/{period} apart")
    return list(prices.values())


def add_billing_errors(sim: BlockSimulator, batch: Batch) -> Batch:
    """``batch`` with the configured billing errors added (see the module docstring)."""
    rates = sim.config.billing_errors
    rng = np.random.default_rng(np.random.SeedSequence(sim.config.seed, spawn_key=(_STREAM, sim.block)))
    n = len(batch["at"])
    for column in ERROR_COLUMNS:
        batch[column] = np.zeros(n, dtype=bool)
    _wrong_amounts(sim, batch, rng, rates.wrong_amount_rate)
    approved_renewal = np.flatnonzero(
        (batch["kind"] == RENEWAL_KIND) & ~batch["failed"] & ~batch["is_fraud"] & ~batch[_PRICE]
    )
    duplicates = _duplicates(
        batch, rng, _chosen(rng, approved_renewal, rates.duplicate_rate), rates.duplicate_pending_share
    )
    early = _early_renewals(sim, batch, rng, _chosen(rng, approved_renewal, rates.early_renewal_rate))
    every = {key: np.concatenate([batch[key], duplicates[key], early[key]]) for key in batch}
    _failure_truth(sim, every, np.flatnonzero(every[_PRICE] | every[_DOUBLE] | every[_EARLY]))
    return every


def _failure_truth(sim: BlockSimulator, batch: Batch, rows: npt.NDArray[np.int64]) -> None:
    """The failure truth of ``rows`` at their own amount and time (their outcome stays as drawn)."""
    part = {key: value[rows] for key, value in batch.items()}
    risk = failure_probability(sim._payment_state(part), part["at"], sim.world.incidents, sim.config.failure)
    batch["p_fail"][rows] = risk.p_fail
    for k, cause in enumerate(CAUSES):
        batch[f"p_fail_{cause.value}"][rows] = risk.by_cause[:, k]


def _chosen(rng: np.random.Generator, rows: npt.NDArray[np.int64], rate: float) -> npt.NDArray[np.int64]:
    return rows[rng.random(len(rows)) < rate]


def _wrong_amounts(sim: BlockSimulator, batch: Batch, rng: np.random.Generator, rate: float) -> None:
    """Every try of a few signup and renewal invoices at a wrong amount."""
    priced = (batch["purpose"] == P_SIGNUP) | (batch["purpose"] == P_RENEWAL)
    first = np.flatnonzero(priced & ((batch["kind"] == SIGNUP_KIND) | (batch["kind"] == RENEWAL_KIND)))
    wrong = _chosen(rng, first, rate)
    if len(wrong) == 0:
        return
    tier, period = batch["tier"][wrong], batch["period"][wrong]
    country = sim.accounts["country"][batch["account"][wrong]]
    other_tier = (tier + rng.integers(1, len(PLAN_TIERS), size=len(wrong))) % len(PLAN_TIERS)
    other = local_price(sim.price_eur[other_tier, period], country)
    lower, higher = rng.uniform(0.5, 0.95, len(wrong)), rng.uniform(1.05, 2.0, len(wrong))
    scale = np.where(rng.random(len(wrong)) < 0.5, lower, higher)
    amount = np.where(rng.random(len(wrong)) < 0.5, other, np.round(batch["amount"][wrong] * scale, 2))
    rows = np.flatnonzero(np.isin(batch["invoice"], batch["invoice"][wrong]))
    by_invoice = dict(zip(batch["invoice"][wrong].tolist(), amount.tolist(), strict=True))
    batch["amount"][rows] = [by_invoice[invoice] for invoice in batch["invoice"][rows].tolist()]
    batch[_PRICE][rows] = True


def _copies(batch: Batch, rows: npt.NDArray[np.int64], at: npt.NDArray[Any]) -> Batch:
    """Copies of ``rows`` made at ``at``: approved, answered seconds later, never fraud, no report."""
    copy = {key: value[rows].copy() for key, value in batch.items()}
    copy["answered_at"] = at + (batch["answered_at"][rows] - batch["at"][rows])
    copy["at"] = at
    copy["is_fraud"][:] = False
    copy["scheme"][:] = NO_SCHEME
    copy["reported"][:] = False
    copy["reported_at"] = copy["answered_at"]
    return copy


def _duplicates(
    batch: Batch, rng: np.random.Generator, rows: npt.NDArray[np.int64], pending_share: float
) -> Batch:
    """The same renewal submitted again: before the first answer (pending) or 10 minutes to 2 days later."""
    pending = rng.random(len(rows)) < pending_share
    answer_s = (batch["answered_at"][rows] - batch["at"][rows]) / np.timedelta64(1, "s")
    before_answer = 1 + rng.uniform(0, 1, len(rows)) * (answer_s - 1)  # a second later at least
    delay = np.where(pending, before_answer, rng.uniform(600, 2 * 86400, len(rows)))
    copy = _copies(batch, rows, batch["at"][rows] + _seconds(delay))
    copy[_DOUBLE][:] = True
    return copy


def _early_renewals(
    sim: BlockSimulator, batch: Batch, rng: np.random.Generator, rows: npt.NDArray[np.int64]
) -> Batch:
    """A renewal of the next period charged 5% to 60% of the period after an approved renewal."""
    days = sim.period_days[batch["period"][rows]] * rng.uniform(0.05, 0.6, len(rows))
    at = batch["at"][rows] + _seconds(days * 86400)
    keep = at < sim.world.end - DAY
    copy = _copies(batch, rows[keep], at[keep])
    copy["invoice"] = sim._new_invoices(int(keep.sum()))
    copy["invoice_due"] = copy["at"]
    copy[_EARLY][:] = True
    return copy
