"""Delayed windows, spreads and quantiles, z-scores and ratios: exact arithmetic, both engines agree."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from events.io import read_events
from events.schema import EventKind
from features.batch import SCRATCH, build_data_dir, build_features, read_features
from features.definitions import (
    ACCOUNT,
    APPROVED,
    CARD,
    DECLINED,
    DEVICE,
    Aggregate,
    AmountToUsual,
    FeatureSet,
    Op,
    Ratio,
    Source,
    Window,
    ZScore,
    days,
    hours,
    zscore,
)
from features.history import event_stream, load_history
from features.kernels import OP_CODE, SPEC_WIDTH, aggregate, initial_carry
from features.online import OnlineEngine
from features.plan import derive
from features.stores.memory import MemoryStore
from simulator import WorldConfig, simulate
from tests.features.factory import START, History, attempt, histories, history_of, random_history, report
from tests.features.replay import mismatches, records, replay, stream
from tests.features.test_batch import _write_parts
from tests.features.test_bulk import FAR, dump, events_of

A, OUT, REP = Source.ATTEMPTS, Source.OUTCOMES, Source.REPORTS
#: The 28 days before the last week: the longest reach of the set (35 days), beyond every plain window.
DELAYED = days(28).delayed(days(7))
REPORTS_DELAYED = Aggregate(CARD, REP, Op.COUNT, DELAYED)
ATTEMPTS_DELAYED = Aggregate(CARD, A, Op.COUNT, DELAYED)
ACCOUNT_STD = Aggregate(ACCOUNT, A, Op.STD, days(30), value="amount")

#: Every new op and definition, next to old ops in delayed windows and the whole-history ones (pruning).
OPS = FeatureSet(
    "ops",
    (
        REPORTS_DELAYED,
        Ratio(REPORTS_DELAYED, ATTEMPTS_DELAYED),
        Ratio(Aggregate(CARD, A, Op.COUNT, hours(1)), Aggregate(CARD, A, Op.COUNT, days(30))),
        Ratio(Aggregate(CARD, OUT, Op.COUNT, days(7), DECLINED), Aggregate(CARD, A, Op.COUNT, days(7))),
        ACCOUNT_STD,
        Aggregate(ACCOUNT, A, Op.QUANTILE, days(30), value="amount", q=0.5),
        Aggregate(ACCOUNT, A, Op.QUANTILE, days(7).delayed(hours(1)), value="amount", q=0.9),
        Aggregate(ACCOUNT, OUT, Op.QUANTILE, days(30), APPROVED, "amount", q=0.995),
        Aggregate(CARD, OUT, Op.STD, DELAYED, APPROVED, "amount"),
        zscore(ACCOUNT, A, days(30)),
        ZScore(
            Aggregate(CARD, OUT, Op.QUANTILE, days(30), APPROVED, "amount", q=0.5),
            Aggregate(CARD, OUT, Op.STD, days(30), APPROVED, "amount"),
        ),
        AmountToUsual(Aggregate(ACCOUNT, A, Op.MEAN, days(7).delayed(days(1)), value="amount")),
        Aggregate(CARD, A, Op.SUM, hours(24).delayed(hours(24)), value="amount"),
        Aggregate(CARD, A, Op.MAX, DELAYED, value="amount"),
        Aggregate(CARD, OUT, Op.RATIO, DELAYED, DECLINED),
        Aggregate(DEVICE, A, Op.DISTINCT, hours(24).delayed(hours(24)), value="account_id"),
        Aggregate(DEVICE, A, Op.STD, Window(3_600, offset_seconds=60), value="amount"),
        Aggregate(CARD, A, Op.COUNT),
        Aggregate(CARD, OUT, Op.CONSECUTIVE, filter=DECLINED),
    ),
)
NAMES = OPS.names
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def batch(history: History, feature_set: FeatureSet = OPS) -> pd.DataFrame:
    return build_features(history.attempts, history.outcomes, history.reports, feature_set)


# -- the kernels' arithmetic, against exact references -----------------------------------------------------


def _exact_std(values: list[int]) -> float:
    mean = Fraction(sum(values), len(values))
    variance = sum((Fraction(v) - mean) ** 2 for v in values) / len(values)
    return math.sqrt(variance) / 1000.0


def _exact_quantile(values: list[int], ppm: int) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * Fraction(ppm, 1_000_000)
    below = math.floor(rank)
    upper = ordered[min(below + 1, len(ordered) - 1)]
    return float(ordered[below] + (rank - below) * (upper - ordered[below])) / 1000.0


@st.composite
def amounts(draw: st.DrawFn, n: int) -> list[int]:
    """Amounts in thousandths: any size (up to 10**15, whose squares overflow int64), any spread."""
    base = draw(st.integers(-(10**15), 10**15))
    spread = draw(st.sampled_from([0, 1, 1_000, 10**7, 10**15]))
    return [base + draw(st.integers(0, spread)) for _ in range(n)]


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 25),
    queries=st.lists(st.integers(0, 30), min_size=1, max_size=6),
    width=st.integers(1, 12),
    offset=st.integers(0, 12),
    ppm=st.integers(1, 999_999),
)
def test_std_and_quantiles_of_a_window_are_exact(
    data: st.DataObject, n: int, queries: list[int], width: int, offset: int, ppm: int
) -> None:
    times = sorted(data.draw(st.lists(st.integers(0, 25), min_size=n, max_size=n)))  # ties happen
    values = data.draw(amounts(n))
    matched = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    specs = np.array(
        [
            [OP_CODE[op], width, 0, 0, 1, offset, ppm if op == Op.QUANTILE else 0]
            for op in (Op.STD, Op.QUANTILE, Op.COUNT)
        ],
        dtype=np.int64,
    ).reshape(3, SPEC_WIDTH)
    q_t = np.array(sorted(queries), dtype=np.int64)
    out = aggregate(
        np.zeros(n, np.int64),
        np.array(times, dtype=np.int64),
        np.array(matched, dtype=np.uint8).reshape(n, 1),
        np.array(values, dtype=np.int64).reshape(n, 1),
        np.zeros(len(q_t), np.int64),
        q_t,
        specs,
        initial_carry(specs),
    )
    for j, t in enumerate(q_t.tolist()):
        inside = [
            v
            for v, at, m in zip(values, times, matched, strict=True)
            if m and t - offset - width <= at < t - offset
        ]
        assert out[j, 2] == len(inside)
        if not inside:
            assert np.isnan(out[j, :2]).all()
            continue
        assert math.isclose(out[j, 0], _exact_std(inside), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(out[j, 1], _exact_quantile(inside, ppm), rel_tol=1e-12, abs_tol=1e-9)


def test_one_amount_has_no_spread_and_is_every_quantile() -> None:
    specs = np.array(
        [[OP_CODE[Op.STD], 10, -1, 0, 1, 0, 0], [OP_CODE[Op.QUANTILE], 10, -1, 0, 1, 0, 900_000]],
        dtype=np.int64,
    )
    one = np.array([[9_990]], dtype=np.int64)
    zero = np.zeros(1, np.int64)
    out = aggregate(
        zero, zero, np.empty((1, 0), np.uint8), one, zero, np.array([5]), specs, initial_carry(specs)
    )
    assert out.tolist() == [[0.0, 9.99]]


# -- derived definitions: the NaN rules --------------------------------------------------------------------

FLOATS = arrays(np.float64, 8, elements=st.one_of(st.floats(-1e6, 1e6), st.just(0.0), st.just(np.nan)))


@given(amount=FLOATS, centre=FLOATS, spread=FLOATS)
def test_a_zscore_is_nan_unless_the_spread_is_positive(
    amount: np.ndarray, centre: np.ndarray, spread: np.ndarray
) -> None:
    definition = zscore(ACCOUNT, A, days(30))
    got = derive(definition, amount, [centre, spread])
    defined = spread > 0
    assert np.isnan(got[~defined]).all()
    np.testing.assert_array_equal(got[defined], (amount[defined] - centre[defined]) / spread[defined])


@given(numerator=FLOATS, denominator=FLOATS)
def test_a_ratio_is_nan_when_the_denominator_is_zero_or_nan(
    numerator: np.ndarray, denominator: np.ndarray
) -> None:
    definition = Ratio(REPORTS_DELAYED, ATTEMPTS_DELAYED)
    got = derive(definition, np.zeros(8), [numerator, denominator])
    defined = (denominator != 0) & ~np.isnan(denominator)
    assert np.isnan(got[~defined]).all()
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got[defined], numerator[defined] / denominator[defined])


# -- the batch engine against a per-attempt reference ------------------------------------------------------

WINDOW = days(3).delayed(hours(12))
REFERENCE = FeatureSet(
    "reference",
    (
        Aggregate(CARD, A, Op.COUNT, WINDOW),
        Aggregate(CARD, A, Op.STD, WINDOW, value="amount"),
        Aggregate(CARD, A, Op.QUANTILE, WINDOW, value="amount", q=0.75),
        zscore(CARD, A, WINDOW),
        Ratio(Aggregate(CARD, A, Op.COUNT, hours(6)), Aggregate(CARD, A, Op.COUNT, WINDOW)),
    ),
)


def _reference(history: History) -> pd.DataFrame:
    """REFERENCE's features from the attempts frame, attempt by attempt, with numpy's statistics."""
    frame = history.attempts
    rows = []
    for _, row in frame.iterrows():
        t, card = row["occurred_at"], row["payment_method_id"]
        same = frame[frame["payment_method_id"] == card]
        end = t - pd.Timedelta(hours=12)
        window = same[(same["occurred_at"] >= end - pd.Timedelta(days=3)) & (same["occurred_at"] < end)]
        recent = same[(same["occurred_at"] >= t - pd.Timedelta(hours=6)) & (same["occurred_at"] < t)]
        milli = np.rint(window["amount"].to_numpy(np.float64) * 1000.0)
        count = float(len(window))
        std = float(np.std(milli)) / 1000.0 if len(window) else np.nan
        mean = float(np.mean(milli)) / 1000.0 if len(window) else np.nan
        p75 = float(np.quantile(milli, 0.75)) / 1000.0 if len(window) else np.nan
        z = (row["amount"] - mean) / std if std > 0 else np.nan
        ratio = len(recent) / count if count else np.nan
        rows.append([row["attempt_id"], count, std, p75, z, ratio])
    return pd.DataFrame(rows, columns=["attempt_id", *REFERENCE.names])


@EXAMPLES
@given(history=histories())
def test_the_batch_engine_computes_what_the_definitions_say(history: History) -> None:
    assert mismatches(_reference(history), batch(history, REFERENCE), REFERENCE.names, 1e-6) == []


# -- both engines agree ------------------------------------------------------------------------------------


@EXAMPLES
@given(history=histories(), seed=st.integers(0, 2**31))
def test_online_replay_equals_batch_whatever_the_arrival_order(history: History, seed: int) -> None:
    engine = OnlineEngine(MemoryStore(), OPS)
    online = replay(engine, stream(history, seed=seed, early_labels=0.3))
    assert mismatches(batch(history), online, NAMES, 0.0) == []


@EXAMPLES
@given(history=histories(), seed=st.integers(0, 2**31))
def test_scoring_and_recording_in_one_unit_of_work_equals_batch(history: History, seed: int) -> None:
    engine = OnlineEngine(MemoryStore(), OPS)
    online = replay(engine, stream(history, seed=seed, early_labels=0.3), record_twice=True, combined=True)
    assert mismatches(batch(history), online, NAMES, 0.0) == []


def _edges() -> History:
    """Card pm_1: attempts on both edges of the 02:00 attempt's window [00:30, 01:30) (1h delayed by 30m),
    two of them at the same time, and a fraud report reported exactly at the window's start."""
    return history_of(
        [
            attempt("a0", "00:29:59", amount=1.0),
            attempt("a1", "00:30:00", amount=10.0),
            attempt("a2", "00:30:00", amount=20.0),
            attempt("a3", "01:29:59", amount=40.0),
            attempt("a4", "01:30:00", amount=80.0),
            attempt("a5", "02:00:00", amount=25.0),
        ],
        reports=[report("r1", "a0", "00:30:00"), report("r2", "a1", "01:30:00")],
    )


