"""``POST /v1/score``'s one front door (:func:`score_response`), answered by a plain ASGI handler in front
of the FastAPI application.

A decision costs the server well under a millisecond of CPU, and FastAPI's generic per-request machinery
(routing, dependency injection, the ``Request`` object, exception middleware) added about half as much again.
The billing system calls this endpoint for every payment attempt, so :class:`ScoreFastPath` answers exactly
``POST {root_path}/v1/score`` itself and hands every other request to FastAPI untouched (the batch route, the
docs, the 405 of ``GET /v1/score``, ...).

:func:`score_response` is the whole handling of the request, in this order:

1. the body limit on the declared ``Content-Length`` (413, before anything else, as ``ServiceMiddleware``);
2. the API key with the ``score`` scope (:meth:`serving.api.security.KeyRing.check`: 401/403);
3. the ``explain`` query parameter, parsed as FastAPI parses a ``bool`` (422 in FastAPI's format);
4. the body, refused (413) as soon as the streamed bytes pass the limit (:func:`limited`), then validated and
   scored (:func:`score_request`) and answered by :class:`serving.api.jsonbody.FastJSONResponse`.

Errors are answered by :func:`serving.api.answers.error_response` (the exception handlers' definition), and
every request is recorded in ``riskgate_request_seconds`` under the route ``/v1/score``. The FastAPI route
(:mod:`serving.api.routes.score`) declares the endpoint in the OpenAPI document and, when the app is built
with ``fast_path=False``, answers through the same :func:`score_response` behind FastAPI's routing.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as ASGIScope

from serving.api.answers import body_too_large, declares_too_much, error_response, too_large_response
from serving.api.jsonbody import FastJSONResponse, parse_body
from serving.api.security import API_KEY_HEADER, Scope
from serving.api.service import Service
from serving.scoring.answers import ScoreAnswer
from serving.scoring.schemas import AttemptIn

logger = logging.getLogger(__name__)

CLIENT_GONE: Final = (
    499  # recorded when the client disconnects before its body has arrived (nothing is answered)
)
_KEY_HEADER: Final = API_KEY_HEADER.lower().encode("latin-1")
_BOOL: Final = TypeAdapter(bool)


class ScoreFastPath:
    """ASGI middleware: answers ``POST {root_path}{path}`` with ``service``, passes the rest to ``app``."""

    def __init__(self, app: ASGIApp, service: Service, path: str) -> None:
        self.app = app
        self.service = service
        self.path = path

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = await self._answer(scope, receive, send)
        self.service.metrics.observe_request(self.path, "POST", status, time.perf_counter() - started)

    async def _answer(self, scope: ASGIScope, receive: Receive, send: Send) -> int:
        """Answer one request; its HTTP status."""
        try:
            response = await score_response(self.service, scope, receive)
        except ClientDisconnect:
            logger.debug("client disconnected before sending its whole body to %s", self.path)
            return CLIENT_GONE
        except Exception as error:  # every error is answered, as FastAPI's handlers answer it
            response = error_response(error, self.service.metrics, self.path)
        await response(scope, receive, send)
        return response.status_code


async def score_response(service: Service, scope: ASGIScope, receive: Receive) -> Response:
    """The answer to ``POST /v1/score`` (the request's ASGI ``scope`` and ``receive``), in the order of the
    module's description. A body declared too large is answered 413 at once; every later error is raised, for
    the caller to answer with :func:`serving.api.answers.error_response` (the fast path does it itself, the
    FastAPI route through the app's exception handlers); a client gone raises ``ClientDisconnect``."""
    limit = service.limits.max_body_bytes
    declared, key = _content_length_and_key(scope["headers"])
    if declares_too_much(declared, limit):
        return too_large_response(limit)
    service.keys.check(key, Scope.SCORE)
    explain = explain_flag(scope.get("query_string", b""))
    return FastJSONResponse(score_request(service, await read_body(receive, limit), explain))


def score_request(service: Service, body: bytes, explain: bool) -> ScoreAnswer:
    """The answer to an authenticated ``POST /v1/score``: ``body`` validated as :class:`AttemptIn` (422
    otherwise), then the whole decision."""
    return service.engine.score(parse_body(AttemptIn, body, service.engine.validation_context), explain)


def route_path(scope: ASGIScope) -> str:
    """The path routes are matched against: ``path`` without the ``root_path`` prefix when it has one (as
    Starlette's router matches it)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path) :]
    return rest if rest == "" or rest.startswith("/") else path


def _content_length_and_key(headers: list[tuple[bytes, bytes]]) -> tuple[bytes | None, str | None]:
    """The declared ``Content-Length`` (the last one, raw) and the API key (the first one), in one pass over
    the headers (ASGI servers give their names in lower case)."""
    declared: bytes | None = None
    key: str | None = None
    for name, value in headers:
        if name == b"content-length":
            declared = value
        elif name == _KEY_HEADER and key is None:
            key = value.decode("latin-1")
    return declared, key


def explain_flag(query_string: bytes) -> bool:
    """The ``explain`` query parameter as FastAPI reads a ``bool`` (pydantic's rules: true/false, 1/0,
    yes/no, on/off, t/f, y/n in any case; the last value if repeated); absent is ``False``; anything else
    raises FastAPI's validation error (422, located at ``query.explain``)."""
    if not query_string:
        return False
    value = QueryParams(query_string).get("explain")
    if value is None:
        return False
    try:
        return _BOOL.validate_python(value)
    except ValidationError as error:
        problems = [
            {"type": e["type"], "loc": ("query", "explain", *e["loc"]), "msg": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(problems) from None


def limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that refuses the request (413) as soon as more than ``limit`` body bytes have arrived: the
    streamed body limit of every route (``ServiceMiddleware``) and of :func:`read_body`."""
    received = 0

    async def receive_limited() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise body_too_large(limit)
        return message

    return receive_limited


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused (413) as soon as more than ``limit`` bytes have arrived (:func:`limited`); a
    client gone before its body has arrived raises :class:`starlette.requests.ClientDisconnect`."""
    receive = limited(receive, limit)
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
