"""A provider's own fields in both engines: parity of a feature set over declared fields (terminal entity,
category and range filters, extension request features, ages, local clocks), bulk loading, the bounded
build, absent optional columns, zero amounts and erasure."""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.io import write_extension, write_part
from events.schema import EventKind, ExtensionField, FieldType
from features.batch import FeatureInputError, build_data_dir, build_features, read_features
from features.definitions import ACCOUNT, FeatureSet
from features.history import load_history
from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from tests.features.factory import (
    History,
    attempt,
    histories,
    history_of,
    outcome,
    random_history,
    to_table,
)
from tests.features.provider import FIELDS, PROVIDER_SET, TERMINAL
from tests.features.replay import mismatches, records, replay, stream
from tests.features.test_bulk import FAR, dump, events_of

NAMES = PROVIDER_SET.names
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
EXACT = 0.0
#: The core fields the contract makes optional.
OPTIONAL = ["kind", "plan_tier", "plan_period", "method_type", "card_funding", "retry_number", "currency"]


def batch(history: History, feature_set: FeatureSet = PROVIDER_SET) -> pd.DataFrame:
    return build_features(history.attempts, history.outcomes, history.reports, feature_set)


def value(table: pd.DataFrame, attempt_id: str, name: str) -> float:
    found: float = table.set_index("attempt_id")[name].to_dict()[attempt_id]
    return found


@EXAMPLES
@given(history=histories(fields=FIELDS), seed=st.integers(0, 2**31))
def test_online_replay_over_declared_fields_equals_batch_exactly(history: History, seed: int) -> None:
    engine = OnlineEngine(MemoryStore(), PROVIDER_SET)
    online = replay(engine, stream(history, seed=seed, early_labels=0.3))
    assert mismatches(batch(history), online, NAMES, tolerance=EXACT) == []


@EXAMPLES
@given(history=histories(fields=FIELDS), seed=st.integers(0, 2**31))
def test_the_service_path_over_declared_fields_equals_batch_exactly(history: History, seed: int) -> None:
    engine = OnlineEngine(MemoryStore(), PROVIDER_SET)
    events = stream(history, seed=seed, early_labels=0.3)
    online = replay(engine, events, record_twice=True, combined=True)
    assert mismatches(batch(history), online, NAMES, tolerance=EXACT) == []


@EXAMPLES
@given(history=histories(fields=FIELDS), seed=st.integers(0, 2**31))
def test_batch_over_declared_fields_does_not_depend_on_row_order(history: History, seed: int) -> None:
    shuffled = History(
        *(
            frame.sample(frac=1.0, random_state=seed)
            for frame in (history.attempts, history.outcomes, history.reports)
        )
    )
    assert mismatches(batch(history), batch(shuffled), NAMES, tolerance=EXACT) == []


@EXAMPLES
@given(history=histories(fields=FIELDS), seed=st.integers(0, 2**31))
def test_bulk_loading_over_declared_fields_leaves_the_one_by_one_store_byte_for_byte(
    history: History, seed: int
) -> None:
    events = events_of(history, seed=seed, early_labels=0.3)
    reference = OnlineEngine(MemoryStore(), PROVIDER_SET)
    load_history(reference, events, FAR, bulk=False)
    loaded = OnlineEngine(MemoryStore(), PROVIDER_SET)
    load_history(loaded, events, FAR)
    assert dump(loaded.store) == dump(reference.store)


@settings(max_examples=6, deadline=timedelta(seconds=60), suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 100), st.integers(0, 2**31), st.integers(10, 60))
def test_the_bounded_build_over_declared_fields_gives_the_in_memory_features(
    n: int, seed: int, partition_attempts: int
) -> None:
    history = random_history(n, seed, accounts=6, days=30.0, fields=FIELDS)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        write_extension(data_dir, FIELDS)  # as an import of a mapping declaring them records them
        for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
            extension = FIELDS if kind == EventKind.ATTEMPTS else ()
            write_part(data_dir, kind.value, 0, to_table(kind, frame, extension))
        build_data_dir(data_dir, PROVIDER_SET, partition_attempts=partition_attempts)
        got = read_features(data_dir)
    assert list(got.columns) == ["attempt_id", *NAMES]
    assert mismatches(batch(history), got, NAMES, tolerance=EXACT) == []


def test_zero_amount_checks_are_counted_by_an_amount_range_filter() -> None:
    history = history_of(
        [
            attempt("a1", "10:00", amount=0.0),
            attempt("a2", "10:10", amount=0.0),
            attempt("a3", "10:20", amount=9.99),
            attempt("a4", "10:30", amount=25.0),
        ],
        [outcome("a1", "10:01"), outcome("a2", "10:11", "declined", "do_not_honor")],
        fields=FIELDS,
    )
    table = batch(history)
    assert value(table, "a4", "account_attempts_amount_lt_0p01_count_7d") == 2
    assert value(table, "a4", "account_outcomes_amount_lt_0p01_count_30d") == 2
    assert value(table, "a4", "account_attempts_amount_ge_20_sum_amount_30d") == 0
    online = replay(OnlineEngine(MemoryStore(), PROVIDER_SET), stream(history))
    assert mismatches(table, online, NAMES, tolerance=EXACT) == []


