"""Training reads the stored feature table aligned on attempt_id, and refuses a table of other attempts."""

from __future__ import annotations

from pathlib import Path

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import given

from events.io import table_dir, to_arrow, write_part
from events.schema import EventKind
from features.batch import FEATURES_TABLE, PARTITION_ATTEMPTS, build_data_dir, build_features
from features.iptv import FEATURE_SET
from features.registry import DEFAULT_SPEC
from tests.features.factory import random_history
from training.baselines import IPTV_BASELINES
from training.data import (
    BUILD_STEPS,
    MAX_STEP_ATTEMPTS,
    ChosenFeatureSet,
    aligned,
    build_step,
    load_inputs,
    stored_features,
)
from training.errors import DatasetError


def test_a_table_in_another_row_order_is_aligned_on_attempt_id(tmp_path: Path) -> None:
    history = random_history(200, 3)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path, kind.value, 0, to_arrow(kind, frame))
    build_data_dir(tmp_path, FEATURE_SET, partition_attempts=40)  # five parts: rows not in attempts order
    expected = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET)
    got = stored_features(tmp_path, history.attempts["attempt_id"], FEATURE_SET.names)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_a_table_missing_attempts_or_holding_others_is_refused(tmp_path: Path) -> None:
    history = random_history(20, 4)
    stored = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET)
    ids = history.attempts["attempt_id"]
    with pytest.raises(DatasetError, match="no features for 2 of 20 attempts"):
        aligned(stored.iloc[2:], ids, tmp_path)
    with pytest.raises(DatasetError, match="1 attempts that are not in its attempts table"):
        aligned(stored, ids.iloc[1:], tmp_path)
    with pytest.raises(DatasetError, match="holds attempts twice"):
        aligned(pd.concat([stored, stored.iloc[:1]]), ids, tmp_path)
    shuffled = stored.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(aligned(shuffled, ids, tmp_path), stored)


def test_a_history_above_the_in_memory_limit_goes_through_the_table_with_the_same_inputs(
    tmp_path: Path,
) -> None:
    history = random_history(300, 5)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path, kind.value, 0, to_arrow(kind, frame))
    iptv = ChosenFeatureSet.named(DEFAULT_SPEC)
    in_memory = load_inputs(tmp_path, iptv, IPTV_BASELINES)
    assert not table_dir(tmp_path, FEATURES_TABLE).exists()
    through_table = load_inputs(tmp_path, iptv, IPTV_BASELINES, in_memory_attempts=len(history.attempts) - 1)
    assert table_dir(tmp_path, FEATURES_TABLE).exists()  # built once, for the next runs
    pd.testing.assert_frame_equal(through_table.frame, in_memory.frame)
    assert through_table.fingerprint == in_memory.fingerprint
    names = list(in_memory.contract.names)
    assert (in_memory.frame[names].dtypes == "float32").all()


@given(attempts=st.integers(1, 10**9))
def test_the_bounded_build_runs_in_few_steps_of_bounded_size(attempts: int) -> None:
    step = build_step(attempts)
    assert PARTITION_ATTEMPTS <= step <= MAX_STEP_ATTEMPTS
    steps = -(-attempts // step)
    assert steps <= max(BUILD_STEPS, -(-attempts // MAX_STEP_ATTEMPTS))  # few steps until they are too big


def test_ten_million_attempts_are_built_in_five_steps_not_forty_one() -> None:
    assert -(-10_000_000 // build_step(10_000_000)) == BUILD_STEPS
    assert -(-1_000_000 // build_step(1_000_000)) == 4  # the engine's own 250k steps below that
