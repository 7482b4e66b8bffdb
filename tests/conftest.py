"""Servers every test folder may use: a real PostgreSQL, a real Redis and a real MLflow tracking server, one
of each per test session (each started when a test first asks for it)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from serving.store.postgres import schema
from tests.servers import MlflowServer, PostgresServer, mlflow_server, postgres, redis_server

_TEMPLATE = "riskgate_template"
_numbers = itertools.count()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server (installed by `make system-deps`), bound to 127.0.0.1 on a free port."""
    try:
        with redis_server(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except RuntimeError as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A throwaway `mlflow server` (SQLite store, artifact proxy) on 127.0.0.1; its registry is shared by the
    session's tests."""
    try:
        with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
            yield server
    except RuntimeError as failed:
        pytest.fail(str(failed))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL (`make system-deps` installs it), its template database at the newest schema."""
    try:
        with postgres() as server:
            schema.upgrade(server.create_database(_TEMPLATE))
            yield server
    except RuntimeError as missing:
        pytest.fail(str(missing))


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new database at the newest schema, of this test's own (a copy of the session's template)."""
    return postgres_server.create_database(f"t{next(_numbers)}", template=_TEMPLATE)
