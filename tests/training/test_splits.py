from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.training.factories import CONTRACT, make_world
from training.baselines import IPTV_BASELINES
from training.config import LabelConfig, SplitConfig, Task, ValidationPlacement, load_config
from training.dataset import REPORTED_AT_COLUMN, assemble, task_data
from training.errors import SplitError
from training.splits import DAY, Part, fraud_labels, measure_label_delay, plan_split
from training.trainer import train_task

START = pd.Timestamp("2026-01-01", tz="UTC")
END = START + 200 * DAY
US = pd.Timedelta(microseconds=1)


def test_windows_are_laid_back_from_the_end_with_the_gap_at_least_the_delay() -> None:
    plan = plan_split(START, END, 30 * DAY, SplitConfig(test_days=20, validation_days=10, min_gap_days=5))
    assert plan.test.end == END - 30 * DAY + US
    assert plan.test.days == pytest.approx(20)
    assert plan.validation.end == plan.test.start
    assert plan.validation.days == 10
    assert plan.gap.end == plan.validation.start
    assert plan.gap.days == 30  # the delay, above min_gap_days
    assert plan.train.start == START
    assert plan.train.end == plan.gap.start
    assert plan.train_label_cutoff == plan.validation.start


def test_min_gap_applies_when_the_delay_is_shorter() -> None:
    plan = plan_split(START, END, pd.Timedelta(0), SplitConfig(min_gap_days=7))
    assert plan.gap.days == 7
    assert plan.test.end == END + US


def test_train_window_can_be_capped() -> None:
    plan = plan_split(START, END, 10 * DAY, SplitConfig(max_train_days=40))
    assert plan.train.days == 40


def test_too_little_history_is_refused_with_what_to_do() -> None:
    with pytest.raises(SplitError, match="days of training history"):
        plan_split(START, START + 60 * DAY, 30 * DAY, SplitConfig())


def test_assign_puts_every_attempt_in_its_window() -> None:
    plan = plan_split(START, END, 30 * DAY, SplitConfig(test_days=20, validation_days=10))
    times = pd.Series([START, plan.gap.start, plan.validation.start, plan.test.start, plan.test.end, END])
    assert plan.assign(times).tolist() == ["train", "gap", "validation", "test", "immature", "immature"]
    # an attempt made exactly when the data ends is in the failure model's test window
    no_delay = plan_split(START, END, pd.Timedelta(0), SplitConfig(test_days=20, validation_days=10))
    assert no_delay.assign(pd.Series([END])).tolist() == ["test"]


@settings(max_examples=60, deadline=None)
@given(
    occurred_days=st.lists(st.floats(0, 199), min_size=5, max_size=60),
    delays=st.lists(st.one_of(st.none(), st.floats(0.01, 120)), min_size=60, max_size=60),
)
def test_no_training_label_comes_from_after_the_cutoff(
    occurred_days: list[float], delays: list[float | None]
) -> None:
    plan = plan_split(START, END, 30 * DAY, SplitConfig(test_days=20, validation_days=10))
    occurred = pd.Series([START + d * DAY for d in occurred_days])
    reported = pd.Series(
        [pd.NaT if delay is None else t + delay * DAY for t, delay in zip(occurred, delays, strict=False)],
        dtype="datetime64[ns, UTC]",
    )
    parts = plan.assign(occurred)
    labels = fraud_labels(parts, reported, plan)
    train = (parts == Part.TRAIN.value).to_numpy()
    positives = labels.to_numpy() == 1
    assert (reported[train & positives] < plan.train_label_cutoff).all()
    late = train & reported.notna().to_numpy() & (reported >= plan.train_label_cutoff).to_numpy()
    assert (labels.to_numpy()[late] == 0).all()
    unused = parts.isin([Part.BEFORE.value, Part.GAP.value, Part.IMMATURE.value]).to_numpy()
    assert labels[unused].isna().all()
    matured = parts.isin([Part.VALIDATION.value, Part.TEST.value]).to_numpy()
    assert (labels.to_numpy()[matured] == (reported.notna() & (reported <= END)).to_numpy()[matured]).all()


