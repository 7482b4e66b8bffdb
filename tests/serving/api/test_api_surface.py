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


# -- 4. every status documented, content types documented, value checks in the schema --------------------


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").json()
    return document


def test_every_error_status_is_documented_in_the_error_shape(spec: dict[str, Any]) -> None:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"500"} | ({"401", "403"} if operation.get("security") else set())
            expected |= {"413"} if "requestBody" in operation else set()
            expected |= {"422"} if operation.get("parameters") or "requestBody" in operation else set()
            assert expected <= set(responses), (method, path)
            assert all(responses[status]["content"] == error for status in expected), (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_csv_and_prometheus_answers_are_documented(client: TestClient, spec: dict[str, Any]) -> None:
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    for path in ("/v1/trends", "/v1/drift"):
        assert {"application/json", "text/csv"} <= set(
            spec["paths"][path]["get"]["responses"]["200"]["content"]
        )
    assert set(spec["paths"]["/readyz"]["get"]["responses"]) >= {"200", "503"}


def test_value_checks_are_stated_in_the_schema(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    attempt_in = schemas["AttemptIn"]["properties"]
    currencies = attempt_in["currency"]["anyOf"][0]["enum"]  # or null: optional in the contract
    assert "EUR" in currencies
    assert "XXX" not in currencies
    assert {"pattern": "^[0-9]{6,8}$"}.items() <= attempt_in["card_bin"]["anyOf"][0].items()
    assert "DE" in attempt_in["card_country"]["anyOf"][0]["enum"]
    assert attempt_in["occurred_at"]["pattern"].startswith("^")
    assert attempt_in["retry_number"]["anyOf"][0]["type"] == "integer"
    assert attempt_in["amount"]["minimum"] == 0  # a EUR 0 authorisation check
    declined = next(
        b for b in schemas["OutcomeIn"]["oneOf"] if b["properties"]["status"] == {"const": "declined"}
    )
    assert declined["required"] == ["decline_code"]
    assert "minor unit" in attempt_in["amount"]["description"]


def test_a_missing_key_is_401_in_the_error_shape_where_documented(client: TestClient) -> None:
    assert_error_shape(client.get("/v1/decisions/att-1"), 401, "unauthenticated")
    assert_error_shape(client.post("/v1/outcomes", json={"outcomes": []}), 401, "unauthenticated")


# -- 5. strict values ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"amount": True}, "amount"),
        ({"amount": "14.99"}, "amount"),
        ({"retry_number": "3"}, "retry_number"),
        ({"retry_number": True}, "retry_number"),
        ({"amount": 14.999}, "minor unit"),
        ({"amount": 14.99, "currency": "JPY"}, "minor unit"),
        ({"occurred_at": 1796652151103}, "occurred_at"),
        ({"occurred_at": "1796652151103"}, "occurred_at"),
    ],
)
def test_lax_values_are_refused(client: TestClient, change: dict[str, Any], where: str) -> None:
    for path in ("/v1/score", "/v1/score/batch"):
        body = attempt(3, **change) if path == "/v1/score" else {"attempts": [attempt(3, **change)]}
        response = client.post(path, json=body, headers=SCORE)
        assert where in response.text, response.text
        assert_error_shape(response, 422, "invalid_request")


def test_whole_amounts_and_counts_are_numbers_still(client: TestClient) -> None:
    changes: list[dict[str, Any]] = [
        {"amount": 1500, "currency": "JPY"},
        {"amount": 14.99},
        {"retry_number": 3.0},
    ]
    for n, change in enumerate(changes):
        assert client.post("/v1/score", json=attempt(40 + n, **change), headers=SCORE).status_code == 200


@pytest.mark.parametrize("field", ["declined_at", "first_declined_at", "card_retry_times"])
def test_epoch_milliseconds_are_not_a_time_in_a_recovery_case(client: TestClient, field: str) -> None:
    """A 13-digit Luhn-valid string was read as epoch milliseconds; now it is neither a time nor echoed."""
    digits = "1796652151103"
    assert luhn_valid(digits)
    value: Any = [digits] if field == "card_retry_times" else digits
    case = {"attempt": attempt(5), "decline_code": "insufficient_funds", field: value}
    response = client.post("/v1/recovery-plan", json=case, headers=SCORE)
    assert_error_shape(response, 422, "invalid_request")
    assert digits not in response.text
