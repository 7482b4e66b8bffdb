"""The vocabulary: generated names, validation with actionable errors, the content hash and the contract."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from features.definitions import (
    ACCOUNT,
    CARD,
    DECLINED,
    Aggregate,
    AmountToUsual,
    FeatureDefinitionError,
    FeatureSet,
    Filter,
    Op,
    RequestFeature,
    Source,
    Transform,
    Window,
    days,
    hours,
)
from features.iptv import FEATURE_SET


def test_names_are_generated_from_the_definition() -> None:
    assert (
        Aggregate(CARD, Source.OUTCOMES, Op.COUNT, hours(24), DECLINED).name
        == "card_outcomes_declined_count_1d"
    )
    assert (
        Aggregate(CARD, Source.ATTEMPTS, Op.SUM, hours(1), value="amount").name
        == "card_attempts_sum_amount_1h"
    )
    assert Aggregate(CARD, Source.REPORTS, Op.COUNT).name == "card_reports_count_lifetime"
    assert (
        Aggregate(ACCOUNT, Source.ATTEMPTS, Op.TIME_SINCE_FIRST, unit="days").name
        == "account_attempts_since_first_days"
    )
    assert (
        RequestFeature(Transform.MISMATCH, "card_country", "ip_country").name == "card_country_ne_ip_country"
    )
    assert [Window(90).name, Window(120).name, days(7).name] == ["90s", "2m", "7d"]


def test_the_default_set_covers_the_issue() -> None:
    names = set(FEATURE_SET.names)
    assert len(names) == len(FEATURE_SET.names) >= 50
    for expected in (
        "card_attempts_count_1h",
        "device_attempts_distinct_payment_method_id_1d",
        "card_attempts_distinct_account_id_30d",
        "card_outcomes_declined_consecutive",
        "account_outcomes_approved_since_last_days",
        "amount_to_account_outcomes_approved_mean_amount_90d",
        "bin_reports_count_30d",
        "card_exp_days_left",
    ):
        assert expected in names
    assert FEATURE_SET.categorical == [
        "kind_code",
        "plan_tier_code",
        "plan_period_code",
        "method_type_code",
        "card_funding_code",
    ]


def test_the_hash_changes_with_any_definition() -> None:
    last = FEATURE_SET.definitions[-1]
    assert isinstance(last, Aggregate)
    changed = FeatureSet(
        FEATURE_SET.name,
        (*FEATURE_SET.definitions[:-1], replace(last, window=days(60))),
    )
    assert changed.hash != FEATURE_SET.hash
    assert FeatureSet(FEATURE_SET.name, FEATURE_SET.definitions).hash == FEATURE_SET.hash


def test_the_contract_is_json() -> None:
    contract = json.loads(json.dumps(FEATURE_SET.contract()))
    assert contract["names"] == FEATURE_SET.names
    assert contract["hash"] == FEATURE_SET.hash
    assert contract["version"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.SUM, hours(1)), "needs value="),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.DISTINCT, hours(1), value="amount"), "key column"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), value="amount"), "takes no value"),
        (lambda: Aggregate(CARD, Source.OUTCOMES, Op.CONSECUTIVE, hours(1), DECLINED), "drop window"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.MEAN, value="amount"), "needs a window"),
        (lambda: Aggregate(CARD, Source.OUTCOMES, Op.RATIO, hours(1)), "needs a filter"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), DECLINED), "not available on attempts"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.TIME_SINCE_LAST, unit="weeks"), "unit must be"),
    ],
)
def test_inconsistent_aggregates_are_refused(build: object, message: str) -> None:
    with pytest.raises(FeatureDefinitionError, match=message):
        FeatureSet("bad", (build(),))  # type: ignore[operator]


def test_other_definition_errors() -> None:
    with pytest.raises(FeatureDefinitionError, match="duplicate"):
        FeatureSet("dup", (RequestFeature(Transform.HOUR_OF_DAY), RequestFeature(Transform.HOUR_OF_DAY)))
    with pytest.raises(FeatureDefinitionError, match="empty"):
        FeatureSet("empty", ())
    with pytest.raises(FeatureDefinitionError, match="not an enumerated column"):
        RequestFeature(Transform.CATEGORY, "ip")
    with pytest.raises(FeatureDefinitionError, match="unknown attempt column"):
        RequestFeature(Transform.NUMBER, "shoe_size")
    with pytest.raises(FeatureDefinitionError, match="other="):
        RequestFeature(Transform.MISMATCH, "card_country")
    with pytest.raises(FeatureDefinitionError, match="no values"):
        Filter("nothing", "status", ())
    with pytest.raises(FeatureDefinitionError, match="positive"):
        Window(0)
    with pytest.raises(FeatureDefinitionError, match="must be an amount"):
        FeatureSet("ratio", (AmountToUsual(Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1))),))
