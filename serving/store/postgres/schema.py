"""The PostgreSQL schema's versions: applied by ``riskgate db upgrade``, checked when the service starts.

The versions are Alembic migrations (``migrations/versions``), run over a psycopg connection. Applying takes
a transaction-scoped advisory lock, so two instances or two operators upgrading at once apply each version
once; PostgreSQL's DDL is transactional, so a version that fails leaves the schema as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from serving.errors import ConfigurationError
from serving.store.postgres.database import Database, check_url, redact

MIGRATIONS: Final = Path(__file__).parent / "migrations"
#: The table that holds the applied version (Alembic's, under riskgate's name).
VERSION_TABLE: Final = "riskgate_schema_version"
#: The advisory lock every upgrade holds (an arbitrary 64-bit key of riskgate's).
UPGRADE_LOCK: Final = 0x7269736B67617465  # "riskgate"


class SchemaVersionError(ConfigurationError):
    """The database's schema is not the one this riskgate reads and writes."""


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where the database's schema is, and where this riskgate's is."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def head() -> str:
    """The newest schema version this riskgate knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None, "riskgate ships at least one schema version"
    return revision


@contextmanager
def _connection(url: str) -> Iterator[sqlalchemy.Connection]:
    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://" + check_url(url).split("://", 1)[1], poolclass=sqlalchemy.NullPool
    )
    try:
        with engine.connect() as connection:
            yield connection
    except sqlalchemy.exc.OperationalError as error:
        raise ConfigurationError(f"PostgreSQL at {redact(url)} cannot be reached: {error.orig}") from error
    finally:
        engine.dispose()


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except CommandError:  # Alembic's "can't locate revision"
        return False


def state(url: str) -> SchemaState:
    """The database's schema version next to this riskgate's."""
    with _connection(url) as connection:
        current = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    return SchemaState(current, head())


def upgrade(url: str) -> SchemaState:
    """Apply every version the database lacks, one transaction under the upgrade lock; the state after."""
    with _connection(url) as connection, connection.begin():
        connection.execute(sqlalchemy.text(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK})"))
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return state(url)


def check(url: str) -> None:
    """Nothing if the database's schema is this riskgate's; else a :class:`SchemaVersionError` saying what to
    run."""
    found = state(url)
    if found.up_to_date:
        return
    if found.current is not None and not _known(found.current):
        raise SchemaVersionError(
            f"PostgreSQL at {redact(url)} has schema version {found.current}, which this riskgate "
            f"does not know (it reads and writes {found.head}): a newer riskgate upgraded it; use that"
        )
    raise SchemaVersionError(
        f"PostgreSQL at {redact(url)} has schema version {found.current or 'none (empty)'}, this riskgate "
        f"needs {found.head}: run `riskgate db upgrade` (with the same RISKGATE_DATABASE_URL) before starting"
    )


def open_checked(url: str, size: int) -> Database:
    """The pool over the database at ``url`` once its schema is this riskgate's (else
    :class:`SchemaVersionError`, before any connection is pooled)."""
    check(url)
    return Database(url, size)
