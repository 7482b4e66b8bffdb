"""The data commands: ``info``, ``validate`` and ``import`` (a provider's exports, over :mod:`events`) and
``simulate`` (a synthetic world, over :mod:`simulator`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.settings import get_settings
from core.urls import redact
from riskgate.cli.options import progress_bars

if TYPE_CHECKING:
    import pandas as pd

    from events.mapping import ColumnMapping


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    app.command()(info)
    app.command()(validate)
    app.command("import")(import_)
    app.command()(simulate)


def info() -> None:
    """Show the settings in force (directories, tracking store)."""
    settings = get_settings()
    typer.echo(f"environment:  {settings.environment}")
    typer.echo(f"data dir:     {settings.data_dir}")
    typer.echo(f"state dir:    {settings.state_dir}")
    typer.echo(f"tracking uri: {redact(settings.tracking_uri)}")
    if settings.registry_uri != settings.tracking_uri:
        typer.echo(f"registry uri: {redact(settings.registry_uri)}")


def _mapping(mapping: Path | None) -> ColumnMapping:
    """The mapping file's contents (the identity mapping without one)."""
    from events.mapping import ColumnMapping, load_mapping  # noqa: PLC0415

    return ColumnMapping() if mapping is None else load_mapping(mapping)


def _write_report_if_asked(problems: pd.DataFrame, report: Path | None) -> None:
    from events.problems import write_report  # noqa: PLC0415

    if report is not None:
        typer.echo(f"all {len(problems)} problem(s) written to {write_report(problems, report)}")


def validate(  # noqa: PLR0917 (a typer command: one parameter per option)
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A CSV or Parquet export.")],
    kind: Annotated[
        str | None,
        typer.Option(help="attempts, outcomes or fraud_reports (default: told from the file name)."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Column-mapping YAML file.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write every problem to this file (.csv, or .json).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Check ids against the tables here (default: the settings' data dir).")
    ] = None,
    examples: Annotated[int, typer.Option(min=0, help="How many problems to show.")] = 10,
) -> None:
    """Check a provider's export against the event contract (and the mapping's attributes against the
    extension recorded in the data dir). Exit code: 0 valid, 1 refused, 2 usage error."""
    from events.validate import check_file, guess_kind, parse_kind  # noqa: PLC0415

    column_mapping = _mapping(mapping)
    event_kind = guess_kind(path) if kind is None else parse_kind(kind)
    checked = check_file(path, event_kind, column_mapping, data_dir or get_settings().data_dir)
    for line in checked.summary(examples):
        typer.echo(line)
    _write_report_if_asked(checked.validation.problems, report)
    raise typer.Exit(0 if checked.validation.accepted else 1)


def import_(  # noqa: PLR0917 (a typer command: one parameter per option)
    attempts: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Attempts export.")
    ] = None,
    outcomes: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Outcomes export.")
    ] = None,
    fraud_reports: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Fraud reports export.")
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Column-mapping YAML file.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the event tables are (default: the settings' data dir).")
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(help="Import the good rows and write the bad ones, with reasons, to this folder."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write every problem to this file (.csv, or .json).")
    ] = None,
    examples: Annotated[int, typer.Option(min=0, help="How many problems to show.")] = 10,
) -> None:
    """Import a provider's exports (any of the three) into the event tables, whole or not at all.

    The mapping's attributes become typed columns of the attempts, recorded in DATA_DIR/extension.json.
    Exit code: 0 imported (bad rows quarantined if --quarantine was given), 1 refused, 2 usage error.
    """
    from core.errors import InputError  # noqa: PLC0415
    from events.importer import import_files  # noqa: PLC0415
    from events.schema import EventKind  # noqa: PLC0415

    given = {
        EventKind.ATTEMPTS: attempts,
        EventKind.OUTCOMES: outcomes,
        EventKind.FRAUD_REPORTS: fraud_reports,
    }
    files = {kind: path for kind, path in given.items() if path is not None}
    if not files:
        raise InputError("give at least one of --attempts, --outcomes, --fraud-reports")
    column_mapping = _mapping(mapping)
    result = import_files(files, column_mapping, data_dir or get_settings().data_dir, quarantine)
    for line in result.summary(examples):
        typer.echo(line)
    _write_report_if_asked(result.problems, report)
    raise typer.Exit(1 if result.refused else 0)


def simulate(
    context: typer.Context,
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
    from simulator import WorldConfig  # noqa: PLC0415 (keep --help fast)
    from simulator import simulate as run_simulation  # noqa: PLC0415

    settings = get_settings()
    world = WorldConfig.from_yaml(config) if config else WorldConfig()
    world = world.with_overrides(accounts=accounts, months=months, seed=seed)
    with progress_bars(context) as progress:
        summary = run_simulation(world, out or settings.data_dir, overwrite=force, progress=progress)
    typer.echo(summary.model_dump_json(indent=2))
