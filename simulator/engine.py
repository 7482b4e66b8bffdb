"""Simulation of one block of accounts, day by day, over numpy arrays.

A block owns its accounts, payment methods, devices and invoices, and one random generator derived from
``(seed, block)``. Each day it gathers the day's attempts (signups, renewals, upgrades, pay-per-view,
takeover patterns), draws their outcomes from :func:`simulator.truth.failure_probability`, labels fraud,
draws reports, applies the consequences (activation, dunning, churn, plan changes), then runs the retries due
that day. Card-testing rings are simulated after the daily loop (they touch no other account).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from events.schema import DECLINE_CODES, AttemptKind, DeclineCode
from simulator.catalog import (
    CARD,
    COUNTRIES,
    FUNDINGS,
    METHOD_TYPES,
    PLAN_PERIODS,
    PLAN_TIERS,
    VPN_EXIT_COUNTRIES,
    BinTable,
    country_index,
    local_price,
)
from simulator.config import WorldConfig
from simulator.state import (
    ABANDONED,
    ACTIVE,
    CANCELLED,
    CARD_TESTING,
    CARD_TESTING_SCHEME,
    CHURNED,
    CLUSTER,
    FRIENDLY,
    NAT,
    NO_SCHEME,
    PENDING,
    RESELLER,
    RISKY_SIGNUP,
    SCHEMES,
    STOLEN,
    SUBSCRIBER,
    TAKEOVER,
    Columns,
    add_cards,
    add_methods,
    new_accounts,
    new_methods,
)
from simulator.truth import (
    CARD_OK,
    CARD_STOLEN,
    CARD_TESTED,
    CAUSES,
    DECLINE_CODE_NAMES,
    NO_PRIOR,
    GatewayIncidents,
    PaymentState,
    failure_probability,
    fraud_logit_probability,
    sample_outcomes,
)

Batch = dict[str, npt.NDArray[Any]]
KINDS: Final = tuple(kind.value for kind in AttemptKind)
SIGNUP_KIND, RENEWAL_KIND, RETRY_KIND, UPGRADE_KIND, ONE_OFF_KIND = (
    KINDS.index(k) for k in ("signup", "renewal", "retry", "upgrade", "one_off")
)
#: What the invoice an attempt pays is for (a retry pays the invoice of its first try).
P_SIGNUP, P_RENEWAL, P_UPGRADE, P_ONE_OFF = range(4)
DAY: Final = np.timedelta64(86400, "s")
HOST_SPACE: Final = 254 * 256 * 256
_HARD: Final = np.array([DECLINE_CODES[DeclineCode(code)].hard for code in DECLINE_CODE_NAMES])
_ACTION: Final = np.array([DECLINE_CODES[DeclineCode(code)].customer_action for code in DECLINE_CODE_NAMES])


def _seconds(values: npt.NDArray[np.float64]) -> npt.NDArray[np.timedelta64]:
    return np.round(values).astype(np.int64).astype("timedelta64[s]")


def _weights(mapping: dict[str, float], names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    raw = np.array([mapping.get(name, 0.0) for name in names])
    if raw.sum() <= 0:
        raise ValueError(f"weights {mapping} give no mass to any of {names}")
    shares: npt.NDArray[np.float64] = raw / raw.sum()
    return shares


def _daily(per_month: float) -> float:
    return float(1.0 - (1.0 - per_month) ** (1.0 / 30.44))


@dataclass(frozen=True)
class World:
    """What every block shares: the configuration, the period, the BIN table and the gateway incidents."""

    config: WorldConfig
    start: np.datetime64
    end: np.datetime64
    bins: BinTable
    incidents: GatewayIncidents


class BlockSimulator:
    """Simulates one block of ``subscribers`` accounts plus the fraud scenarios that come with them."""

    def __init__(self, world: World, block: int, subscribers: int) -> None:
        self.world = world
        self.config = world.config
        self.block = block
        self.subscribers = subscribers
        self.rng = np.random.default_rng(np.random.SeedSequence(self.config.seed, spawn_key=(block,)))
        self.accounts: Columns = new_accounts()
        self.methods: Columns = new_methods()
        self.devices = 0
        self.invoices = 0
        self.log: list[Batch] = []
        population, plans = self.config.population, self.config.plans
        self.country_p = _weights(population.country_weights, tuple(c.code for c in COUNTRIES))
        self.channels = tuple(population.channel_weights)
        self.device_types = tuple(population.device_type_weights)
        self.tier_p = _weights(plans.tier_weights, PLAN_TIERS)
        self.period_p = _weights(plans.period_weights, PLAN_PERIODS)
        self.method_p = _weights(self.config.payment.method_weights, METHOD_TYPES)
        self.funding_p = _weights(self.config.payment.funding_weights, FUNDINGS)
        self.period_days = np.array([plans.period_days[p] for p in PLAN_PERIODS], dtype=np.float64)
        monthly = np.array([plans.monthly_price_eur[t] for t in PLAN_TIERS])
        factor = np.array([plans.period_price_factor[p] for p in PLAN_PERIODS])
        self.price_eur = monthly[:, None] * factor[None, :]
        self.eur_rate = np.array([c.eur_rate for c in COUNTRIES])
        self.euro = np.array([c.euro for c in COUNTRIES])
        self.vpn_exits = country_index(list(VPN_EXIT_COUNTRIES))
        self.start_month = int(world.start.astype("datetime64[M]").astype(np.int64))
        self._last_minute = world.end - np.timedelta64(60, "s")

    # ----------------------------------------------------------------------------------------- run
    def run(self) -> Batch:
        """Simulate the block; returns every attempt as one batch of columns (unsorted)."""
        self._create_subscribers()
        self._create_clusters()
        self._create_risky_signups()
        days = int((self.world.end - self.world.start) / DAY)
        for day in range(days):
            self._step(self.world.start + day * DAY, self.world.start + (day + 1) * DAY)
        self._card_testing()
        return {key: np.concatenate([batch[key] for batch in self.log]) for key in self.log[0]}

    def _step(self, d0: np.datetime64, d1: np.datetime64) -> None:
        parts = [self._signups(d0, d1), self._renewals(d0, d1), self._daily_events(d0)]
        batch = _concat([part for part in parts if part is not None])
        if batch is not None:
            self._apply(self._resolve(batch))
        for _ in range(self.config.dunning.max_signup_tries + 2):
            retries = self._retries(d1)
            if retries is None:
                break
            self._apply(self._resolve(retries))

    # ------------------------------------------------------------------------------ populations
    def _new_devices(self, n: int) -> npt.NDArray[np.int64]:
        first = self.devices
        self.devices += n
        return np.arange(first, first + n)

    def _new_invoices(self, n: int) -> npt.NDArray[np.int64]:
        first = self.invoices
        self.invoices += n
        return np.arange(first, first + n)

    def _random_hosts(self, n: int) -> npt.NDArray[np.int64]:
        return self.rng.integers(self.config.population.nat_pool_size, HOST_SPACE, size=n)

    def _other_country(self, country: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        shift = self.rng.integers(1, len(COUNTRIES), size=len(country))
        return (country + shift) % len(COUNTRIES)

    def _uniform_times(self, n: int, low: np.datetime64, high: np.datetime64) -> npt.NDArray[Any]:
        span = (high - low) / np.timedelta64(1, "s")
        return low + _seconds(self.rng.uniform(0, span, size=n))

    def _day_times(self, d0: np.datetime64, n: int) -> npt.NDArray[Any]:
        """Customer-initiated times within a day: mostly evenings."""
        hours = np.mod(self.rng.normal(19.0, 4.0, size=n), 24.0)
        return d0 + _seconds(hours * 3600)

    def _expiry(self, month: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        low, high = self.config.payment.card_years_valid
        return month + self.rng.integers(12 * low, 12 * high + 1, size=len(month))

    def _methods_for(self, country: npt.NDArray[np.int64], month: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
        """A new payment method per customer of ``country`` (cards mostly issued at home)."""
        n = len(country)
        method = self.rng.choice(len(METHOD_TYPES), size=n, p=self.method_p)
        sepa = METHOD_TYPES.index("sepa_debit")
        method = np.where((method == sepa) & ~self.euro[country], CARD, method)
        foreign = self.rng.random(n) < self.config.payment.foreign_card_share
        card_country = np.where(foreign, self._other_country(country), country)
        return add_methods(
            self.methods, self.rng, self.world.bins, method=method, country=card_country,
            funding_weights=self.funding_p, exp_month=self._expiry(month),
        )  # fmt: skip

    def _add_accounts(self, segment: int, **columns: Any) -> npt.NDArray[np.int64]:
        n = len(columns["country"])
        defaults: dict[str, Any] = {
            "segment": segment,
            "next_due": NAT,
            "cancel_pending": False,
            "downgrade_pending": False,
            "dunning": False,
            "invoice": -1,
            "invoice_purpose": -1,
            "invoice_due": NAT,
            "invoice_amount": np.nan,
            "retry_number": 0,
            "slot": 0,
            "next_retry": NAT,
            "first_decline_at": NAT,
            "last_decline_at": NAT,
            "last_cause": NO_PRIOR,
            "last_code": -1,
            "last_pm": -1,
            "replace_before_retry": False,
            "scenario_p": np.nan,
            "scenario_label": False,
            "scenario_scheme": NO_SCHEME,
            "status": PENDING,
            "vpn": False,
            "mobile": False,
            "initial_tier": columns["tier"],
            "initial_period": columns["period"],
        }
        values = {**defaults, **columns}
        values.setdefault("created_at", values["signup_at"])
        values = {
            k: np.broadcast_to(np.asarray(v), (n,)) if np.ndim(v) == 0 else v for k, v in values.items()
        }
        return self.accounts.append(**values)

    def _base_profile(self, n: int, country: npt.NDArray[np.int64]) -> dict[str, Any]:
        population = self.config.population
        channel = self.rng.choice(
            len(self.channels), size=n, p=_weights(population.channel_weights, self.channels)
        )
        device_type = self.rng.choice(
            len(self.device_types), size=n, p=_weights(population.device_type_weights, self.device_types)
        )
        shift = np.array([population.channel_fragility_shift.get(c, 0.0) for c in self.channels])
        return {
            "country": country,
            "channel": channel,
            "device_type": device_type,
            "tier": self.rng.choice(len(PLAN_TIERS), size=n, p=self.tier_p),
            "period": self.rng.choice(len(PLAN_PERIODS), size=n, p=self.period_p),
            "auto_renew": self.rng.random(n) < self.config.plans.auto_renew_share,
            "fragility": self.rng.normal(0.0, population.fragility_sd, size=n) + shift[channel],
        }

    def _create_subscribers(self) -> None:
        n, rng, population = self.subscribers, self.rng, self.config.population
        country = rng.choice(len(COUNTRIES), size=n, p=self.country_p)
        profile = self._base_profile(n, country)
        existing = rng.random(n) < population.existing_share
        signup_at = self._uniform_times(n, self.world.start, self.world.end)
        signup_at[existing] = NAT
        created_at = signup_at.copy()
        created_at[existing] = self._uniform_times(
            int(existing.sum()), self.world.start - 3 * 365 * DAY, self.world.start - DAY
        )
        mobile = np.array(self.device_types)[profile["device_type"]] == "mobile"
        vpn = rng.random(n) < population.vpn_share
        ip_country = np.where(vpn, rng.choice(self.vpn_exits, size=n), country)
        nat_host = rng.integers(0, population.nat_pool_size, size=n)
        month = np.where(existing, self.start_month - 12, signup_at.astype("datetime64[M]").astype(np.int64))
        pm = self._methods_for(country, month)
        due = self.world.start + _seconds(
            rng.uniform(0, 1, size=n) * self.period_days[profile["period"]] * 86400
        )
        self._add_accounts(
            SUBSCRIBER,
            **profile,
            signup_at=signup_at,
            created_at=created_at,
            device=self._new_devices(n),
            ip_country=ip_country,
            ip_host=np.where(mobile & ~vpn, nat_host, self._random_hosts(n)),
            vpn=vpn,
            mobile=mobile,
            pm=pm,
            status=np.where(existing, ACTIVE, PENDING),
            next_due=np.where(existing, due, NAT),
        )

    def _scale(self, per_10k_month: float) -> int:
        months = self.config.months
        return int(self.rng.poisson(per_10k_month * self.subscribers / 10_000 * months))

    def _create_clusters(self) -> None:
        """Shared-device clusters: households (small) and resellers (large); p_fraud grows with size."""
        fraud, rng = self.config.fraud, self.rng
        count = self._scale(fraud.clusters_per_10k_year / 12)
        if count == 0:
            return
        mu, sigma = fraud.cluster_size_lognormal
        size = np.minimum(2 + np.floor(rng.lognormal(mu, sigma, size=count)).astype(np.int64), 40)
        shared_card = rng.random(count) < np.minimum(0.8, 0.06 * size)
        p = fraud_logit_probability(
            fraud.reseller_logit
            + fraud.reseller_size_coef * np.log(size)
            + fraud.reseller_shared_card_coef * shared_card
        )
        label = rng.random(count) < p
        member = np.repeat(np.arange(count), size)
        m = len(member)
        country = rng.choice(len(COUNTRIES), size=count, p=self.country_p)
        first = self._uniform_times(count, self.world.start, self.world.end)
        signup_at = np.minimum(
            first[member] + _seconds(rng.uniform(0, 30 * 86400, size=m)), self._last_minute
        )
        month = signup_at.astype("datetime64[M]").astype(np.int64)
        own = self._methods_for(country[member], month)
        shared = add_cards(
            self.methods,
            rng,
            self.world.bins,
            card_country=country,
            funding=rng.choice(len(FUNDINGS), size=count, p=self.funding_p),
            exp_month=self._expiry(month[np.searchsorted(member, np.arange(count))]),
        )
        profile = self._base_profile(m, country[member])
        self._add_accounts(
            CLUSTER,
            **profile,
            signup_at=signup_at,
            device=self._new_devices(count)[member],
            ip_country=country[member],
            ip_host=self._random_hosts(count)[member],
            pm=np.where(shared_card[member], shared[member], own),
            scenario_p=p[member],
            scenario_label=label[member],
            scenario_scheme=RESELLER,
        )

    def _create_risky_signups(self) -> None:
        """Fresh accounts with stolen-card traits; legitimate expats and travellers share them."""
        fraud, rng = self.config.fraud, self.rng
        count = self._scale(fraud.risky_signups_per_10k_month)
        if count == 0:
            return
        low, high = fraud.stolen_accounts_per_device
        size = rng.integers(low, high + 1, size=count)
        mismatch = rng.random(count) < fraud.stolen_mismatch_prob
        premium = rng.random(count) < fraud.stolen_premium_prob
        prepaid = rng.random(count) < fraud.stolen_prepaid_prob
        p = fraud_logit_probability(
            fraud.stolen_logit
            + fraud.stolen_mismatch_coef * mismatch
            + fraud.stolen_premium_coef * premium
            + fraud.stolen_prepaid_coef * prepaid
            + fraud.stolen_cards_coef * np.log(size)
        )
        label = rng.random(count) < p
        member = np.repeat(np.arange(count), size)
        m = len(member)
        card_country = rng.choice(len(COUNTRIES), size=m, p=self.country_p)
        scenario_ip = np.where(
            mismatch, self._other_country(card_country[np.searchsorted(member, np.arange(count))]), -1
        )
        ip_country = np.where(mismatch[member], scenario_ip[member], card_country)
        first = self._uniform_times(count, self.world.start, self.world.end - DAY)
        signup_at = np.minimum(first[member] + _seconds(rng.uniform(0, 3 * 86400, size=m)), self._last_minute)
        month = signup_at.astype("datetime64[M]").astype(np.int64)
        credit_or_debit = np.array([FUNDINGS.index("credit"), FUNDINGS.index("debit")])
        funding = np.where(prepaid[member], FUNDINGS.index("prepaid"), rng.choice(credit_or_debit, size=m))
        pm = add_cards(
            self.methods,
            rng,
            self.world.bins,
            card_country=card_country,
            funding=funding,
            exp_month=self._expiry(month),
            card_status=np.where(label[member], CARD_STOLEN, CARD_OK),
        )
        profile = self._base_profile(m, card_country)
        profile["tier"] = np.where(premium[member], PLAN_TIERS.index("premium"), profile["tier"])
        self._add_accounts(
            RISKY_SIGNUP,
            **profile,
            signup_at=signup_at,
            device=self._new_devices(count)[member],
            ip_country=ip_country,
            ip_host=self._random_hosts(count)[member],
            pm=pm,
            scenario_p=p[member],
            scenario_label=label[member],
            scenario_scheme=STOLEN,
        )

    # ------------------------------------------------------------------------------- attempts
    def _attempts(
        self, account: npt.NDArray[np.int64], at: npt.NDArray[Any], kind: int, purpose: Any, **over: Any
    ) -> Batch:
        """A batch of attempts by ``account`` at ``at``; fields default to the account's current state."""
        a = self.accounts
        n = len(account)
        tier, period, country = a["tier"][account], a["period"][account], a["country"][account]
        fields: dict[str, Any] = {
            "account": account,
            "at": at,
            "kind": kind,
            "purpose": purpose,
            "tier": tier,
            "period": period,
            "amount": local_price(self.price_eur[tier, period], country),
            "pm": a["pm"][account],
            "device": a["device"][account],
            "ip_country": a["ip_country"][account],
            "ip_host": a["ip_host"][account],
            "invoice": -1,
            "retry_number": 0,
            "prior_cause": NO_PRIOR,
            "prior_at": NAT,
            "scenario_p": a["scenario_p"][account],
            "scenario_label": a["scenario_label"][account],
            "scenario_scheme": a["scenario_scheme"][account],
            "takeover": False,
            "invoice_due": NAT,
        }
        fields.update(over)
        return {
            key: np.broadcast_to(np.asarray(value), (n,)).copy() if np.ndim(value) == 0 else np.asarray(value)
            for key, value in fields.items()
        }

    def _open_invoices(self, batch: Batch) -> Batch:
        """Give each attempt of the batch (all first tries) a new invoice."""
        invoice = self._new_invoices(len(batch["account"]))
        batch["invoice"] = invoice
        return batch

    def _signups(self, d0: np.datetime64, d1: np.datetime64) -> Batch | None:
        a = self.accounts
        due = np.flatnonzero(
            (a["status"] == PENDING) & (a["signup_at"] >= d0) & (a["signup_at"] < d1) & ~a["dunning"]
        )
        if len(due) == 0:
            return None
        at = a["signup_at"][due]
        return self._open_invoices(self._attempts(due, at, SIGNUP_KIND, P_SIGNUP, invoice_due=at))

    def _renewals(self, d0: np.datetime64, d1: np.datetime64) -> Batch | None:
        a, rng, plans = self.accounts, self.rng, self.config.plans
        due = np.flatnonzero((a["status"] == ACTIVE) & ~a["dunning"] & (a["next_due"] < d1))
        if len(due) == 0:
            return None
        manual = ~a["auto_renew"][due]
        stops = a["cancel_pending"][due] | (manual & (rng.random(len(due)) >= plans.manual_renew_prob))
        a["status"][due[stops]] = CANCELLED
        due, manual = due[~stops], manual[~stops]
        if len(due) == 0:
            return None
        down = due[a["downgrade_pending"][due]]
        a["tier"][down] = np.maximum(a["tier"][down] - 1, 0)
        a["downgrade_pending"][down] = False
        at = np.where(
            manual, self._day_times(d0, len(due)), d0 + _seconds(rng.uniform(2, 5, size=len(due)) * 3600)
        )
        self._replace_expired(due, at)
        return self._open_invoices(
            self._attempts(due, at, RENEWAL_KIND, P_RENEWAL, invoice_due=a["next_due"][due])
        )

    def _replace_expired(self, account: npt.NDArray[np.int64], at: npt.NDArray[Any]) -> None:
        """Expired cards replaced before the renewal (customer or account updater): a reissue, same BIN."""
        a, m = self.accounts, self.methods
        pm = a["pm"][account]
        month = at.astype("datetime64[M]").astype(np.int64)
        expired = (m["method"][pm] == CARD) & (m["exp_month"][pm] < month)
        chosen = expired & (
            self.rng.random(len(account)) < self.config.payment.expired_updated_before_renewal
        )
        if not chosen.any():
            return
        old = pm[chosen]
        new = m.append(
            method=CARD,
            funding=m["funding"][old],
            bin_row=m["bin_row"][old],
            card_country=m["card_country"][old],
            exp_month=self._expiry(month[chosen]),
            card_status=m["card_status"][old],
            blocked_at=NAT,
        )
        a["pm"][account[chosen]] = new

    def _session_ip(
        self, account: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """IP of a customer-initiated attempt: home, or abroad when travelling."""
        a = self.accounts
        away = self.rng.random(len(account)) < self.config.population.travel_prob
        country = np.where(away, self._other_country(a["country"][account]), a["ip_country"][account])
        host = np.where(away, self._random_hosts(len(account)), a["ip_host"][account])
        return country, host

    def _daily_events(self, d0: np.datetime64) -> Batch | None:
        """Each active subscriber's daily chances: cancel, change plan, buy, move, or be taken over."""
        a, rng, plans, population = self.accounts, self.rng, self.config.plans, self.config.population
        live = np.flatnonzero((a["status"] == ACTIVE) & ~a["dunning"])
        if len(live) == 0:
            return None
        u = rng.random((len(live), 7))
        cancel_mult = np.array([population.channel_cancel_multiplier.get(c, 1.0) for c in self.channels])
        cancel = u[:, 0] < _daily(plans.cancel_per_month) * cancel_mult[a["channel"][live]]
        a["cancel_pending"][live[cancel]] = True
        tier = a["tier"][live]
        down = (u[:, 1] < _daily(plans.downgrade_per_month)) & (tier > 0)
        a["downgrade_pending"][live[down]] = True
        upgrade = live[(u[:, 2] < _daily(plans.upgrade_per_month)) & (tier < len(PLAN_TIERS) - 1) & ~down]
        one_off = live[u[:, 3] < _daily(plans.one_off_per_month)]
        moved = live[u[:, 4] < _daily(population.device_change_per_month)]
        a["device"][moved] = self._new_devices(len(moved))
        new_ip = live[
            (u[:, 5] < _daily(population.ip_change_per_month)) & ~a["mobile"][live] & ~a["vpn"][live]
        ]
        a["ip_host"][new_ip] = self._random_hosts(len(new_ip))
        takeover = live[u[:, 6] < _daily(self.config.fraud.ato_per_month)]
        parts = [self._upgrades(upgrade, d0), self._one_offs(one_off, d0), self._takeovers(takeover, d0)]
        return _concat([part for part in parts if part is not None])

    def _upgrade_amount(
        self, account: npt.NDArray[np.int64], at: npt.NDArray[Any]
    ) -> npt.NDArray[np.float64]:
        """Prorated price difference to the next tier for the rest of the current period."""
        a = self.accounts
        tier, period, country = a["tier"][account], a["period"][account], a["country"][account]
        days = self.period_days[period]
        remaining = np.clip((a["next_due"][account] - at) / DAY / days, 0.05, 1.0)
        difference = local_price(self.price_eur[np.minimum(tier + 1, 2), period], country) - local_price(
            self.price_eur[tier, period], country
        )
        amount: npt.NDArray[np.float64] = np.maximum(np.round(difference * remaining, 2), 0.5)
        return amount

    def _upgrades(self, account: npt.NDArray[np.int64], d0: np.datetime64) -> Batch | None:
        if len(account) == 0:
            return None
        at = self._day_times(d0, len(account))
        ip_country, ip_host = self._session_ip(account)
        return self._open_invoices(
            self._attempts(
                account, at, UPGRADE_KIND, P_UPGRADE, amount=self._upgrade_amount(account, at),
                ip_country=ip_country, ip_host=ip_host,
            )
        )  # fmt: skip

    def _ppv_amount(self, account: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        prices = np.array(self.config.plans.one_off_prices_eur)
        return local_price(self.rng.choice(prices, size=len(account)), self.accounts["country"][account])

    def _one_offs(self, account: npt.NDArray[np.int64], d0: np.datetime64) -> Batch | None:
        if len(account) == 0:
            return None
        ip_country, ip_host = self._session_ip(account)
        return self._open_invoices(
            self._attempts(
                account, self._day_times(d0, len(account)), ONE_OFF_KIND, P_ONE_OFF,
                amount=self._ppv_amount(account), ip_country=ip_country, ip_host=ip_host,
            )
        )  # fmt: skip

    def _takeovers(self, account: npt.NDArray[np.int64], d0: np.datetime64) -> Batch | None:
        """The takeover pattern: new device, new card, then an upgrade (or pay-per-view) within the hour."""
        if len(account) == 0:
            return None
        a, rng, fraud = self.accounts, self.rng, self.config.fraud
        n = len(account)
        home = a["country"][account]
        foreign_ip = rng.random(n) < fraud.ato_foreign_ip_prob
        foreign_card = rng.random(n) < fraud.ato_foreign_card_prob
        p = fraud_logit_probability(
            fraud.ato_logit
            + fraud.ato_foreign_ip_coef * foreign_ip
            + fraud.ato_foreign_card_coef * foreign_card
        )
        label = rng.random(n) < p
        ip_country = np.where(foreign_ip, self._other_country(home), home)
        ip_host = self._random_hosts(n)
        device = self._new_devices(n)
        at = self._day_times(d0, n)
        month = at.astype("datetime64[M]").astype(np.int64)
        pm = add_cards(
            self.methods, rng, self.world.bins,
            card_country=np.where(foreign_card, self._other_country(home), home),
            funding=rng.choice(len(FUNDINGS), size=n, p=self.funding_p),
            exp_month=self._expiry(month),
            card_status=np.where(label, CARD_STOLEN, CARD_OK),
        )  # fmt: skip
        can_upgrade = a["tier"][account] < len(PLAN_TIERS) - 1
        extra = rng.random(n) < 0.4
        common = {
            "pm": pm, "device": device, "ip_country": ip_country, "ip_host": ip_host,
            "scenario_p": p, "scenario_label": label, "scenario_scheme": np.full(n, TAKEOVER),
            "takeover": label,
        }  # fmt: skip
        first = self._attempts(
            account, at, UPGRADE_KIND, P_UPGRADE, amount=self._upgrade_amount(account, at), **common
        )
        first["kind"][~can_upgrade] = ONE_OFF_KIND
        first["purpose"][~can_upgrade] = P_ONE_OFF
        first["amount"][~can_upgrade] = self._ppv_amount(account[~can_upgrade])
        end_of_day = d0 + DAY - np.timedelta64(1, "s")
        later = np.maximum(np.minimum(at + _seconds(rng.uniform(120, 3600, size=n)), end_of_day), at)
        second = self._attempts(
            account[extra], later[extra], ONE_OFF_KIND, P_ONE_OFF, amount=self._ppv_amount(account[extra]),
            **{key: value[extra] for key, value in common.items()},
        )  # fmt: skip
        legit = account[~label]
        a["device"][legit], a["pm"][legit] = device[~label], pm[~label]
        at_home = ~label & ~foreign_ip  # a subscriber abroad keeps their home IP
        a["ip_host"][account[at_home]] = ip_host[at_home]
        both = _concat([first, second])
        if both is None:  # pragma: no cover - first is never empty here
            return None
        return self._open_invoices(both)

    def _retries(self, d1: np.datetime64) -> Batch | None:
        """Retries due before ``d1``: the customer may replace the method; hard declines need a new one."""
        a, rng, payment = self.accounts, self.rng, self.config.payment
        due = np.flatnonzero(a["dunning"] & (a["next_retry"] < d1))
        if len(due) == 0:
            return None
        at = a["next_retry"][due]
        a["next_retry"][due] = NAT
        signup = a["invoice_purpose"][due] == P_SIGNUP
        code = a["last_code"][due]
        chance = np.where(
            _ACTION[code], payment.replace_after_action_decline, payment.replace_after_other_decline
        )
        replace = np.where(signup, a["replace_before_retry"][due], rng.random(len(due)) < chance)
        if replace.any():
            who = due[replace]
            a["pm"][who] = self._methods_for(
                a["country"][who], at[replace].astype("datetime64[M]").astype(np.int64)
            )
        pm = a["pm"][due]
        allowed = ~_HARD[code] | (pm != a["last_pm"][due])
        skipped = due[~allowed]
        a["dunning"][skipped[a["invoice_purpose"][skipped] == P_SIGNUP]] = False
        a["status"][skipped[a["invoice_purpose"][skipped] == P_SIGNUP]] = ABANDONED
        self._next_slot(skipped[a["invoice_purpose"][skipped] == P_RENEWAL])
        go = due[allowed]
        if len(go) == 0:
            return None
        same = a["pm"][go] == a["last_pm"][go]
        batch = self._attempts(
            go, at[allowed], RETRY_KIND, a["invoice_purpose"][go].astype(np.int64),
            invoice=a["invoice"][go], amount=a["invoice_amount"][go],
            retry_number=a["retry_number"][go] + 1,
            prior_cause=np.where(same, a["last_cause"][go], NO_PRIOR),
            prior_at=np.where(same, a["last_decline_at"][go], NAT),
            invoice_due=a["invoice_due"][go],
        )  # fmt: skip
        return batch

    def _next_slot(self, account: npt.NDArray[np.int64]) -> None:
        """Move declined renewals to their next dunning slot, or churn them when the schedule is exhausted."""
        a = self.accounts
        schedule = np.array(self.config.dunning.retry_days)
        slot = a["slot"][account] + 1
        more = slot < len(schedule)
        go, stop = account[more], account[~more]
        a["slot"][go] = slot[more]
        jitter = _seconds(self.rng.uniform(0, 3600, size=len(go)))
        a["next_retry"][go] = a["first_decline_at"][go] + _seconds(schedule[slot[more]] * 86400) + jitter
        a["dunning"][stop] = False
        a["status"][stop] = CHURNED

    # ------------------------------------------------------------------------------ outcomes
    def _resolve(self, batch: Batch) -> Batch:
        """Draw outcomes, fraud labels and reports for a batch of attempts; log it; return it."""
        self._draw_outcomes(batch)
        self._label(batch)
        self.log.append(batch)
        return batch

    def _payment_state(self, batch: Batch) -> PaymentState:
        m, a = self.methods, self.accounts
        pm = batch["pm"]
        bin_row = m["bin_row"][pm]
        card_country = m["card_country"][pm]
        country = a["country"][batch["account"]]
        return PaymentState(
            method=m["method"][pm],
            funding=m["funding"][pm],
            issuer_logit=np.where(bin_row >= 0, self.world.bins.issuer_logit[bin_row], 0.0),
            card_exp_month=m["exp_month"][pm],
            card_status=m["card_status"][pm],
            blocked_at=m["blocked_at"][pm],
            fragility=a["fragility"][batch["account"]],
            cross_border=(card_country >= 0) & (card_country != batch["ip_country"]),
            amount_eur=batch["amount"] / self.eur_rate[country],
            prior_cause=batch["prior_cause"],
            prior_at=batch["prior_at"],
        )

    def _draw_outcomes(self, batch: Batch) -> None:
        state = self._payment_state(batch)
        risk = failure_probability(state, batch["at"], self.world.incidents, self.config.failure)
        outcome = sample_outcomes(self.rng, risk)
        batch["failed"], batch["cause"], batch["code"] = outcome.failed, outcome.cause, outcome.code
        batch["p_fail"] = risk.p_fail
        for k, cause in enumerate(CAUSES):
            batch[f"p_fail_{cause.value}"] = risk.by_cause[:, k]
        batch["fragility"] = state.fragility
        batch["issuer_logit"] = state.issuer_logit
        batch["card_status"] = state.card_status
        batch["answered_at"] = batch["at"] + _seconds(self.rng.uniform(1, 8, size=len(state)))

    def _label(self, batch: Batch) -> None:
        """Fraud label: the scenario's draw, or friendly fraud on an approved charge; then reports."""
        rng, fraud, reports = self.rng, self.config.fraud, self.config.reports
        n = len(batch["at"])
        approved = ~batch["failed"]
        friendly = fraud.friendly_rate
        scenario_p = batch["scenario_p"]
        has_scenario = ~np.isnan(scenario_p)
        p_friendly = friendly * (1.0 - batch["p_fail"])
        scenario_label = batch["scenario_label"] & has_scenario
        disputed = approved & (rng.random(n) < friendly) & ~scenario_label
        batch["p_fraud"] = np.where(
            has_scenario, scenario_p + (1 - np.nan_to_num(scenario_p)) * p_friendly, p_friendly
        )
        batch["is_fraud"] = scenario_label | disputed
        batch["scheme"] = np.where(
            scenario_label, batch["scenario_scheme"], np.where(disputed, FRIENDLY, NO_SCHEME)
        )
        report_p = np.array([reports.report_prob.get(s, 0.0) for s in SCHEMES])
        scheme = np.maximum(batch["scheme"], 0)
        reported = batch["is_fraud"] & (rng.random(n) < report_p[scheme])
        chargeback = approved & (batch["scheme"] != RESELLER)
        median = np.where(chargeback, reports.chargeback_median_days, reports.confirmed_median_days)
        low, high = reports.delay_bounds_days
        delay = np.clip(median * rng.lognormal(0.0, reports.delay_sigma, size=n), low, high)
        batch["reported"] = reported
        batch["chargeback"] = chargeback
        batch["reported_at"] = batch["answered_at"] + _seconds(delay * 86400)
        self._block_reported_cards(batch)

    def _block_reported_cards(self, batch: Batch) -> None:
        """Issuers block a stolen card when its first fraud report arrives."""
        m = self.methods
        rows = np.flatnonzero(batch["reported"] & (self.methods["card_status"][batch["pm"]] == CARD_STOLEN))
        if len(rows) == 0:
            return
        order = rows[np.argsort(batch["reported_at"][rows])[::-1]]  # earliest written last
        pm, when = batch["pm"][order], batch["reported_at"][order]
        current = m["blocked_at"][pm]
        m["blocked_at"][pm] = np.where(np.isnat(current) | (when < current), when, current)

    def _apply(self, batch: Batch) -> None:
        """Consequences of the outcomes for the accounts."""
        a = self.accounts
        account, ok, purpose = batch["account"], ~batch["failed"], batch["purpose"]
        upgraded = account[(purpose == P_UPGRADE) & ok & ~batch["takeover"]]
        a["tier"][upgraded] = np.minimum(a["tier"][upgraded] + 1, len(PLAN_TIERS) - 1)
        billing = (purpose == P_SIGNUP) | (purpose == P_RENEWAL)
        rows = np.flatnonzero(billing)
        acc = account[rows]
        paid = ok[rows]
        # approved: the invoice is paid and the next renewal scheduled
        done = acc[paid]
        start = np.where(
            purpose[rows][paid] == P_SIGNUP, batch["at"][rows][paid], batch["invoice_due"][rows][paid]
        )
        a["status"][done] = ACTIVE
        a["dunning"][done] = False
        a["next_due"][done] = start + _seconds(self.period_days[a["period"][done]] * 86400)
        # declined: remember the decline, then dunning (renewals) or the customer's own retry (signups)
        failed = rows[~paid]
        who = account[failed]
        a["invoice"][who] = batch["invoice"][failed]
        a["invoice_purpose"][who] = purpose[failed]
        a["invoice_amount"][who] = batch["amount"][failed]
        a["retry_number"][who] = batch["retry_number"][failed]
        a["last_cause"][who] = batch["cause"][failed]
        a["last_code"][who] = batch["code"][failed]
        a["last_pm"][who] = batch["pm"][failed]
        a["last_decline_at"][who] = batch["at"][failed]
        self._after_signup_decline(failed[purpose[failed] == P_SIGNUP], batch)
        self._after_renewal_decline(failed[purpose[failed] == P_RENEWAL], batch)

    def _after_signup_decline(self, rows: npt.NDArray[np.int64], batch: Batch) -> None:
        a, rng, dunning = self.accounts, self.rng, self.config.dunning
        who = batch["account"][rows]
        tries = batch["retry_number"][rows] + 1
        hard = _HARD[batch["code"][rows]]
        again = (tries < dunning.max_signup_tries) & (rng.random(len(rows)) < dunning.signup_retry_prob)
        a["dunning"][who] = again
        a["status"][who[~again]] = ABANDONED
        a["invoice_due"][who] = batch["at"][rows]
        a["replace_before_retry"][who] = hard | (rng.random(len(rows)) < dunning.signup_new_card_prob)
        a["next_retry"][who[again]] = batch["at"][rows][again] + _seconds(
            rng.uniform(60, 900, size=int(again.sum()))
        )

    def _after_renewal_decline(self, rows: npt.NDArray[np.int64], batch: Batch) -> None:
        a = self.accounts
        first = rows[batch["retry_number"][rows] == 0]
        who = batch["account"][first]
        a["dunning"][who] = True
        a["first_decline_at"][who] = batch["at"][first]
        a["invoice_due"][who] = batch["invoice_due"][first]
        a["slot"][who] = -1
        self._next_slot(np.concatenate([who, batch["account"][rows[batch["retry_number"][rows] > 0]]]))

    # --------------------------------------------------------------------------- card testing
    def _card_testing(self) -> None:
        """Rings: one device and IP, a few new accounts, many cards tried within minutes, cheapest plan."""
        fraud, rng = self.config.fraud, self.rng
        rings = self._scale(fraud.card_testing_rings_per_10k_month)
        for _ in range(rings):
            self._one_ring(fraud.card_testing_logit + rng.normal(0, fraud.card_testing_logit_sd))

    def _one_ring(self, logit: float) -> None:
        rng, fraud = self.rng, self.config.fraud
        p = float(fraud_logit_probability(np.array([logit]))[0])
        label = bool(rng.random() < p)
        cards = int(rng.integers(fraud.card_testing_cards[0], fraud.card_testing_cards[1] + 1))
        accounts = int(rng.integers(fraud.card_testing_accounts[0], fraud.card_testing_accounts[1] + 1))
        country = int(rng.choice(self.vpn_exits))
        t0 = self._uniform_times(1, self.world.start, self.world.end - DAY)[0]
        at = t0 + _seconds(np.cumsum(rng.exponential(45.0, size=cards)))
        month = at.astype("datetime64[M]").astype(np.int64)
        funding = rng.choice(len(FUNDINGS), size=cards, p=np.array([0.3, 0.2, 0.5]))
        pm = add_cards(
            self.methods, rng, self.world.bins,
            card_country=rng.choice(len(COUNTRIES), size=cards, p=self.country_p), funding=funding,
            exp_month=month + rng.integers(-6, 36, size=cards), card_status=CARD_TESTED if label else CARD_OK,
        )  # fmt: skip
        profile = self._base_profile(accounts, np.full(accounts, country))
        profile["tier"] = np.zeros(accounts, dtype=np.int64)
        profile["period"] = np.zeros(accounts, dtype=np.int64)
        device, host = self._new_devices(1)[0], self._random_hosts(1)[0]
        ids = self._add_accounts(
            CARD_TESTING, **profile, signup_at=at[0], device=device, ip_country=country, ip_host=host,
            pm=pm[0],
            status=ABANDONED, scenario_p=p, scenario_label=label, scenario_scheme=CARD_TESTING_SCHEME,
        )  # fmt: skip
        batch = self._attempts(
            np.full(cards, ids[0]), at, SIGNUP_KIND, P_SIGNUP, pm=pm,
            amount=local_price(self.price_eur[np.zeros(cards, dtype=np.int64), 0], np.full(cards, country)),
        )  # fmt: skip
        self._draw_outcomes(batch)
        self._assign_ring(batch, ids)
        self._label(batch)
        self.log.append(batch)

    def _assign_ring(self, batch: Batch, ids: npt.NDArray[np.int64]) -> None:
        """Spread a ring's cards over its accounts: signup (retried until a card works), then pay-per-view."""
        a = self.accounts
        share = np.array_split(np.arange(len(batch["at"])), len(ids))
        signup = self._new_invoices(len(ids))
        for k, rows in enumerate(share):
            if len(rows) == 0:
                continue
            batch["account"][rows] = ids[k]
            a["signup_at"][ids[k]] = a["created_at"][ids[k]] = batch["at"][rows[0]]
            approved = np.flatnonzero(~batch["failed"][rows])
            paid = len(rows) if len(approved) == 0 else int(approved[0]) + 1
            batch["invoice"][rows[:paid]] = signup[k]
            batch["retry_number"][rows[:paid]] = np.arange(paid)
            batch["kind"][rows[:paid]] = np.where(np.arange(paid) == 0, SIGNUP_KIND, RETRY_KIND)
            later = rows[paid:]
            batch["invoice"][later] = self._new_invoices(len(later))
            batch["kind"][later] = ONE_OFF_KIND
            batch["purpose"][later] = P_ONE_OFF
            a["status"][ids[k]] = ACTIVE if len(approved) else ABANDONED


def _concat(batches: list[Batch]) -> Batch | None:
    if not batches:
        return None
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}
