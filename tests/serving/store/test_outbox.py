"""The SQLite outbox: events kept once per key, fanned out per endpoint, claimed under a lease, settled."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from serving.store.outbox import DeliveryState, EventType
from serving.store.sqlite_outbox import OUTBOX_VERSION, OutboxVersionError, SQLiteOutbox

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BLOCKED = EventType.DECISION_BLOCKED


@pytest.fixture
def outbox(tmp_path: Path) -> SQLiteOutbox:
    return SQLiteOutbox(tmp_path / "outbox.sqlite")


def test_an_event_has_a_unique_id_and_its_body_holds_id_type_time_and_payload(outbox: SQLiteOutbox) -> None:
    first = outbox.emit(BLOCKED, {"attempt_id": "a1"})
    second = outbox.emit(BLOCKED, {"attempt_id": "a1"})
    assert first != second
    outbox.fan_out(lambda _: ["http://r.test/hook"], NOW)
    bodies = [orjson.loads(c.body) for c in outbox.claim(NOW, 10, 30.0)]
    assert [b["id"] for b in bodies] == [first, second]
    assert {b["type"] for b in bodies} == {"decision.blocked"}
    assert bodies[0]["data"] == {"attempt_id": "a1"}
    assert datetime.fromisoformat(bodies[0]["created_at"]).tzinfo is not None


def test_an_event_with_a_key_is_kept_once(outbox: SQLiteOutbox) -> None:
    first = outbox.emit(BLOCKED, {"attempt_id": "a1"}, key="a1")
    assert outbox.emit(BLOCKED, {"attempt_id": "a1"}, key="a1") == first
    other_type = outbox.emit(EventType.RECOVERY_CUSTOMER_ACTION, {}, key="a1")
    assert other_type != first
    assert outbox.fan_out(lambda _: ["http://r.test/hook"], NOW) == 2


def test_fan_out_gives_each_event_one_delivery_per_endpoint_that_wants_it_once(outbox: SQLiteOutbox) -> None:
    outbox.emit(BLOCKED, {})
    outbox.emit(EventType.RECOVERY_CUSTOMER_ACTION, {})
    wants = {"decision.blocked": ["http://a.test", "http://b.test"], "recovery.customer_action": []}
    assert outbox.fan_out(lambda t: wants[t], NOW) == 2
    assert outbox.fan_out(lambda t: wants[t], NOW) == 0  # already fanned out
    assert sorted(d.endpoint for d in outbox.deliveries(10)) == ["http://a.test", "http://b.test"]


def test_a_claim_is_a_lease(outbox: SQLiteOutbox) -> None:
    outbox.emit(BLOCKED, {})
    outbox.fan_out(lambda _: ["http://a.test"], NOW)
    assert len(outbox.claim(NOW, 10, 30.0)) == 1
    assert outbox.claim(NOW + timedelta(seconds=29), 10, 30.0) == []  # held by the first deliverer
    again = outbox.claim(NOW + timedelta(seconds=31), 10, 30.0)  # that deliverer died: taken over
    assert len(again) == 1
    assert again[0].attempts == 0


def test_settling_delivers_reschedules_or_fails(outbox: SQLiteOutbox) -> None:
    for _ in range(3):
        outbox.emit(BLOCKED, {})
    outbox.fan_out(lambda _: ["http://a.test"], NOW)
    one, two, three = outbox.claim(NOW, 10, 30.0)
    later = NOW + timedelta(minutes=1)
    outbox.settle(one.delivery_id, NOW, status=204)
    outbox.settle(two.delivery_id, NOW, status=500, next_try=later)
    outbox.settle(three.delivery_id, NOW, status=None, error="ConnectTimeout: no answer")
    shown = {d.delivery_id: d for d in outbox.deliveries(10)}
    assert shown[one.delivery_id].state is DeliveryState.DELIVERED
    assert shown[one.delivery_id].settled_at == NOW
    assert (shown[two.delivery_id].state, shown[two.delivery_id].next_try) == (DeliveryState.PENDING, later)
    assert shown[two.delivery_id].last_status == 500
    assert shown[three.delivery_id].state is DeliveryState.FAILED
    assert shown[three.delivery_id].last_error == "ConnectTimeout: no answer"
    assert all(d.attempts == 1 for d in shown.values())
    assert outbox.claim(NOW + timedelta(seconds=59), 10, 30.0) == []
    assert [c.delivery_id for c in outbox.claim(later, 10, 30.0)] == [two.delivery_id]


def test_deliveries_are_paged_newest_first_and_a_retry_makes_one_due_now(outbox: SQLiteOutbox) -> None:
    for _ in range(5):
        outbox.emit(BLOCKED, {})
    outbox.fan_out(lambda _: ["http://a.test"], NOW)
    page = outbox.deliveries(2)
    ids = [d.delivery_id for d in page]
    assert ids == sorted(ids, reverse=True)
    rest = outbox.deliveries(10, before=ids[-1])
    assert len(page) + len(rest) == 5
    assert not {d.delivery_id for d in page} & {d.delivery_id for d in rest}
    claimed = outbox.claim(NOW, 1, 30.0)[0]
    outbox.settle(claimed.delivery_id, NOW, status=410)  # no next try: failed
    retried = outbox.retry(claimed.delivery_id, NOW + timedelta(hours=1))
    assert retried is not None
    assert (retried.state, retried.attempts, retried.settled_at) == (DeliveryState.PENDING, 1, None)
    assert outbox.retry(999, NOW) is None


def test_events_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = SQLiteOutbox(path)
    event_id = first.emit(BLOCKED, {"attempt_id": "a1"})
    first.close()
    reopened = SQLiteOutbox(path)
    reopened.fan_out(lambda _: ["http://a.test"], NOW)
    assert [c.event_id for c in reopened.claim(NOW, 10, 30.0)] == [event_id]


def test_a_file_from_a_newer_riskgate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    SQLiteOutbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {OUTBOX_VERSION + 1}")
    with pytest.raises(OutboxVersionError, match="newer than this riskgate"):
        SQLiteOutbox(path)
