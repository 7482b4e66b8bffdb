"""Every parameter of the synthetic IPTV billing world, with its default and what it does.

This module is the one place a data scientist reads to know how the simulated data came about. Each
parameter below has a ``description``; ``WorldConfig.from_yaml(path)`` loads a YAML file with any subset of
them (unknown keys are an error). ``riskgate simulate --config world.yaml`` uses it.

How the world works
===================

**Time.** The world runs from ``start`` for ``months`` months, stepping day by day over arrays of accounts.
Accounts are simulated in independent blocks of ``chunk_accounts`` subscribers (each block has its own random
stream derived from ``(seed, block)``), so memory is bounded and results do not depend on scheduling.

**Subscribers and plans** (:class:`PopulationConfig`, :class:`PlanConfig`). A share of the subscribers
already exists at ``start`` (their first renewal falls within one billing period); the others sign up
uniformly over the period. Each has a country (billing country), a signup channel, a device (type and id),
a home IP in their country (mobile users sit behind carrier-NAT pools shared by many accounts; some users
stream through a VPN whose exit is another country; travellers occasionally attempt from abroad), a plan
tier and period, auto-renewal on or off, and a latent *funds fragility* (how often their balance runs
short). Every day, active subscribers may upgrade (a prorated ``upgrade`` charge), downgrade (from the next
renewal), cancel (service ends at the next renewal date), buy pay-per-view events (``one_off``), change
device or IP. Renewals are charged by the billing run (early morning UTC) every 30/91/365 days; subscribers
without auto-renewal renew by hand (in the evening) or leave.

**Payment methods** (:class:`PaymentConfig`). Cards (credit/debit/prepaid; BIN from a per-world issuer table
with per-issuer decline propensity; issuing country mostly the subscriber's; expiry 1–5 years out), PayPal,
wallets, carrier billing, SEPA debit (euro countries). When a card has expired at renewal time, the customer
(or the account updater) replaced it beforehand with some probability; otherwise the renewal is declined
``expired_card``. During dunning the customer may replace a failing method (more likely after a decline that
needs customer action).

**Why payments fail** (:class:`FailureConfig`, :mod:`simulator.truth`). Independent causes, each a
probability from a logistic model, combined as ``p_fail = 1 - Π(1 - p_cause)``: *funds* (funding type, day of
the month relative to payday, the customer's fragility, the amount, a recent funds decline on the same method
that fades with time), *issuer* (per-BIN issuer quality, cross-border use, a recent issuer decline fading with
time), *technical* (gateway incidents: windows when processing errors spike for everyone), *fraud* (issuers
catching stolen cards; a blocked card always fails), *invalid* (dead card numbers, mostly in card testing) and
*expired* (a card past its expiry month always fails). The failing cause decides the decline-code family and
then the code. Technical failures are outcomes with status ``error``; the others ``declined``.

**Renewals and dunning** (:class:`DunningConfig`). After a declined renewal the billing system retries on
the schedule ``retry_days`` (days after the first decline). It never retries a method after a hard decline
(expired, stolen, invalid...) unless the customer has replaced the method. When the schedule is exhausted
the subscriber churns involuntarily. A declined signup may be retried by the customer within minutes, often
with another card. A retry carries the invoice of its first try and ``retry_number`` 1, 2, ...

**Fraud** (:class:`FraudConfig`). Each fraud mechanism generates a *scenario* with observable traits first,
then computes from those traits the probability that the scenario is fraud (``p_fraud``, logistic), then draws
the label. Legitimate and fraudulent behaviour therefore overlap by construction, and ``p_fraud`` is the exact
generative probability given the scenario's traits:

* *card testing*: a device/IP creates a few accounts within minutes and tries many cards (mostly prepaid,
  foreign, often dead) on the cheapest plan;
* *stolen cards*: fresh accounts whose device holds several accounts/cards, card country ≠ IP country,
  premium plans, prepaid cards raise ``p_fraud``; legitimate expats and travellers share those traits;
* *account takeover*: an active account appears on a new device with a new card and upgrades (or buys
  pay-per-view); a foreign IP or foreign card raises ``p_fraud``, but subscribers do the same legitimately;
* *reseller abuse*: clusters of accounts behind one device, IP and often one card; ``p_fraud`` grows with the
  cluster size (households of 2–3 are the legitimate overlap);
* *friendly fraud*: any approved charge may be disputed, at a constant rate nothing predicts.

Fraud reports (:class:`ReportConfig`) follow each fraud attempt with a per-scheme probability and a log-normal
delay (chargebacks for approved charges, confirmed-fraud reports otherwise); reports that would arrive after
the end of the world are not written (they have not arrived yet). A stolen card is blocked by its issuer when
the first report arrives.

**Billing errors** (:class:`BillingErrorConfig`). The provider's billing system errs at small documented rates
(defaults: 0.3% of approved renewals submitted twice, 0.2% of signup and renewal invoices at a wrong amount,
0.1% of approved renewals followed by a renewal charged too early); the world's price list is written beside
the data as ``catalogue.csv`` (:mod:`billing.catalogue`) and every such attempt is marked in the truth table,
so ``riskgate billing check --data DIR`` measures the billing checks (caught, missed, false alarms). They are
added from their own random stream after a block is simulated: the rest of the world is unchanged by them.

What the default world produces
===============================

Seed 20260101, 50,000 subscribers, 12 months from 2025-01-01. Reproduce with ``make data`` (or
``riskgate simulate --out /tmp/world``) and read ``data/summary.json``; the ceiling, mixes, report delays
and overlap with ``python -m simulator.describe data``; timings with ``python -m bench simulate``
(``bench/results/simulate.json``) on the shared 2-core machine. The ranges the tests enforce on a
small world (4,000 subscribers, 6 months) are in ``tests/simulator/test_rates.py``.

=====================================  =============================================================
accounts                               51,651 (50,000 subscribers; 580 risky signups, 935 in shared
                                       clusters, 136 created by card-testing rings)
attempts / outcomes                    331,530 / 331,530 (renewal 70.8%, retry 16.8%, signup 7.3%,
                                       one_off 3.6%, upgrade 1.5%); 330,645 without the billing errors
fraud reports written                  2,339 (chargeback 1,242, confirmed_fraud 1,097); delay median
                                       21 days, 90% within 60 days, at most 130 days
fraud rate                             1.09% of attempts (3,598: card testing 1,096, stolen card 1,062,
                                       takeover 624, reseller 499, friendly 317); mean p_fraud 1.14%
fraud reported                         65% by the end of the world, 72% eventually
first-try renewal decline rate         6.94% (test range 4–15%)
retry recovery rate                    62.5% of renewals declined at the first try
failure rate (all attempts)            19.5% (declined 19.0%, error 0.55%); mean p_fail 19.5%
billing errors                         668 double charges (0.31% of approved first-try renewals), 563
                                       attempts at a wrong amount, 217 early renewals (0.10%); all caught
                                       by ``riskgate billing check`` with no false alarm
churn                                  5,644 involuntary (dunning exhausted), 14,538 voluntary
ground-truth ceiling                   fraud: ROC AUC 0.962, average precision 0.72 (p_fraud vs
                                       is_fraud); failure: ROC AUC 0.916 (all attempts), 0.749 on
                                       first-try renewals
overlap                                card country ≠ IP country on 9.8% of attempts; fraud rate 6.6%
                                       there vs 0.49% elsewhere
generation                             11.0 s wall (median of 3 runs: 9.5, 11.0, 21.6 s on the shared
                                       machine), peak RSS 354 MB (126 MB of it is importing
                                       pandas/pyarrow); ~30,000 attempts/s
10× world (500,000 subscribers)        3.30 M attempts in 105 s (9.6× the default: linear), peak RSS
                                       365 MB (1.03× the default: memory is bounded by
                                       ``chunk_accounts``, not by the world's size)
=====================================  =============================================================
"""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import EXIT_FAILURE, RiskgateError
from events import yamlfile
from events.schema import CardFunding, MethodType, PlanPeriod, PlanTier
from simulator.catalog import COUNTRY_CODES, FRAUD_SCHEMES

