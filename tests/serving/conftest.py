from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench._models import synthetic_bundle as make_bundle
from registry.bundle import ModelBundle
from serving.api.app import create_app
from tests.serving.documented import DocumentedClient
from tests.serving.factories import seed_cache, service_for


@pytest.fixture(scope="session")
def bundles() -> dict[str, ModelBundle]:
    return {"fraud": make_bundle("fraud", seed=0), "failure": make_bundle("failure", seed=1)}


@pytest.fixture
def client(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Iterator[TestClient]:
    """The app over a fresh state directory whose local model copy holds both models (no tracking store);
    every answer is checked against the app's OpenAPI document (:mod:`tests.serving.documented`)."""
    seed_cache(tmp_path / "state" / "models", bundles)
    with DocumentedClient(create_app(service=service_for(tmp_path))) as test_client:
        yield test_client


@pytest.fixture
def bare_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app with no model at all (no tracking store, no local copy): every decision is a fallback; every
    answer is checked against the app's OpenAPI document."""
    with DocumentedClient(create_app(service=service_for(tmp_path))) as test_client:
        yield test_client
