"""Signed webhooks over real HTTP: a local receiver gets signed events, retries after failures, status."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from core.settings import WebhookEndpoint
from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.api.webhooks import (
    EVENT_ID_HEADER,
    MAX_BACKOFF_S,
    SIGNATURE_HEADER,
    Deliverer,
    backoff,
    check_endpoints,
    sign,
    verify,
)
from serving.errors import ConfigurationError
from serving.store.outbox import EVENTS, EventType
from serving.store.sqlite_outbox import SQLiteOutbox
from tests.serving.api.receiver import Receiver, receiving
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache, service_for

SECRET = "whsec-test-secret"
DOC = Path(__file__).parents[3] / "docs" / "webhooks.md"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


def hooked(tmp_path: Path, bundles: dict[str, ModelBundle], url: str, **settings: Any) -> DocumentedClient:
    """A client over a service that blocks every scored attempt and sends its events to ``url``."""
    seed_cache(tmp_path / "state" / "models", bundles)
    endpoint = {"url": url, "secret": SECRET, "events": ["decision.blocked", "recovery.customer_action"]}
    values: dict[str, Any] = {
        "webhooks": [endpoint],
        "webhook_poll_seconds": 0.02,
        "webhook_backoff_seconds": 0.05,
        "fraud_highest_threshold": 0.0,  # every scored attempt is at the highest level: blocked
        **settings,
    }
    return DocumentedClient(create_app(service=service_for(tmp_path, **values)))


def score(client: TestClient, n: int) -> dict[str, Any]:
    response = client.post("/v1/score", json=attempt(n), headers=SCORE)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def deliveries(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/admin/webhooks/deliveries", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


# -- the signature ----------------------------------------------------------------------------------------


def test_a_signature_verifies_and_a_tampered_body_or_an_old_timestamp_does_not() -> None:
    body = b'{"id":"evt_1","type":"decision.blocked"}'
    now = int(time.time())
    header = sign(body, SECRET, now)
    assert header.startswith(f"t={now},v1=")
    assert verify(header, body, SECRET)
    assert not verify(header, body.replace(b"blocked", b"blocker"), SECRET)
    assert not verify(header, body, "another-secret")
    assert not verify(sign(body, SECRET, now - 301), body, SECRET, tolerance=300)
    assert verify(sign(body, SECRET, now - 200), body, SECRET, tolerance=300)
    for malformed in ("", "v1=abc", "t=soon,v1=abc", f"t={now}"):
        assert not verify(malformed, body, SECRET)


@given(body=st.binary(max_size=300), secret=st.text(min_size=1, max_size=40), flip=st.integers(0, 299))
def test_only_the_signed_bytes_verify(body: bytes, secret: str, flip: int) -> None:
    header = sign(body, secret, int(time.time()))
    assert verify(header, body, secret)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 1]) + body[i + 1 :]
        assert not verify(header, tampered, secret)


@given(attempts=st.integers(1, 80), base=st.floats(0.001, 600), jitter=st.floats(0, 1, exclude_max=True))
def test_the_backoff_doubles_per_try_within_its_jitter_and_its_ceiling(
    attempts: int, base: float, jitter: float
) -> None:
    full = min(base * 2.0 ** (attempts - 1), MAX_BACKOFF_S)
    wait = backoff(attempts, base, jitter)
    assert full / 2 <= wait <= full
    assert backoff(attempts + 1, base, jitter) >= wait


def test_an_endpoint_for_an_unknown_event_type_or_listed_twice_is_refused() -> None:
    def endpoint(*events: str) -> WebhookEndpoint:
        return WebhookEndpoint.model_validate({"url": "http://a.test", "secret": "s", "events": events})

    with pytest.raises(ConfigurationError, match="unknown event types") as refused:
        check_endpoints([endpoint("decision.blocked", "payment.made")])
    assert "s" not in str(refused.value).split("'")  # the secret is never in a message
    with pytest.raises(ConfigurationError, match="listed twice"):
        check_endpoints([endpoint("decision.blocked"), endpoint("review.opened")])


def test_the_documented_receiver_verifies_as_riskgate_signs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(blocks[0], namespace)  # the doc's verify(), as a receiver copies it
    body = b'{"id":"evt_1"}'
    assert namespace["verify"](sign(body, SECRET, int(time.time())), body, SECRET)
    assert not namespace["verify"](sign(body, SECRET, int(time.time())), body + b" ", SECRET)
    assert not namespace["verify"](sign(body, SECRET, int(time.time()) - 600), body, SECRET)


def test_the_doc_names_every_event_type_and_its_payload() -> None:
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[3]
        for line in DOC.read_text().splitlines()
        if line.startswith("| `") and "." in line.split("|")[1]
    }
    assert set(rows) == {event.value for event in EventType}
    for event, spec in EVENTS.items():
        assert re.findall(r"`(\w+)`", rows[event.value]) == list(spec.payload), event


# -- delivery over HTTP -----------------------------------------------------------------------------------


def test_a_blocked_decision_reaches_the_receiver_signed(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver
) -> None:
    with hooked(tmp_path, bundles, receiver.url) as client:
        answer = score(client, 1)
        assert answer["decision"]["action"] == "block"
        (got,) = receiver.wait_for(1)
        assert verify(got.headers[SIGNATURE_HEADER], got.body, SECRET)
        event = orjson.loads(got.body)
        assert event["type"] == "decision.blocked"
        assert got.headers[EVENT_ID_HEADER] == event["id"]
        assert set(event["data"]) == set(EVENTS[EventType.DECISION_BLOCKED].payload)
        data = event["data"]
        assert data["attempt_id"] == "att-000001"
        assert data["rule"] == answer["decision"]["rule"]
        sent = attempt(1)  # people's ids only as the decision log's pseudonyms
        assert data["account"] != sent["account_id"]
        assert data["payment_method"] != sent["payment_method_id"]
        assert sent["card_bin"] not in got.body.decode()
        score(client, 1)  # a replay is no new decision: no new event
        time.sleep(0.3)
        assert len(receiver.received) == 1


def test_a_receiver_failing_twice_gets_the_event_on_the_third_try(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver
) -> None:
    receiver.script = [500, 500]
    with hooked(tmp_path, bundles, receiver.url) as client:
        score(client, 2)
        received = receiver.wait_for(3)
        assert receiver.answered == [500, 500, 200]
        assert len({orjson.loads(r.body)["id"] for r in received}) == 1  # the same event each time
        assert all(verify(r.headers[SIGNATURE_HEADER], r.body, SECRET) for r in received)
        deadline = time.monotonic() + 10
        while (shown := deliveries(client)["deliveries"])[0]["state"] != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (delivery,) = shown
        assert (delivery["attempts"], delivery["last_status"], delivery["endpoint"]) == (3, 200, receiver.url)
        assert delivery["event_type"] == "decision.blocked"
        assert SECRET not in str(shown)


def test_a_recovery_step_that_needs_the_customer_is_sent(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver
) -> None:
    with hooked(tmp_path, bundles, receiver.url) as client:
        charge_at = datetime.now(UTC) + timedelta(days=40)
        case = {
            "attempt": attempt(8, occurred_at=charge_at.isoformat(), card_exp=f"{datetime.now(UTC):%Y-%m}")
        }
        plans: list[dict[str, Any]] = []
        for _ in range(2):  # asked twice: the customer is asked once per action
            response = client.post("/v1/recovery-plan", json=case, headers=SCORE)
            assert response.status_code == 200, response.text
            plans.append(response.json())
        actions = {step["action"] for step in plans[0]["steps"] if step["action"] is not None}
        assert "update_card" in actions  # the card expires before the renewal; a reminder may join it
        receiver.wait_for(len(actions))
        time.sleep(0.3)
        events = [orjson.loads(delivery.body) for delivery in receiver.received]
        assert sorted(event["data"]["action"] for event in events) == sorted(actions)
        for event in events:
            assert event["type"] == "recovery.customer_action"
            assert set(event["data"]) == set(EVENTS[EventType.RECOVERY_CUSTOMER_ACTION].payload)
            assert event["data"]["invoice_id"] == "inv-8"


@contextlib.contextmanager
def hanging() -> Iterator[tuple[str, threading.Event]]:
    """A receiver that accepts connections and never answers (its URL, and an event set once one is held)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    accepted = threading.Event()

    def accept() -> None:
        with contextlib.suppress(OSError):  # the server socket closed: the test is over
            while True:
                held.append(server.accept()[0])
                accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks", accepted
    finally:
        server.close()
        for connection in held:
            connection.close()


