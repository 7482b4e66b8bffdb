"""POST /v1/score answered in front of FastAPI (serving.api.fastpath): the same answers as the FastAPI route,
byte for byte, for every status a client can get, the same metrics, root_path, and fall-through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import ClientDisconnect

from core.settings import ApiKey
from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.api.fastpath import explain_flag, read_body, route_path
from serving.api.routes.deps import get_service
from serving.api.security import hash_key
from serving.errors import NotReadyError, PayloadTooLargeError
from serving.scoring.answers import FailureAnswer, ScoreAnswer
from tests.serving.documented import DocumentedClient
from tests.serving.factories import SCORE, SCORE_KEY, attempt, seed_cache, service_for

ADMIN_ONLY = {"X-API-Key": "admin-only-key"}
KEYS = (
    ApiKey(name="billing", sha256=hash_key(SCORE_KEY), scopes=frozenset({"score"})),
    ApiKey(name="ops", sha256=hash_key("admin-only-key"), scopes=frozenset({"admin"})),
)
LIMIT = 4_096
CARD = "4111 1111 1111 1111"


@dataclass(frozen=True)
class Call:
    """One request to send to both apps."""

    name: str
    headers: dict[str, str] = field(default_factory=lambda: dict(SCORE))
    body: bytes | None = None  # None: a fresh valid attempt
    query: str = ""
    method: str = "POST"
    path: str = "/v1/score"
    chunked: bool = False  # send the body in pieces, without a Content-Length


def _body(n: int, **changes: Any) -> bytes:
    return json.dumps(attempt(n, **changes)).encode()


CALLS = [
    Call("plain"),
    Call("explain true", query="explain=true"),
    Call("explain YES", query="explain=YES"),
    Call("explain 0", query="explain=0"),
    Call("explain repeated: the last wins", query="explain=false&explain=on"),
    Call("other query parameters are ignored", query="foo=bar"),
    Call("explain maybe", query="explain=maybe"),
    Call("explain empty", query="explain="),
    Call("no key", headers={}),
    Call("empty key", headers={"X-API-Key": ""}),
    Call("wrong key", headers={"X-API-Key": "nope"}),
    Call("key without the score scope", headers=ADMIN_ONLY),
    Call("no key beats a bad query", headers={}, query="explain=maybe"),
    Call("bad body", body=_body(1, amount=-1)),
    Call("unknown field", body=_body(1, surprise=1)),
    Call("not json", body=b"{not json"),
    Call("empty body", body=b""),
    Call("a list", body=b"[1, 2]"),
    Call("card number in a field", body=_body(1, device_id=f"tok {CARD}")),
    Call("card number as a field name", body=json.dumps({**attempt(1), "4111111111111111": "x"}).encode()),
    Call("bad query beats a bad body", body=b"{not json", query="explain=maybe"),
    Call("declared too large", body=b"x" * (LIMIT + 1)),
    Call("declared too large beats no key", headers={}, body=b"x" * (LIMIT + 1)),
    Call("streamed too large", body=b"x" * (LIMIT + 1), chunked=True),
    Call("streamed within the limit", chunked=True),
    Call("GET is FastAPI's 405", method="GET", body=b""),
    Call("trailing slash goes to FastAPI", path="/v1/score/"),
]


def _app(tmp: Path, bundles: dict[str, ModelBundle], fast_path: bool) -> TestClient:
    seed_cache(tmp / "state" / "models", bundles)
    service = service_for(tmp, api_keys=KEYS, max_body_bytes=LIMIT)
    return DocumentedClient(create_app(service=service, fast_path=fast_path), raise_server_exceptions=False)


@pytest.fixture
def pair(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Iterator[tuple[TestClient, TestClient]]:
    """The app with the fast path and without it (the FastAPI route), each over its own fresh state."""
    with (
        _app(tmp_path / "fast", bundles, fast_path=True) as fast,
        _app(tmp_path / "route", bundles, fast_path=False) as route,
    ):
        yield fast, route


def send(client: TestClient, call: Call, n: int) -> Any:
    body = _body(n) if call.body is None else call.body
    content: Any = body
    if call.chunked:
        content = iter([body[i : i + 1000] for i in range(0, len(body), 1000)])
    headers = {**call.headers, "content-type": "application/json"}
    url = f"{call.path}?{call.query}" if call.query else call.path
    return client.request(call.method, url, content=content, headers=headers)


def _comparable(response: Any) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, headers and body; the server-side time of a decision (and so the length) varies run to run."""
    if response.status_code != 200:
        return response.status_code, response.headers.multi_items(), response.content
    answer = response.json()
    answer.pop("scoring_ms")
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "content-length"]
    return 200, headers, answer


def test_every_answer_is_the_fastapi_routes_answer(pair: tuple[TestClient, TestClient]) -> None:
    fast, route = pair
    statuses = set()
    for n, call in enumerate(CALLS):
        got, want = send(fast, call, n), send(route, call, n)
        assert _comparable(got) == _comparable(want), call.name
        assert "4111" not in got.text, call.name
        statuses.add(got.status_code)
    assert statuses == {200, 401, 403, 405, 413, 422}


