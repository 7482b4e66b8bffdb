"""The batch engine on hand-computed histories: time rule, filters, whole-history features, missing keys."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.io import read_events, to_arrow, write_part
from events.schema import EventKind
from features.batch import SCRATCH, FeatureInputError, build_data_dir, build_features, read_features
from features.iptv import FEATURE_SET
from simulator import WorldConfig, simulate
from tests.features.factory import History, attempt, history_of, outcome, random_history, report
from tests.features.replay import mismatches


def features(history: History) -> pd.DataFrame:
    table = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET)
    return table.set_index("attempt_id")


@pytest.fixture
def card_history() -> History:
    """One card: a decline at 10:00, an approval at 10:30, two attempts at the same instant 11:00."""
    return history_of(
        [
            attempt("a1", "10:00", amount=10.0),
            attempt("a2", "10:30", amount=20.0, device_id=None),
            attempt("a3", "11:00", amount=40.0, account_id="acc_2"),
            attempt("a4", "11:00", amount=5.0),
        ],
        [
            outcome("a1", "10:00:30", "declined", "insufficient_funds"),
            outcome("a2", "10:31", "approved"),
            outcome("a3", "11:00:10", "declined", "stolen_card"),
        ],
        [report("r1", "a1", "10:45")],
    )


def test_only_events_strictly_before_the_attempt_count(card_history: History) -> None:
    table = features(card_history)
    assert table["card_attempts_count_1h"].tolist() == [0, 1, 2, 2]  # a4 does not see a3 (same instant)
    assert table["card_attempts_sum_amount_1d"].tolist() == [0, 10.0, 30.0, 30.0]
    assert table["card_outcomes_declined_count_1d"].tolist() == [0, 1, 1, 1]
    assert table["card_reports_count_lifetime"].tolist() == [0, 0, 1, 1]  # known from 10:45 only


def test_whole_history_features(card_history: History) -> None:
    table = features(card_history)
    assert np.isnan(table["card_outcomes_declined_consecutive"]["a1"])  # no outcome yet: unknown
    assert table.loc["a2", "card_outcomes_declined_consecutive"] == 1
    assert table.loc["a3", "card_outcomes_declined_consecutive"] == 0
    assert table.loc["a4", "card_outcomes_approved_since_last_days"] == pytest.approx(29 / 1440)
    assert table.loc["a3", "card_outcomes_declined_since_last_hours"] == pytest.approx(59.5 / 60)
    assert np.isnan(table["account_attempts_since_first_days"]["a1"])
    assert table.loc["a4", "account_attempts_since_first_days"] == pytest.approx(1 / 24)


def test_ratios_distinct_counts_and_the_usual_amount(card_history: History) -> None:
    table = features(card_history)
    assert np.isnan(table["card_outcomes_declined_ratio_90d"]["a1"])
    assert table.loc["a4", "card_outcomes_declined_ratio_90d"] == pytest.approx(1 / 2)
    assert table.loc["a4", "card_attempts_distinct_account_id_30d"] == 1  # a3 (acc_2) is not before a4
    assert table.loc["a4", "amount_to_account_outcomes_approved_mean_amount_90d"] == pytest.approx(5.0 / 20.0)
    assert np.isnan(table["amount_to_account_outcomes_approved_mean_amount_90d"]["a2"])


def test_a_missing_key_gives_nan_never_a_shared_none_entity(card_history: History) -> None:
    table = features(card_history)
    assert np.isnan(table["device_attempts_count_1d"]["a2"])
    assert table.loc["a4", "device_attempts_count_1d"] == 1  # a1: a2 had no device, a3 is not before a4


def test_request_features(card_history: History) -> None:
    table = features(card_history)
    assert table.loc["a1", "hour_of_day"] == 10
    assert table.loc["a1", "day_of_month"] == 1
    assert table.loc["a1", "day_of_week"] == 3  # 2026-01-01 is a Thursday
    assert table.loc["a1", "card_exp_days_left"] == pytest.approx(90 - 10 / 24)  # to 2026-04-01 00:00
    assert table.loc["a1", "card_country_ne_ip_country"] == 0
    assert table.loc["a1", "plan_tier_code"] == 0
    assert set(FEATURE_SET.categorical) <= set(table.columns)


def test_output_follows_the_input_rows_and_is_float64() -> None:
    history = random_history(80, 4)
    table = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET)
    assert table["attempt_id"].tolist() == history.attempts["attempt_id"].tolist()
    assert list(table.columns) == ["attempt_id", *FEATURE_SET.names]
    assert all(table[name].dtype == np.float64 for name in FEATURE_SET.names)


def test_contract_violations_are_reported_clearly(card_history: History) -> None:
    with pytest.raises(FeatureInputError, match="missing column"):
        build_features(
            card_history.attempts.drop(columns=["amount"]),
            card_history.outcomes,
            card_history.reports,
            FEATURE_SET,
        )
    doubled = pd.concat([card_history.attempts, card_history.attempts.head(1)])
    with pytest.raises(FeatureInputError, match="unique"):
        build_features(doubled, card_history.outcomes, card_history.reports, FEATURE_SET)


def test_outcomes_of_unknown_attempts_are_ignored_with_a_warning(
    card_history: History, caplog: pytest.LogCaptureFixture
) -> None:
    orphan = history_of(
        [attempt("x", "09:00")], [outcome("zzz", "09:10", "declined", "expired_card")]
    ).outcomes
    outcomes = pd.concat([card_history.outcomes, orphan], ignore_index=True)
    table = build_features(card_history.attempts, outcomes, card_history.reports, FEATURE_SET).set_index(
        "attempt_id"
    )
    assert table["card_outcomes_declined_count_1d"].tolist() == [0, 1, 1, 1]
    assert "not in the attempts table" in caplog.text


def test_build_data_dir_writes_the_feature_table(tmp_path: Path) -> None:
    history = random_history(120, 8)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path, kind.value, 0, to_arrow(kind, frame))
    written = build_data_dir(tmp_path, FEATURE_SET)
    assert [path.name for path in written] == ["part-00000.parquet"]
    table = read_features(tmp_path)
    expected = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def _write_parts(data_dir: Path, history: History, parts: int) -> None:
    """The history in ``parts`` Parquet parts per table (outcomes often apart from their attempt)."""
    frames = (history.attempts, history.outcomes, history.reports)
    for kind, frame in zip(EventKind, frames, strict=True):
        for part in range(parts):
            write_part(data_dir, kind.value, part, to_arrow(kind, frame.iloc[part::parts]))


def _same_as_in_memory(data_dir: Path, history: History, partition_attempts: int) -> None:
    expected = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET)
    build_data_dir(data_dir, FEATURE_SET, partition_attempts=partition_attempts)
    got = read_features(data_dir)
    assert sorted(got["attempt_id"]) == sorted(expected["attempt_id"])
    assert list(got.columns) == ["attempt_id", *FEATURE_SET.names]
    assert mismatches(expected, got, FEATURE_SET.names, tolerance=1e-9) == []
    assert not (data_dir / SCRATCH).exists()


def test_the_bounded_build_of_a_simulated_world_equals_the_in_memory_build(tmp_path: Path) -> None:
    simulate(WorldConfig(accounts=300, months=5, seed=4, chunk_accounts=100), tmp_path)
    history = History(*(read_events(tmp_path, kind) for kind in EventKind))
    attempts = len(history.attempts)
    _same_as_in_memory(tmp_path, history, partition_attempts=attempts // 3)
    assert len(list((tmp_path / "features").glob("part-*.parquet"))) == 4  # one part per bucket of ids


@settings(max_examples=8, deadline=timedelta(seconds=60), suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 120),
    st.integers(0, 2**31),
    st.integers(2, 12),
    st.sampled_from([3.0, 60.0, 400.0]),
    st.integers(20, 80),
    st.integers(1, 4),
)
def test_any_history_and_partitioning_give_the_in_memory_features(
    n: int, seed: int, accounts: int, days: float, partition_attempts: int, parts: int
) -> None:
    history = random_history(n, seed, accounts=accounts, days=days)
    with tempfile.TemporaryDirectory() as folder:
        _write_parts(Path(folder), history, parts)
        _same_as_in_memory(Path(folder), history, partition_attempts)


def test_events_of_unknown_attempts_are_ignored_and_said_so(
    tmp_path: Path, card_history: History, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = pd.concat(
        [
            card_history.outcomes,
            history_of([attempt("ghost", "10:00")], [outcome("ghost", "10:01")]).outcomes,
        ],
        ignore_index=True,
    )
    history = History(card_history.attempts, outcomes, card_history.reports)
    _write_parts(tmp_path, history, 2)
    build_data_dir(tmp_path, FEATURE_SET, partition_attempts=2)
    assert "1 events refer to attempts not in the attempts table" in caplog.text
    expected = build_features(card_history.attempts, card_history.outcomes, card_history.reports, FEATURE_SET)
    assert mismatches(expected, read_features(tmp_path), FEATURE_SET.names) == []


def test_the_bounded_build_refuses_an_attempt_twice_and_leaves_no_scratch(tmp_path: Path) -> None:
    history = random_history(30, 2)
    _write_parts(tmp_path, history, 1)
    write_part(tmp_path, EventKind.ATTEMPTS.value, 1, to_arrow(EventKind.ATTEMPTS, history.attempts.iloc[:1]))
    with pytest.raises(FeatureInputError, match="attempt_id must be unique"):
        build_data_dir(tmp_path, FEATURE_SET, partition_attempts=10)
    assert not (tmp_path / SCRATCH).exists()
    with pytest.raises(ValueError, match="at least 1"):
        build_data_dir(tmp_path, FEATURE_SET, partition_attempts=0)
