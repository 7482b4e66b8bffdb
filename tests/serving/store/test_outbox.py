"""The outboxes (SQLite and PostgreSQL, the same tests): events kept once per key, fanned out per endpoint,
claimed under a lease, settled; several outboxes over one database (instances) emit, fan out and claim
without stepping on each other. A SQLite file from a newer riskgate is refused."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from serving.store.outbox import DeliveryState, EventType, Outbox
from serving.store.postgres.database import Database
from serving.store.postgres.outbox import PostgresOutbox
from serving.store.sqlite_outbox import OUTBOX_VERSION, OutboxVersionError, SQLiteOutbox

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BLOCKED = EventType.DECISION_BLOCKED
T = TypeVar("T")

#: Opens another outbox over this test's outbox (another process or instance: its own connection or pool).
Opener = Callable[[], Outbox]


@pytest.fixture(params=["sqlite", "postgres"])
def open_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[Outbox] = []
    pools: list[Database] = []
    url: str | None = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")

    def opener() -> Outbox:
        if url is None:
            opened.append(SQLiteOutbox(tmp_path / "outbox.sqlite"))
        else:
            pools.append(Database(url, 4))
            opened.append(PostgresOutbox(pools[-1]))
        return opened[-1]

    yield opener
    for outbox in opened:
        outbox.close()
    for pool in pools:
        pool.close()


@pytest.fixture
def outbox(open_outbox: Opener) -> Outbox:
    return open_outbox()


def _at_once(calls: list[Callable[[], T]]) -> list[T]:
    """The results of ``calls``, each run in its own thread, all started together."""
    start = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)

    def run(number: int) -> None:
        start.wait(timeout=30)
        results[number] = calls[number]()

    threads = [threading.Thread(target=run, args=(number,)) for number in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(result is not None for result in results), "a call did not finish"
    return [result for result in results if result is not None]


def test_an_event_has_a_unique_id_and_its_body_holds_id_type_time_and_payload(outbox: Outbox) -> None:
    first = outbox.emit(BLOCKED, {"attempt_id": "a1"})
    second = outbox.emit(BLOCKED, {"attempt_id": "a1"})
    assert first != second
    outbox.fan_out(lambda _: ["http://r.test/hook"], NOW)
    bodies = [orjson.loads(c.body) for c in outbox.claim(NOW, 10, 30.0)]
    assert [b["id"] for b in bodies] == [first, second]
    assert {b["type"] for b in bodies} == {"decision.blocked"}
    assert bodies[0]["data"] == {"attempt_id": "a1"}
    assert datetime.fromisoformat(bodies[0]["created_at"]).tzinfo is not None


def test_an_event_with_a_key_is_kept_once(outbox: Outbox) -> None:
    first = outbox.emit(BLOCKED, {"attempt_id": "a1"}, key="a1")
    assert outbox.emit(BLOCKED, {"attempt_id": "a1"}, key="a1") == first
    other_type = outbox.emit(EventType.RECOVERY_CUSTOMER_ACTION, {}, key="a1")
    assert other_type != first
    assert outbox.fan_out(lambda _: ["http://r.test/hook"], NOW) == 2


def test_fan_out_gives_each_event_one_delivery_per_endpoint_that_wants_it_once(outbox: Outbox) -> None:
    outbox.emit(BLOCKED, {})
    outbox.emit(EventType.RECOVERY_CUSTOMER_ACTION, {})
    wants = {"decision.blocked": ["http://a.test", "http://b.test"], "recovery.customer_action": []}
    assert outbox.fan_out(lambda t: wants[t], NOW) == 2
    assert outbox.fan_out(lambda t: wants[t], NOW) == 0  # already fanned out
    assert sorted(d.endpoint for d in outbox.deliveries(10)) == ["http://a.test", "http://b.test"]


def test_a_claim_is_a_lease(outbox: Outbox) -> None:
    outbox.emit(BLOCKED, {})
    outbox.fan_out(lambda _: ["http://a.test"], NOW)
    assert len(outbox.claim(NOW, 10, 30.0)) == 1
    assert outbox.claim(NOW + timedelta(seconds=29), 10, 30.0) == []  # held by the first deliverer
    again = outbox.claim(NOW + timedelta(seconds=31), 10, 30.0)  # that deliverer died: taken over
    assert len(again) == 1
    assert again[0].attempts == 0


def test_settling_delivers_reschedules_or_fails(outbox: Outbox) -> None:
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


def test_deliveries_are_paged_newest_first_and_a_retry_makes_one_due_now(outbox: Outbox) -> None:
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


def test_events_survive_a_reopen(open_outbox: Opener) -> None:
    first = open_outbox()
    event_id = first.emit(BLOCKED, {"attempt_id": "a1"})
    first.close()
    reopened = open_outbox()
    reopened.fan_out(lambda _: ["http://a.test"], NOW)
    assert [c.event_id for c in reopened.claim(NOW, 10, 30.0)] == [event_id]


def test_a_file_from_a_newer_riskgate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    SQLiteOutbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {OUTBOX_VERSION + 1}")
    with pytest.raises(OutboxVersionError, match="newer than this riskgate"):
        SQLiteOutbox(path)


def test_one_event_emitted_by_two_instances_at_once_is_kept_once(open_outbox: Opener) -> None:
    instances = [open_outbox(), open_outbox()]
    for round_ in range(10):
        key = f"a{round_}"
        ids = _at_once([partial(o.emit, BLOCKED, {"attempt_id": key}, key=key) for o in instances])
        assert ids[0] == ids[1]
    assert instances[0].fan_out(lambda _: ["http://a.test"], NOW) == 10


def test_two_instances_fanning_out_at_once_fan_each_event_out_once(open_outbox: Opener) -> None:
    instances = [open_outbox(), open_outbox()]
    for number in range(40):
        instances[number % 2].emit(BLOCKED, {"n": number})
    wants = {"decision.blocked": ["http://a.test", "http://b.test"]}
    made = _at_once([partial(o.fan_out, wants.__getitem__, NOW) for o in instances])
    assert sum(made) == 80
    assert len(instances[0].deliveries(200)) == 80


def test_two_instances_claim_disjoint_deliveries_and_take_over_a_dead_ones_when_its_lease_ends(
    open_outbox: Opener,
) -> None:
    instances = [open_outbox(), open_outbox()]
    for number in range(30):
        instances[0].emit(BLOCKED, {"n": number})
    instances[1].fan_out(lambda _: ["http://a.test"], NOW)
    first, second = _at_once([partial(o.claim, NOW, 20, 30.0) for o in instances])
    assert len(first) + len(second) == 30
    assert not {c.delivery_id for c in first} & {c.delivery_id for c in second}
    # the first instance is killed holding its claims; the second settles its own, then takes the rest over
    for claimed in second:
        instances[1].settle(claimed.delivery_id, NOW, status=200)
    assert instances[1].claim(NOW + timedelta(seconds=29), 30, 30.0) == []
    taken = instances[1].claim(NOW + timedelta(seconds=31), 30, 30.0)
    assert sorted(c.delivery_id for c in taken) == sorted(c.delivery_id for c in first)