_TIERS = {tier.value for tier in PlanTier}
_PERIODS = {period.value for period in PlanPeriod}
_METHODS = {method.value for method in MethodType}
_FUNDINGS = {funding.value for funding in CardFunding}
_SCHEMES = set(FRAUD_SCHEMES)


def _check_keys(where: str, keys: set[str], allowed: set[str], *, complete: bool = False) -> None:
    """Raise when a mapping names something the world does not know (or, if ``complete``, misses one)."""
    unknown = sorted(keys - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(allowed - keys)
    if complete and missing:
        raise ValueError(f"{where}: every one of {sorted(allowed)} needs a value; missing {missing}")


class ConfigFileError(RiskgateError, ValueError):
    """A world configuration file could not be read or is not valid."""

    exit_code = EXIT_FAILURE  # riskgate simulate exits 1 on it, as on an invalid option value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PopulationConfig(_Section):
    """Who the subscribers are and how they behave outside payments."""

    existing_share: float = Field(
        0.55, ge=0, le=1, description="Share of subscribers already active at `start` (no signup attempt)."
    )
    country_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "GB": 0.15,
            "DE": 0.12,
            "FR": 0.10,
            "ES": 0.08,
            "IT": 0.08,
            "NL": 0.05,
            "PL": 0.05,
            "US": 0.12,
            "CA": 0.06,
            "SE": 0.04,
            "PT": 0.03,
            "IE": 0.03,
            "AE": 0.04,
            "TR": 0.05,
        },
        description="Billing-country mix (ISO alpha-2 → weight). Countries must be in simulator.catalog.",
    )
    channel_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "web": 0.40,
            "mobile_app": 0.25,
            "smart_tv_app": 0.20,
            "reseller_code": 0.08,
            "affiliate": 0.07,
        },
        description="Signup channel mix. Channels shift fragility and cancellation (see channel_* fields).",
    )
    channel_cancel_multiplier: dict[str, float] = Field(
        default_factory=lambda: {
            "web": 1.0,
            "mobile_app": 1.2,
            "smart_tv_app": 0.8,
            "reseller_code": 1.5,
            "affiliate": 1.6,
        },
        description="Multiplier of the voluntary cancellation hazard by signup channel.",
    )
    channel_fragility_shift: dict[str, float] = Field(
        default_factory=lambda: {
            "web": 0.0,
            "mobile_app": 0.15,
            "smart_tv_app": -0.1,
            "reseller_code": 0.3,
            "affiliate": 0.25,
        },
        description="Added to the latent funds fragility (log-odds) by signup channel.",
    )
    device_type_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "smart_tv": 0.30,
            "set_top_box": 0.20,
            "mobile": 0.25,
            "web": 0.15,
            "streaming_stick": 0.10,
        },
        description="Device type mix; 'mobile' devices get carrier-NAT IPs shared by many accounts.",
    )
    fragility_sd: float = Field(
        0.9, gt=0, description="Std-dev of the latent funds fragility (log-odds added to the funds cause)."
    )
    vpn_share: float = Field(
        0.08, ge=0, le=1, description="Share of subscribers streaming through a VPN abroad."
    )
    travel_prob: float = Field(
        0.03, ge=0, le=1, description="Probability that a customer-initiated attempt comes from abroad."
    )
    nat_pool_size: int = Field(
        40, ge=1, description="Carrier-NAT IPs per country and block shared by all mobile subscribers."
    )
    device_change_per_month: float = Field(0.03, ge=0, le=1, description="Monthly hazard of a new device.")
    ip_change_per_month: float = Field(0.10, ge=0, le=1, description="Monthly hazard of a new home IP.")


