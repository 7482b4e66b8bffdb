"""The decision log behind its interface (serving.store.base.DecisionStore), as the service uses it, the same
test bodies over every backend (SQLite, SQLite under write-behind, PostgreSQL): one decision per attempt,
idempotent labels, erasure, and range reads that give the same answers whatever stores the log."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from serving.readers.trends import Range, trends
from serving.store.base import AttributeSegment, DecisionRanges, DecisionStore, epoch_us, features_blob
from serving.store.decisions import DecisionLog
from serving.store.journal import Journal
from tests.serving.readers.test_trends import decision

AT = datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_range_reads_see_held_decisions_once_flushed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    log: DecisionStore = DecisionLog(tmp_path / "decisions.sqlite", journal=journal)
    log.record(decision("d1", AT, action="approve", fraud=0.1, failure=0.2, amount=10.0))
    assert (log.held, log.count(), log.get("d1") is not None) == (1, 1, True)
    with log.ranges() as reader:
        assert reader.occurred_bounds() is None  # only in the journal and in memory so far
    assert log.flush(journal.rotate()) == 1
    assert (log.held, log.applied) == (0, 1)
    with log.ranges() as reader:
        assert reader.occurred_bounds() == (epoch_us(AT), epoch_us(AT))
        assert reader.models_used(epoch_us(AT), epoch_us(AT) + 1, "fraud") == [("riskgate-fraud/1", 1)]
    log.close()
    journal.close()


def test_a_decision_logged_twice_keeps_the_first_and_labels_are_idempotent(
    decision_store: DecisionStore,
) -> None:
    log = decision_store
    first = log.record(decision("d1", AT, action="approve", fraud=0.1, failure=0.2, amount=10.0))
    again = log.record(decision("d1", AT, action="block", fraud=0.9, failure=0.2, amount=10.0))
    assert again.answer == first.answer == {"attempt_id": "d1", "decision": {"action": "approve"}}
    assert again.decided_at == first.decided_at
    assert first.decided_at.utcoffset() == timedelta(0)
    log.flush()
    stored = log.get("d1")
    assert stored is not None
    assert (stored.answer, stored.decided_at, stored.erased) == (first.answer, first.decided_at, False)
    assert log.get("nope") is None
    assert log.count() == 1
    assert log.record_outcome("d1", AT, "approved", None) is True
    assert log.record_outcome("d1", AT, "declined", "51") is False
    assert log.last_outcome_of_method("pm") == ("approved", None)
    assert log.last_outcome_of_method(None) == (None, None)
    assert log.record_report("r1", "d1", AT, "chargeback") is True
    assert log.record_report("r1", "d1", AT, "chargeback") is False
    assert log.ping() is True


def test_a_restored_decision_keeps_its_time_and_never_replaces_a_logged_one(
    decision_store: DecisionStore,
) -> None:
    log = decision_store
    log.record(decision("d1", AT, action="approve", fraud=0.1, failure=0.2, amount=10.0))
    log.flush()
    log.restore(decision("d1", AT, action="block", fraud=0.9, failure=0.2, amount=10.0), AT.isoformat())
    log.restore(decision("d2", AT, action="block", fraud=0.9, failure=0.2, amount=10.0), AT.isoformat())
    log.flush()
    first, restored = log.get("d1"), log.get("d2")
    assert first is not None
    assert restored is not None
    assert first.answer["decision"] == {"action": "approve"}
    assert (restored.answer["decision"], restored.decided_at) == ({"action": "block"}, AT)
    assert (log.count(), log.held) == (2, 0)


def test_erasure_unlinks_every_decision_of_the_account_and_keeps_scores_and_labels(
    decision_store: DecisionStore,
) -> None:
    log = decision_store
    reasons = {"reasons": [{"feature": "amount", "value": 12.5}], "level": "normal"}
    personal = replace(
        decision("a1", AT, action="review", fraud=0.5, failure=0.1, amount=12.5),
        answer={"attempt_id": "a1", "fraud": reasons, "features": {"amount": 12.5}},
        features=features_blob([12.5, 1.0]),
        attributes={"reseller": "r-1"},
        fields={"device_id": "dev-1"},
    )
    log.record(personal)
    log.record(decision("a2", AT + timedelta(hours=1), action="approve", fraud=0.1, failure=0.1, amount=3.0))
    log.record(
        replace(decision("b1", AT, action="approve", fraud=0.1, failure=0.1, amount=4.0), account_key="b")
    )
    log.flush()
    log.record_outcome("a1", AT, "approved", None)
    erasure = log.erase_account("acc", online_events=7)
    assert (erasure.decisions, erasure.outcomes_kept) == (2, 1)
    erased = log.get("a1")
    assert erased is not None
    assert erased.erased
    assert erased.answer == {"attempt_id": "a1", "fraud": {"reasons": [{"feature": "amount", "value": None}],
                                                           "level": "normal"}}  # fmt: skip
    assert erased.attributes is None
    kept = log.get("b1")
    assert kept is not None
    assert not kept.erased
    with log.ranges() as reader:
        rows = reader.decision_rows(epoch_us(AT), epoch_us(AT + timedelta(days=1)), 2)
    assert rows.attempt_id == ["a1", "b1", "a2"]
    assert rows.erased.tolist() == [True, False, True]
    assert rows.account_key == [None, "b", None]
    assert (rows.fields[0], rows.attributes[0]) == (None, None)
    assert rows.features is not None
    assert np.isnan(rows.features[0]).all()
    assert rows.fraud.tolist() == [0.5, 0.1, 0.1]  # scores stay
    assert log.last_outcome_of_method("pm") == (None, None)  # the method's pseudonym is unlinked too


# -- range reads: every backend answers as the SQLite log does ----------------------------------------------


def _fill(log: DecisionStore) -> None:
    """Decisions over three days: segments, attributes, feature vectors, outcomes, reports, an erasure."""
    h = timedelta(hours=1)
    resellers = ["r-1", "r-2", "r-1", "other", "r-3", "r-1", "r-2", None, "r-4", "r-1"]
    for i, reseller in enumerate(resellers):
        made = decision(
            f"d{i}", AT + 7 * i * h, action=("approve", "review", "block", "defer")[i % 4],
            fraud=None if i == 7 else i / 10, failure=(i % 3) / 3, amount=10.0 + i,
            currency=("EUR", "GBP")[i % 2], plan_tier=("basic", "premium", "gold")[i % 3],
        )  # fmt: skip
        log.record(
            replace(
                made,
                account_key=f"acc{i % 3}",
                attributes=None if reseller is None else {"reseller": reseller, "box": "stb"},
                features=features_blob([float(i), math.nan]),
                fraud_model=None if i == 7 else f"riskgate-fraud/{1 + i // 6}",
                decided_by="rule" if i == 2 else "policy",
                fields={"device_id": f"dev-{i}"},
            )
        )
    log.flush()
    for i, status in enumerate(["approved", "declined", "error", "approved"]):
        log.record_outcome(f"d{i}", AT + 7 * i * h, status, "51" if status == "declined" else None)
    log.record_report("r1", "d1", AT + 50 * h, "chargeback")
    log.record_report("r0", "d1", AT + 40 * h, "confirmed_fraud")
    log.record_report("r5", "d5", AT + 60 * h, "chargeback")
    log.erase_account("acc1", 0)


def _plain(value: Any) -> Any:
    """Arrays, tuples and dataclass-like values as plain lists and dicts, NaN as None (comparable with ==)."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


