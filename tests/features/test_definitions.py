"""The vocabulary: generated names, validation with actionable errors, the content hash and the contract."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from features.definitions import (
    ACCOUNT,
    APPROVED,
    CARD,
    DECLINED,
    DEVICE,
    Aggregate,
    AmountToUsual,
    Entity,
    FeatureDefinitionError,
    FeatureSet,
    Filter,
    Op,
    Ratio,
    RequestFeature,
    Source,
    Transform,
    Window,
    ZScore,
    days,
    hours,
    zscore,
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


def test_names_of_delayed_windows_quantiles_zscores_and_ratios() -> None:
    delayed = days(28).delayed(days(7))
    assert delayed == Window(28 * 86_400, offset_seconds=7 * 86_400)
    assert [delayed.name, hours(1).delayed(Window(90)).name] == ["28d_7d_ago", "1h_90s_ago"]
    reports = Aggregate(CARD, Source.REPORTS, Op.COUNT, delayed)
    attempts = Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, delayed)
    assert reports.name == "card_reports_count_28d_7d_ago"
    assert Ratio(reports, attempts).name == "card_reports_count_28d_7d_ago_per_attempts_count_28d_7d_ago"
    quantiles = [
        Aggregate(ACCOUNT, Source.OUTCOMES, Op.QUANTILE, days(30), APPROVED, "amount", q=q).name
        for q in (0.5, 0.9, 0.995, 0.000001)
    ]
    assert quantiles == [
        "account_outcomes_approved_p50_amount_30d",
        "account_outcomes_approved_p90_amount_30d",
        "account_outcomes_approved_p99_5_amount_30d",
        "account_outcomes_approved_p0_0001_amount_30d",
    ]
    assert Aggregate(ACCOUNT, Source.ATTEMPTS, Op.STD, days(30), value="amount").name == (
        "account_attempts_std_amount_30d"
    )
    assert zscore(ACCOUNT, Source.ATTEMPTS, days(30)).name == "amount_z_account_attempts_mean_std_amount_30d"
    median = Aggregate(CARD, Source.ATTEMPTS, Op.QUANTILE, days(7), value="amount", q=0.5)
    spread = Aggregate(CARD, Source.ATTEMPTS, Op.STD, days(7), value="amount")
    assert ZScore(median, spread).name == "amount_z_card_attempts_p50_std_amount_7d"


def test_the_iptv_hash_is_stable_and_new_fields_count_only_when_set() -> None:
    assert FEATURE_SET.hash == "fab83a87dddc3cc5"

    def hash_of(window: Window, op: Op = Op.COUNT, q: float | None = None) -> str:
        value = None if op == Op.COUNT else "amount"
        return FeatureSet("x", (Aggregate(CARD, Source.ATTEMPTS, op, window, value=value, q=q),)).hash

    assert hash_of(days(28)) == hash_of(Window(28 * 86_400, offset_seconds=0))
    assert (
        len({hash_of(days(28)), hash_of(days(28).delayed(days(7))), hash_of(days(28).delayed(days(1)))}) == 3
    )
    assert hash_of(days(7), Op.QUANTILE, 0.5) != hash_of(days(7), Op.QUANTILE, 0.9)


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


def _count(entity: Entity, window: Window) -> Aggregate:
    return Aggregate(entity, Source.ATTEMPTS, Op.COUNT, window)


def _amounts(op: Op, window: Window) -> Aggregate:
    return Aggregate(CARD, Source.ATTEMPTS, op, window, value="amount")


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
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.QUANTILE, days(7), value="amount"), "q must be"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.QUANTILE, days(7), value="amount", q=1.0), "q must be"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.QUANTILE, days(7), value="amount", q=0.0), "q must be"),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.QUANTILE, days(7), value="amount", q=0.1234567),
            "six decimals",
        ),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.MEAN, days(7), value="amount", q=0.5), "quantile only"),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.STD, days(7), value="device_id"),
            "not on the key column",
        ),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.QUANTILE, days(7), value="ip", q=0.5), "key column"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.STD, days(7)), "needs value="),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.STD, value="amount"), "needs a window"),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, Window(3_600, offset_seconds=-60)),
            "offset must be",
        ),
        (lambda: Ratio(_count(CARD, days(7)), _count(CARD, days(7))), "with itself"),
        (lambda: Ratio(_count(CARD, days(7)), _count(DEVICE, days(7))), "same entity"),
        (lambda: ZScore(_amounts(Op.MEAN, days(7)), _amounts(Op.STD, days(30))), "same events"),
        (lambda: ZScore(_amounts(Op.MAX, days(7)), _amounts(Op.STD, days(7))), "centre must be"),
        (lambda: ZScore(_amounts(Op.MEAN, days(7)), _amounts(Op.MEAN, days(7))), "spread must be a std"),
        (lambda: days(28).delayed(days(7).delayed(days(1))), "plain duration"),
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