class PlanConfig(_Section):
    """Plans, prices and plan changes."""

    monthly_price_eur: dict[str, float] = Field(
        default_factory=lambda: {"basic": 7.99, "standard": 11.99, "premium": 17.99},
        description="Monthly price of each tier in EUR (local prices: simulator.catalog FX, ending .99).",
    )
    period_price_factor: dict[str, float] = Field(
        default_factory=lambda: {"monthly": 1.0, "quarterly": 2.8, "annual": 10.0},
        description="Price of a period as a multiple of the monthly price.",
    )
    period_days: dict[str, int] = Field(
        default_factory=lambda: {"monthly": 30, "quarterly": 91, "annual": 365},
        description="Days between renewals of each period.",
    )
    tier_weights: dict[str, float] = Field(
        default_factory=lambda: {"basic": 0.35, "standard": 0.45, "premium": 0.20},
        description="Tier mix at signup.",
    )
    period_weights: dict[str, float] = Field(
        default_factory=lambda: {"monthly": 0.70, "quarterly": 0.18, "annual": 0.12},
        description="Period mix at signup.",
    )
    auto_renew_share: float = Field(
        0.85, ge=0, le=1, description="Share of subscribers with auto-renewal on."
    )
    manual_renew_prob: float = Field(
        0.55, ge=0, le=1, description="Probability that a subscriber without auto-renewal renews by hand."
    )
    upgrade_per_month: float = Field(0.015, ge=0, le=1, description="Monthly hazard of upgrading one tier.")
    downgrade_per_month: float = Field(0.010, ge=0, le=1, description="Monthly hazard of downgrading a tier.")
    cancel_per_month: float = Field(
        0.030, ge=0, le=1, description="Monthly hazard of deciding to cancel (service ends at next renewal)."
    )
    one_off_per_month: float = Field(
        0.03, ge=0, le=1, description="Monthly hazard of a pay-per-view purchase (a one_off attempt)."
    )
    one_off_prices_eur: list[float] = Field(
        default_factory=lambda: [4.99, 9.99, 19.99], description="Pay-per-view prices in EUR."
    )


