"""A second simulated world: the raw export of a card-not-present (online) merchant, in its own shapes.

riskgate's own world (:mod:`simulator.config`) is an IPTV provider that already speaks riskgate's contract.
This one does not: it is the kind of export a payment provider hands over (transaction id, local time,
customer, merchant terminal, card token, amount in cents, result codes, chargeback cases), so that the
repository has a worked example that goes from a foreign export to a scored test window through the
documented commands only (a mapping file, ``riskgate import``, ``riskgate features build``, ``riskgate
train``, ``riskgate score``). The fraud mechanisms follow the spirit of the *Reproducible Machine Learning
for Credit Card Fraud Detection* handbook's simulated data (compromised terminals, compromised cards), plus
card testing and declines; the code is this module's own.

``generate(MerchantConfig(...), out_dir)`` (or ``python -m simulator.merchant --out DIR [--customers N
--terminals T --days D --seed S --start YYYY-MM-DD --zone ZONE --keep-ambiguous-times --force]``) writes,
deterministically in the seed (same configuration → same bytes):

``transactions.csv``, one row per authorisation request, in time order:

* ``TX_ID``: ``T`` + 9 digits (``T000000042``), numbered in time order;
* ``TX_DATETIME``: LOCAL wall time ``YYYY-MM-DD HH:MM:SS`` in ``config.zone`` (default ``Europe/Paris``),
  without UTC offset; the default period crosses the autumn daylight-saving change (see *Time* below);
* ``CUSTOMER_ID``: ``C`` + 6 digits; ``CUSTOMER_SINCE``: the customer's account creation date
  ``YYYY-MM-DD`` (local); for most customers it is before the export starts, so "time since first seen"
  computed from the export alone is censored at the export start unless this column is used;
* ``TERMINAL_ID``: ``TRM`` + 4 digits, the merchant's payment endpoints (web shops, apps, a phone-order
  desk); each terminal has one channel;
* ``CARD_TOKEN``: ``ctk_`` + 16 lower-case letters, an opaque token (never a card number; no digits at
  all); a customer has 1 to 3 cards over time;
* ``CARD_BIN``: 6 digits (Visa-like ``4…``, Mastercard-like ``51…55…`` or ``2221…2720…``), per issuer;
* ``TX_AMOUNT``: integer cents of EUR (``1999`` is €19.99; ``0`` for authorisation checks); no currency
  column: everything is EUR;
* ``TX_TYPE``: ``PURCHASE`` or ``AUTH_CHECK`` (a €0 authorisation made when a card is added to the account,
  re-verified now and then, or tested by a fraudster);
* ``CHANNEL``: ``web``, ``app`` or ``moto`` (mail/telephone order), the terminal's channel;
* ``IP_COUNTRY``: ISO alpha-2 of the client IP, empty for ``moto`` and for some web/app requests.

``results.csv``, one row per transaction: ``TX_ID``; ``RESPONDED_AT`` (local time, 1 to ~30 seconds after
the request in real time, so across the DST change the wall-clock difference can be an hour off); ``RESULT``
``OK``/``KO``/``ERR``; ``REASON_CODE`` (ISO 8583-like, empty when ``OK``, see :data:`REASON_CODES`).

``chargebacks.csv``, one row per case received before the export ends: ``CASE_ID`` (``CASE`` + 7 digits,
in order of arrival), ``TX_ID``, ``RECEIVED_AT`` (local time), ``TYPE`` ``CB`` (chargeback: an approved
purchase disputed as fraud) or ``TC40`` (the issuer's fraud report, also for €0 checks and declined fraud).

``truth.csv`` (to measure, never an input): ``TX_ID``, ``IS_FRAUD`` (0/1), ``SCENARIO`` (empty when not
fraud, else one of :data:`SCENARIOS`). ``summary.json``: :class:`MerchantSummary`.

How the world works
===================

**Time.** The export covers ``days`` days from local midnight of ``start``. Everything is simulated in UTC
instants and written as local wall time. In the hour that repeats when clocks go back, a local time without
offset is ambiguous (riskgate's importer refuses such rows); with ``avoid_ambiguous_times`` (the default) the
merchant's systems are quiet then: every instant that would fall in a repeated hour (requests: or within a
minute before it, so that their responses do not) moves past it by whole hours. With
``avoid_ambiguous_times=False`` the export keeps them, as a raw export would. Skipped local times (spring)
never occur.

**Customers and cards.** ``existing_customer_share`` of the customers have accounts from up to three years
before the export; the others sign up during it. Each has a home country (mostly FR), a usual basket
(a mean amount, uniform €5–€120; purchases are gamma-distributed around it), a purchase rate (gamma, mean
``purchases_per_day``), 2–6 favourite terminals (popular terminals more often) and a latent funds fragility.
Purchase times follow a daytime profile in local time. Cards: a first card at account creation, a second
with probability ``extra_card_prob`` and a third with that probability again, added during the export;
purchases use the newest card (sometimes the previous one). Each card added during the export is checked
by a €0 ``AUTH_CHECK`` within three minutes, before any purchase on it; re-verifications of active cards
(``reverifications_per_card_per_100_days``) are €0 checks too. BINs come from a table
of issuers per country; most cards are issued in the customer's home country. IP country: home, sometimes
abroad (travel), empty for phone orders and some requests.

**Fraud** (``SCENARIO`` in ``truth.csv``), four mechanisms with known ground truth:

* ``compromised_terminal``: ``terminal_compromises_per_100_days`` times, a web/app terminal is compromised;
  for ``terminal_compromise_days`` (28) days, each purchase on it is fraud with probability
  ``terminal_fraud_share``. Only terminal-level features (the terminal's recent fraud reports) catch it,
  which is why terminals must be feature entities.
* ``compromised_card``: a customer's card is compromised (``card_compromises_per_customer_per_100_days``);
  for ``card_compromise_days`` (14) days a share ``card_fraud_share`` of the customer's purchases are fraud
  with amounts ``amount_multiplier`` (3–8) times the usual, and a fraudster adds ``fraudster_purchases``
  (Poisson) purchases of that size on the card, on any terminal, often from a foreign IP. Amount-vs-usual
  (z-score) features catch it.
* ``card_testing``: ``testing_rings_per_100_days`` rings; a ring opens 1–3 fresh accounts, then tries
  ``testing_cards`` fresh cards of one BIN on one web terminal from one foreign IP country, in a burst at
  night (seconds apart): a €0 ``AUTH_CHECK`` per card, often followed by a €0.50–€2 purchase. A share
  ``testing_dead_share`` of the cards are dead (declined ``14``, ``54`` or ``05``); a live card is cashed
  out with probability ``testing_cashout_prob`` by a €150–€900 purchase minutes to hours later.
* ``large_amount``: a small rate (``large_amount_rate``) of purchases are fraud of €300–€2,000.

**Results.** Causes are drawn in order (first that fires wins): ``ERR`` ``96`` (system malfunction,
``error_rate``) or ``91`` (issuer unavailable: each BIN has short incident windows, on average every
``incident_every_days`` days, lasting hours, when most of its requests fail); a dead tested card; ``43``
(the issuer catches fraud, probability ``fraud_decline_prob``); ``54`` (expired); ``05`` (do not honour);
``51`` (insufficient funds: log-odds grow in the last five days of the month, with the amount and with the
customer's fragility; never for €0 checks).

**Reports.** An approved fraudulent purchase is reported with probability ``report_prob_by_scenario``, as a
``CB`` (``chargeback_share``) or a ``TC40``; an approved €0 check or a declined fraud attempt only as a
``TC40`` (``tc40_on_checks_prob``, ``tc40_on_declined_prob``). Delays are log-normal (medians
``chargeback_median_days`` and ``tc40_median_days``, sigma ``report_delay_sigma``, between 1 and 120 days):
most arrive within 30 days, a tail after 90. Cases that would arrive after the export ends are not written.
Every case is a truth fraud; not every fraud has a case.

What the default world produces
===============================

``MerchantConfig()``: 2,000 customers, 200 terminals, 120 days from 2025-09-01 (Europe/Paris, crossing the
change of 2025-10-26), seed 20261207. Reproduce with ``python -m simulator.merchant --out /tmp/merchant``
and read its ``summary.json``. The ranges the tests enforce are in ``tests/simulator/test_merchant.py``.

=====================================  =============================================================
transactions                           67,875 (65,274 purchases, 2,601 €0 checks; 2,873 cards)
results                                OK 93.9%, KO 5.7% (51: 2,531, 05: 1,030, 54: 163, 43: 111,
                                       14: 41), ERR 0.35% (91: 134, 96: 102)
fraud                                  585 (0.86%): compromised_terminal 123, compromised_card 184,
                                       card_testing 202 (17 ring accounts), large_amount 76
cases written                          286 (CB 130, TC40 156): 49% of fraud by the export's end, 60%
                                       eventually; delay median 9 days, 90% within 27 days
moved out of the repeated hour         9 instants (requests, responses, cases)
generation                             ~2.5 s of CPU, peak RSS ~190 MB (mostly pandas)
=====================================  =============================================================
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import RiskgateError
from simulator.run import OutputExistsError

logger = logging.getLogger(__name__)

Columns = dict[str, npt.NDArray[Any]]

TRANSACTIONS_FILE: Final = "transactions.csv"
RESULTS_FILE: Final = "results.csv"
CHARGEBACKS_FILE: Final = "chargebacks.csv"
TRUTH_FILE: Final = "truth.csv"
SUMMARY_FILE: Final = "summary.json"
#: Everything :func:`generate` writes.
FILES: Final = (TRANSACTIONS_FILE, RESULTS_FILE, CHARGEBACKS_FILE, TRUTH_FILE, SUMMARY_FILE)
#: How every timestamp is written: local wall time, no offset.
LOCAL_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

PURCHASE: Final = "PURCHASE"
AUTH_CHECK: Final = "AUTH_CHECK"
CHANNELS: Final = ("web", "app", "moto")
WEB, APP, MOTO = range(3)
CHANNEL_WEIGHTS: Final = (0.6, 0.3, 0.1)
#: Fraud scenarios of ``truth.csv`` (code 0, the empty string, is legitimate).
SCENARIOS: Final = ("", "compromised_terminal", "compromised_card", "card_testing", "large_amount")
LEGIT, TERMINAL_FRAUD, CARD_FRAUD, CARD_TESTING, LARGE_AMOUNT = range(5)
RESULTS: Final = ("OK", "KO", "ERR")
CHARGEBACK_TYPES: Final = ("CB", "TC40")

#: Customers' home countries (the merchant sells mostly in France) and their weights.
HOME_COUNTRIES: Final = ("FR", "BE", "DE", "ES", "IT", "NL", "GB", "CH", "PT", "LU")
HOME_WEIGHTS: Final = (0.62, 0.08, 0.07, 0.06, 0.06, 0.03, 0.03, 0.02, 0.02, 0.01)
#: Where card-testing rings and fraudsters' IPs appear to come from.
FOREIGN_COUNTRIES: Final = ("US", "BR", "NG", "VN", "ID", "RO", "IN", "PH", "UA", "MA")
COUNTRIES: Final = HOME_COUNTRIES + FOREIGN_COUNTRIES
NO_COUNTRY: Final = -1
DAY: Final = np.timedelta64(86400, "s")
HOUR: Final = np.timedelta64(3600, "s")
NO_MARGIN: Final = np.timedelta64(0, "s")
#: A card added to an account is checked (€0) within this delay, and used for purchases only after it.
CHECK_SECONDS: Final = 180
CHECK_DELAY: Final = np.timedelta64(CHECK_SECONDS, "s")
#: Responses come at most this long after their request (so a request this close to a repeated hour moves).
RESPONSE_MARGIN: Final = np.timedelta64(60, "s")


@dataclass(frozen=True)
class ReasonCode:
    """One ISO 8583-like response code of ``results.csv`` and the result it comes with."""

    code: str
    result: str
    meaning: str


#: The response codes the merchant's gateway returns, in the order their causes are drawn.
REASON_CODES: Final = (
    ReasonCode("96", "ERR", "system malfunction"),
    ReasonCode("91", "ERR", "issuer or switch inoperative (issuer incident)"),
    ReasonCode("14", "KO", "invalid card number"),
    ReasonCode("43", "KO", "stolen card, pick up (the issuer caught fraud)"),
    ReasonCode("54", "KO", "expired card"),
    ReasonCode("05", "KO", "do not honour"),
    ReasonCode("51", "KO", "insufficient funds"),
)
_REASON = {reason.code: index for index, reason in enumerate(REASON_CODES)}
APPROVED: Final = -1


class MerchantConfigError(RiskgateError, ValueError):
    """A merchant-world configuration value that cannot be simulated."""


@dataclass(frozen=True)
class Mechanisms:
    """Rates and shapes of the world's mechanisms (see the module docstring for what each one does)."""

    #: Customers whose account predates the export (the others sign up during it).
    existing_customer_share: float = 0.75
    #: Mean purchases per customer per day (each customer's rate is gamma-distributed, shape 2).
    purchases_per_day: float = 0.3
    #: Probability of a second card during the export, and of a third given a second.
    extra_card_prob: float = 0.3
    #: Probability that a purchase uses the customer's previous card rather than the newest.
    previous_card_prob: float = 0.15
    #: €0 re-verifications of an active card per 100 days (Poisson).
    reverifications_per_card_per_100_days: float = 0.5
    #: Terminal compromises per 100 days (Poisson), each lasting ``terminal_compromise_days``.
    terminal_compromises_per_100_days: float = 5.0
    terminal_compromise_days: int = 28
    #: Probability that a purchase on a compromised terminal within its window is fraud.
    terminal_fraud_share: float = 0.25
    #: Card compromises per customer per 100 days, each lasting ``card_compromise_days``.
    card_compromises_per_customer_per_100_days: float = 0.025
    card_compromise_days: int = 14
    #: Share of the victim's own purchases in the window that are fraud (amounts inflated).
    card_fraud_share: float = 1 / 3
    #: Mean number of the fraudster's own purchases on a compromised card (Poisson).
    fraudster_purchases: float = 3.0
    #: Compromised-card amounts are the customer's usual times a uniform draw in this range.
    amount_multiplier: tuple[float, float] = (3.0, 8.0)
    #: Card-testing rings per 100 days (Poisson).
    testing_rings_per_100_days: float = 6.0
    #: Cards a ring tests (uniform, inclusive).
    testing_cards: tuple[int, int] = (4, 20)
    #: Share of tested cards that are dead (declined 14, 54 or 05).
    testing_dead_share: float = 0.55
    #: Probability that a live tested card is cashed out by a large purchase.
    testing_cashout_prob: float = 0.6
    #: Probability that a purchase is large-amount fraud (€300–€2,000).
    large_amount_rate: float = 0.001
    #: Probability of a system malfunction (ERR 96) on any request.
    error_rate: float = 0.0015
    #: Mean days between incidents of one issuer (BIN); during one, requests fail (ERR 91) with
    #: probability ``incident_error_prob``.
    incident_every_days: float = 30.0
    incident_error_prob: float = 0.6
    #: Probability that the issuer catches a fraudulent purchase (KO 43).
    fraud_decline_prob: float = 0.25
    #: Probabilities of KO 54 (expired) and KO 05 (do not honour) on any request.
    expired_rate: float = 0.002
    do_not_honour_rate: float = 0.015
    #: Insufficient funds (KO 51) log-odds: intercept, last five days of the month, log(amount / €40); plus
    #: the customer's fragility (normal, sd 0.8). Never for €0 checks.
    funds_base: float = -4.0
    funds_month_end_coef: float = 1.4
    funds_amount_coef: float = 0.7
    #: Probability that an approved fraudulent purchase is ever reported, by scenario.
    report_prob_by_scenario: tuple[tuple[str, float], ...] = (
        ("compromised_terminal", 0.85),
        ("compromised_card", 0.9),
        ("card_testing", 0.8),
        ("large_amount", 0.9),
    )
    #: Share of those reports that are chargebacks (CB); the others are issuer reports (TC40).
    chargeback_share: float = 0.75
    #: Probability of a TC40 for an approved fraudulent €0 check, and for a declined fraud attempt.
    tc40_on_checks_prob: float = 0.5
    tc40_on_declined_prob: float = 0.4
    #: Report delays: log-normal with these medians (days) and sigma, clipped to 1..120 days.
    chargeback_median_days: float = 16.0
    tc40_median_days: float = 8.0
    report_delay_sigma: float = 0.9

    def __post_init__(self) -> None:
        shares = [f.name for f in fields(self) if f.name.endswith(("_share", "_prob", "_rate"))]
        for name in shares:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MerchantConfigError(f"mechanisms.{name} is a probability, got {value}: use 0..1")
        unknown = {name for name, _ in self.report_prob_by_scenario} - set(SCENARIOS[1:])
        if unknown:
            raise MerchantConfigError(
                f"mechanisms.report_prob_by_scenario names unknown scenarios {sorted(unknown)}; "
                f"known: {SCENARIOS[1:]}"
            )
        for name in ("amount_multiplier", "testing_cards"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise MerchantConfigError(
                    f"mechanisms.{name} is a (low, high) range with 0 < low <= high, got {(low, high)}"
                )
        for f in fields(self):
            value = getattr(self, f.name)
            counts = isinstance(value, int | float) and not f.name.startswith("funds_")  # not log-odds
            if counts and value < 0:
                raise MerchantConfigError(f"mechanisms.{f.name} cannot be negative, got {value}")

    def report_probability(self) -> npt.NDArray[np.float64]:
        """Probability of a report per scenario code (0 for legitimate)."""
        given = dict(self.report_prob_by_scenario)
        return np.array([given.get(name, 0.0) for name in SCENARIOS])


@dataclass(frozen=True)
class MerchantConfig:
    """Size, period, seed and time zone of a merchant world (defaults: a test-sized world)."""

    customers: int = 2000
    terminals: int = 200
    days: int = 120
    start: date = date(2025, 9, 1)
    seed: int = 20261207
    zone: str = "Europe/Paris"
    avoid_ambiguous_times: bool = True
    mechanisms: Mechanisms = field(default_factory=Mechanisms)

    def __post_init__(self) -> None:
        for name, low in (("customers", 1), ("terminals", 1), ("days", 1), ("seed", 0)):
            if getattr(self, name) < low:
                raise MerchantConfigError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if self.days > 3660:
            raise MerchantConfigError(f"days must be at most 3660 (ten years), got {self.days}")
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise MerchantConfigError(
                f"unknown time zone {self.zone!r}: use an IANA name such as 'Europe/Paris'"
            ) from None


@dataclass(frozen=True)
class MerchantSummary:
    """Headline figures of a generated export (also written to ``summary.json``)."""

    seed: int
    zone: str
    start: str
    end: str
    customers: int
    card_testing_accounts: int
    terminals: int
    cards: int
    transactions: int
    purchases: int
    auth_checks: int
    results: dict[str, int]
    reason_codes: dict[str, int]
    decline_rate: float
    error_rate: float
    fraud_transactions: int
    fraud_rate: float
    fraud_by_scenario: dict[str, int]
    chargebacks: int
    chargebacks_by_type: dict[str, int]
    fraud_reported_share: float
    fraud_reported_eventually_share: float
    report_delay_days: dict[str, float]
    times_moved_out_of_repeated_hours: int


# --- time -------------------------------------------------------------------------------------------------


def _naive(utc: npt.NDArray[Any], zone: str) -> pd.Series:
    """UTC instants as naive local wall times of ``zone``."""
    return (
        pd.Series(utc.astype("datetime64[s]")).dt.tz_localize("UTC").dt.tz_convert(zone).dt.tz_localize(None)
    )


def local_text(utc: npt.NDArray[Any], zone: str) -> npt.NDArray[np.object_]:
    """UTC instants written as local wall time without offset (:data:`LOCAL_FORMAT`)."""
    text: npt.NDArray[np.object_] = _naive(utc, zone).dt.strftime(LOCAL_FORMAT).to_numpy(dtype=object)
    return text


def in_repeated_hour(utc: npt.NDArray[Any], zone: str) -> npt.NDArray[np.bool_]:
    """Whether each instant's local wall time is ambiguous (it occurs twice when clocks go back)."""
    again = _naive(utc, zone).dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    ambiguous: npt.NDArray[np.bool_] = again.isna().to_numpy(dtype=bool)
    return ambiguous


def out_of_repeated_hours(
    utc: npt.NDArray[Any], zone: str, margin: np.timedelta64 = NO_MARGIN
) -> tuple[npt.NDArray[Any], int]:
    """Instants whose local time is in a repeated hour, or gets there within ``margin``, moved forward by
    whole hours until neither holds; also how many moved."""
    moved = utc.copy()

    def stuck(times: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        return in_repeated_hour(times, zone) | in_repeated_hour(times + margin, zone)

    mask = stuck(moved)
    count = int(mask.sum())
    while mask.any():
        moved[mask] += HOUR
        mask = stuck(moved)
    return moved, count


def _local_to_utc(naive: npt.NDArray[Any], zone: str, rng: np.random.Generator) -> npt.NDArray[Any]:
    """Local wall times as UTC instants: a repeated time is either of its instants, a skipped one moves on."""
    either = rng.random(len(naive)) < 0.5
    local = pd.Series(naive.astype("datetime64[s]")).dt.tz_localize(
        zone, ambiguous=either, nonexistent="shift_forward"
    )
    utc: npt.NDArray[Any] = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")
    return utc


def _seconds(values: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    return np.round(values).astype(np.int64).astype("timedelta64[s]")


def _uniform_times(
    rng: np.random.Generator,
    low: npt.NDArray[Any] | np.datetime64,
    high: npt.NDArray[Any] | np.datetime64,
    n: int,
) -> npt.NDArray[Any]:
    return low + _seconds(rng.uniform(0.0, 1.0, size=n) * _days_between(low, high) * 86400.0)


def _days_between(earlier: Any, later: Any) -> npt.NDArray[np.float64]:
    """Days from ``earlier`` to ``later`` (instants or arrays of them), as floats."""
    seconds = np.asarray(later, dtype="datetime64[s]").astype(np.int64) - np.asarray(
        earlier, dtype="datetime64[s]"
    ).astype(np.int64)
    days: npt.NDArray[np.float64] = seconds / 86400.0
    return days


@dataclass(frozen=True)
class _Period:
    """The export's period as UTC instants, and its first local midnight as a naive wall time."""

    start: np.datetime64
    end: np.datetime64
    local_start: np.datetime64
    zone: str

    @classmethod
    def of(cls, config: MerchantConfig) -> _Period:
        first = pd.Timestamp(config.start).tz_localize(config.zone)
        last = (pd.Timestamp(config.start) + pd.Timedelta(days=config.days)).tz_localize(config.zone)
        as_utc = [
            t.tz_convert("UTC").tz_localize(None).to_datetime64().astype("datetime64[s]")
            for t in (first, last)
        ]
        return cls(as_utc[0], as_utc[1], np.datetime64(config.start, "s"), config.zone)


# --- the world's static parts -----------------------------------------------------------------------------


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One random stream per part of the world, so that changing one mechanism leaves the others alone."""
    names = ("bins", "terminals", "customers", "cards", "purchases", "terminal", "card", "testing", "large",
             "results", "reports", "tokens")  # fmt: skip
    children = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children, strict=True)}


@dataclass(frozen=True)
class _Bins:
    """Issuer BINs: ``bins[i]`` is issued in ``country[i]`` (a code into :data:`COUNTRIES`)."""

    bins: npt.NDArray[np.object_]
    country: npt.NDArray[np.int64]

    def choose(self, rng: np.random.Generator, country: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """A BIN row per card: mostly one of the country's issuers (big issuers first), else any issuer."""
        per_country = np.bincount(self.country, minlength=len(COUNTRIES))
        first = np.concatenate(([0], np.cumsum(per_country)[:-1]))
        rank = np.minimum(rng.geometric(0.4, size=len(country)) - 1, per_country[country] - 1)
        anywhere = rng.integers(0, len(self.bins), size=len(country))
        usable = (per_country[country] > 0) & (rng.random(len(country)) >= 0.1)
        return np.where(usable, first[country] + rank, anywhere)


def _bin_table(rng: np.random.Generator) -> _Bins:
    """Four to eight issuers per home country and two per foreign one, each with a plausible 6-digit BIN."""
    counts = np.array([int(rng.integers(4, 9)) for _ in HOME_COUNTRIES] + [2] * len(FOREIGN_COUNTRIES))
    country = np.repeat(np.arange(len(COUNTRIES)), counts)
    n = len(country)
    network = rng.choice(3, size=n, p=[0.55, 0.38, 0.07])
    visa = 400000 + rng.integers(0, 100000, size=n)
    mastercard = 510000 + rng.integers(0, 50000, size=n)
    series2 = 222100 + rng.integers(0, 272100 - 222100, size=n)
    numbers = np.choose(network, [visa, mastercard, series2])
    _, first = np.unique(numbers, return_index=True)
    unique = np.zeros(n, dtype=bool)
    unique[first] = True
    numbers, country = numbers[unique], country[unique]
    return _Bins(np.array([f"{b:06d}" for b in numbers.tolist()], dtype=object), country)


def _tokens(rng: np.random.Generator, n: int) -> npt.NDArray[np.object_]:
    """Opaque card tokens: ``ctk_`` and 16 lower-case letters (no digits, so never a card number)."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    raw = letters[rng.integers(0, 26, size=(n, 16))]
    out = np.empty(n, dtype=object)
    out[:] = ["ctk_" + row.tobytes().decode("ascii") for row in raw]
    return out


def _ids(prefix: str, numbers: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.object_]:
    out = np.empty(len(numbers), dtype=object)
    out[:] = [f"{prefix}{n:0{width}d}" for n in numbers.tolist()]
    return out


def _ip_country(
    rng: np.random.Generator, home: npt.NDArray[np.int64], channel: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Client IP country: home, abroad for 4% (travel), empty for phone orders and 5% of the rest."""
    u = rng.random(len(home))
    travel = rng.integers(0, len(HOME_COUNTRIES), size=len(home))
    country = np.where(u < 0.04, travel, home)
    return np.where((channel == MOTO) | (u > 0.95), NO_COUNTRY, country)


def _batch(**columns: Any) -> Columns:
    """Transaction columns of one mechanism, scalars broadcast to the batch's length."""
    n = len(columns["at"])
    return {key: np.broadcast_to(np.asarray(value), (n,)).copy() for key, value in columns.items()}


def _concat(batches: list[Columns]) -> Columns:
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}


# --- the simulation -----------------------------------------------------------------------------------------


class _Simulation:
    """Builds one export: customers, terminals and cards, then each mechanism's transactions, results and
    reports, every part from its own random stream."""

    def __init__(self, config: MerchantConfig) -> None:
        self.config = config
        self.m = config.mechanisms
        self.period = _Period.of(config)
        self.rng = _streams(config.seed)
        self.bins = _bin_table(self.rng["bins"])
        rng = self.rng["terminals"]
        self.channel = rng.choice(len(CHANNELS), size=config.terminals, p=np.array(CHANNEL_WEIGHTS))
        self.channel[0] = WEB  # the merchant's main web shop: every world has one
        popularity = rng.lognormal(0.0, 0.8, size=config.terminals)
        self.popularity = popularity / popularity.sum()
        self.customers = self._customers()
        self.cards = self._cards()
        self.moved = 0

    # --------------------------------------------------------------------------------- population
    def _popular_terminals(self, rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
        draws = np.searchsorted(np.cumsum(self.popularity), rng.random(shape), side="right")
        return np.minimum(draws, self.config.terminals - 1)

    def _customers(self) -> Columns:
        rng, n, period = self.rng["customers"], self.config.customers, self.period
        existing = rng.random(n) < self.m.existing_customer_share
        before = _uniform_times(rng, period.start - 3 * 365 * DAY, period.start - DAY, n)
        during = _uniform_times(rng, period.start, period.end - HOUR, n)
        weights = np.array(HOME_WEIGHTS)
        return {
            "since": np.where(existing, before, during),
            "home": rng.choice(len(HOME_COUNTRIES), size=n, p=weights / weights.sum()),
            "mean_cents": rng.uniform(500.0, 12_000.0, size=n),
            "rate": rng.gamma(2.0, self.m.purchases_per_day / 2.0, size=n),
            "fragility": rng.normal(0.0, 0.8, size=n),
            "favourites": self._popular_terminals(rng, (n, 6)),
            "favourite_count": rng.integers(2, 7, size=n),
        }

    def _cards(self) -> Columns:
        """Every customer's cards, sorted by customer then by the time each was added."""
        rng, c, period = self.rng["cards"], self.customers, self.period
        n = len(c["since"])
        second = rng.random(n) < self.m.extra_card_prob
        third = second & (rng.random(n) < self.m.extra_card_prob)
        extra = np.concatenate((np.flatnonzero(second), np.flatnonzero(third)))
        active_from = np.maximum(c["since"][extra], period.start)
        customer = np.concatenate((np.arange(n), extra))
        added = np.concatenate((c["since"], _uniform_times(rng, active_from, period.end, len(extra))))
        order = np.lexsort((added, customer))
        customer, added = customer[order], added[order]
        return {
            "customer": customer,
            "added": added,
            "bin_row": self.bins.choose(rng, c["home"][customer]),
            "dead": np.zeros(len(customer), dtype=bool),
        }

    def _card_at(
        self, rng: np.random.Generator, customer: npt.NDArray[np.int64], at: npt.NDArray[Any], previous: float
    ) -> npt.NDArray[np.int64]:
        """The customer's newest card at each time (the one before it with probability ``previous``); a
        card is usable once its €0 check is done (:data:`CHECK_DELAY` after it was added)."""

        def key(who: npt.NDArray[np.int64], when: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
            return who * 10**11 + when.astype("datetime64[s]").astype(np.int64)

        cards = self.cards["customer"]
        ready = key(cards, self.cards["added"] + CHECK_DELAY)
        first = np.searchsorted(cards, customer, "left")
        newest = np.maximum(np.searchsorted(ready, key(customer, at), "right") - 1, first)
        older = np.maximum(newest - 1, first)
        return np.where(rng.random(len(customer)) < previous, older, newest)

    # ------------------------------------------------------------------------------ legitimate use
    def _purchases(self) -> Columns:
        rng, c, period = self.rng["purchases"], self.customers, self.period
        active_from = np.maximum(c["since"], period.start)
        count = rng.poisson(c["rate"] * _days_between(active_from, period.end))
        customer = np.repeat(np.arange(len(count)), count)
        first_day = np.floor(_days_between(period.start, active_from)).astype(np.int64)[customer]
        day = first_day + np.floor(rng.random(len(customer)) * (self.config.days - first_day)).astype(
            np.int64
        )
        hours = np.mod(rng.normal(14.0, 4.5, size=len(customer)), 24.0)
        naive = period.local_start + day * DAY + _seconds(hours * 3600.0)
        at = _local_to_utc(naive, period.zone, rng)
        since = c["since"][customer]
        early = at < since + CHECK_DELAY  # a new account buys once its first card is checked
        at = np.where(early, since + CHECK_DELAY + _seconds(rng.uniform(0.0, 3600.0, size=len(customer))), at)
        at = np.minimum(at, period.end - np.timedelta64(1, "s"))
        favourite = np.floor(rng.random(len(customer)) * c["favourite_count"][customer]).astype(np.int64)
        terminal = c["favourites"][customer, favourite]
        return _batch(
            at=at,
            customer=customer,
            terminal=terminal,
            card=self._card_at(rng, customer, at, self.m.previous_card_prob),
            cents=np.maximum(50, np.round(rng.gamma(4.0, c["mean_cents"][customer] / 4.0))).astype(np.int64),
            auth=False,
            ip=_ip_country(rng, c["home"][customer], self.channel[terminal]),
            scenario=LEGIT,
        )

    def _checks(self) -> Columns:
        """€0 checks: when a card is added during the export, and re-verifications of active cards."""
        rng, cards, period = self.rng["cards"], self.cards, self.period
        new = np.flatnonzero(cards["added"] >= period.start)
        active_from = np.maximum(cards["added"], period.start)
        again = rng.poisson(
            self.m.reverifications_per_card_per_100_days / 100 * _days_between(active_from, period.end)
        )
        reverified = np.repeat(np.arange(len(again)), again)
        card = np.concatenate((new, reverified))
        at = np.concatenate(
            (
                cards["added"][new] + _seconds(rng.uniform(5.0, 0.9 * CHECK_SECONDS, size=len(new))),
                _uniform_times(rng, active_from[reverified], period.end, len(reverified)),
            )
        )
        customer = cards["customer"][card]
        terminal = self.customers["favourites"][customer, 0]
        return _batch(
            at=np.minimum(at, period.end - np.timedelta64(1, "s")),
            customer=customer,
            terminal=terminal,
            card=card,
            cents=0,
            auth=True,
            ip=_ip_country(rng, self.customers["home"][customer], self.channel[terminal]),
            scenario=LEGIT,
        )

    # -------------------------------------------------------------------------------------- fraud
    def _compromise_terminals(self, tx: Columns) -> None:
        """Purchases on a compromised web/app terminal within its window turn fraudulent (in place)."""
        rng, m, period = self.rng["terminal"], self.m, self.period
        events = int(rng.poisson(m.terminal_compromises_per_100_days * self.config.days / 100))
        online = np.flatnonzero(self.channel != MOTO)
        terminals = rng.choice(online, size=events)
        starts = _uniform_times(rng, period.start, period.end, events)
        for terminal, start in zip(terminals.tolist(), starts, strict=True):
            window = (tx["at"] >= start) & (tx["at"] < start + m.terminal_compromise_days * DAY)
            hit = (tx["terminal"] == terminal) & window & (tx["scenario"] == LEGIT) & ~tx["auth"]
            tx["scenario"][hit & (rng.random(len(hit)) < m.terminal_fraud_share)] = TERMINAL_FRAUD

    def _compromise_cards(self, tx: Columns) -> Columns:
        """Compromised cards: a share of the customer's own purchases turn fraudulent with inflated amounts
        (in place), and the fraudster's own purchases on the card (returned)."""
        rng, m, c, period = self.rng["card"], self.m, self.customers, self.period
        n = len(c["since"])
        events = int(rng.poisson(m.card_compromises_per_customer_per_100_days * n * self.config.days / 100))
        victim = rng.integers(0, n, size=events)
        starts = _uniform_times(rng, np.maximum(c["since"][victim], period.start), period.end, events)
        low, high = m.amount_multiplier
        length = m.card_compromise_days * DAY
        for who, start in zip(victim.tolist(), starts, strict=True):
            window = (tx["at"] >= start) & (tx["at"] < start + length)
            hit = (tx["customer"] == who) & window & (tx["scenario"] == LEGIT) & ~tx["auth"]
            hit &= rng.random(len(hit)) < m.card_fraud_share
            tx["scenario"][hit] = CARD_FRAUD
            tx["cents"][hit] = np.round(tx["cents"][hit] * rng.uniform(low, high, size=int(hit.sum())))
        event = np.repeat(np.arange(events), rng.poisson(m.fraudster_purchases, size=events))
        at = starts[event] + _seconds(rng.uniform(0.0, length / np.timedelta64(1, "s"), size=len(event)))
        keep = at < period.end
        event, at = event[keep], at[keep]
        customer = victim[event]
        card = self._card_at(rng, victim, starts, 0.0)[event]
        terminal = self._popular_terminals(rng, (len(event),))
        foreign = len(HOME_COUNTRIES) + rng.integers(0, len(FOREIGN_COUNTRIES), size=len(event))
        ip = np.where(rng.random(len(event)) < 0.5, foreign, c["home"][customer])
        usual = rng.gamma(4.0, c["mean_cents"][customer] / 4.0)
        return _batch(
            at=at,
            customer=customer,
            terminal=terminal,
            card=card,
            cents=np.maximum(100, np.round(usual * rng.uniform(low, high, size=len(event)))).astype(np.int64),
            auth=False,
            ip=np.where(self.channel[terminal] == MOTO, NO_COUNTRY, ip),
            scenario=CARD_FRAUD,
        )

    def _card_testing(self) -> list[Columns]:
        """Card-testing rings (see :meth:`_ring`)."""
        rng = self.rng["testing"]
        rings = int(rng.poisson(self.m.testing_rings_per_100_days * self.config.days / 100))
        return [self._ring(rng) for _ in range(rings)]

    def _ring(self, rng: np.random.Generator) -> Columns:
        """One ring: fresh accounts and fresh cards of one BIN, a €0 check per card (often followed by a
        small purchase) seconds apart at night from one foreign IP country on one web terminal, then large
        purchases on some of the cards that worked, on any online terminal, minutes to hours later."""
        m, period = self.m, self.period
        hour = np.mod(rng.normal(3.0, 1.5, size=1), 24.0)
        night = period.local_start + int(rng.integers(0, self.config.days)) * DAY + _seconds(hour * 3600.0)
        begin = _local_to_utc(night, period.zone, rng)[0]
        accounts = self._new_accounts(rng, int(rng.integers(1, 4)), begin)
        cards = int(rng.integers(m.testing_cards[0], m.testing_cards[1] + 1))
        checked = begin + _seconds(np.cumsum(rng.uniform(10.0, 120.0, size=cards)))
        bin_row = np.full(cards, rng.integers(0, len(self.bins.bins)))
        card = self._new_cards(rng, rng.choice(accounts, size=cards), checked, bin_row)
        small = np.flatnonzero(rng.random(cards) < 0.6)
        live = np.flatnonzero(~self.cards["dead"][card] & (rng.random(cards) < m.testing_cashout_prob))
        row_card = np.concatenate((card, card[small], card[live]))
        at = np.concatenate(
            (
                checked,
                checked[small] + _seconds(rng.uniform(5.0, 60.0, size=len(small))),
                checked[-1] + _seconds(rng.uniform(600.0, 6 * 3600.0, size=len(live))),
            )
        )
        cents = np.concatenate(
            (
                np.zeros(cards, dtype=np.int64),
                rng.integers(50, 201, size=len(small)),
                rng.integers(15_000, 90_001, size=len(live)),
            )
        )
        web, online = np.flatnonzero(self.channel == WEB), np.flatnonzero(self.channel != MOTO)
        terminal = np.concatenate(
            (np.full(cards + len(small), rng.choice(web)), rng.choice(online, size=len(live)))
        )
        keep = at < period.end
        return _batch(
            at=at[keep],
            customer=self.cards["customer"][row_card][keep],
            terminal=terminal[keep],
            card=row_card[keep],
            cents=cents[keep],
            auth=(np.arange(len(at)) < cards)[keep],
            ip=len(HOME_COUNTRIES) + int(rng.integers(0, len(FOREIGN_COUNTRIES))),
            scenario=CARD_TESTING,
        )

    def _new_accounts(
        self, rng: np.random.Generator, count: int, before: np.datetime64
    ) -> npt.NDArray[np.int64]:
        """Fresh accounts opened shortly before ``before`` (a card-testing ring's); returns their numbers."""
        c = self.customers
        first = len(c["since"])
        added: Columns = {
            "since": before - _seconds(rng.uniform(60.0, 7200.0, size=count)),
            "home": np.zeros(count, dtype=np.int64),
            "mean_cents": np.full(count, 1000.0),
            "rate": np.zeros(count),
            "fragility": np.zeros(count),
            "favourites": np.zeros((count, c["favourites"].shape[1]), dtype=np.int64),
            "favourite_count": np.ones(count, dtype=np.int64),
        }
        self.customers = {key: np.concatenate((c[key], added[key])) for key in c}
        return np.arange(first, first + count)

    def _new_cards(
        self,
        rng: np.random.Generator,
        customer: npt.NDArray[np.int64],
        added: npt.NDArray[Any],
        bin_row: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """Append cards (a card-testing ring's, some dead); returns their numbers."""
        first = len(self.cards["customer"])
        dead = rng.random(len(customer)) < self.m.testing_dead_share
        new = {"customer": customer, "added": added, "bin_row": bin_row, "dead": dead}
        self.cards = {key: np.concatenate((self.cards[key], new[key])) for key in self.cards}
        return np.arange(first, first + len(customer))

    def _large_amounts(self, tx: Columns) -> None:
        """A small rate of legitimate-looking purchases become large-amount fraud (in place)."""
        rng = self.rng["large"]
        hit = (tx["scenario"] == LEGIT) & ~tx["auth"] & (rng.random(len(tx["at"])) < self.m.large_amount_rate)
        count = int(hit.sum())
        tx["scenario"][hit] = LARGE_AMOUNT
        tx["cents"][hit] = rng.integers(30_000, 200_001, size=count)
        foreign = len(HOME_COUNTRIES) + rng.integers(0, len(FOREIGN_COUNTRIES), size=count)
        abroad = (rng.random(count) < 0.3) & (self.channel[tx["terminal"][hit]] != MOTO)
        tx["ip"][hit] = np.where(abroad, foreign, tx["ip"][hit])

    # ---------------------------------------------------------------------------------- assembling
    def transactions(self) -> Columns:
        """Every transaction of every mechanism, moved out of repeated hours if asked, in time order."""
        tx = _concat([self._purchases(), self._checks()])
        self._compromise_terminals(tx)
        fraudster = self._compromise_cards(tx)
        self._large_amounts(tx)
        tx = _concat([tx, fraudster, *self._card_testing()])
        tx["at"] = self._writable(tx["at"], margin=RESPONSE_MARGIN)
        order = np.lexsort((np.arange(len(tx["at"])), tx["at"]))
        return {key: value[order] for key, value in tx.items()}

    def _writable(self, utc: npt.NDArray[Any], margin: np.timedelta64 = NO_MARGIN) -> npt.NDArray[Any]:
        """Instants as they will be written: out of repeated local hours (with a ``margin`` before them)
        when the config asks for it."""
        if not self.config.avoid_ambiguous_times:
            return utc
        moved, count = out_of_repeated_hours(utc, self.period.zone, margin)
        self.moved += count
        return moved

    def _incidents(self, bin_row: npt.NDArray[np.int64], at: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        """Whether each request falls in an incident window of its card's issuer (hours long, per BIN)."""
        rng, period = self.rng["results"], self.period
        count = rng.poisson(self.config.days / self.m.incident_every_days, size=len(self.bins.bins))
        issuer = np.repeat(np.arange(len(count)), count)
        begin = _uniform_times(rng, period.start, period.end, len(issuer))
        end = begin + _seconds(rng.lognormal(np.log(2 * 3600.0), 0.6, size=len(issuer)))
        hit = np.zeros(len(at), dtype=bool)
        for row, first, last in zip(issuer.tolist(), begin, end, strict=True):
            hit |= (bin_row == row) & (at >= first) & (at < last)
        return hit

    def results(self, tx: Columns) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """Each request's reason code (an index into :data:`REASON_CODES`, :data:`APPROVED` when OK) and
        the instant of the response."""
        rng, m, n = self.rng["results"], self.m, len(tx["at"])
        bin_row = self.cards["bin_row"][tx["card"]]
        local = _naive(tx["at"], self.period.zone)
        month_end = (local.dt.day > local.dt.days_in_month - 5).to_numpy(dtype=bool)
        euros = np.maximum(tx["cents"] / 100.0, 1.0)
        funds = (
            m.funds_base
            + m.funds_month_end_coef * month_end
            + m.funds_amount_coef * np.log(euros / 40.0)
            + self.customers["fragility"][tx["customer"]]
        )
        caught = (tx["scenario"] != LEGIT) & ((tx["scenario"] != CARD_TESTING) | (tx["cents"] >= 15_000))
        chances = {
            "96": np.full(n, m.error_rate),
            "91": np.where(self._incidents(bin_row, tx["at"]), m.incident_error_prob, 0.0),
            "43": np.where(caught, m.fraud_decline_prob, 0.0),
            "54": np.full(n, m.expired_rate),
            "05": np.full(n, m.do_not_honour_rate),
            "51": np.where(tx["auth"], 0.0, 1.0 / (1.0 + np.exp(-funds))),
        }
        reason = np.full(n, APPROVED, dtype=np.int64)
        for code, chance in chances.items():
            if code == "43":  # a dead tested card is refused before anything else the issuer checks
                dead = (reason == APPROVED) & self.cards["dead"][tx["card"]]
                codes = np.array([_REASON["14"], _REASON["54"], _REASON["05"]])
                reason[dead] = rng.choice(codes, size=int(dead.sum()), p=[0.5, 0.2, 0.3])
            fires = (reason == APPROVED) & (rng.random(n) < chance)
            reason[fires] = _REASON[code]
        error = np.isin(reason, [_REASON["96"], _REASON["91"]])
        delay = np.where(error, rng.uniform(8.0, 30.0, size=n), 1.0 + rng.lognormal(0.3, 0.6, size=n))
        delay = np.minimum(delay, RESPONSE_MARGIN / np.timedelta64(1, "s") / 2)
        return reason, self._writable(tx["at"] + _seconds(delay))

    def reports(self, tx: Columns, reason: npt.NDArray[np.int64]) -> Columns:
        """Chargebacks and issuer fraud reports that arrive before the export ends, in order of arrival."""
        rng, m, n = self.rng["reports"], self.m, len(tx["at"])
        approved, zero = reason == APPROVED, tx["cents"] == 0
        chance = np.where(
            approved,
            np.where(zero, m.tc40_on_checks_prob, m.report_probability()[tx["scenario"]]),
            m.tc40_on_declined_prob,
        )
        reported = (tx["scenario"] != LEGIT) & (rng.random(n) < chance)
        chargeback = approved & ~zero & (rng.random(n) < m.chargeback_share)
        median = np.where(chargeback, m.chargeback_median_days, m.tc40_median_days)
        days = np.clip(median * np.exp(m.report_delay_sigma * rng.standard_normal(n)), 1.0, 120.0)
        received = tx["at"] + _seconds(days * 86400.0)
        keep = np.flatnonzero(reported & (received < self.period.end))
        received = self._writable(received[keep])
        order = np.lexsort((keep, received))
        return {
            "tx": keep[order],
            "received": received[order],
            "chargeback": chargeback[keep][order],
            "delay_days": _days_between(tx["at"][keep], received)[order],
            "eventually": np.array(reported.sum()),
        }


# --- writing --------------------------------------------------------------------------------------------


def _prepare(out_dir: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier export unless asked; other files in the folder are left alone."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputExistsError(f"output {out_dir} exists and is not a folder; choose another --out")
    present = [name for name in FILES if (out_dir / name).exists()]
    if present and not overwrite:
        raise OutputExistsError(
            f"output folder {out_dir} already holds {present}; refusing to overwrite them. "
            "Choose another --out, or pass --force to replace them."
        )
    out_dir.mkdir(parents=True, exist_ok=True)


def _names(names: tuple[str, ...], codes: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Names of codes; negative codes are empty values."""
    lookup = np.array([*names, None], dtype=object)
    return lookup[np.where(codes < 0, len(names), codes)]


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def _frames(
    sim: _Simulation, tx: Columns, reason: npt.NDArray[np.int64], responded: npt.NDArray[Any], cases: Columns
) -> dict[str, pd.DataFrame]:
    """The four CSV files as data frames, in the provider's column names."""
    zone, n = sim.period.zone, len(tx["at"])
    tx_id = _ids("T", np.arange(1, n + 1), 9)
    since = _naive(sim.customers["since"], zone).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    tokens = _tokens(sim.rng["tokens"], len(sim.cards["customer"]))
    codes = tuple(r.code for r in REASON_CODES)
    result_of = np.array([*(RESULTS.index(r.result) for r in REASON_CODES), RESULTS.index("OK")])
    return {
        TRANSACTIONS_FILE: pd.DataFrame(
            {
                "TX_ID": tx_id,
                "TX_DATETIME": local_text(tx["at"], zone),
                "CUSTOMER_ID": _ids("C", tx["customer"] + 1, 6),
                "CUSTOMER_SINCE": since[tx["customer"]],
                "TERMINAL_ID": _ids("TRM", tx["terminal"] + 1, 4),
                "CARD_TOKEN": tokens[tx["card"]],
                "CARD_BIN": sim.bins.bins[sim.cards["bin_row"][tx["card"]]],
                "TX_AMOUNT": tx["cents"].astype(np.int64),
                "TX_TYPE": np.where(tx["auth"], AUTH_CHECK, PURCHASE),
                "CHANNEL": _names(CHANNELS, sim.channel[tx["terminal"]]),
                "IP_COUNTRY": _names(COUNTRIES, tx["ip"]),
            }
        ),
        RESULTS_FILE: pd.DataFrame(
            {
                "TX_ID": tx_id,
                "RESPONDED_AT": local_text(responded, zone),
                "RESULT": np.array(RESULTS, dtype=object)[result_of[reason]],
                "REASON_CODE": _names(codes, reason),
            }
        ),
        CHARGEBACKS_FILE: pd.DataFrame(
            {
                "CASE_ID": _ids("CASE", np.arange(1, len(cases["tx"]) + 1), 7),
                "TX_ID": tx_id[cases["tx"]],
                "RECEIVED_AT": local_text(cases["received"], zone),
                "TYPE": np.where(cases["chargeback"], CHARGEBACK_TYPES[0], CHARGEBACK_TYPES[1]),
            }
        ),
        TRUTH_FILE: pd.DataFrame(
            {
                "TX_ID": tx_id,
                "IS_FRAUD": (tx["scenario"] != LEGIT).astype(np.int64),
                "SCENARIO": _names(SCENARIOS, np.where(tx["scenario"] == LEGIT, -1, tx["scenario"])),
            }
        ),
    }


def _ratio(numerator: float, denominator: float) -> float:
    return round(float(numerator / denominator), 6) if denominator else 0.0


def _counts(values: npt.NDArray[Any], names: tuple[str, ...]) -> dict[str, int]:
    return {name: int((values == name).sum()) for name in names}


def _summary(sim: _Simulation, frames: dict[str, pd.DataFrame], cases: Columns) -> MerchantSummary:
    config = sim.config
    tx, results, truth = frames[TRANSACTIONS_FILE], frames[RESULTS_FILE], frames[TRUTH_FILE]
    chargebacks = frames[CHARGEBACKS_FILE]
    n, fraud = len(tx), int(truth["IS_FRAUD"].sum())
    delays = cases["delay_days"]
    quantiles = {"q50": 0.5, "q90": 0.9, "max": 1.0}
    return MerchantSummary(
        seed=config.seed,
        zone=config.zone,
        start=config.start.isoformat(),
        end=(pd.Timestamp(config.start) + pd.Timedelta(days=config.days)).date().isoformat(),
        customers=config.customers,
        card_testing_accounts=len(sim.customers["since"]) - config.customers,
        terminals=config.terminals,
        cards=len(sim.cards["customer"]),
        transactions=n,
        purchases=int((tx["TX_TYPE"] == PURCHASE).sum()),
        auth_checks=int((tx["TX_TYPE"] == AUTH_CHECK).sum()),
        results=_counts(results["RESULT"].to_numpy(), RESULTS),
        reason_codes=_counts(results["REASON_CODE"].to_numpy(), tuple(r.code for r in REASON_CODES)),
        decline_rate=_ratio(int((results["RESULT"] == "KO").sum()), n),
        error_rate=_ratio(int((results["RESULT"] == "ERR").sum()), n),
        fraud_transactions=fraud,
        fraud_rate=_ratio(fraud, n),
        fraud_by_scenario=_counts(truth["SCENARIO"].to_numpy(), SCENARIOS[1:]),
        chargebacks=len(chargebacks),
        chargebacks_by_type=_counts(chargebacks["TYPE"].to_numpy(), CHARGEBACK_TYPES),
        fraud_reported_share=_ratio(len(chargebacks), fraud),
        fraud_reported_eventually_share=_ratio(int(cases["eventually"]), fraud),
        report_delay_days={
            key: round(float(np.quantile(delays, q)), 1) if len(delays) else 0.0
            for key, q in quantiles.items()
        },
        times_moved_out_of_repeated_hours=sim.moved,
    )


def generate(config: MerchantConfig, out_dir: Path, *, overwrite: bool = False) -> MerchantSummary:
    """Write the merchant's export (:data:`FILES`) for ``config`` under ``out_dir``; returns its summary.

    Refuses to replace an earlier export there unless ``overwrite``."""
    started = time.perf_counter()
    _prepare(out_dir, overwrite)
    sim = _Simulation(config)
    tx = sim.transactions()
    reason, responded = sim.results(tx)
    cases = sim.reports(tx, reason)
    frames = _frames(sim, tx, reason, responded, cases)
    for name, frame in frames.items():
        _write(frame, out_dir / name)
    summary = _summary(sim, frames, cases)
    (out_dir / SUMMARY_FILE).write_text(json.dumps(asdict(summary), indent=2) + "\n")
    logger.info(
        "merchant export: %d transactions in %.1f s, fraud %.2f%%, declines %.1f%%, %d chargebacks",
        summary.transactions, time.perf_counter() - started, 100 * summary.fraud_rate,
        100 * summary.decline_rate, summary.chargebacks,
    )  # fmt: skip
    return summary


def main(argv: list[str] | None = None) -> None:
    """``python -m simulator.merchant --out DIR``: write an export and print its summary as JSON."""
    defaults = MerchantConfig()
    parser = argparse.ArgumentParser(
        prog="python -m simulator.merchant",
        description="Write a simulated card-not-present merchant's raw export (CSV) and its ground truth.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the export into")
    parser.add_argument(
        "--customers", type=int, default=defaults.customers, help="customers (default %(default)s)"
    )
    parser.add_argument(
        "--terminals", type=int, default=defaults.terminals, help="terminals (default %(default)s)"
    )
    parser.add_argument("--days", type=int, default=defaults.days, help="days exported (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=defaults.start,
        help="first day, YYYY-MM-DD (default %(default)s)",
    )
    parser.add_argument(
        "--zone", default=defaults.zone, help="IANA time zone of the local times (default %(default)s)"
    )
    parser.add_argument(
        "--keep-ambiguous-times",
        action="store_true",
        help="keep local times in the hour repeated when clocks go back (riskgate's importer refuses them)",
    )
    parser.add_argument("--force", action="store_true", help="replace an earlier export in --out")
    args = parser.parse_args(argv)
    try:
        config = MerchantConfig(
            customers=args.customers, terminals=args.terminals, days=args.days, start=args.start,
            seed=args.seed, zone=args.zone, avoid_ambiguous_times=not args.keep_ambiguous_times,
        )  # fmt: skip
        summary = generate(config, args.out, overwrite=args.force)
    except (MerchantConfigError, OutputExistsError) as error:
        parser.exit(2, f"error: {error}\n")
    sys.stdout.write(json.dumps(asdict(summary), indent=2) + "\n")


if __name__ == "__main__":
    main()
