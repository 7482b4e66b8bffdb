"""A provider's feature set over its own declared fields (the contract's extension), for the engine tests:
a terminal key entity, a category filter, amount and number range filters, extension number, category and
age request features, and local-clock flags."""

from __future__ import annotations

from typing import Final

from events.schema import ExtensionField, FieldType
from features.definitions import (
    ACCOUNT,
    CARD,
    DECLINED,
    Aggregate,
    Entity,
    FeatureSet,
    Filter,
    Op,
    RangeFilter,
    RequestFeature,
    Source,
    Transform,
    days,
    hours,
)

TERMINAL_ID: Final = ExtensionField("terminal_id", FieldType.KEY, "Merchant terminal.")
CHANNEL: Final = ExtensionField(
    "channel", FieldType.CATEGORY, "Sales channel.", values=("web", "app", "shop")
)
PARTNER_SCORE: Final = ExtensionField("partner_score", FieldType.NUMBER, "A partner's risk score.")
BOX_ACTIVATED_AT: Final = ExtensionField(
    "box_activated_at", FieldType.TIME, "When the set-top box was activated."
)
FIELDS: Final = (TERMINAL_ID, CHANNEL, PARTNER_SCORE, BOX_ACTIVATED_AT)

TERMINAL: Final = Entity("terminal", "terminal_id")
WEB: Final = Filter("web", "channel", ("web",))
ZERO_AMOUNT: Final = RangeFilter("amount", high=0.01)
LARGE: Final = RangeFilter("amount", low=20)
RISKY: Final = RangeFilter("partner_score", 0.5, 2.0)
A, OUT, REP = Source.ATTEMPTS, Source.OUTCOMES, Source.REPORTS

PROVIDER_SET: Final = FeatureSet(
    "provider",
    (
        RequestFeature(Transform.NUMBER, "amount"),
        RequestFeature(Transform.NUMBER, "partner_score"),
        RequestFeature(Transform.CATEGORY, "channel"),
        RequestFeature(Transform.CATEGORY, "kind"),
        RequestFeature(Transform.AGE, "box_activated_at", unit="days"),
        RequestFeature(Transform.AGE, "box_activated_at", unit="hours"),
        RequestFeature(Transform.HOUR_OF_DAY, timezone="Europe/Paris"),
        RequestFeature(Transform.DAY_OF_MONTH, timezone="Pacific/Auckland"),
        RequestFeature(Transform.DAY_OF_WEEK, timezone="America/New_York"),
        RequestFeature(Transform.IS_WEEKEND, timezone="Europe/Paris"),
        RequestFeature(Transform.IS_NIGHT, timezone="Europe/Paris"),
        RequestFeature(Transform.IS_NIGHT),
        Aggregate(TERMINAL, A, Op.COUNT, hours(1)),
        Aggregate(TERMINAL, A, Op.COUNT, days(7), WEB),
        Aggregate(TERMINAL, A, Op.DISTINCT, days(7), value="account_id"),
        Aggregate(TERMINAL, OUT, Op.RATIO, days(7), DECLINED),
        Aggregate(TERMINAL, OUT, Op.COUNT, days(7), WEB),
        Aggregate(TERMINAL, REP, Op.COUNT, filter=RISKY),
        Aggregate(ACCOUNT, A, Op.COUNT, days(7), ZERO_AMOUNT),
        Aggregate(ACCOUNT, A, Op.SUM, days(30), LARGE, value="amount"),
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(30), ZERO_AMOUNT),
        Aggregate(CARD, A, Op.DISTINCT, days(30), value="terminal_id"),
        Aggregate(CARD, A, Op.TIME_SINCE_LAST, filter=RISKY),
        Aggregate(CARD, OUT, Op.CONSECUTIVE, filter=Filter("app", "channel", ("app",))),
    ),
    fields=FIELDS,
)
