"""The decision log keeps the attempt's rule-readable fields (device, IP, countries, ...) so that a draft rule
can be replayed over it, through the journal too; erasing the account drops them with the features, and a
log written before they were kept gains the column and reads them as unknown."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from serving.store.base import DecisionStore, epoch_us, features_blob
from serving.store.decisions import DecisionLog
from serving.store.kept_fields import COLUMN_FIELDS, KEPT_FIELDS, PSEUDONYMISED_FIELDS, kept_fields
from tests.serving.factories import attempt
from tests.serving.readers.test_trends import decision

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIELDS: dict[str, str | float] = {
    "device_id": "dev-1",
    "ip": "192.0.2.7",
    "ip_country": "FR",
    "retry_number": 0,
}


def test_every_rule_readable_field_is_either_a_column_a_kept_field_or_a_pseudonym() -> None:
    event = attempt(3)
    kept = kept_fields(event)
    assert kept is not None
    assert kept["device_id"] == "dev-0"
    assert "account_id" not in kept
    assert "payment_method_id" not in kept
    assert not set(KEPT_FIELDS) & set(COLUMN_FIELDS)
    assert not set(KEPT_FIELDS) & set(PSEUDONYMISED_FIELDS)
    assert kept_fields({"attempt_id": "x"}) is None


def test_fields_are_kept_directly_and_through_the_journal_and_erased_with_the_account(
    decision_store: DecisionStore,
) -> None:
    first = replace(decision("a", T0, action="block", fraud=0.9, failure=0.1, amount=9.0), fields=FIELDS)
    first = replace(first, features=features_blob([1.0, 2.0]))
    second = replace(
        decision("b", T0 + timedelta(hours=1), action="approve", fraud=0.1, failure=0.1, amount=5.0)
    )
    second = replace(second, account_key="other", fields={"device_id": "dev-2"})
    log = decision_store  # every backend (conftest.BACKENDS), the SQLite file also under write-behind
    log.record(first)
    log.record(second)
    log.flush()
    log.record_report("r1", "a", T0 + timedelta(days=3), "chargeback")
    log.record_report("r0", "a", T0 + timedelta(days=2), "chargeback")
    with log.ranges() as reader:
        rows = reader.decision_rows(epoch_us(T0), epoch_us(T0 + timedelta(days=1)), 2)
    assert rows.attempt_id == ["a", "b"]
    assert [None if t is None else orjson.loads(t) for t in rows.fields] == [FIELDS, {"device_id": "dev-2"}]
    assert rows.reported_us.tolist() == [epoch_us(T0 + timedelta(days=2)), -1]  # the earliest report
    assert rows.action.tolist() == [2, 0]  # block, approve
    assert rows.features is not None
    assert rows.features[0].tolist() == [1.0, 2.0]
    assert all(value != value for value in rows.features[1].tolist())  # NaN: no vector
    assert rows.columns["amount"] == [9.0, 5.0]
    log.erase_account("acc", 0)
    with log.ranges() as reader:
        erased = reader.decision_rows(epoch_us(T0), epoch_us(T0 + timedelta(days=1)), None)
    assert erased.fields[0] is None
    assert erased.erased.tolist() == [True, False]
    assert erased.features is None


def test_a_log_written_before_fields_were_kept_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    log = DecisionLog(path)
    log.record(decision("old", T0, action="approve", fraud=0.1, failure=0.1, amount=9.0))
    log.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE decisions DROP COLUMN fields")
    db.commit()
    db.close()
    log = DecisionLog(path)
    with log.ranges() as reader:
        rows = reader.decision_rows(epoch_us(T0), epoch_us(T0 + timedelta(days=1)), None)
    assert rows.fields == [None]
    log.close()