EDGE_WINDOW = hours(1).delayed(Window(1_800))
EDGES = FeatureSet(
    "edges",
    (
        Aggregate(CARD, A, Op.COUNT, EDGE_WINDOW),
        Aggregate(CARD, A, Op.STD, EDGE_WINDOW, value="amount"),
        Aggregate(CARD, A, Op.QUANTILE, EDGE_WINDOW, value="amount", q=0.5),
        zscore(CARD, A, EDGE_WINDOW),
        Ratio(Aggregate(CARD, REP, Op.COUNT, EDGE_WINDOW), Aggregate(CARD, A, Op.COUNT, EDGE_WINDOW)),
    ),
)


def test_a_delayed_window_holds_its_start_and_not_its_end_in_both_engines() -> None:
    history = _edges()
    table = batch(history, EDGES).set_index("attempt_id")
    inside = np.array([10.0, 20.0, 40.0])
    expected = [3.0, np.std(inside), 20.0, (25.0 - inside.mean()) / np.std(inside), 1 / 3]
    np.testing.assert_allclose(table.loc["a5", EDGES.names].to_numpy(np.float64), expected, rtol=1e-12)
    online = replay(OnlineEngine(MemoryStore(), EDGES), stream(history, seed=5))
    assert mismatches(table.reset_index(), online, EDGES.names, 0.0) == []


