"""A fleet's webhooks and billing checks over one PostgreSQL database (RISKGATE_DATABASE_URL).

A service over PostgreSQL sends its decision.blocked event to a real receiver; two deliverers (two instances)
over one outbox deliver every event, none twice; a dead instance's claims are taken over when their lease
ends; a second charge of one invoice is blocked when it goes to another instance, also when both arrive at
once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core.settings import WebhookEndpoint
from registry.bundle import ModelBundle
from serving.api.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, Deliverer, verify
from serving.store.outbox import EventType
from serving.store.postgres.database import Database
from serving.store.postgres.outbox import PostgresOutbox
from tests.serving.api.receiver import Receiver, receiving
from tests.serving.api.test_billing_checks import blocked_by, decision, open_client
from tests.serving.api.test_webhooks import SECRET, deliveries, hooked, score
from tests.serving.factories import attempt

ENDPOINT = {"secret": SECRET, "events": ["decision.blocked"]}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


@pytest.fixture
def pools(postgres_url: str) -> Iterator[list[Database]]:
    """Two pools over one database: two instances' connections."""
    opened = [Database(postgres_url, 4), Database(postgres_url, 4)]
    yield opened
    for pool in opened:
        pool.close()


class CountingTransport(httpx.HTTPTransport):
    """An HTTP transport that counts the requests it sends (which deliverer posted how many)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return super().handle_request(request)


def deliverer(outbox: PostgresOutbox, url: str, transport: httpx.BaseTransport | None = None) -> Deliverer:
    endpoint = WebhookEndpoint.model_validate({"url": url, **ENDPOINT})
    return Deliverer(
        outbox, [endpoint], timeout_s=5.0, backoff_s=0.05, max_age_s=60.0, poll_s=0.01, transport=transport
    )


def test_a_blocked_decision_of_a_service_over_postgres_reaches_the_receiver(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver, postgres_url: str
) -> None:
    with hooked(tmp_path, bundles, receiver.url, database_url=postgres_url) as client:
        answer = score(client, 1)
        assert answer["decision"]["action"] == "block"
        (got,) = receiver.wait_for(1)
        assert verify(got.headers[SIGNATURE_HEADER], got.body, SECRET)
        event = orjson.loads(got.body)
        assert (event["type"], event["data"]["attempt_id"]) == ("decision.blocked", "att-000001")
        assert got.headers[EVENT_ID_HEADER] == event["id"]
        deadline = time.monotonic() + 10
        while (shown := deliveries(client)["deliveries"])[0]["state"] != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert [(d["event_id"], d["attempts"]) for d in shown] == [(event["id"], 1)]
    assert not (tmp_path / "state" / "outbox.sqlite").exists()  # the events are in PostgreSQL only


def test_two_instances_deliver_every_event_emitted_by_either_once(
    pools: list[Database], receiver: Receiver
) -> None:
    outboxes = [PostgresOutbox(pool) for pool in pools]
    transports = [CountingTransport(), CountingTransport()]
    running = [deliverer(o, receiver.url, t).start() for o, t in zip(outboxes, transports, strict=True)]
    emitted: list[list[str]] = [[], []]

    def emit(number: int) -> None:
        for n in range(40):
            emitted[number].append(outboxes[number].emit(EventType.DECISION_BLOCKED, {"n": n}))
            time.sleep(0.002)

    emitters = [threading.Thread(target=emit, args=(number,)) for number in range(2)]
    try:
        for thread in emitters:
            thread.start()
        for thread in emitters:
            thread.join(timeout=60)
        received = receiver.wait_for(80)
        time.sleep(0.5)  # a second delivery of any of them would arrive by now
    finally:
        for running_deliverer in running:
            running_deliverer.stop()
    ids = [orjson.loads(r.body)["id"] for r in received]
    assert sorted(ids) == sorted(emitted[0] + emitted[1])  # every event, none twice
    assert all(t.sent > 0 for t in transports), "both instances delivered"
    assert {d.state.value for d in outboxes[0].deliveries(100)} == {"delivered"}


def test_a_dead_instances_claims_are_taken_over_when_their_lease_ends(
    pools: list[Database], receiver: Receiver
) -> None:
    dead, alive = PostgresOutbox(pools[0]), PostgresOutbox(pools[1])
    events = [dead.emit(EventType.DECISION_BLOCKED, {"n": n}) for n in range(5)]
    dead.fan_out(lambda _: [receiver.url], datetime.now(UTC))
    assert len(dead.claim(datetime.now(UTC), 20, lease_s=2.0)) == 5  # then it is killed mid-delivery
    pools[0].close()
    running = deliverer(alive, receiver.url).start()
    try:
        time.sleep(0.5)
        assert receiver.received == []  # still leased to the dead instance
        received = receiver.wait_for(5)
    finally:
        running.stop()
    assert sorted(orjson.loads(r.body)["id"] for r in received) == sorted(events)


def test_a_second_charge_sent_to_another_instance_is_blocked(
    tmp_path: Path, bundles: dict[str, ModelBundle], postgres_url: str
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    with (
        open_client(tmp_path / "a", bundles, database_url=postgres_url) as first,
        open_client(tmp_path / "b", bundles, database_url=postgres_url) as second,
    ):
        assert decision(first, 1)["action"] == "approve"  # sent to the gateway, no answer yet
        again = decision(second, 2, account_id="acc-1", invoice_id="inv-1")
        assert again == blocked_by("billing_double_charge")
        assert not (tmp_path / "b" / "state" / "billing.sqlite").exists()

        def at_once(n: int) -> list[dict[str, Any]]:
            """Two attempts of invoice inv-n sent to the two instances at the same time: their decisions."""
            start = threading.Barrier(2)
            decided: list[dict[str, Any]] = []

            def send(client: Any, number: int) -> None:
                start.wait(timeout=30)
                body = {"occurred_at": attempt(n)["occurred_at"], "invoice_id": f"inv-{n}"}
                decided.append(decision(client, number, **body))

            threads = [
                threading.Thread(target=send, args=(first, n)),
                threading.Thread(target=send, args=(second, n + 1000)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            return decided

        rules: list[str] = []
        for n in range(10, 18):
            both = at_once(n)
            assert len(both) == 2
            assert [d["action"] for d in both].count("approve") <= 1  # never both sent to the gateway
            rules += [d["rule"] for d in both if d["action"] != "approve"]
        # the one not sent is the double charge, unless the model blocked the other (whose claim then ends)
        assert set(rules) <= {"billing_double_charge", "fraud_highest"}
        assert "billing_double_charge" in rules
