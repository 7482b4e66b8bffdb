"""The ``features`` commands: ``build`` (the batch table, over :mod:`features.batch`), ``list`` and
``load-state`` (a data directory's history into the service's online store)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

import typer

from core.settings import get_settings
from riskgate.cli.options import DataDirOption, FeatureSetOption, chosen_feature_set, progress_bars

app = typer.Typer(help="Feature definitions and the batch feature table.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add this area's commands to ``root``, under ``features``."""
    root.add_typer(app, name="features")


@app.command("build")
def features_build(
    context: typer.Context, data_dir: DataDirOption = None, feature_set: FeatureSetOption = None
) -> None:
    """Build the point-in-time feature table of the events in the data directory (DATA_DIR/features/)."""
    from features.batch import build_data_dir  # noqa: PLC0415 (keep --help fast)

    chosen = chosen_feature_set(feature_set).feature_set
    with progress_bars(context) as progress:
        written = build_data_dir(data_dir or get_settings().data_dir, chosen, progress=progress)
    typer.echo(
        f"feature set {chosen.name} ({chosen.hash}): {len(chosen.names)} features -> {written[0].parent}"
    )


@app.command("list")
def features_list(feature_set: FeatureSetOption = None) -> None:
    """List the feature set's features (generated names, in model order) and its hash."""
    chosen = chosen_feature_set(feature_set).feature_set
    typer.echo(f"# {chosen.name} {chosen.hash} ({len(chosen.names)} features)")
    categorical = set(chosen.categorical)
    for name in chosen.names:
        typer.echo(f"{name}\tcategorical" if name in categorical else name)


@app.command("load-state")
def features_load_state(
    context: typer.Context,
    until: Annotated[
        datetime | None,
        typer.Option("--until", help="Load the events strictly before this moment (UTC; default: all)."),
    ] = None,
    data_dir: DataDirOption = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """Load a data directory's history into the service's (empty) online store, in bulk: a provider going
    live starts with the state its imported history implies."""
    from features.history import load_data_dir  # noqa: PLC0415 (keep --help fast)
    from features.online import OnlineEngine  # noqa: PLC0415
    from serving.api.service import journal_dir, open_store  # noqa: PLC0415
    from serving.store.journal import shared_lock  # noqa: PLC0415

    chosen = chosen_feature_set(feature_set).feature_set
    settings = get_settings()
    moment = datetime(9999, 1, 1, tzinfo=UTC) if until is None else until.replace(tzinfo=until.tzinfo or UTC)
    lock = shared_lock(journal_dir(settings))  # a service writing behind holds the state directory alone
    store = open_store(settings)
    try:
        with progress_bars(context) as progress:
            engine = OnlineEngine(store, chosen)
            loaded = load_data_dir(engine, data_dir or settings.data_dir, moment, progress=progress)
    finally:
        store.close()
        os.close(lock)
    typer.echo(
        f"loaded {loaded.events} events into the online store ({settings.online_store}), "
        f"feature set {chosen.name} ({chosen.hash})"
    )
