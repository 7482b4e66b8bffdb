from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.iptv import FEATURE_SET as IPTV_SET
from features.registry import DEFAULT_SPEC
from tests.training.tiny_features import FEATURE_SET as TINY
from training.baselines import choose, declined_last_time, fraud_rules, prior_count, rules_fired
from training.config import BaselineConfig, BaselineRule, load_config
from training.errors import ConfigError

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def at(*hours: float) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(hours=h) for h in hours])


def test_prior_count_counts_strictly_earlier_rows_of_the_same_entity_in_the_window() -> None:
    entity = pd.Series(["a", "a", "b", "a", "a", None])
    times = pd.Series(at(0, 1, 1, 1, 30, 30))
    counts = prior_count(entity, times, pd.Timedelta(hours=24))
    # row 3 ties row 1 (same instant): not before it; row 4 is 29h after row 3 → window empty
    assert counts.tolist() == [0, 1, 0, 1, 0, 0]


def test_fraud_rules_fire_on_velocity_and_country_mismatch() -> None:
    attempts = pd.DataFrame(
        {
            "occurred_at": at(0, 1, 2, 3, 100),
            "account_id": ["a", "a", "a", "a", "b"],
            "payment_method_id": ["p1", "p2", "p3", "p4", "p5"],
            "ip": ["i1", "i2", "i3", "i4", "i5"],
            "card_country": ["DE", "DE", "DE", "DE", "FR"],
            "ip_country": ["DE", "DE", "DE", "DE", "NL"],
            "billing_country": ["DE", "DE", "DE", "DE", None],
        }
    )
    # row 3: 3 earlier attempts of account a in 24h; row 4: card vs ip mismatch (billing unknown: no fire)
    assert fraud_rules(attempts).tolist() == [0, 0, 0, 1, 1]


def test_declined_last_time_uses_only_answers_known_before_the_attempt() -> None:
    attempts = pd.DataFrame(
        {
            "attempt_id": ["x1", "x2", "x3", "y1"],
            "account_id": ["a", "a", "a", "b"],
            "occurred_at": at(0, 1, 1.001, 5),
        },
        index=[10, 11, 12, 13],
    )
    outcomes = pd.DataFrame(
        {
            "attempt_id": ["x1", "x2", "x3", "y1"],
            "occurred_at": at(0.01, 2, 1.002, 5.01),  # x2's answer arrives after x3 is made
            "status": ["declined", "approved", "approved", "error"],
        }
    )
    result = declined_last_time(attempts, outcomes)
    assert list(result.index) == [10, 11, 12, 13]
    np.testing.assert_array_equal(result.to_numpy(), [np.nan, 1.0, 1.0, np.nan])


TINY_SPEC = "tests.training.tiny_features:FEATURE_SET"
WITH_RULES_SPEC = "tests.training.tiny_features_with_rules:FEATURE_SET"


def test_auto_takes_the_modules_rules_the_iptv_rules_for_the_iptv_set_else_none() -> None:
    auto = BaselineConfig()
    assert choose(auto, DEFAULT_SPEC, IPTV_SET).fraud == "iptv_rules"
    assert choose(auto, TINY_SPEC, TINY).fraud is None  # never the IPTV rules on a provider's features
    declared = choose(auto, WITH_RULES_SPEC, TINY).fraud
    assert declared == (BaselineRule(feature=TINY.names[0], op=">=", value=3),)


def test_the_config_chooses_or_switches_off_the_baselines() -> None:
    off = choose(BaselineConfig(fraud="none", failure="none"), DEFAULT_SPEC, IPTV_SET)
    assert (off.fraud, off.failure) == (None, False)
    rules = load_config(overrides={"baselines.fraud": [{"feature": "amount", "op": ">", "value": 50}]})
    assert choose(rules.baselines, TINY_SPEC, TINY).fraud == (
        BaselineRule(feature="amount", op=">", value=50),
    )
    unknown = load_config(overrides={"baselines.fraud": [{"feature": "ip_country", "op": "==", "value": 1}]})
    with pytest.raises(ConfigError, match=r"\['ip_country'\].*does not define"):
        choose(unknown.baselines, TINY_SPEC, TINY)


@given(
    values=st.lists(st.one_of(st.none(), st.floats(-5, 5)), min_size=1, max_size=30),
    cuts=st.lists(
        st.tuples(st.sampled_from([">", ">=", "<", "<=", "==", "!="]), st.integers(-3, 3)), max_size=4
    ),
)
def test_declared_rules_score_how_many_fire_and_a_missing_value_never_fires(
    values: list[float | None], cuts: list[tuple[str, int]]
) -> None:
    features = pd.DataFrame({"x": [np.nan if v is None else v for v in values]})
    rules = tuple(
        BaselineRule.model_validate({"feature": "x", "op": op, "value": value}) for op, value in cuts
    )
    compare = {
        ">": float.__gt__,
        ">=": float.__ge__,
        "<": float.__lt__,
        "<=": float.__le__,
        "==": float.__eq__,
        "!=": float.__ne__,
    }
    expected = [
        0 if v is None else sum(compare[rule.op](float(v), rule.value) for rule in rules) for v in values
    ]
    assert rules_fired(features, rules).tolist() == expected
