"""Dependencies shared by the routers: the service, and API-key authentication with scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from serving.api.jsonbody import parse_body
from serving.api.security import API_KEY_HEADER, Principal, Scope
from serving.api.service import Service

_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Your riskgate API key.")
#: An OpenAPI operation's ``security`` for a route that checks the key itself (the fast path's front door)
KEY_SECURITY: Final[list[dict[str, list[str]]]] = [{_api_key.scheme_name: []}]


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
M = TypeVar("M", bound=BaseModel)


def served_body(model: type[M]) -> Callable[[Request, Service], Awaitable[M]]:
    """A dependency: the body validated as ``model`` against the served feature set's fields (attempts'
    ``attributes``), which FastAPI's own body parameters cannot do (they take no validation context). The
    route declares the body with ``openapi_extra=body_schema(model)``."""

    async def parse(request: Request, service: ServiceDep) -> M:
        return parse_body(model, await request.body(), service.engine.validation_context)

    return parse


def require(scope: Scope) -> Callable[[Service, str | None], Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks that its key has ``scope``.

    Both dependencies are ``async def``: they do microseconds of work, and a plain ``def`` would cost every
    request two hops through the threadpool (FastAPI runs sync dependencies there).
    """

    async def check(service: ServiceDep, key: Annotated[str | None, Security(_api_key)]) -> Principal:
        return service.keys.check(key, scope)

    return check


ScoreKey = Annotated[Principal, Depends(require(Scope.SCORE))]
AdminKey = Annotated[Principal, Depends(require(Scope.ADMIN))]
