"""The online engine's behaviour: pending labels, idempotency, bounded state, expiry, erasure, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.batch import build_features
from features.definitions import (
    ACCOUNT,
    APPROVED,
    CARD,
    DECLINED,
    Aggregate,
    AmountToUsual,
    FeatureSet,
    Op,
    RequestFeature,
    Source,
    Transform,
    days,
    hours,
)
from features.iptv import FEATURE_SET
from features.online import OnlineEngine, OnlineEventError, Retention, _appended
from features.state import CorruptStateError, decode
from features.stores.memory import MemoryStore
from tests.features.factory import attempt, history_of, outcome, random_history, report
from tests.features.replay import mismatches, records, replay, stream

NAMES = FEATURE_SET.names


def engine() -> OnlineEngine:
    return OnlineEngine(MemoryStore(), FEATURE_SET)


def value(vector: np.ndarray, name: str) -> float:
    return float(vector[NAMES.index(name)])


def test_an_outcome_before_its_attempt_waits_and_is_applied() -> None:
    online = engine()
    (first,) = records(history_of([attempt("a1", "10:00")]).attempts)
    (declined,) = records(
        history_of([attempt("a1", "10:00")], [outcome("a1", "10:01", "declined", "do_not_honor")]).outcomes
    )
    assert online.record_outcome(declined) is True  # pending
    assert online.record_outcome(declined) is False  # pending already
    assert online.record_attempt(first) is True
    later = {**first, "attempt_id": "a2", "occurred_at": first["occurred_at"] + timedelta(hours=1)}
    assert value(online.features_for(later), "card_outcomes_declined_count_1d") == 1
    assert online.record_outcome(declined) is False  # applied already


def test_recording_an_event_twice_is_a_no_op() -> None:
    online = engine()
    history = history_of([attempt("a1", "10:00")], [outcome("a1", "10:01")], [report("r1", "a1", "10:02")])
    (row,) = records(history.attempts)
    (result,) = records(history.outcomes)
    (fraud,) = records(history.reports)
    assert [online.record_attempt(row), online.record_attempt(row)] == [True, False]
    assert [online.record_outcome(result), online.record_outcome(result)] == [True, False]
    assert [online.record_report(fraud), online.record_report(fraud)] == [True, False]
    later = {**row, "attempt_id": "a2", "occurred_at": row["occurred_at"] + timedelta(hours=1)}
    vector = online.features_for(later)
    assert value(vector, "card_attempts_count_1d") == 1
    assert value(vector, "card_reports_count_lifetime") == 1


def test_score_and_record_answers_the_features_before_the_attempt_then_records_it_once() -> None:
    combined, separate = engine(), engine()
    history = history_of(
        [attempt("a1", "10:00"), attempt("a2", "10:30")], [outcome("a2", "10:31", "declined", "do_not_honor")]
    )
    first, second = records(history.attempts)
    (declined,) = records(history.outcomes)
    for online in (combined, separate):
        online.record_attempt(first)
        online.record_outcome(declined)  # pending until a2 arrives
    expected = separate.features_for(second)
    assert separate.record_attempt(second) is True
    vector, recorded = combined.score_and_record(second)
    np.testing.assert_array_equal(vector, expected)
    assert recorded is True
    again, recorded_again = combined.score_and_record(second)
    np.testing.assert_array_equal(again, expected)
    assert recorded_again is False
    later = {**second, "attempt_id": "a3", "occurred_at": second["occurred_at"] + timedelta(hours=1)}
    np.testing.assert_array_equal(combined.features_for(later), separate.features_for(later))
    assert value(combined.features_for(later), "card_outcomes_declined_count_1d") == 1
    assert sorted(combined.store.keys("")) == sorted(separate.store.keys(""))


def test_features_for_never_writes() -> None:
    store = MemoryStore()
    online = OnlineEngine(store, FEATURE_SET)
    (row,) = records(history_of([attempt("a1", "10:00")]).attempts)
    online.features_for(row)
    assert list(store.keys("")) == []


def test_state_is_pruned_beyond_the_longest_window_but_whole_history_features_survive() -> None:
    online = engine()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = records(history_of([attempt("x", "00:00")]).attempts)
    base = rows[0]
    for day in range(0, 400, 2):
        event = {**base, "attempt_id": f"a{day}", "occurred_at": start + timedelta(days=day)}
        online.record_attempt(event)
        online.record_outcome(
            {
                "attempt_id": f"a{day}",
                "occurred_at": event["occurred_at"],
                "status": "declined",
                "decline_code": "do_not_honor",
            }
        )
    groups = online._by_entity["card"]
    (blob,) = online.store.get_many([online._entity_key(groups[0].entity, "pm_1")])
    kept = max(len(state.rows) for state in decode(groups, blob))
    assert kept <= (90 + 2) // 2 + 1  # longest window + slack, one event every two days
    query = {**base, "attempt_id": "q", "occurred_at": start + timedelta(days=401)}
    vector = online.features_for(query)
    assert value(vector, "card_attempts_since_first_days") == pytest.approx(401)
    assert value(vector, "card_outcomes_declined_consecutive") == 200


def test_expiry_drops_old_attempt_records_and_idle_entities() -> None:
    store = MemoryStore()
    online = OnlineEngine(
        store, FEATURE_SET, Retention(label_horizon=timedelta(days=10), entity_ttl=timedelta(days=30))
    )
    (row,) = records(history_of([attempt("a1", "10:00")]).attempts)
    online.record_attempt(row)
    assert online.expire(row["occurred_at"] + timedelta(days=11)) == 2  # attempt record + account index
    assert online.expire(row["occurred_at"] + timedelta(days=31)) == 5  # the attempt's five entities
    assert list(store.keys("")) == []


def test_erasing_an_account_removes_its_events_from_shared_entities() -> None:
    online = engine()
    history = history_of(
        [attempt("a1", "10:00", account_id="acc_1"), attempt("b1", "10:05", account_id="acc_2")],
        [outcome("a1", "10:01", "declined", "fraudulent")],
        [report("r1", "a1", "10:02")],
    )
    for row in records(history.attempts):
        online.record_attempt(row)
    online.record_outcome(records(history.outcomes)[0])
    online.record_report(records(history.reports)[0])
    removed = online.erase_account("acc_1")
    assert removed >= 3
    probe = {
        **records(history.attempts)[1],
        "attempt_id": "p",
        "occurred_at": history.attempts["occurred_at"].max() + pd.Timedelta(hours=1),
    }
    vector = online.features_for(probe)
    assert value(vector, "card_attempts_count_1d") == 1  # only acc_2's attempt remains on the shared card
    assert value(vector, "card_outcomes_declined_count_1d") == 0
    assert value(vector, "card_reports_count_lifetime") == 0
    assert not [key for key in online.store.keys("") if "acc_1" in key]


def test_online_and_batch_agree_on_a_hand_written_history() -> None:
    history = history_of(
        [attempt("a1", "10:00"), attempt("a2", "10:30", device_id=None), attempt("a3", "11:00")],
        [outcome("a1", "10:00:30", "declined", "insufficient_funds")],
        [report("r1", "a1", "10:45")],
    )
    online = engine()
    rows = records(history.attempts)
    online.record_attempt(rows[0])
    online.record_outcome(records(history.outcomes)[0])
    online.record_attempt(rows[1])
    online.record_report(records(history.reports)[0])
    expected = build_features(history.attempts, history.outcomes, history.reports, FEATURE_SET).iloc[2, 1:]
    np.testing.assert_allclose(online.features_for(rows[2]), expected.to_numpy(np.float64), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"occurred_at": "2026-01-01"}, "tz-aware datetime"),
        ({"occurred_at": datetime(2026, 1, 1)}, "tz-aware"),
        ({"amount": "12"}, "must be a number"),
        ({"attempt_id": ""}, "non-empty string"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(change: dict[str, object], message: str) -> None:
    (row,) = records(history_of([attempt("a1", "10:00")]).attempts)
    with pytest.raises(OnlineEventError, match=message):
        engine().record_attempt({**row, **change})


def test_corrupt_state_is_reported() -> None:
    groups = engine()._by_entity["card"]
    with pytest.raises(CorruptStateError, match="corrupt"):
        decode(groups, b"\0" * 32)


def test_warm_up_scores_a_probe_without_writing() -> None:
    store = MemoryStore()
    OnlineEngine(store, FEATURE_SET).warm_up()
    assert list(store.keys("")) == []


@given(st.lists(st.text(max_size=12), max_size=5), st.text(min_size=1, max_size=12))
def test_an_account_index_grows_by_one_id_exactly_as_json_writes_it(ids: list[str], new_id: str) -> None:
    index = json.dumps(ids).encode() if ids else None
    assert _appended(index, new_id) == json.dumps([*ids, new_id]).encode()


def test_request_features_between_aggregates_and_a_ratio_land_in_their_columns() -> None:
    """Request features not declared together, and a ratio over an aggregate that is not itself a feature."""
    interleaved = FeatureSet(
        "interleaved",
        (
            Aggregate(CARD, Source.ATTEMPTS, Op.COUNT, hours(1)),
            RequestFeature(Transform.NUMBER, "amount"),
            Aggregate(ACCOUNT, Source.OUTCOMES, Op.COUNT, days(7), DECLINED),
            RequestFeature(Transform.HOUR_OF_DAY),
            AmountToUsual(Aggregate(ACCOUNT, Source.OUTCOMES, Op.MEAN, days(90), APPROVED, value="amount")),
        ),
    )
    history = random_history(80, seed=5, accounts=4, days=30.0)
    online = replay(OnlineEngine(MemoryStore(), interleaved), stream(history, seed=2), combined=True)
    expected = build_features(history.attempts, history.outcomes, history.reports, interleaved)
    assert mismatches(expected, online, interleaved.names) == []
    assert online[interleaved.names[-1]].notna().any()  # some accounts have a usual amount