def test_a_terminal_entity_counts_its_attempts_and_its_web_channel() -> None:
    history = history_of(
        [
            attempt("a1", "10:00", terminal_id="t1", channel="web", account_id="acc_1"),
            attempt("a2", "10:10", terminal_id="t1", channel="app", account_id="acc_2"),
            attempt("a3", "10:20", terminal_id="t2", channel="web"),
            attempt("a4", "10:30", terminal_id="t1"),
            attempt("a5", "10:40"),
        ],
        fields=FIELDS,
    )
    table = batch(history)
    assert value(table, "a4", "terminal_attempts_count_1h") == 2
    assert value(table, "a4", "terminal_attempts_web_count_7d") == 1
    assert value(table, "a4", "terminal_attempts_distinct_account_id_7d") == 2
    assert np.isnan(value(table, "a5", "terminal_attempts_count_1h"))  # no terminal: NaN, not a shared None
    assert np.isnan(value(table, "a4", "channel_code"))  # no channel
    assert value(table, "a2", "channel_code") == 1  # app is the second declared value


def test_absent_optional_columns_read_as_missing_in_both_engines(caplog: pytest.LogCaptureFixture) -> None:
    history = random_history(80, 3, accounts=5, days=10.0, fields=FIELDS)
    bare = history.attempts.drop(columns=[*OPTIONAL, "terminal_id", "channel"])
    filled = history.attempts.assign(
        **{
            name: pd.Series([None] * len(bare), dtype=object)
            for name in [*OPTIONAL, "terminal_id", "channel"]
        }
    )
    with caplog.at_level(logging.WARNING, logger="features.batch"):
        got = build_features(bare, history.outcomes, history.reports, PROVIDER_SET)
    assert "terminal_id" in caplog.text
    expected = build_features(filled, history.outcomes, history.reports, PROVIDER_SET)
    assert mismatches(expected, got, NAMES, tolerance=EXACT) == []
    assert got["terminal_attempts_count_1h"].isna().all()
    assert got["kind_code"].isna().all()
    iptv = build_features(
        history.attempts.drop(columns=OPTIONAL), history.outcomes, history.reports, FEATURE_SET
    )
    assert iptv["account_attempts_retries_count_7d"].eq(0).all()  # the kind filter matches nothing
    bare_history = History(bare, history.outcomes, history.reports)
    online = replay(OnlineEngine(MemoryStore(), PROVIDER_SET), stream(bare_history), combined=True)
    assert mismatches(got, online, NAMES, tolerance=EXACT) == []


def test_the_bounded_build_without_the_key_and_optional_columns_gives_the_in_memory_features(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    history = random_history(90, 8, accounts=6, days=20.0, fields=FIELDS)
    present = tuple(f for f in FIELDS if f.name != "terminal_id")
    attempts = to_table(EventKind.ATTEMPTS, history.attempts, present).drop_columns(["kind", "plan_tier"])
    write_extension(tmp_path, FIELDS)  # recorded, but this part was written before terminal_id was
    write_part(tmp_path, EventKind.ATTEMPTS.value, 0, attempts)
    write_part(tmp_path, EventKind.OUTCOMES.value, 0, to_table(EventKind.OUTCOMES, history.outcomes))
    write_part(tmp_path, EventKind.FRAUD_REPORTS.value, 0, to_table(EventKind.FRAUD_REPORTS, history.reports))
    with caplog.at_level(logging.WARNING, logger="features.batch"):
        build_data_dir(tmp_path, PROVIDER_SET, partition_attempts=20)
    assert caplog.text.count("no column(s) ['terminal_id', 'kind']") == 1  # once, not once per step
    got = read_features(tmp_path)
    expected = build_features(attempts.to_pandas(), history.outcomes, history.reports, PROVIDER_SET)
    assert mismatches(expected, got, NAMES, tolerance=EXACT) == []
    assert got["terminal_attempts_count_1h"].isna().all()
    assert got["account_attempts_amount_lt_0p01_count_7d"].notna().all()


def test_erasing_an_account_removes_its_events_from_a_terminal() -> None:
    history = history_of(
        [
            attempt("a1", "10:00", terminal_id="t1", account_id="acc_1"),
            attempt("b1", "10:05", terminal_id="t1", account_id="acc_2"),
        ],
        fields=FIELDS,
    )
    online = OnlineEngine(MemoryStore(), PROVIDER_SET)
    for row in records(history.attempts):
        online.record_attempt(row)
    assert online.erase_account("acc_1") >= 1
    probe = {
        **records(history.attempts)[1],
        "attempt_id": "p",
        "occurred_at": pd.Timestamp("2026-01-01T10:30Z"),
    }
    vector = online.features_for(probe)
    assert vector[NAMES.index("terminal_attempts_count_1h")] == 1
    assert vector[NAMES.index("terminal_attempts_distinct_account_id_7d")] == 1


def test_the_provider_set_declares_its_entities_from_key_fields() -> None:
    assert [e.name for e in PROVIDER_SET.entities] == [TERMINAL.name, ACCOUNT.name, "card"]


def test_a_feature_set_reading_fields_the_data_does_not_declare_is_refused(tmp_path: Path) -> None:
    history = random_history(30, 3, accounts=3, days=5.0, fields=FIELDS)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path, kind.value, 0, to_table(kind, frame))
    with pytest.raises(FeatureInputError, match=r"terminal_id \(key\): not declared.*attributes"):
        build_data_dir(tmp_path, PROVIDER_SET)
    retyped = tuple(
        ExtensionField(f.name, FieldType.KEY) if f.type == FieldType.NUMBER else f for f in FIELDS
    )
    write_extension(tmp_path, retyped)
    with pytest.raises(FeatureInputError, match=r"partner_score \(number\): declared as key"):
        build_data_dir(tmp_path, PROVIDER_SET)