def test_statuses_and_bodies_a_client_relies_on(pair: tuple[TestClient, TestClient]) -> None:
    fast, _ = pair
    by_name = {call.name: send(fast, call, n) for n, call in enumerate(CALLS)}
    assert by_name["plain"].json()["features"] is None
    assert len(by_name["explain true"].json()["features"]) > 10
    assert len(by_name["explain repeated: the last wins"].json()["features"]) > 10
    assert by_name["wrong key"].json() == {"error": "unauthenticated", "message": "invalid API key"}
    assert by_name["key without the score scope"].json()["error"] == "forbidden"
    assert by_name["explain maybe"].json()["details"] == [
        {"loc": ["query", "explain"], "msg": "Input should be a valid boolean, unable to interpret input",
         "type": "bool_parsing"}
    ]  # fmt: skip
    assert by_name["bad body"].json()["details"][0]["loc"] == ["body", "amount"]
    assert "card number" in by_name["card number in a field"].text
    too_large = {"error": "payload_too_large", "message": f"request body larger than {LIMIT} bytes"}
    assert by_name["declared too large"].json() == too_large
    assert by_name["streamed too large"].json() == too_large
    assert by_name["GET is FastAPI's 405"].headers["allow"] == "POST"
    assert by_name["streamed within the limit"].status_code == 200


def test_conflicts_and_serving_errors_answer_alike(pair: tuple[TestClient, TestClient]) -> None:
    for client in pair:
        assert send(client, Call("first"), 500).status_code == 200
    conflict = Call("same id, other payload", body=_body(500, amount=99.0))
    got, want = (send(client, conflict, 500) for client in pair)
    assert got.status_code == 409
    assert _comparable(got) == _comparable(want)
    for error in (NotReadyError("the online store is unreachable: retry later"), RuntimeError("boom")):
        for client in pair:
            client.app.state.service.engine.score = _raising(error)  # type: ignore[attr-defined]
        got, want = (send(client, Call("failing engine"), 501) for client in pair)
        assert got.status_code in {503, 500}
        assert _comparable(got) == _comparable(want)
    assert got.json() == {"error": "internal_error", "message": "unexpected error; it has been logged"}
    assert "boom" not in got.text


def _raising(error: Exception) -> Callable[..., Any]:
    def fail(*args: Any) -> Any:
        raise error

    return fail


def _metric_lines(client: TestClient, *prefixes: str) -> list[str]:
    lines = client.get("/metrics").text.splitlines()
    return sorted(line for line in lines if line.startswith(prefixes))


def test_metrics_are_labelled_as_the_fastapi_route_labels_them(pair: tuple[TestClient, TestClient]) -> None:
    calls = [
        call for call in CALLS if call.name not in {"declared too large", "declared too large beats no key"}
    ]
    for client in pair:
        for n, call in enumerate(calls):
            send(client, call, n)
    fast, route = pair
    prefixes = ("riskgate_request_seconds_count", "riskgate_errors_total", "riskgate_decisions_total")
    assert _metric_lines(fast, *prefixes) == _metric_lines(route, *prefixes)
    lines = _metric_lines(fast, "riskgate_request_seconds_count")
    for status in (200, 401, 403, 413, 422):
        assert (
            f'riskgate_request_seconds_count{{method="POST",route="/v1/score",status="{status}"}}'
            in "\n".join(lines)
        )
    assert any('method="GET",route="/v1/score",status="405"' in line for line in lines)


def test_a_declared_oversized_body_is_counted_on_its_route(pair: tuple[TestClient, TestClient]) -> None:
    fast, route = pair
    call = Call("declared too large", body=b"x" * (LIMIT + 1))
    assert send(fast, call, 0).status_code == send(route, call, 0).status_code == 413
    fast_lines = "\n".join(_metric_lines(fast, "riskgate_request_seconds_count"))
    assert (
        'route="/v1/score",status="413"} 1.0' in fast_lines
    )  # before routing, FastAPI's side says unmatched
    assert 'route="unmatched",status="413"} 1.0' in "\n".join(
        _metric_lines(route, "riskgate_request_seconds")
    )


def _route_unreachable(client: TestClient) -> None:
    """Make FastAPI's routes fail if they need the service: a 200 then proves the fast path answered."""

    def unreachable() -> None:
        raise AssertionError("the FastAPI route answered")

    client.app.dependency_overrides[get_service] = unreachable  # type: ignore[attr-defined]


