"""The feature set of the card-not-present merchant example, in riskgate's vocabulary.

A provider's feature module: one :class:`~features.definitions.FeatureSet` declared as data, over the core
contract's fields (the customer account, the card token, the BIN, the amount) and the provider's own fields
that ``mapping.yaml`` declares (the merchant terminal, the sales channel, the transaction type). Use it with
``--feature-set merchant_features:FEATURE_SET`` (or ``RISKGATE_FEATURE_SET``) with this folder on
``PYTHONPATH``. What each group is for:

* terminals: compromised terminals take fraud for weeks; frauds *reported* on a terminal in the 28 days before
  the last week (reports need time to arrive), over the terminal's attempts in the same window, find them;
* customers and cards: velocity, how unusual the amount is for the customer (z-score against the mean and
  spread, and against the median), declines, whole-history reports;
* card testing: zero-amount authorisation checks and small amounts on a fresh card, bursts per BIN;
* the attempt itself: amount, channel, transaction type, the customer's tenure from the export's
  ``CUSTOMER_SINCE`` (so tenure does not start where the export starts), and the local clock in Paris.
"""

from __future__ import annotations

from typing import Final

from events.schema import ExtensionField, FieldType
from features.definitions import (
    ACCOUNT,
    BIN,
    CARD,
    DECLINED,
    Aggregate,
    Definition,
    Entity,
    FeatureSet,
    Filter,
    Op,
    RangeFilter,
    Ratio,
    RequestFeature,
    Source,
    Transform,
    days,
    hours,
    zscore,
)

A, OUT, REP = Source.ATTEMPTS, Source.OUTCOMES, Source.REPORTS
ZONE: Final = "Europe/Paris"

#: The provider's own fields, as the mapping declares them (the import refuses a different type).
FIELDS: Final = (
    ExtensionField("terminal_id", FieldType.KEY, "The merchant terminal the card was presented to."),
    ExtensionField("channel", FieldType.CATEGORY, "Where the customer paid.", ("web", "app", "moto")),
    ExtensionField(
        "tx_type",
        FieldType.CATEGORY,
        "A purchase, or a zero-amount authorisation check made when a card is added.",
        ("purchase", "auth_check"),
    ),
)

TERMINAL: Final = Entity("terminal", "terminal_id")
#: A zero-amount authorisation check (or any amount under one cent).
ZERO: Final = RangeFilter("amount", high=0.01)
#: Small amounts, the usual probe of card testing.
SMALL: Final = RangeFilter("amount", low=0.01, high=5.0)
PURCHASES: Final = Filter("purchases", "tx_type", ("purchase",))
#: 28 days ending a week ago: reports about those attempts have mostly arrived.
SETTLED: Final = days(28).delayed(days(7))


def _terminal() -> list[Definition]:
    return [
        Aggregate(TERMINAL, A, Op.COUNT, hours(24)),
        Aggregate(TERMINAL, A, Op.COUNT, days(7)),
        Aggregate(TERMINAL, A, Op.DISTINCT, days(7), value="payment_method_id"),
        Aggregate(TERMINAL, REP, Op.COUNT, days(7)),
        Aggregate(TERMINAL, REP, Op.COUNT, days(28)),
        Ratio(Aggregate(TERMINAL, REP, Op.COUNT, SETTLED), Aggregate(TERMINAL, A, Op.COUNT, SETTLED)),
        Aggregate(TERMINAL, OUT, Op.RATIO, days(7), DECLINED),
        Aggregate(TERMINAL, A, Op.MEAN, days(28), value="amount"),
    ]


def _customer() -> list[Definition]:
    return [
        Aggregate(ACCOUNT, A, Op.COUNT, hours(24)),
        Aggregate(ACCOUNT, A, Op.COUNT, days(7)),
        Aggregate(ACCOUNT, A, Op.COUNT, days(30)),
        Aggregate(ACCOUNT, A, Op.SUM, hours(24), value="amount"),
        zscore(ACCOUNT, A, days(30), PURCHASES),
        Aggregate(ACCOUNT, A, Op.QUANTILE, days(30), PURCHASES, value="amount", q=0.5),
        Aggregate(ACCOUNT, A, Op.MAX, days(30), value="amount"),
        Aggregate(ACCOUNT, A, Op.DISTINCT, days(30), value="payment_method_id"),
        Aggregate(ACCOUNT, A, Op.DISTINCT, days(7), value="terminal_id"),
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(7), DECLINED),
        Aggregate(ACCOUNT, REP, Op.COUNT),
        Ratio(Aggregate(ACCOUNT, A, Op.COUNT, hours(24)), Aggregate(ACCOUNT, A, Op.COUNT, days(30))),
    ]


def _card() -> list[Definition]:
    return [
        Aggregate(CARD, A, Op.COUNT, hours(1)),
        Aggregate(CARD, A, Op.COUNT, hours(24)),
        Aggregate(CARD, A, Op.COUNT, hours(24), ZERO),
        Aggregate(CARD, A, Op.COUNT, hours(24), SMALL),
        Aggregate(CARD, A, Op.SUM, hours(24), value="amount"),
        Aggregate(CARD, A, Op.TIME_SINCE_FIRST),
        Aggregate(CARD, OUT, Op.COUNT, hours(24), DECLINED),
        Aggregate(CARD, OUT, Op.CONSECUTIVE, filter=DECLINED),
        Aggregate(CARD, REP, Op.COUNT),
        Aggregate(BIN, A, Op.COUNT, hours(1), ZERO),
        Aggregate(BIN, OUT, Op.RATIO, hours(24), DECLINED),
    ]


def _request() -> list[Definition]:
    return [
        RequestFeature(Transform.NUMBER, "amount"),
        RequestFeature(Transform.CATEGORY, "channel"),
        RequestFeature(Transform.CATEGORY, "tx_type"),
        RequestFeature(Transform.AGE, "account_created_at", unit="days"),
        RequestFeature(Transform.HOUR_OF_DAY, timezone=ZONE),
        RequestFeature(Transform.IS_NIGHT, timezone=ZONE),
        RequestFeature(Transform.IS_WEEKEND, timezone=ZONE),
    ]


FEATURE_SET: Final = FeatureSet(
    "card_merchant",
    (*_request(), *_terminal(), *_customer(), *_card()),
    fields=FIELDS,
)
