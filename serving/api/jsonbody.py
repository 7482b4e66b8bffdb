"""JSON in and out of the hot routes without FastAPI's generic path.

FastAPI validates a body model by decoding the JSON into Python objects and then validating those, and renders
responses with the standard library's encoder. For ``POST /v1/score`` both are a measurable share of the
server's CPU per decision, so that route reads the raw body and validates it in one step inside pydantic-core
(:func:`parse_body`: same model, same rules, same 422 answer as FastAPI's path) and answers with orjson
(:class:`FastJSONResponse`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

M = TypeVar("M", bound=BaseModel)


class FastJSONResponse(Response):
    """A JSON response rendered by orjson (NaN and infinities become ``null``; answers never hold them)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def parse_body(model: type[M], body: bytes, context: dict[str, Any] | None = None) -> M:
    """``body`` (raw JSON) validated as ``model`` (with pydantic's validation ``context``: the served fields
    that attributes are checked against); a bad body raises FastAPI's own validation error, so the app's one
    handler answers 422 with the locations (under ``body``) and never echoes the values."""
    try:
        return model.model_validate_json(body, context=context)
    except ValidationError as error:
        problems = [
            {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(problems) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads ``model`` with :func:`parse_body` (FastAPI does not
    see the model in the signature, so the route declares it with ``openapi_extra``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def document_bodies(
    app: FastAPI,
    models: Sequence[type[BaseModel]],
    amend: Callable[[dict[str, Any]], None] = lambda schemas: None,
) -> None:
    """List in ``app``'s OpenAPI document the schemas of the bodies its routes read with :func:`parse_body`
    (FastAPI lists only the models it sees in signatures), then let ``amend`` adjust the component schemas
    (e.g. describe the served feature set's attributes). Done once, when the document is first asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in schema.pop("$defs", {}).items():
                    schemas.setdefault(name, definition)
                schemas.setdefault(model.__name__, schema)
            amend(schemas)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