class PaymentConfig(_Section):
    """Payment methods and their replacement."""

    method_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "card": 0.72,
            "paypal": 0.09,
            "wallet": 0.09,
            "carrier_billing": 0.04,
            "sepa_debit": 0.06,
        },
        description="Payment method mix; sepa_debit only in euro countries (elsewhere it becomes card).",
    )
    funding_weights: dict[str, float] = Field(
        default_factory=lambda: {"credit": 0.35, "debit": 0.50, "prepaid": 0.15},
        description="Card funding mix of legitimate subscribers.",
    )
    foreign_card_share: float = Field(
        0.04, ge=0, le=1, description="Share of legitimate cards issued abroad (expats, cross-border banks)."
    )
    card_years_valid: tuple[int, int] = Field(
        (1, 5), description="A new card expires uniformly between these many years out (inclusive)."
    )
    expired_updated_before_renewal: float = Field(
        0.55,
        ge=0,
        le=1,
        description="Probability an expired card was replaced (customer or account updater) before renewal.",
    )
    replace_after_action_decline: float = Field(
        0.12,
        ge=0,
        le=1,
        description="Per dunning slot: P(customer replaces the method) after a decline needing action.",
    )
    replace_after_other_decline: float = Field(
        0.03, ge=0, le=1, description="Per dunning slot: the same after any other decline."
    )
    bins_per_country_funding: int = Field(
        4, ge=1, le=20, description="Issuer BINs per (country, funding type) in the world's BIN table."
    )
    issuer_logit_sd: float = Field(0.45, ge=0, description="Spread of issuer quality (log-odds) across BINs.")


