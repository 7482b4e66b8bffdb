"""The decision log behind its interface (serving.store.base.DecisionStore), as the service uses it: range
reads see what the store holds, held write-behind decisions once flushed, with the journal position."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from serving.store.base import DecisionStore, epoch_us
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


def test_a_decision_logged_twice_keeps_the_first_and_labels_are_idempotent(tmp_path: Path) -> None:
    log: DecisionStore = DecisionLog(tmp_path / "decisions.sqlite")
    first = log.record(decision("d1", AT, action="approve", fraud=0.1, failure=0.2, amount=10.0))
    again = log.record(decision("d1", AT, action="block", fraud=0.9, failure=0.2, amount=10.0))
    assert again.answer == first.answer == {"attempt_id": "d1", "decision": {"action": "approve"}}
    assert log.record_outcome("d1", AT, "approved", None) is True
    assert log.record_outcome("d1", AT, "declined", "51") is False
    assert log.last_outcome_of_method("pm") == ("approved", None)
    assert log.ping() is True
    log.close()