def test_the_fast_path_answers_under_a_root_path(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    app = _app(tmp_path, bundles, fast_path=True).app
    with DocumentedClient(app, root_path="/risk") as client:
        _route_unreachable(client)
        for n, path in enumerate(("/risk/v1/score", "/v1/score")):  # prefix kept, or stripped by a proxy
            response = client.post(path, content=_body(n), headers=SCORE)
            assert response.status_code == 200, (path, response.text)
        assert client.post("/risk/v1/scores", content=_body(9), headers=SCORE).status_code == 404
        assert client.get("/risk/v1/score").status_code == 405


def test_the_fast_path_answers_and_the_rest_falls_through(client: TestClient) -> None:
    _route_unreachable(client)
    assert client.post("/v1/score", json=attempt(1), headers=SCORE).status_code == 200
    with pytest.raises(AssertionError, match="the FastAPI route answered"):  # the batch route is FastAPI's
        client.post("/v1/score/batch", json={"attempts": [attempt(2)]}, headers=SCORE)
    assert client.get("/healthz").json() == {"status": "alive"}


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"path": "/v1/score"}, "/v1/score"),
        ({"path": "/v1/score", "root_path": ""}, "/v1/score"),
        ({"path": "/api/v1/score", "root_path": "/api"}, "/v1/score"),
        ({"path": "/v1/score", "root_path": "/api"}, "/v1/score"),
        ({"path": "/api", "root_path": "/api"}, ""),
        ({"path": "/apiv1/score", "root_path": "/api"}, "/apiv1/score"),
    ],
)
def test_route_path_strips_the_root_path_as_starlette_does(scope: dict[str, str], expected: str) -> None:
    from starlette._utils import get_route_path  # noqa: PLC0415 - Starlette's own, private: the reference

    assert route_path(scope) == expected == get_route_path(scope)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(
        st.sampled_from(["true", "False", "1", "0", "yes", "NO", "on", "Off", "t", "f", "y", "n", "", "2"]),
        st.text(max_size=6),
    )
)
def test_explain_is_parsed_as_fastapi_parses_it(pair: tuple[TestClient, TestClient], value: str) -> None:
    fast, route = pair
    fast.app.state.service.engine.score = route.app.state.service.engine.score = _echo  # type: ignore[attr-defined]
    got, want = (
        client.post("/v1/score", params={"explain": value}, content=_body(1), headers=SCORE)
        for client in pair
    )
    assert (got.status_code, got.content) == (want.status_code, want.content)


def _echo(attempt: Any, explain: bool) -> ScoreAnswer:
    """A documented answer that echoes the parsed ``explain`` (in ``replayed``), for the client to compare."""
    part: FailureAnswer = {"probability": None, "reasons": [], "model": None}
    return {
        "attempt_id": attempt.attempt_id,
        "fraud": {**part, "level": "normal"},
        "failure": part,
        "decision": {
            "action": "approve",
            "rule": "echo",
            "fallback": True,
            "decided_by": "policy",
            "reasons": [],
        },
        "scoring_ms": 0.0,
        "replayed": explain,
        "features": None,
    }


def test_explain_flag() -> None:
    assert explain_flag(b"") is False
    assert explain_flag(b"other=1") is False
    assert explain_flag(b"explain=TRUE") is True
    assert explain_flag(b"explain=1&explain=no") is False
    with pytest.raises(RequestValidationError):
        explain_flag(b"explain=maybe")


def _receiving(*messages: dict[str, Any]) -> Callable[[], Any]:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def test_read_body_joins_chunks_and_refuses_as_bytes_arrive() -> None:
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": True},
        {"type": "http.request", "body": b"e"},
    ]
    assert asyncio.run(read_body(_receiving(*chunks), 5)) == b"abcde"
    with pytest.raises(PayloadTooLargeError, match="larger than 4 bytes"):
        asyncio.run(read_body(_receiving(*chunks), 4))
    with pytest.raises(ClientDisconnect):
        asyncio.run(read_body(_receiving(chunks[0], {"type": "http.disconnect"}), 5))


def test_a_client_gone_before_its_body_gets_no_answer_and_is_counted(client: TestClient) -> None:
    app = client.app
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/score", "root_path": "", "query_string": b"",
             "headers": [(b"x-api-key", SCORE_KEY.encode())]}  # fmt: skip
    receive = _receiving(
        {"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}
    )
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent == []
    metrics = client.get("/metrics").text
    assert 'riskgate_request_seconds_count{method="POST",route="/v1/score",status="499"} 1.0' in metrics


def test_the_route_documents_what_the_front_door_reads(client: TestClient) -> None:
    """The route's key, ``explain`` and body are declared as data (the front door reads them itself): the
    document still shows a client all three, and every error the endpoint answers."""
    operation = client.get("/openapi.json").json()["paths"]["/v1/score"]["post"]
    assert operation["security"] == [{"APIKeyHeader": []}]
    assert operation["parameters"] == [
        {"in": "query", "name": "explain", "required": False,
         "schema": {"default": False, "title": "Explain", "type": "boolean"}}
    ]  # fmt: skip
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AttemptIn"
    }
    assert set(operation["responses"]) == {"200", "401", "403", "409", "413", "422", "500", "503"}
