"""The API surface probed from outside (riskgate issue 16): each item's request and the answer it now gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from events.cardnumbers import contains_card_number, luhn_valid
from tests.serving.factories import SCORE, attempt

PAN = "4111111111111111"
#: Every POST route with a JSON body, and a valid body for it.
BODIES: dict[str, dict[str, Any]] = {
    "/v1/score": attempt(1),
    "/v1/score/batch": {"attempts": [attempt(1)]},
    "/v1/outcomes": {"outcomes": []},
    "/v1/recovery-plan": {"attempt": attempt(1), "decline_code": None},
    "/v1/recovery-plan/batch": {"cases": [{"attempt": attempt(1)}]},
}


def assert_error_shape(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert isinstance(body["message"], str)
    assert set(body) <= {"error", "message", "details"}
    return body


# -- 1. a card number used as a JSON field name is never echoed ------------------------------------------


@pytest.mark.parametrize("path", sorted(BODIES))
def test_a_card_number_as_a_field_name_is_refused_without_echo(client: TestClient, path: str) -> None:
    response = client.post(path, json={**BODIES[path], PAN: 1}, headers=SCORE)
    assert_error_shape(response, 422, "invalid_request")
    assert "card number" in response.text
    assert not contains_card_number(response.text)


def test_the_issue_request_on_outcomes(client: TestClient) -> None:
    response = client.post("/v1/outcomes", json={"outcomes": [], PAN: 1}, headers=SCORE)
    assert_error_shape(response, 422, "invalid_request")
    assert PAN not in response.text


# -- 2. a card number in a path is never echoed ------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/v1/decisions/{PAN}", f"/dashboard/assets/{PAN}", f"/v1/nowhere/{PAN}"])
def test_a_card_number_in_a_path_is_not_echoed_in_the_404(client: TestClient, path: str) -> None:
    response = client.get(path, headers=SCORE)
    assert_error_shape(response, 404, "not_found")
    assert not contains_card_number(response.text)


def test_a_plain_id_in_a_path_is_still_named_in_the_404(client: TestClient) -> None:
    response = client.get("/v1/decisions/att-unknown", headers=SCORE)
    assert "att-unknown" in assert_error_shape(response, 404, "not_found")["message"]


# -- 3. ordinary ids are not refused as card numbers -------------------------------------------------------


def test_epoch_plus_counter_ids_are_scored(client: TestClient) -> None:
    """900 ids like ``kb1796652151-103``: 90 of them passed Luhn and were refused; all are scored now."""
    ids = [f"kb{1796652151 + n}-{100 + n}" for n in range(900)]
    assert sum(luhn_valid(value[2:].replace("-", "")) for value in ids) >= 60
    for chunk in (ids[:450], ids[450:]):
        attempts = [
            attempt(n, attempt_id=value, invoice_id=value.replace("-", " ")) for n, value in enumerate(chunk)
        ]
        response = client.post("/v1/score/batch", json={"attempts": attempts}, headers=SCORE)
        assert response.status_code == 200, response.text[:300]
        assert [r["attempt_id"] for r in response.json()["results"]] == chunk


# -- 4. errors in the documented shape: unreadable bodies --------------------------------------------------


def chunks(total: int, size: int = 65_536) -> Iterator[bytes]:
    """A body of ``total`` bytes sent chunked (no Content-Length)."""
    yield b'{"attempts": ["'
    sent = 15
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"]}'


@pytest.mark.parametrize("path", sorted(BODIES))
def test_a_chunked_body_over_the_limit_is_413(client: TestClient, path: str) -> None:
    headers = {**SCORE, "content-type": "application/json"}
    response = client.post(path, content=chunks(2 * 1_048_576), headers=headers)
    assert_error_shape(response, 413, "payload_too_large")


@pytest.mark.parametrize("path", sorted(BODIES))
@pytest.mark.parametrize(
    "content",
    [b'{"outcomes": ["\xff\xfe"]}', b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000],
    ids=["invalid-utf8", "nested-arrays-1000", "nested-objects-1000"],
)
def test_unreadable_json_is_422(client: TestClient, path: str, content: bytes) -> None:
    response = client.post(path, content=content, headers={**SCORE, "content-type": "application/json"})
    assert_error_shape(response, 422, "invalid_request")


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nowhere", 404), ("GET", "/v1/outcomes", 405)]
)
def test_routing_errors_have_the_error_shape(client: TestClient, method: str, path: str, status: int) -> None:
    response = client.request(method, path, headers=SCORE)
    assert_error_shape(response, status, {404: "not_found", 405: "method_not_allowed"}[status])
