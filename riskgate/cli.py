"""The ``riskgate`` command line: thin commands over the packages' functions.

Each command reads the settings once, configures logging, and calls one function that does the work (and can
be called from a test). Heavy libraries are imported inside the commands so that ``riskgate --help`` is fast.
"""

from __future__ import annotations

import logging

import typer

from riskgate.settings import Settings, get_settings

app = typer.Typer(
    name="riskgate",
    help="Payment-risk scoring for IPTV providers: simulate, import, build features, train, serve.",
    no_args_is_help=True,
    add_completion=False,
)


def configure_logging(settings: Settings) -> None:
    """Configure logging once, at the entry point."""
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.callback()
def main() -> None:
    """riskgate command line."""
    configure_logging(get_settings())


@app.command()
def info() -> None:
    """Show the settings in force (directories, tracking store)."""
    settings = get_settings()
    typer.echo(f"environment:  {settings.environment}")
    typer.echo(f"data dir:     {settings.data_dir}")
    typer.echo(f"state dir:    {settings.state_dir}")
    typer.echo(f"tracking uri: {settings.tracking_uri}")