def test_a_hanging_receiver_never_holds_up_scoring_and_its_events_fail_after_the_maximum_age(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    timeout = 3.0
    with (
        hanging() as (url, accepted),
        hooked(
            tmp_path, bundles, url, webhook_max_age_seconds=0.2, webhook_timeout_seconds=timeout
        ) as client,
    ):
        score(client, 3)
        assert accepted.wait(10), "the deliverer never reached the receiver"
        started = time.perf_counter()  # a delivery is now waiting on the receiver: scoring must not
        score(client, 4)
        assert time.perf_counter() - started < timeout
        deadline = time.monotonic() + 20
        while (delivery := deliveries(client)["deliveries"][-1])["state"] != "failed":
            assert time.monotonic() < deadline, delivery
            time.sleep(0.05)
        assert delivery["last_status"] is None
        assert delivery["last_error"]
        assert delivery["attempts"] >= 1
        assert delivery["next_try"] is None


def test_deliveries_page_and_a_failed_one_is_retried_through_the_admin_api(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver
) -> None:
    receiver.script = [410]  # gone: tried again after the backoff, then delivered
    with hooked(tmp_path, bundles, receiver.url, webhook_max_age_seconds=0.01) as client:
        for n in range(3):
            score(client, 10 + n)
        receiver.wait_for(2)
        deadline = time.monotonic() + 10
        while sorted(d["state"] for d in deliveries(client)["deliveries"]) != [
            "delivered",
            "delivered",
            "failed",
        ]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        first = deliveries(client, limit=2)
        assert len(first["deliveries"]) == 2
        rest = deliveries(client, limit=2, before=first["next_before"])
        assert len(rest["deliveries"]) == 1
        assert rest["next_before"] is None
        (failed,) = [d for d in first["deliveries"] + rest["deliveries"] if d["state"] == "failed"]
        retried = client.post(f"/v1/admin/webhooks/deliveries/{failed['id']}/retry", headers=ADMIN)
        assert retried.status_code == 200, retried.text
        assert retried.json()["state"] == "pending"
        receiver.wait_for(4)
        assert client.post("/v1/admin/webhooks/deliveries/999/retry", headers=ADMIN).status_code == 404
        beyond = 2**63  # no SQLite integer: refused, not an internal error
        assert client.post(f"/v1/admin/webhooks/deliveries/{beyond}/retry", headers=ADMIN).status_code == 422
        too_far = client.get("/v1/admin/webhooks/deliveries", params={"before": beyond}, headers=ADMIN)
        assert too_far.status_code == 422
        assert client.get("/v1/admin/webhooks/deliveries", headers=SCORE).status_code == 403


def test_events_kept_before_a_stop_are_delivered_by_the_next_deliverer(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "outbox.sqlite"
    endpoint = WebhookEndpoint.model_validate(
        {"url": receiver.url, "secret": SECRET, "events": ["review.opened"]}
    )
    outbox = SQLiteOutbox(path)
    event_id = outbox.emit(EventType.REVIEW_OPENED, {"case_id": "c1"})
    outbox.close()  # the process ends before any delivery
    reopened = SQLiteOutbox(path)
    deliverer = Deliverer(reopened, [endpoint], timeout_s=2, backoff_s=0.05, max_age_s=60, poll_s=0.02)
    assert deliverer.run_once() == 1
    (got,) = receiver.received
    assert orjson.loads(got.body)["id"] == event_id
    deliverer.stop()
    reopened.close()


def test_no_endpoint_means_no_event_is_kept(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with DocumentedClient(create_app(service=service_for(tmp_path, fraud_highest_threshold=0.0))) as client:
        assert score(client, 1)["decision"]["action"] == "block"
        assert deliveries(client) == {"deliveries": [], "next_before": None}


class BrokenOutbox(SQLiteOutbox):
    def emit(self, event_type: EventType, payload: Any, key: str | None = None) -> str:
        raise OSError("disk full")


def test_an_outbox_that_fails_never_fails_the_decision(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver
) -> None:
    with hooked(tmp_path, bundles, receiver.url) as client:
        engine = client.app.state.service.engine  # type: ignore[attr-defined]
        engine.outbox = BrokenOutbox(tmp_path / "broken.sqlite")
        assert score(client, 4)["decision"]["action"] == "block"
        metrics = client.get("/metrics").text
        assert 'riskgate_errors_total{kind="outbox"} 1.0' in metrics