class FailureConfig(_Section):
    """Log-odds of each cause of failure (see simulator.truth.failure_probability)."""

    funds_base: float = Field(-3.5, description="Funds cause: intercept.")
    funds_method: dict[str, float] = Field(
        default_factory=lambda: {
            "credit": -0.6,
            "debit": 0.3,
            "prepaid": 1.3,
            "paypal": -0.9,
            "wallet": -0.5,
            "carrier_billing": 0.6,
            "sepa_debit": 0.1,
        },
        description="Funds cause: added by card funding type (cards) or method type (others).",
    )
    payday_amplitude: dict[str, float] = Field(
        default_factory=lambda: {
            "credit": 0.3,
            "debit": 1.4,
            "prepaid": 2.2,
            "paypal": 0.3,
            "wallet": 0.6,
            "carrier_billing": 1.0,
            "sepa_debit": 1.2,
        },
        description=(
            "Funds cause: log-odds swing over the month, times (day_of_month - 1)/30 - 0.5: balances are "
            "lowest just before payday (the 1st)."
        ),
    )
    amount_coef: float = Field(0.35, description="Funds cause: times log(amount in EUR / 10).")
    prior_funds_coef: float = Field(
        5.5,
        description="Funds cause: after a funds decline on the same method, times exp(-days since / tau).",
    )
    prior_funds_tau_days: float = Field(30.0, gt=0, description="Fading time of a funds decline (days).")
    issuer_base: float = Field(-4.6, description="Issuer cause (do-not-honor, generic): intercept.")
    issuer_non_card: float = Field(-0.8, description="Issuer cause: added for non-card methods.")
    cross_border_coef: float = Field(0.8, description="Issuer cause: card country differs from IP country.")
    prior_issuer_coef: float = Field(
        3.0, description="Issuer cause: after an issuer decline on the same method, times exp(-days / tau)."
    )
    prior_issuer_tau_days: float = Field(5.0, gt=0, description="Fading time of an issuer decline (days).")
    stolen_issuer_coef: float = Field(1.0, description="Issuer cause: added for stolen cards.")
    technical_base: float = Field(-5.5, description="Technical cause (processing errors): intercept.")
    fraud_base: float = Field(-7.0, description="Fraud cause (issuer flags the card): intercept.")
    fraud_stolen_coef: float = Field(4.8, description="Fraud cause: added for stolen cards.")
    fraud_tested_coef: float = Field(3.5, description="Fraud cause: added for card-testing cards.")
    invalid_base: float = Field(-7.5, description="Invalid cause (wrong number, not allowed): intercept.")
    invalid_tested_coef: float = Field(7.5, description="Invalid cause: added for card-testing cards.")
    tested_funds_coef: float = Field(2.5, description="Funds cause: added for card-testing cards.")


class IncidentConfig(_Section):
    """Gateway incidents: windows when processing errors spike for everyone."""

    per_month: float = Field(1.5, ge=0, description="Mean number of incidents per month.")
    median_hours: float = Field(3.0, gt=0, description="Median incident duration (log-normal, sd 0.8).")
    severity: tuple[float, float] = Field(
        (3.0, 5.5), description="Log-odds added to the technical cause during an incident (uniform range)."
    )


class DunningConfig(_Section):
    """Retries of declined renewals and of declined signups."""

    retry_days: list[float] = Field(
        default_factory=lambda: [1.0, 3.0, 5.0, 7.0, 10.0, 14.0],
        description="Days after the first decline at which the billing system retries a renewal.",
    )
    signup_retry_prob: float = Field(
        0.6, ge=0, le=1, description="Probability a customer retries a declined signup (within minutes)."
    )
    signup_new_card_prob: float = Field(
        0.6, ge=0, le=1, description="Probability a customer's signup retry uses another payment method."
    )
    max_signup_tries: int = Field(3, ge=1, description="Most tries a customer makes at signup.")

    @model_validator(mode="after")
    def _increasing(self) -> DunningConfig:
        days = self.retry_days
        if any(b <= a for a, b in pairwise(days)) or (days and days[0] <= 0):
            raise ValueError(f"dunning.retry_days must be positive and strictly increasing, got {days}")
        return self