def test_label_delay_is_measured_as_a_quantile_in_whole_days() -> None:
    occurred = pd.Series([START] * 100)
    reported = occurred + pd.to_timedelta(np.arange(1, 101), unit="D")
    assert measure_label_delay(occurred, reported, LabelConfig(fraud_delay_quantile=0.9)) == 91 * DAY
    assert measure_label_delay(occurred, reported, LabelConfig(fraud_label_delay_days=12)) == 12 * DAY


def test_label_delay_needs_reports_or_a_configured_value() -> None:
    empty = pd.Series([], dtype="datetime64[ns, UTC]")
    with pytest.raises(SplitError, match="fraud_label_delay_days"):
        measure_label_delay(empty, empty, LabelConfig())


def test_reports_before_their_attempt_are_refused() -> None:
    with pytest.raises(SplitError, match="before the attempt"):
        measure_label_delay(pd.Series([START]), pd.Series([START - DAY]), LabelConfig())


def test_task_datasets_respect_the_windows_and_the_maturity_rule() -> None:
    world = make_world(rows=3000, days=150, report_delay_days=12)
    frame = assemble(
        world.attempts, world.outcomes, world.reports, world.features, world.truth, baselines=IPTV_BASELINES
    )
    config = load_config(overrides={"labels.fraud_label_delay_days": 20})
    fraud = task_data(frame, Task.FRAUD, CONTRACT, config)
    failure = task_data(frame, Task.FAILURE, CONTRACT, config)
    assert fraud.plan.test.end == frame[REPORTED_AT_COLUMN].max() - 20 * DAY + US
    assert fraud.plan.gap.days >= 20
    assert fraud.train.meta["occurred_at"].max() < fraud.plan.gap.start
    assert fraud.test.meta["occurred_at"].min() >= fraud.plan.test.start
    assert fraud.counts["attempts_immature"] > 0
    # failure labels need no maturity: its test window runs to the end of the data
    assert failure.plan.test.end > fraud.plan.test.end
    assert failure.counts["attempts_immature"] == 0


def test_test_window_ends_with_the_attempts_when_reports_run_on_after_them() -> None:
    last = START + 150 * DAY
    plan = plan_split(START, END, 30 * DAY, SplitConfig(), last_attempt=last)
    assert plan.test.end == last + pd.Timedelta(microseconds=1)
    assert plan.assign(pd.Series([last])).tolist() == ["test"]


def test_provider_data_without_truth_trains_and_reports_without_a_ceiling() -> None:
    world = make_world(rows=3000, days=150, report_delay_days=12)
    frame = assemble(
        world.attempts, world.outcomes, world.reports, world.features, truth=None, baselines=IPTV_BASELINES
    )
    config = load_config(
        overrides={
            "labels.fraud_label_delay_days": 20,
            "model.trials": 1,
            "model.max_rounds": 30,
            "model.num_threads": 1,
        }
    )
    data = task_data(frame, Task.FRAUD, CONTRACT, config)
    assert not data.has_truth
    report = train_task(data, config).report
    assert set(report) == {"model", "baseline", "standing"}
    assert "share_of_truth_ap" not in report["standing"]


def test_a_test_window_given_by_date_is_exact_to_the_instant() -> None:
    start = pd.Timestamp("2026-05-03T05:17:00.000123", tz="UTC")
    end = pd.Timestamp("2026-05-24T11:00:00", tz="UTC")
    config = SplitConfig(test_start=start.to_pydatetime(), test_end=end.to_pydatetime(), validation_days=10)
    plan = plan_split(START, END, 30 * DAY, config, last_attempt=END - DAY)
    assert (plan.test.start, plan.test.end) == (start, end)
    assert plan.validation.end == start
    assert plan.gap.end == plan.validation.start
    # only the start: the window is test_days long; a date is its midnight, UTC
    by_start = plan_split(
        START, END, 30 * DAY, load_config(overrides={"split.test_start": "2026-05-03"}).split
    )
    assert by_start.test.start == pd.Timestamp("2026-05-03", tz="UTC")
    assert by_start.test.days == 28