def _answers(reader: DecisionRanges) -> dict[str, Any]:
    start, end = epoch_us(AT), epoch_us(AT + timedelta(days=4))
    segments: list[str | AttributeSegment | None] = [
        None,
        "plan_tier",
        "action",
        AttributeSegment("reseller"),
        AttributeSegment("reseller", top=2),
    ]
    span = Range(AT, AT + timedelta(days=4))
    answers: dict[str, Any] = _plain(
        {
            "bounds": reader.occurred_bounds(),
            "labels_as_of": reader.labels_as_of(),
            "distinct": [
                reader.distinct(start, end, column) for column in ("currency", "fraud_model", "kind")
            ],
            "attributes": [
                reader.attribute_values(start, end, AttributeSegment("reseller", top=top))
                for top in (None, 1, 3)
            ],
            "trend_columns": [reader.trend_columns(start, end, segment) for segment in segments],
            "scored_by": reader.scored_by(start, end, "fraud", "riskgate-fraud/1", 2, sample=3),
            "models_used": sorted(reader.models_used(start, end, "fraud")),
            "rows": reader.decision_rows(start, end, 2),
            "rows_reading_little": reader.decision_rows(start, end, None, reads=("plan_tier",)),
            "trends": trends(reader, span, "day", "plan_tier", 1.0),
        }
    )
    return answers


def test_range_reads_answer_as_the_sqlite_log_does(decision_store: DecisionStore, tmp_path: Path) -> None:
    reference = DecisionLog(tmp_path / "reference.sqlite")
    _fill(reference)
    _fill(decision_store)
    with reference.ranges() as expected, decision_store.ranges() as reader:
        answers, wanted = _answers(reader), _answers(expected)
    reference.close()
    assert answers == wanted
    assert wanted["bounds"] == [epoch_us(AT), epoch_us(AT + timedelta(hours=63))]  # the data is what it seems
    assert wanted["attributes"][1] == ["r-1", "other"]
    assert wanted["rows"]["reported_us"][1] == epoch_us(AT + timedelta(hours=40))
    assert wanted["rows"]["erased"] == [False, True, False, False, True, False, False, True, False, False]


def test_an_empty_log_reads_as_empty(decision_store: DecisionStore) -> None:
    with decision_store.ranges() as reader:
        assert (reader.occurred_bounds(), reader.labels_as_of()) == (None, None)
        columns = reader.trend_columns(0, 2**60, "plan_tier")
        assert (len(columns.occurred_us), columns.segment_values) == (0, [])
        assert reader.decision_rows(0, 2**60, 3).attempt_id == []
    assert decision_store.count() == 0