class FraudConfig(_Section):
    """Fraud scenarios: how often they occur and how their traits set p_fraud (log-odds)."""

    card_testing_rings_per_10k_month: float = Field(
        0.7, ge=0, description="Card-testing rings per 10,000 subscribers per month."
    )
    card_testing_cards: tuple[int, int] = Field((6, 40), description="Cards tried by a ring (uniform range).")
    card_testing_accounts: tuple[int, int] = Field(
        (1, 4), description="Accounts a ring creates (uniform range)."
    )
    card_testing_logit: float = Field(3.5, description="p_fraud log-odds of a card-testing scenario.")
    card_testing_logit_sd: float = Field(0.8, ge=0, description="Per-ring noise on that log-odds.")
    risky_signups_per_10k_month: float = Field(
        4.0, ge=0, description="Signup scenarios with stolen-card traits per 10,000 subscribers per month."
    )
    stolen_logit: float = Field(-2.6, description="Stolen-card scenario: intercept.")
    stolen_mismatch_coef: float = Field(1.6, description="Stolen-card: card country ≠ IP country.")
    stolen_premium_coef: float = Field(0.8, description="Stolen-card: premium plan.")
    stolen_prepaid_coef: float = Field(0.6, description="Stolen-card: prepaid card.")
    stolen_cards_coef: float = Field(0.9, description="Stolen-card: times log(cards on the device).")
    stolen_mismatch_prob: float = Field(0.5, ge=0, le=1, description="Stolen-card: P(card ≠ IP country).")
    stolen_premium_prob: float = Field(0.45, ge=0, le=1, description="Stolen-card: P(premium plan).")
    stolen_prepaid_prob: float = Field(0.3, ge=0, le=1, description="Stolen-card: P(prepaid card).")
    stolen_accounts_per_device: tuple[int, int] = Field(
        (1, 4), description="Stolen-card: accounts on the scenario's device (uniform range)."
    )
    ato_per_month: float = Field(
        0.004,
        ge=0,
        le=1,
        description="Monthly hazard of the takeover pattern (new device + new card + upgrade).",
    )
    ato_logit: float = Field(-1.6, description="Takeover pattern: intercept.")
    ato_foreign_ip_coef: float = Field(1.5, description="Takeover pattern: IP abroad.")
    ato_foreign_card_coef: float = Field(1.0, description="Takeover pattern: card issued abroad.")
    ato_foreign_ip_prob: float = Field(0.35, ge=0, le=1, description="Takeover pattern: P(IP abroad).")
    ato_foreign_card_prob: float = Field(0.3, ge=0, le=1, description="Takeover pattern: P(card abroad).")
    clusters_per_10k_year: float = Field(
        60.0,
        ge=0,
        description="Shared-device clusters (households or resellers) per 10,000 subscribers a year.",
    )
    cluster_size_lognormal: tuple[float, float] = Field(
        (0.0, 1.1), description="Cluster size is 2 + floor(lognormal(mu, sigma)), at most 40."
    )
    reseller_logit: float = Field(-6.4, description="Shared cluster: intercept.")
    reseller_size_coef: float = Field(2.3, description="Shared cluster: times log(accounts in cluster).")
    reseller_shared_card_coef: float = Field(
        1.2, description="Shared cluster: all accounts pay with one card."
    )
    friendly_rate: float = Field(
        0.0012, ge=0, le=1, description="Probability an approved charge is disputed as friendly fraud."
    )


class ReportConfig(_Section):
    """Fraud reports: which fraud is reported, and when."""

    report_prob: dict[str, float] = Field(
        default_factory=lambda: {
            "card_testing": 0.55,
            "stolen_card": 0.85,
            "account_takeover": 0.8,
            "reseller": 0.6,
            "friendly": 1.0,
        },
        description="Probability a fraud attempt of each scheme is ever reported.",
    )
    chargeback_median_days: float = Field(
        35.0, gt=0, description="Median delay of a chargeback (log-normal)."
    )
    confirmed_median_days: float = Field(
        12.0, gt=0, description="Median delay of a confirmed-fraud report (declined or reseller attempts)."
    )
    delay_sigma: float = Field(0.7, gt=0, description="Log-normal sigma of report delays.")
    delay_bounds_days: tuple[float, float] = Field(
        (2.0, 130.0), description="Report delays are clipped to this range (days)."
    )


class BillingErrorConfig(_Section):
    """Billing errors the provider's billing system makes (what riskgate's billing checks must catch).

    They are added after each block is simulated, from a random stream of their own, so the rest of the world
    (every other attempt, outcome and report) is exactly the world without them; each is recorded in the truth
    table (``billing_double_charge``, ``billing_price_mismatch``, ``billing_early_renewal``).
    """

    duplicate_rate: float = Field(
        0.003,
        ge=0,
        le=1,
        description=(
            "Share of approved first-try renewals submitted twice: a copy with the same invoice and retry "
            "number, approved too (a double charge)."
        ),
    )
    duplicate_pending_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "Share of those copies sent before the first one's answer came back (a double submission); the "
            "others come 10 minutes to 2 days later (a billing run executed twice)."
        ),
    )
    wrong_amount_rate: float = Field(
        0.002,
        ge=0,
        le=1,
        description=(
            "Share of signup and renewal invoices charged a wrong amount (every try of the invoice): half "
            "the price of another tier of the same period, half the right price times 0.5-0.95 or 1.05-2."
        ),
    )
    early_renewal_rate: float = Field(
        0.001,
        ge=0,
        le=1,
        description=(
            "Share of approved first-try renewals followed by a renewal of the next period charged too early "
            "(5% to 60% of the period later, a new invoice at the plan's price, approved)."
        ),
    )


