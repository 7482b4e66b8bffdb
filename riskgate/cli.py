"""The ``riskgate`` command line: thin commands over the packages' functions.

Each command reads the settings once, configures logging, and calls one function that does the work (and can
be called from a test). Heavy libraries are imported inside the commands so that ``riskgate --help`` is fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

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


@app.command()
def simulate(
    *,
    accounts: Annotated[
        int | None, typer.Option(help="Legitimate subscribers (default: the config's).")
    ] = None,
    months: Annotated[int | None, typer.Option(help="Length of the world in months.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: the same seed gives the same data.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="World configuration YAML (see simulator.config).", exists=True)
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the settings' data dir).")] = None,
    force: Annotated[
        bool, typer.Option(help="Replace the simulator's tables in a non-empty output.")
    ] = False,
) -> None:
    """Simulate an IPTV provider's billing world into Parquet tables (attempts, outcomes, fraud reports)."""
    # imported here so that `riskgate --help` stays fast (see the module docstring)
    from simulator import OutputExistsError, WorldConfig  # noqa: PLC0415
    from simulator import simulate as run_simulation  # noqa: PLC0415
    from simulator.config import ConfigFileError  # noqa: PLC0415

    settings = get_settings()
    try:
        world = WorldConfig.from_yaml(config) if config else WorldConfig()
        world = world.with_overrides(accounts=accounts, months=months, seed=seed)
        summary = run_simulation(world, out or settings.data_dir, overwrite=force)
    except (OutputExistsError, ConfigFileError, ValidationError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(summary.model_dump_json(indent=2))
