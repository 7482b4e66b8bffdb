"""Strict YAML files validated by a pydantic model, with errors that name the file, the key and the fix.

Every configuration file of riskgate (an import's column mapping, a simulated world, the training config, a
dunning policy) is read the same way: the file must hold a YAML mapping; the model forbids unknown keys, so a
misspelt key is an error, never a silent default; each problem is reported as ``path: key.sub: why``, all
problems at once. Each caller keeps its own error type, so its command catches what it knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_mapping(
    path: Path, *, what: str, error: type[Exception], expected: str = "a mapping of settings"
) -> dict[str, Any]:
    """The YAML mapping at ``path`` (an empty file is an empty mapping); ``error`` says why it is not one."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: cannot read the {what}: it does not exist") from None
    except OSError as problem:
        raise error(f"{path}: cannot read the {what} ({problem.strerror})") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(problem, 'problem', problem)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(f"{path}: expected {expected}, found {type(raw).__name__}")
    return raw


def validate(
    model: type[ModelT], raw: dict[str, Any], *, path: Path, error: type[Exception], reference: str
) -> ModelT:
    """``raw`` as ``model``; every problem named by its key path. ``reference`` documents the valid keys."""
    try:
        return model.model_validate(raw)
    except ValidationError as problem:
        details = "; ".join(describe(item, reference) for item in problem.errors())
        raise error(f"{path}: {details}") from None


def load(
    model: type[ModelT],
    path: Path,
    *,
    what: str,
    error: type[Exception],
    reference: str,
    expected: str = "a mapping of settings",
) -> ModelT:
    """:func:`read_mapping` then :func:`validate`."""
    raw = read_mapping(path, what=what, error=error, expected=expected)
    return validate(model, raw, path=path, error=error, reference=reference)


def describe(item: Any, reference: str) -> str:
    """One pydantic error as ``key.sub: message``, with the fix where the cause is a known YAML trap."""
    location = ".".join(str(part) for part in item.get("loc", ()))
    message = str(item.get("msg", item)).removeprefix("Value error, ")
    kind = item.get("type")
    if kind == "string_type":
        message += " (quote it in YAML: 'Y', '01' and yes/no are otherwise read as numbers or booleans)"
    if kind == "extra_forbidden":
        message = f"unknown key (check its spelling against {reference})"
    return f"{location}: {message}" if location else message
