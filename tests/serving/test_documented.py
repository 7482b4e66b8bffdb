"""The suite's documented client (:mod:`tests.serving.documented`) fails on what the document does not say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from tests.serving.documented import DocumentedClient, UndocumentedAnswerError


class PartOut(BaseModel):
    size: int


class ThingOut(BaseModel):
    name: str
    part: PartOut | None


ANSWERS = {
    "ok": {"name": "a", "part": {"size": 1}},
    "null": {"name": "a", "part": None},
    "extra": {"name": "a", "part": None, "colour": "red"},
    "nested_extra": {"name": "a", "part": {"size": 1, "colour": "red"}},
    "missing": {"name": "a"},
    "wrong_type": {"name": "a", "part": {"size": "big"}},
}


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}", response_model=ThingOut)
    def thing(thing_id: str) -> Response:
        if thing_id == "teapot":
            return JSONResponse({"name": "teapot", "part": None}, 418)
        if thing_id == "csv":
            return PlainTextResponse("name\na\n")
        return JSONResponse(ANSWERS[thing_id])

    return app


@pytest.fixture
def client() -> Iterator[DocumentedClient]:
    with DocumentedClient(_app()) as test_client:
        yield test_client


@pytest.mark.parametrize("thing_id", ["ok", "null"])
def test_documented_answers_pass(client: DocumentedClient, thing_id: str) -> None:
    assert client.get(f"/things/{thing_id}").json() == ANSWERS[thing_id]


@pytest.mark.parametrize(
    ("thing_id", "problem"),
    [
        ("extra", "colour"),
        ("nested_extra", "colour"),
        ("missing", "part"),
        ("wrong_type", "big"),
        ("teapot", "418"),
        ("csv", "text/plain"),
    ],
)
def test_undocumented_answers_fail_the_test(client: DocumentedClient, thing_id: str, problem: str) -> None:
    with pytest.raises(UndocumentedAnswerError, match=problem) as raised:
        client.get(f"/things/{thing_id}")
    assert "GET /things/{thing_id}" in str(raised.value)


def test_routing_errors_are_the_only_answers_outside_the_document(client: DocumentedClient) -> None:
    assert client.get("/nowhere").status_code == 404
    assert client.delete("/things/ok").status_code == 405
