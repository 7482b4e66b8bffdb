"""Static facts of the simulated world: countries, currencies, prices, IP ranges and the BIN table.

Categorical values are held as small integer codes in the simulation; the tuples here map codes to the
contract's strings (``PLAN_TIERS[code]`` etc.).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from core.errors import RiskgateError
from events.schema import CardFunding, MethodType, PlanPeriod, PlanTier

PLAN_TIERS: Final = tuple(tier.value for tier in PlanTier)
PLAN_PERIODS: Final = tuple(period.value for period in PlanPeriod)
METHOD_TYPES: Final = tuple(method.value for method in MethodType)
FUNDINGS: Final = tuple(funding.value for funding in CardFunding)
CARD: Final = METHOD_TYPES.index(MethodType.CARD.value)
#: Fraud schemes of the truth table (``fraud_scheme``), in code order.
FRAUD_SCHEMES: Final = ("card_testing", "stolen_card", "account_takeover", "reseller", "friendly")


@dataclass(frozen=True)
class Country:
    code: str
    currency: str
    eur_rate: float  # local currency units per EUR, for pricing
    minor_unit: int  # decimals of the currency
    ip_first_octets: tuple[int, ...]  # first octets of the country's (made-up but valid) IPv4 ranges
    euro: bool


COUNTRIES: Final[tuple[Country, ...]] = (
    Country("GB", "GBP", 0.86, 2, (81, 86), False),
    Country("DE", "EUR", 1.0, 2, (91, 93), True),
    Country("FR", "EUR", 1.0, 2, (90, 92), True),
    Country("ES", "EUR", 1.0, 2, (83, 88), True),
    Country("IT", "EUR", 1.0, 2, (79, 87), True),
    Country("NL", "EUR", 1.0, 2, (77, 145), True),
    Country("PL", "PLN", 4.3, 2, (89, 178), False),
    Country("US", "USD", 1.08, 2, (24, 73), False),
    Country("CA", "CAD", 1.47, 2, (70, 99), False),
    Country("SE", "SEK", 11.3, 2, (78, 94), False),
    Country("PT", "EUR", 1.0, 2, (85, 188), True),
    Country("IE", "EUR", 1.0, 2, (46, 109), True),
    Country("AE", "AED", 3.97, 2, (94, 185), False),
    Country("TR", "TRY", 35.0, 2, (78, 176), False),
)
COUNTRY_CODES: Final = tuple(country.code for country in COUNTRIES)
#: Countries VPN users and card-testing rings appear to come from.
VPN_EXIT_COUNTRIES: Final = ("NL", "US", "GB", "DE", "SE")


class UnknownCountryError(RiskgateError, ValueError):
    """A configuration names a country the catalog does not describe."""


def country_index(codes: list[str]) -> npt.NDArray[np.int64]:
    """Codes of the given ISO alpha-2 countries; raises for a country the catalog lacks."""
    missing = sorted(set(codes) - set(COUNTRY_CODES))
    if missing:
        raise UnknownCountryError(
            f"countries {missing} are not in simulator.catalog.COUNTRIES ({', '.join(COUNTRY_CODES)}); "
            "add them there (currency, FX, IP ranges) or remove them from population.country_weights"
        )
    return np.array([COUNTRY_CODES.index(code) for code in codes], dtype=np.int64)


def local_price(eur: npt.NDArray[np.float64], country: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """A EUR price in the country's currency, rounded up to end in .99 as shops do."""
    rate = np.array([c.eur_rate for c in COUNTRIES])[country]
    raw = eur * rate
    whole = np.ceil(raw)
    price: npt.NDArray[np.float64] = np.round(np.where(whole >= 2, whole - 0.01, np.round(raw, 2)), 2)
    return price


def currency_codes() -> npt.NDArray[np.str_]:
    return np.array([c.currency for c in COUNTRIES])


@dataclass(frozen=True)
class BinTable:
    """The world's card BINs: ``bins[i]`` is issued in ``country[i]`` with ``funding[i]``.

    BINs are grouped by (country, funding), ``per_group`` each, so the BINs of group ``g`` are rows
    ``g * per_group ... (g + 1) * per_group - 1``; ``popularity`` is the within-group choice distribution.
    ``issuer_logit`` is each issuer's decline propensity (log-odds added to the issuer cause).
    """

    bins: npt.NDArray[np.str_]
    country: npt.NDArray[np.int64]
    funding: npt.NDArray[np.int64]
    issuer_logit: npt.NDArray[np.float64]
    per_group: int
    popularity: npt.NDArray[np.float64]

    def choose(
        self, rng: np.random.Generator, country: npt.NDArray[np.int64], funding: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Row of a BIN for each (country, funding) pair, popular issuers first."""
        group = country * len(FUNDINGS) + funding
        within = np.searchsorted(np.cumsum(self.popularity), rng.random(len(group)), side="right")
        return group * self.per_group + np.minimum(within, self.per_group - 1)


def build_bin_table(seed: int, per_group: int, issuer_logit_sd: float) -> BinTable:
    """The BIN table of a world (``per_group`` BINs per country and funding, issuers' risk spread
    ``issuer_logit_sd``): deterministic in the seed, shared by every block."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1_000_001,)))
    groups = len(COUNTRIES) * len(FUNDINGS)
    n = groups * per_group
    country = np.repeat(np.arange(len(COUNTRIES)), len(FUNDINGS) * per_group)
    funding = np.tile(np.repeat(np.arange(len(FUNDINGS)), per_group), len(COUNTRIES))
    # Visa-like BINs start with 4, Mastercard-like with 5; a quarter are 8-digit BINs.
    first = rng.choice(np.array([4, 5]), size=n)
    digits = np.where(rng.random(n) < 0.25, 8, 6)
    body = rng.integers(0, 10**7, size=n)
    bins = np.array(
        [f"{f}{b:07d}"[:d] for f, b, d in zip(first.tolist(), body.tolist(), digits.tolist(), strict=True)]
    )
    prepaid = FUNDINGS.index(CardFunding.PREPAID.value)
    issuer_logit = rng.normal(0.0, issuer_logit_sd, size=n) + np.where(funding == prepaid, 0.4, 0)
    weights = 1.0 / np.arange(1, per_group + 1)
    return BinTable(bins, country, funding, issuer_logit, per_group, weights / weights.sum())


def ip_strings(country: npt.NDArray[np.int64], host: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Valid IPv4 strings: the country's first octet, then a host number spread over the other three."""
    octets = np.array([c.ip_first_octets for c in COUNTRIES])
    first = octets[country, host % octets.shape[1]]
    rest = (host // octets.shape[1]) % (254 * 256 * 256)
    second, third, fourth = rest // (256 * 254), (rest // 254) % 256, rest % 254 + 1
    out = np.empty(len(country), dtype=object)
    out[:] = [
        f"{a}.{b}.{c}.{d}"
        for a, b, c, d in zip(first.tolist(), second.tolist(), third.tolist(), fourth.tolist(), strict=True)
    ]
    return out
