"""A TestClient that checks every answer against the app's own OpenAPI document.

:class:`DocumentedClient` is the suite's HTTP client (the ``client`` and ``bare_client`` fixtures): after each
request it finds the operation the document declares for the path and method, then fails the test when the
status or the content type is not documented there, or when a JSON body does not match the documented schema
(``$ref``\\ s resolved against the document's components, formats checked). It is stricter than the document
in one way: an object the document describes with ``properties`` may hold no other key, so an answer field
that the document forgot is a failure too.

Requests outside the document: the paths in :data:`UNDOCUMENTED` (pages, the document itself) are not
checked; any other path the document does not know must be answered 404 (a routing error), and a documented
path called with an undocumented method must be answered 405.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Final

import httpx
import jsonschema_rs
from fastapi.testclient import TestClient

#: Paths the API serves without documenting them (pages and static files for people, the document itself).
UNDOCUMENTED: Final = re.compile(r"^/(?:$|docs|redoc|openapi\.json|dashboard|static/|favicon\.ico)")
JSON_MEDIA: Final = "application/json"


@dataclass(frozen=True)
class Operation:
    """What the document declares for one path template and method: per status, per media type, a schema."""

    template: str
    method: str
    responses: dict[str, dict[str, Any]]


class UndocumentedAnswerError(AssertionError):
    """An answer the OpenAPI document does not declare (status, content type or body)."""


class Document:
    """The app's OpenAPI document, read once per client: its operations and a validator per schema."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = _closed(document.get("components", {}))
        self.paths: list[tuple[re.Pattern[str], str, dict[str, Any]]] = [
            (_template_pattern(template), template, item) for template, item in document["paths"].items()
        ]

    def operation(self, path: str, method: str) -> Operation | str | None:
        """The operation answering ``method path``; None if the path is not documented; the template (a
        string) if the path is documented but not for this method."""
        for pattern, template, item in self.paths:
            if pattern.fullmatch(path):
                op: dict[str, Any] | None = item.get(method.lower())
                if op is None:
                    return template
                return Operation(template, method.upper(), op["responses"])
        return None

    @functools.cache  # noqa: B019 (one document per client, kept for the client's life)
    def validator(self, schema_json: str) -> jsonschema_rs.Validator:
        schema = {**_closed(json.loads(schema_json)), "components": self.components}
        return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)

    def check(self, response: httpx.Response, root_path: str = "") -> None:
        """Raise :class:`UndocumentedAnswerError` unless the document declares ``response`` (to a request
        under ``root_path``, the prefix a proxy adds in front of the document's paths)."""
        request = response.request
        path, method = request.url.path, request.method
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        found = self.operation(path, method)
        if found is None:
            if UNDOCUMENTED.match(path) is None and response.status_code != 404:
                raise UndocumentedAnswerError(
                    f"{method} {path}: the document has no such path, so only a 404 is expected, got "
                    f"{response.status_code}"
                )
            return
        if isinstance(found, str):
            if response.status_code != 405:
                raise UndocumentedAnswerError(
                    f"{method} {path}: {found} documents no {method}, so only a 405 is expected, got "
                    f"{response.status_code}"
                )
            return
        self._check_answer(found, response)

    def _check_answer(self, op: Operation, response: httpx.Response) -> None:
        where = f"{op.method} {op.template} answered {response.status_code}"
        status = str(response.status_code)
        declared = (
            op.responses.get(status) or op.responses.get(f"{status[0]}XX") or op.responses.get("default")
        )
        if declared is None:
            raise UndocumentedAnswerError(
                f"{where}: the status is not documented (only {sorted(op.responses)})"
            )
        content: dict[str, Any] = declared.get("content", {})
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if not content:
            if response.content:
                raise UndocumentedAnswerError(f"{where}: the document declares no body, got {media}")
            return
        if media not in content:
            raise UndocumentedAnswerError(
                f"{where}: content type {media!r} is not documented ({sorted(content)})"
            )
        schema = content[media].get("schema")
        if media != JSON_MEDIA or schema is None:
            return
        errors = [
            f"at {'/'.join(map(str, error.instance_path)) or '(root)'}: {error.message}"
            for error in self.validator(json.dumps(schema, sort_keys=True)).iter_errors(response.json())
        ]
        if errors:
            raise UndocumentedAnswerError(
                f"{where}: the body does not match its documented schema: " + "; ".join(errors)
            )


class DocumentedClient(TestClient):
    """A :class:`fastapi.testclient.TestClient` whose every answer is checked against the app's document."""

    _document: Document | None = None

    def request(self, method: str, url: str | httpx.URL, *args: Any, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = super().request(method, url, *args, **kwargs)
        self.document.check(response, getattr(self._transport, "root_path", ""))
        return response

    @property
    def document(self) -> Document:
        """The app's OpenAPI document, as the app serves it (that request is not checked)."""
        if self._document is None:
            self._document = Document(super().request("GET", "/openapi.json").json())
        return self._document


def _template_pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists its ``properties`` closed to other keys (a copy)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if isinstance(closed.get("properties"), dict) and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


__all__ = ["UNDOCUMENTED", "Document", "DocumentedClient", "UndocumentedAnswerError"]