def test_a_test_window_with_immature_labels_is_refused_saying_until_when_labels_are_known() -> None:
    config = SplitConfig(
        test_start=(END - 40 * DAY).to_pydatetime(), test_end=(END - 10 * DAY).to_pydatetime()
    )
    with pytest.raises(SplitError, match=r"not mature.*20\.00 days of the window are immature"):
        plan_split(START, END, 30 * DAY, config)


def test_labels_cut_at_test_start_puts_the_gap_before_the_test() -> None:
    config = SplitConfig(
        test_days=20, validation_days=10, validation=ValidationPlacement.LABELS_CUT_AT_TEST_START
    )
    plan = plan_split(START, END, 30 * DAY, config)
    assert plan.gap.end == plan.test.start
    assert plan.gap.days == 30
    assert plan.validation.end == plan.gap.start
    assert (
        plan.train.end == plan.validation.start
    )  # no train→validation gap: every label is cut at the test start
    assert plan.train_label_cutoff == plan.test.start
    # the train window ends where it does with validation before the test: the same history is learnt from
    before_test = plan_split(START, END, 30 * DAY, config.model_copy(update={"validation": "before_test"}))
    assert before_test.train.end == plan.train.end


@settings(max_examples=60, deadline=None)
@given(
    occurred_days=st.lists(st.floats(0, 199), min_size=5, max_size=60),
    delays=st.lists(st.one_of(st.none(), st.floats(0.01, 120)), min_size=60, max_size=60),
)
def test_with_labels_cut_at_test_start_no_train_or_validation_label_comes_from_after_it(
    occurred_days: list[float], delays: list[float | None]
) -> None:
    config = SplitConfig(
        test_days=20, validation_days=10, validation=ValidationPlacement.LABELS_CUT_AT_TEST_START
    )
    plan = plan_split(START, END, 30 * DAY, config)
    occurred = pd.Series([START + d * DAY for d in occurred_days])
    reported = pd.Series(
        [pd.NaT if delay is None else t + delay * DAY for t, delay in zip(occurred, delays, strict=False)],
        dtype="datetime64[ns, UTC]",
    )
    parts = plan.assign(occurred)
    labels = fraud_labels(parts, reported, plan).to_numpy()
    used = parts.isin([Part.TRAIN.value, Part.VALIDATION.value]).to_numpy()
    known = reported.notna().to_numpy() & (reported < plan.test.start).to_numpy()
    assert (labels[used] == known[used]).all()
    test = (parts == Part.TEST.value).to_numpy()
    matured = reported.notna().to_numpy() & (reported <= END).to_numpy()
    assert (labels[test] == matured[test]).all()  # the test labels stay matured


def test_the_data_trained_and_validated_on_holds_no_report_from_after_the_test_start() -> None:
    world = make_world(rows=3000, days=150, report_delay_days=60)  # reports often weeks after the attempt
    frame = assemble(
        world.attempts, world.outcomes, world.reports, world.features, world.truth, baselines=IPTV_BASELINES
    )
    overrides = {"labels.fraud_label_delay_days": 20, "split.validation": "labels_cut_at_test_start"}
    data = task_data(frame, Task.FRAUD, CONTRACT, load_config(overrides=overrides))
    reported_at = frame.set_index("occurred_at")[REPORTED_AT_COLUMN]
    ignored = 0
    for window in (data.train, data.validation):
        reports = reported_at.loc[window.meta["occurred_at"]].to_numpy()
        late = pd.notna(reports) & (reports >= data.plan.test.start)
        assert (
            window.labels == (pd.notna(reports) & ~late)
        ).all()  # a report after the test start: not fraud
        ignored += int(late.sum())
    assert ignored > 0  # there were such reports to leave out
    assert data.validation.meta["occurred_at"].max() < data.plan.test.start - 20 * DAY
