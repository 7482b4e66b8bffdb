"""A tiny provider feature set for the CLI tests: no IPTV fields beyond the contract's, no baselines."""

from __future__ import annotations

from features.definitions import (
    CARD,
    DECLINED,
    Aggregate,
    FeatureSet,
    Op,
    RequestFeature,
    Source,
    Transform,
    days,
    hours,
)

FEATURE_SET = FeatureSet(
    "tiny",
    (
        Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(24)),
        Aggregate(CARD, Source.OUTCOMES, Op.COUNT, days(7), filter=DECLINED),
        Aggregate(CARD, Source.REPORTS, Op.COUNT, days(90)),
        RequestFeature(Transform.NUMBER, "amount"),
        RequestFeature(Transform.NUMBER, "retry_number"),
        RequestFeature(Transform.MISMATCH, "card_country", "ip_country"),
    ),
)
