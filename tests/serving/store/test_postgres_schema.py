"""The PostgreSQL schema: `riskgate db upgrade` applies its versions once; the check refuses any other."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator

import psycopg
import pytest
from typer.testing import CliRunner

from core.settings import get_settings
from riskgate.cli import app
from serving.errors import ConfigurationError
from serving.store.postgres import schema
from serving.store.postgres.database import Database, DatabaseUnavailableError, check_url, redact
from tests.servers import PostgresServer, free_port

_empties = itertools.count()


@pytest.fixture
def empty(postgres_server: PostgresServer) -> str:
    """A new database with no schema at all."""
    return postgres_server.create_database(f"empty{next(_empties)}")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_an_empty_database_is_refused_until_upgraded_then_accepted(empty: str) -> None:
    with pytest.raises(
        schema.SchemaVersionError, match=r"schema version none \(empty\).*riskgate db upgrade"
    ):
        schema.check(empty)
    after = schema.upgrade(empty)
    assert after.up_to_date
    assert after.current == schema.head()
    schema.check(empty)
    with psycopg.connect(empty) as connection:
        tables = {
            row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
    assert {"decisions", "outcomes", "fraud_reports", "erasures", schema.VERSION_TABLE} <= tables


def test_concurrent_upgrades_apply_each_version_once(empty: str) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            schema.upgrade(empty)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert schema.state(empty).up_to_date


def test_a_schema_from_a_newer_riskgate_is_refused_with_what_to_do(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        connection.execute(f"UPDATE {schema.VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(schema.SchemaVersionError, match="9999, which this riskgate does not know"):
        schema.check(postgres_url)


def test_the_cli_upgrades_then_says_up_to_date(empty: str, cli_env: pytest.MonkeyPatch) -> None:
    cli_env.setenv("RISKGATE_DATABASE_URL", empty)
    behind = CliRunner().invoke(app, ["db", "status"])
    assert behind.exit_code == 1
    assert "none (empty)" in behind.output
    first = CliRunner().invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"none -> {schema.head()}" in first.output
    again = CliRunner().invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0
    assert "up to date" in again.output
    assert CliRunner().invoke(app, ["db", "status"]).exit_code == 0


def test_the_cli_without_a_database_says_what_to_set(cli_env: pytest.MonkeyPatch) -> None:
    cli_env.delenv("RISKGATE_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "RISKGATE_DATABASE_URL is not set" in result.output


def test_a_database_that_is_down_is_said_so_without_its_password() -> None:
    url = f"postgresql://riskgate:s3cret@127.0.0.1:{free_port()}/riskgate"
    with pytest.raises(ConfigurationError, match="cannot be reached") as refused:
        schema.state(url)
    assert "s3cret" not in str(refused.value)
    assert redact(url) == url.replace("s3cret", "***")
    with pytest.raises(ConfigurationError, match="not a PostgreSQL URL"):
        check_url("mysql://somewhere/db")


def test_the_pool_gives_one_transaction_per_block_and_rolls_back_on_error(postgres_url: str) -> None:
    database = Database(postgres_url, size=2)
    try:
        assert database.ping()
        with contextlib.suppress(RuntimeError), database.transaction() as connection:
            connection.execute("INSERT INTO erasures VALUES ('a', now(), 1, 1)")
            raise RuntimeError("undo")
        with database.transaction() as connection:
            connection.execute("INSERT INTO erasures VALUES ('b', now(), 1, 1)")
        with database.transaction() as connection:
            keys = [row[0] for row in connection.execute("SELECT account_key FROM erasures")]
        assert keys == ["b"]
    finally:
        database.close()


def test_an_unreachable_pool_fails_start_up_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("serving.store.postgres.database.CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(DatabaseUnavailableError, match="gave no connection within"):
        Database(f"postgresql://riskgate:pw@127.0.0.1:{free_port()}/riskgate")
