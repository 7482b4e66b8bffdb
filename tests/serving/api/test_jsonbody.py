"""The score route reads its raw body with pydantic-core and answers with orjson: the same contract."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from serving.api.jsonbody import FastJSONResponse, body_schema, parse_body
from serving.scoring.schemas import AttemptIn
from tests.serving.factories import SCORE, attempt


def test_parse_body_validates_as_the_model_does() -> None:
    body = attempt(1)
    parsed = parse_body(AttemptIn, json.dumps(body).encode())
    assert parsed == AttemptIn.model_validate(body)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"{not json", ("body",)),
        (b"", ("body",)),
        (json.dumps({**attempt(2), "amount": -1}).encode(), ("body", "amount")),
        (json.dumps({**attempt(3), "surprise": "x"}).encode(), ("body", "surprise")),
    ],
)
def test_a_bad_body_is_fastapis_validation_error_without_values(
    raw: bytes, where: tuple[object, ...]
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_body(AttemptIn, raw)
    problems = caught.value.errors()
    assert tuple(problems[0]["loc"])[: len(where)] == where
    assert all("input" not in problem for problem in problems)


def test_bad_json_and_card_numbers_are_422_over_http(client: TestClient) -> None:
    for raw in (b"{not json", json.dumps({**attempt(4), "device_id": "4111 1111 1111 1111"}).encode()):
        response = client.post(
            "/v1/score", content=raw, headers={**SCORE, "content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request"
        assert "4111" not in response.text


def test_the_score_route_documents_its_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/score"]["post"]["requestBody"]
    assert body == body_schema(AttemptIn)["requestBody"]
    assert "AttemptIn" in spec["components"]["schemas"]


def test_fast_json_response_renders_json_and_nan_as_null() -> None:
    response = FastJSONResponse({"p": 0.25, "missing": math.nan, "text": "é", "nested": [1, None]})
    assert response.media_type == "application/json"
    assert orjson.loads(response.body) == {"p": 0.25, "missing": None, "text": "é", "nested": [1, None]}