def at_day(day: int) -> pd.Timestamp:
    return START + pd.Timedelta(days=day, hours=10)


def test_the_online_store_keeps_what_a_delayed_window_reaches() -> None:
    """An event 34 days old still counts in the 28 days before the last week, after newer attempts pruned
    the entity's state (the horizon is offset + window + slack, not the width alone)."""
    first = attempt("old", "10:00")
    later = [{**attempt(f"a{day}", "10:00"), "occurred_at": at_day(day)} for day in (28, 33)]
    engine = OnlineEngine(MemoryStore(), FeatureSet("reach", (ATTEMPTS_DELAYED,)))
    for event in [first, *later]:
        engine.record_attempt(event)
    probe = {**first, "attempt_id": "probe", "occurred_at": at_day(34)}
    assert engine.features_for(probe).tolist() == [1.0]  # "old" only: a28 and a33 fall in the last week


def test_scoring_several_times_at_once_equals_scoring_each() -> None:
    history = history_of([attempt(f"a{i}", f"{10 + i}:00", amount=5.0 * (i + 1)) for i in range(6)])
    engine = OnlineEngine(MemoryStore(), OPS)
    for row in records(history.attempts):
        engine.record_attempt(row)
    probe = {**records(history.attempts)[0], "attempt_id": "probe"}
    times = [START + pd.Timedelta(hours=h) for h in (40, 11, 36, 12.5, 15)]
    rows = engine.features_at(probe, [t.to_pydatetime() for t in times])
    for k, moment in enumerate(times):
        np.testing.assert_array_equal(rows[k], engine.features_for({**probe, "occurred_at": moment}))