class WorldConfig(_Section):
    """The whole world: size, period, seed and every mechanism's parameters."""

    seed: int = Field(20260101, ge=0, description="Seed of every random stream (same seed → same data).")
    accounts: int = Field(50_000, ge=1, description="Legitimate subscribers (fraud scenarios add accounts).")
    start: date = Field(date(2025, 1, 1), description="First day of the world (UTC).")
    months: int = Field(12, ge=1, le=120, description="Length of the world in months.")
    chunk_accounts: int = Field(
        10_000, ge=100, description="Subscribers simulated per block (bounds memory; one Parquet part each)."
    )
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    plans: PlanConfig = Field(default_factory=PlanConfig)
    payment: PaymentConfig = Field(default_factory=PaymentConfig)
    failure: FailureConfig = Field(default_factory=FailureConfig)
    incidents: IncidentConfig = Field(default_factory=IncidentConfig)
    dunning: DunningConfig = Field(default_factory=DunningConfig)
    fraud: FraudConfig = Field(default_factory=FraudConfig)
    reports: ReportConfig = Field(default_factory=ReportConfig)
    billing_errors: BillingErrorConfig = Field(default_factory=BillingErrorConfig)

    @model_validator(mode="after")
    def _known_vocabulary(self) -> WorldConfig:
        population, plans, payment, failure = self.population, self.plans, self.payment, self.failure
        channels = set(population.channel_weights)
        checks: list[tuple[str, set[str], set[str], bool]] = [
            ("population.country_weights", set(population.country_weights), set(COUNTRY_CODES), False),
            (
                "population.channel_cancel_multiplier",
                set(population.channel_cancel_multiplier),
                channels,
                False,
            ),
            ("population.channel_fragility_shift", set(population.channel_fragility_shift), channels, False),
            ("plans.monthly_price_eur", set(plans.monthly_price_eur), _TIERS, True),
            ("plans.period_price_factor", set(plans.period_price_factor), _PERIODS, True),
            ("plans.period_days", set(plans.period_days), _PERIODS, True),
            ("plans.tier_weights", set(plans.tier_weights), _TIERS, False),
            ("plans.period_weights", set(plans.period_weights), _PERIODS, False),
            ("payment.method_weights", set(payment.method_weights), _METHODS, False),
            ("payment.funding_weights", set(payment.funding_weights), _FUNDINGS, False),
            ("failure.funds_method", set(failure.funds_method), _FUNDINGS | _METHODS, False),
            ("failure.payday_amplitude", set(failure.payday_amplitude), _FUNDINGS | _METHODS, False),
            ("reports.report_prob", set(self.reports.report_prob), _SCHEMES, False),
        ]
        for where, keys, allowed, complete in checks:
            _check_keys(where, keys, allowed, complete=complete)
        weights = {
            "population.country_weights": population.country_weights,
            "population.channel_weights": population.channel_weights,
            "population.device_type_weights": population.device_type_weights,
            "plans.tier_weights": plans.tier_weights,
            "plans.period_weights": plans.period_weights,
            "payment.method_weights": payment.method_weights,
            "payment.funding_weights": payment.funding_weights,
        }
        for where, mapping in weights.items():
            if any(value < 0 for value in mapping.values()) or sum(mapping.values()) <= 0:
                raise ValueError(f"{where}: weights must be non-negative with a positive sum, got {mapping}")
        return self

    @classmethod
    def from_yaml(cls, path: Path) -> WorldConfig:
        """Load a configuration file (any subset of the fields); unknown or invalid keys raise."""
        return yamlfile.load(
            cls,
            path,
            what="world configuration",
            error=ConfigFileError,
            reference="the field descriptions in simulator/config.py",
            expected="a mapping of parameter names to values",
        )

    def with_overrides(self, **values: Any) -> WorldConfig:
        """A copy with some top-level fields replaced (None values are ignored), validated again."""
        changed = {key: value for key, value in values.items() if value is not None}
        return WorldConfig.model_validate({**self.model_dump(), **changed})
