"""The default IPTV feature set: the behaviours behind payment fraud and payment failure.

* velocity per card, device, IP, BIN and account over short and long windows (card testing, bot signups);
* distinct cards per device and per account, distinct accounts per card and per IP (testing, resellers);
* declines per card and account, by decline family, and their share of outcomes;
* time since the last approval and the last decline, consecutive declines, retry history;
* the amount against the account's usual approved amount;
* label-derived risk: fraud reports on this card, device or BIN, counted only once reported;
* request-time fields: amount, plan, method, card funding, card/IP country mismatch, days to card expiry,
  hour and day, retry number, account age.
"""

from __future__ import annotations

from typing import Final

from events.schema import DeclineFamily
from features.definitions import (
    ACCOUNT,
    APPROVED,
    BIN,
    CARD,
    DECLINED,
    DEVICE,
    IP,
    RETRIES,
    Aggregate,
    AmountToUsual,
    Definition,
    FeatureSet,
    Op,
    RequestFeature,
    Source,
    Transform,
    days,
    family_filter,
    hours,
)

A, OUT, REP = Source.ATTEMPTS, Source.OUTCOMES, Source.REPORTS


def _velocity() -> list[Definition]:
    return [
        Aggregate(CARD, A, Op.COUNT, hours(1)),
        Aggregate(CARD, A, Op.COUNT, hours(24)),
        Aggregate(CARD, A, Op.COUNT, days(7)),
        Aggregate(CARD, A, Op.SUM, hours(24), value="amount"),
        Aggregate(DEVICE, A, Op.COUNT, hours(1)),
        Aggregate(DEVICE, A, Op.COUNT, hours(24)),
        Aggregate(IP, A, Op.COUNT, hours(1)),
        Aggregate(IP, A, Op.COUNT, hours(24)),
        Aggregate(BIN, A, Op.COUNT, hours(1)),
        Aggregate(BIN, A, Op.COUNT, hours(24)),
        Aggregate(ACCOUNT, A, Op.COUNT, hours(24)),
        Aggregate(ACCOUNT, A, Op.COUNT, days(30)),
        Aggregate(ACCOUNT, A, Op.MAX, days(30), value="amount"),
    ]


def _linking() -> list[Definition]:
    return [
        Aggregate(DEVICE, A, Op.DISTINCT, hours(24), value="payment_method_id"),
        Aggregate(DEVICE, A, Op.DISTINCT, days(30), value="payment_method_id"),
        Aggregate(DEVICE, A, Op.DISTINCT, days(30), value="account_id"),
        Aggregate(CARD, A, Op.DISTINCT, days(30), value="account_id"),
        Aggregate(IP, A, Op.DISTINCT, hours(24), value="account_id"),
        Aggregate(ACCOUNT, A, Op.DISTINCT, days(30), value="payment_method_id"),
        Aggregate(ACCOUNT, A, Op.DISTINCT, days(30), value="device_id"),
    ]


def _declines() -> list[Definition]:
    return [
        Aggregate(CARD, OUT, Op.COUNT, hours(24), DECLINED),
        Aggregate(CARD, OUT, Op.COUNT, days(7), DECLINED),
        Aggregate(CARD, OUT, Op.RATIO, days(90), DECLINED),
        Aggregate(CARD, OUT, Op.COUNT, days(30), family_filter(DeclineFamily.FUNDS)),
        Aggregate(CARD, OUT, Op.COUNT, days(90), family_filter(DeclineFamily.FRAUD)),
        Aggregate(CARD, OUT, Op.COUNT, days(90), family_filter(DeclineFamily.INVALID)),
        Aggregate(CARD, OUT, Op.COUNT, days(90), family_filter(DeclineFamily.EXPIRED)),
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(7), DECLINED),
        Aggregate(ACCOUNT, OUT, Op.RATIO, days(90), DECLINED),
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(30), family_filter(DeclineFamily.TECHNICAL)),
        Aggregate(DEVICE, OUT, Op.COUNT, hours(24), DECLINED),
        Aggregate(IP, OUT, Op.COUNT, hours(24), DECLINED),
        Aggregate(BIN, OUT, Op.RATIO, hours(24), DECLINED),
    ]


def _recency() -> list[Definition]:
    return [
        Aggregate(CARD, OUT, Op.TIME_SINCE_LAST, filter=APPROVED, unit="days"),
        Aggregate(CARD, OUT, Op.TIME_SINCE_LAST, filter=DECLINED),
        Aggregate(CARD, OUT, Op.CONSECUTIVE, filter=DECLINED),
        Aggregate(ACCOUNT, OUT, Op.TIME_SINCE_LAST, filter=APPROVED, unit="days"),
        Aggregate(ACCOUNT, OUT, Op.TIME_SINCE_LAST, filter=DECLINED),
        Aggregate(ACCOUNT, OUT, Op.CONSECUTIVE, filter=DECLINED),
        Aggregate(ACCOUNT, A, Op.COUNT, days(7), RETRIES),
        Aggregate(ACCOUNT, A, Op.TIME_SINCE_FIRST, unit="days"),
        Aggregate(CARD, A, Op.TIME_SINCE_FIRST, unit="days"),
        AmountToUsual(Aggregate(ACCOUNT, OUT, Op.MEAN, days(90), APPROVED, value="amount")),
    ]


def _labels() -> list[Definition]:
    return [
        Aggregate(CARD, REP, Op.COUNT),
        Aggregate(DEVICE, REP, Op.COUNT, days(90)),
        Aggregate(BIN, REP, Op.COUNT, days(30)),
        Aggregate(ACCOUNT, REP, Op.COUNT),
    ]


def _request() -> list[Definition]:
    return [
        RequestFeature(Transform.NUMBER, "amount"),
        RequestFeature(Transform.NUMBER, "retry_number"),
        RequestFeature(Transform.CATEGORY, "kind"),
        RequestFeature(Transform.CATEGORY, "plan_tier"),
        RequestFeature(Transform.CATEGORY, "plan_period"),
        RequestFeature(Transform.CATEGORY, "method_type"),
        RequestFeature(Transform.CATEGORY, "card_funding"),
        RequestFeature(Transform.MISMATCH, "card_country", "ip_country"),
        RequestFeature(Transform.MISMATCH, "billing_country", "ip_country"),
        RequestFeature(Transform.DAYS_TO_EXPIRY, "card_exp"),
        RequestFeature(Transform.HOUR_OF_DAY),
        RequestFeature(Transform.DAY_OF_MONTH),
        RequestFeature(Transform.DAY_OF_WEEK),
    ]


FEATURE_SET: Final = FeatureSet(
    "iptv",
    (*_request(), *_velocity(), *_linking(), *_declines(), *_recency(), *_labels()),
)