def test_the_bounded_batch_build_gives_the_in_memory_features(tmp_path: Path) -> None:
    """Derived definitions are built in their entity's partition, like the aggregates they read."""
    history = random_history(200, 5, accounts=8, days=90.0)
    _write_parts(tmp_path, history, 2)
    build_data_dir(tmp_path, OPS, partition_attempts=40)
    assert mismatches(batch(history), read_features(tmp_path), NAMES, 0.0) == []
    assert not (tmp_path / SCRATCH).exists()


# -- a simulated world: replay and bulk loading ------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ops-world") / "data"
    simulate(WorldConfig(accounts=300, months=4, seed=11, chunk_accounts=300), out)
    return out


def test_replaying_a_simulated_world_reproduces_the_batch_table_exactly(world: Path) -> None:
    history = History(*(read_events(world, kind) for kind in EventKind))
    online = replay(OnlineEngine(MemoryStore(), OPS), stream(history, seed=1, early_labels=0.01))
    assert mismatches(batch(history), online, NAMES, 0.0) == []


@pytest.mark.slow
@pytest.mark.no_cover  # the engines' lines are covered by the tests above; tracing would double the run time
def test_replaying_100k_simulated_attempts_reproduces_the_batch_table_exactly(tmp_path: Path) -> None:
    """The simulated year of ``test_parity``, in time order, with every new op and definition."""
    simulate(WorldConfig(accounts=15_500, months=12, seed=7), tmp_path)
    history = History(*(read_events(tmp_path, kind) for kind in EventKind))
    online = replay(OnlineEngine(MemoryStore(), OPS), stream(history, seed=1, early_labels=0.01))
    table = batch(history)
    assert len(online) == len(history.attempts) >= 100_000
    assert mismatches(table, online, NAMES, 0.0) == []
    for name in NAMES:  # the world exercises every feature: each takes several values
        assert table[name].dropna().nunique() > 1, name


def test_a_simulated_world_loads_in_bulk_into_the_state_one_by_one_recording_leaves(world: Path) -> None:
    events = event_stream(world)
    reference = OnlineEngine(MemoryStore(), OPS)
    load_history(reference, events, FAR, bulk=False)
    engine = OnlineEngine(MemoryStore(), OPS)
    load_history(engine, events, FAR)
    assert dump(engine.store) == dump(reference.store)


@EXAMPLES
@given(history=histories(max_events=80), seed=st.integers(0, 2**31))
def test_any_arrival_order_loads_in_bulk_like_one_by_one(history: History, seed: int) -> None:
    events = events_of(history, seed=seed, early_labels=0.3)
    bulk, reference = OnlineEngine(MemoryStore(), OPS), OnlineEngine(MemoryStore(), OPS)
    load_history(bulk, events, FAR)
    load_history(reference, events, FAR, bulk=False)
    assert dump(bulk.store) == dump(reference.store)
