"""The vocabulary: generated names, validation with actionable errors, the content hash and the contract."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from events.schema import ExtensionField, FieldType
from features.definitions import (
    ACCOUNT,
    APPROVED,
    ATTEMPT_FILTER_FIELDS,
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
    RangeFilter,
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
        FeatureSet("unknown", (RequestFeature(Transform.NUMBER, "shoe_size"),))
    with pytest.raises(FeatureDefinitionError, match="other="):
        RequestFeature(Transform.MISMATCH, "card_country")
    with pytest.raises(FeatureDefinitionError, match="no values"):
        Filter("nothing", "status", ())
    with pytest.raises(FeatureDefinitionError, match="positive"):
        Window(0)
    with pytest.raises(FeatureDefinitionError, match="must be an amount"):
        FeatureSet("ratio", (AmountToUsual(Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1))),))


TERMINAL_ID = ExtensionField("terminal_id", FieldType.KEY, "Merchant terminal.")
CHANNEL = ExtensionField("channel", FieldType.CATEGORY, "Sales channel.", values=("web", "app", "shop"))
SCORE = ExtensionField("partner_score", FieldType.NUMBER, "A partner's risk score.")
CREATED = ExtensionField("box_activated_at", FieldType.TIME, "When the set-top box was activated.")
FIELDS = (TERMINAL_ID, CHANNEL, SCORE, CREATED)
TERMINAL = Entity("terminal", "terminal_id")


def declared(*definitions: object) -> FeatureSet:
    return FeatureSet("provider", tuple(definitions), fields=FIELDS)  # type: ignore[arg-type]


def test_a_declared_key_field_is_an_entity_and_a_distinct_value() -> None:
    features = declared(
        Aggregate(TERMINAL, Source.ATTEMPTS, Op.COUNT, hours(24)),
        Aggregate(TERMINAL, Source.OUTCOMES, Op.COUNT, days(7), DECLINED),
        Aggregate(CARD, Source.ATTEMPTS, Op.DISTINCT, days(30), value="terminal_id"),
    )
    assert features.names == [
        "terminal_attempts_count_1d",
        "terminal_outcomes_declined_count_7d",
        "card_attempts_distinct_terminal_id_30d",
    ]
    assert [e.name for e in features.entities] == ["terminal", "card"]


def test_filters_on_any_field_and_numeric_ranges_have_readable_generated_names() -> None:
    web = Filter("web", "channel", ("web",))
    assert RangeFilter("amount", high=0.01).name == "amount_lt_0p01"
    assert RangeFilter("amount", low=100).name == "amount_ge_100"
    assert RangeFilter("amount", 0, 1).name == "amount_0_to_1"
    assert RangeFilter("partner_score", -2.5, 1e-7).name == "partner_score_m2p5_to_0p0000001"
    features = declared(
        Aggregate(ACCOUNT, Source.ATTEMPTS, Op.COUNT, hours(24), RangeFilter("amount", high=0.01)),
        Aggregate(TERMINAL, Source.OUTCOMES, Op.RATIO, days(7), web),
        Aggregate(CARD, Source.REPORTS, Op.COUNT, filter=RangeFilter("partner_score", low=0.5)),
        Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), Filter("de_cards", "card_country", ("DE",))),
    )
    assert features.names[:3] == [
        "account_attempts_amount_lt_0p01_count_1d",
        "terminal_outcomes_web_ratio_7d",
        "card_reports_partner_score_ge_0p5_count_lifetime",
    ]
    assert features.filtered_fields == (
        *ATTEMPT_FILTER_FIELDS,
        "amount",
        "channel",
        "partner_score",
        "card_country",
    )
    assert RangeFilter("amount", high=0.01).matches(0.0)
    assert not RangeFilter("amount", high=0.01).matches(None)
    assert not RangeFilter("amount", 0, 1).matches(1.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Aggregate(Entity("shop", "shop_id"), Source.ATTEMPTS, Op.COUNT, hours(1)), "shop_id"),
        (lambda: Aggregate(Entity("chan", "channel"), Source.ATTEMPTS, Op.COUNT, hours(1)), "key fields"),
        (lambda: Aggregate(CARD, Source.ATTEMPTS, Op.DISTINCT, hours(1), value="channel"), "key column"),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), Filter("x", "shoe_size", ("9",))),
            "'shoe_size' is not available on attempts",
        ),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), Filter("tv", "channel", ("tv",))),
            r"value\(s\) \['tv'\]",
        ),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), Filter("k", "kind", ("rerun",))),
            "not among 'kind'",
        ),
        (
            lambda: Aggregate(CARD, Source.OUTCOMES, Op.COUNT, hours(1), Filter("s", "status", ("ok",))),
            "not among 'status'",
        ),
        (
            lambda: Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1), RangeFilter("channel", 0, 1)),
            "not a number field",
        ),
        (lambda: RequestFeature(Transform.NUMBER, "terminal_id"), "not a number field"),
        (lambda: RequestFeature(Transform.CATEGORY, "terminal_id"), "not an enumerated column"),
        (
            lambda: RequestFeature(Transform.AGE, "partner_score", unit="days"),
            "not a time field other than occurred_at",
        ),
        (
            lambda: RequestFeature(Transform.AGE, "occurred_at", unit="days"),
            "not a time field other than occurred_at",
        ),
    ],
)
def test_definitions_over_fields_are_checked_against_the_declared_fields(build: object, message: str) -> None:
    with pytest.raises(FeatureDefinitionError, match=message):
        declared(build())  # type: ignore[operator]


def test_range_filters_and_request_features_refuse_inconsistent_arguments() -> None:
    with pytest.raises(FeatureDefinitionError, match="give low=, high= or both"):
        RangeFilter("amount")
    with pytest.raises(FeatureDefinitionError, match="must be below"):
        RangeFilter("amount", 5, 5)
    with pytest.raises(FeatureDefinitionError, match="finite"):
        RangeFilter("amount", float("nan"))
    with pytest.raises(FeatureDefinitionError, match="unit= is required by age"):
        RequestFeature(Transform.AGE, "box_activated_at")
    with pytest.raises(FeatureDefinitionError, match="unknown time zone"):
        RequestFeature(Transform.HOUR_OF_DAY, timezone="Mars/Olympus")
    with pytest.raises(FeatureDefinitionError, match="timezone= is for"):
        RequestFeature(Transform.NUMBER, "amount", timezone="Europe/Paris")
    with pytest.raises(FeatureDefinitionError, match="declared twice"):
        FeatureSet("twice", (RequestFeature(Transform.HOUR_OF_DAY),), fields=(CHANNEL, CHANNEL))


def test_request_features_on_fields_and_local_clocks_are_named_from_the_declaration() -> None:
    features = declared(
        RequestFeature(Transform.NUMBER, "partner_score"),
        RequestFeature(Transform.CATEGORY, "channel"),
        RequestFeature(Transform.AGE, "box_activated_at", unit="days"),
        RequestFeature(Transform.HOUR_OF_DAY, timezone="Europe/Paris"),
        RequestFeature(Transform.IS_NIGHT, timezone="America/Port-au-Prince"),
        RequestFeature(Transform.IS_WEEKEND, timezone="UTC"),
    )
    assert features.names == [
        "partner_score",
        "channel_code",
        "box_activated_at_age_days",
        "hour_of_day_europe_paris",
        "is_night_america_port_au_prince",
        "is_weekend",
    ]
    assert features.categorical == ["channel_code"]
    assert features.vocabulary["channel"] == ("web", "app", "shop")
    assert RequestFeature(Transform.HOUR_OF_DAY, timezone="UTC") == RequestFeature(Transform.HOUR_OF_DAY)


def test_the_iptv_hash_is_unchanged_and_fields_enter_the_hash() -> None:
    assert FEATURE_SET.hash == "fab83a87dddc3cc5"
    with_fields = FeatureSet(FEATURE_SET.name, FEATURE_SET.definitions, fields=(CHANNEL,))
    assert with_fields.hash != FEATURE_SET.hash
    paris = FeatureSet("clock", (RequestFeature(Transform.HOUR_OF_DAY, timezone="Europe/Paris"),))
    utc = FeatureSet("clock", (RequestFeature(Transform.HOUR_OF_DAY),))
    assert paris.hash != utc.hash
