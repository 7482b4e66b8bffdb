"""The database commands: ``riskgate db upgrade`` and ``riskgate db status``, over
:mod:`serving.store.postgres.schema` (PostgreSQL at ``RISKGATE_DATABASE_URL``; the SQLite files need none)."""

from __future__ import annotations

import typer

from core.settings import get_settings
from serving.errors import ConfigurationError

db_app = typer.Typer(
    name="db",
    help="The PostgreSQL schema (RISKGATE_DATABASE_URL): apply its versions, or say where it stands.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (as ``riskgate db ...``)."""
    app.add_typer(db_app)


def _url() -> str:
    url = get_settings().database_url
    if url is None:
        raise ConfigurationError(
            "RISKGATE_DATABASE_URL is not set: the service keeps its state in SQLite files under "
            "RISKGATE_STATE_DIR, which need no upgrade (set it to postgresql://... to use PostgreSQL)"
        )
    return url.get_secret_value()


@db_app.command()
def upgrade() -> None:
    """Apply every schema version the database lacks (once, under a lock: safe while instances run).
    Exit code: 0 up to date, 2 refused."""
    from serving.store.postgres import schema  # noqa: PLC0415 (keep --help fast)
    from serving.store.postgres.database import redact  # noqa: PLC0415

    url = _url()
    before = schema.state(url)
    after = schema.upgrade(url)
    if before.current == after.current:
        typer.echo(f"{redact(url)}: schema {after.current} is up to date")
    else:
        typer.echo(f"{redact(url)}: schema {before.current or 'none'} -> {after.current}")


@db_app.command()
def status() -> None:
    """Say the database's schema version and this riskgate's. Exit code: 0 up to date, 1 behind or ahead."""
    from serving.store.postgres import schema  # noqa: PLC0415 (keep --help fast)
    from serving.store.postgres.database import redact  # noqa: PLC0415

    url = _url()
    found = schema.state(url)
    typer.echo(f"{redact(url)}: schema {found.current or 'none (empty)'}, this riskgate's {found.head}")
    if not found.up_to_date:
        raise typer.Exit(1)
