"""The ``riskgate`` command line: thin commands over the packages' functions.

Each command reads the settings once, configures logging, and calls one function that does the work (and can
be called from a test). Heavy libraries are imported inside the commands so that ``riskgate --help`` is fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riskgate.settings import Settings, get_settings

if TYPE_CHECKING:
    from features.definitions import FeatureSet

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


features_app = typer.Typer(help="Feature definitions and the batch feature table.", no_args_is_help=True)
app.add_typer(features_app, name="features")

FeatureSetOption = Annotated[
    str | None,
    typer.Option(
        "--feature-set",
        help="Feature set as 'module:ATTRIBUTE' (default: RISKGATE_FEATURE_SET, else features.iptv).",
    ),
]


def _feature_set(spec: str | None) -> FeatureSet:
    from features.registry import FeatureSetSpecError, load_feature_set  # noqa: PLC0415 (keep --help fast)

    try:
        return load_feature_set(spec or get_settings().feature_set)
    except FeatureSetSpecError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


@features_app.command("build")
def features_build(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default: settings).")
    ] = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """Build the point-in-time feature table of the events in the data directory (DATA_DIR/features/)."""
    from events.io import EventTableMissingError  # noqa: PLC0415
    from features.batch import FeatureInputError, build_data_dir  # noqa: PLC0415

    chosen = _feature_set(feature_set)
    try:
        written = build_data_dir(data_dir or get_settings().data_dir, chosen)
    except (EventTableMissingError, FeatureInputError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(
        f"feature set {chosen.name} ({chosen.hash}): {len(chosen.names)} features -> {written[0].parent}"
    )


@features_app.command("list")
def features_list(feature_set: FeatureSetOption = None) -> None:
    """List the feature set's features (generated names, in model order) and its hash."""
    chosen = _feature_set(feature_set)
    typer.echo(f"# {chosen.name} {chosen.hash} ({len(chosen.names)} features)")
    categorical = set(chosen.categorical)
    for name in chosen.names:
        typer.echo(f"{name}\tcategorical" if name in categorical else name)
