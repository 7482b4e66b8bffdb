"""Alembic's entry: the migrations run over the connection that ``schema.upgrade`` hands it."""

from __future__ import annotations

from alembic import context

from serving.store.postgres.schema import VERSION_TABLE


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


run()
