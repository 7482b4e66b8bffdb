"""The ``riskgate`` command line: thin commands over the packages' functions.

Each command reads the settings once, configures logging, and calls one function that does the work (and can
be called from a test). Heavy libraries are imported inside the commands so that ``riskgate --help`` is fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from core.progress import NO_PROGRESS, Progress
from core.settings import Settings, get_settings
from riskgate.progress import RichProgress

if TYPE_CHECKING:
    import pandas as pd
    from fastapi import FastAPI
    from rich.console import Console

    from events.mapping import ColumnMapping
    from features.definitions import FeatureSet
    from recovery.learned import RetryModel
    from registry.bundle import ModelBundle
    from training.data import ChosenFeatureSet

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
def main(
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bars (they are drawn on stderr only when it is a terminal)."
        ),
    ] = False,
) -> None:
    """riskgate command line."""
    del quiet  # the long commands read it from their context (see _progress)
    configure_logging(get_settings())


def progress_console() -> Console | None:
    """The console progress bars are drawn on: stderr when it is a terminal, else none (no bars and no
    control characters in pipes, logs and tests; stdout is never touched)."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console  # noqa: PLC0415 (keep --help fast)

    return Console(stderr=True)


@contextlib.contextmanager
def _progress(context: typer.Context) -> Iterator[Progress]:
    """Progress bars for the command of ``context`` while the block runs: none with ``riskgate --quiet`` or
    without a terminal on stderr."""
    quiet = bool(context.find_root().params.get("quiet"))
    console = None if quiet else progress_console()
    if console is None:
        yield NO_PROGRESS
        return
    with RichProgress(console) as bars:
        yield bars


@app.command()
def info() -> None:
    """Show the settings in force (directories, tracking store)."""
    settings = get_settings()
    typer.echo(f"environment:  {settings.environment}")
    typer.echo(f"data dir:     {settings.data_dir}")
    typer.echo(f"state dir:    {settings.state_dir}")
    typer.echo(f"tracking uri: {settings.tracking_uri}")


def _load_mapping_or_exit(mapping: Path | None) -> ColumnMapping:
    """The mapping file's contents (the identity mapping without one); a bad file is a usage error."""
    from events.mapping import ColumnMapping, MappingError, load_mapping  # noqa: PLC0415

    if mapping is None:
        return ColumnMapping()
    try:
        return load_mapping(mapping)
    except MappingError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _write_report_if_asked(problems: pd.DataFrame, report: Path | None) -> None:
    from events.problems import write_report  # noqa: PLC0415

    if report is not None:
        typer.echo(f"all {len(problems)} problem(s) written to {write_report(problems, report)}")


@app.command()
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
    from events.io import ExtensionRecordError  # noqa: PLC0415
    from events.sources import UnsupportedFileError  # noqa: PLC0415
    from events.validate import UnknownKindError, check_file, guess_kind, parse_kind  # noqa: PLC0415

    column_mapping = _load_mapping_or_exit(mapping)
    try:
        event_kind = guess_kind(path) if kind is None else parse_kind(kind)
        checked = check_file(path, event_kind, column_mapping, data_dir or get_settings().data_dir)
    except (UnknownKindError, UnsupportedFileError, ExtensionRecordError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for line in checked.summary(examples):
        typer.echo(line)
    _write_report_if_asked(checked.validation.problems, report)
    raise typer.Exit(0 if checked.validation.accepted else 1)


@app.command("import")
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
    from events.importer import import_files  # noqa: PLC0415
    from events.io import ExtensionRecordError  # noqa: PLC0415
    from events.schema import EventKind  # noqa: PLC0415
    from events.sources import UnsupportedFileError  # noqa: PLC0415

    given = {
        EventKind.ATTEMPTS: attempts,
        EventKind.OUTCOMES: outcomes,
        EventKind.FRAUD_REPORTS: fraud_reports,
    }
    files = {kind: path for kind, path in given.items() if path is not None}
    if not files:
        typer.echo("error: give at least one of --attempts, --outcomes, --fraud-reports", err=True)
        raise typer.Exit(2)
    column_mapping = _load_mapping_or_exit(mapping)
    try:
        result = import_files(files, column_mapping, data_dir or get_settings().data_dir, quarantine)
    except (UnsupportedFileError, ExtensionRecordError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for line in result.summary(examples):
        typer.echo(line)
    _write_report_if_asked(result.problems, report)
    raise typer.Exit(1 if result.refused else 0)


@app.command()
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
    # imported here so that `riskgate --help` stays fast (see the module docstring)
    from simulator import OutputExistsError, WorldConfig  # noqa: PLC0415
    from simulator import simulate as run_simulation  # noqa: PLC0415
    from simulator.config import ConfigFileError  # noqa: PLC0415

    settings = get_settings()
    try:
        world = WorldConfig.from_yaml(config) if config else WorldConfig()
        world = world.with_overrides(accounts=accounts, months=months, seed=seed)
        with _progress(context) as progress:
            summary = run_simulation(world, out or settings.data_dir, overwrite=force, progress=progress)
    except (OutputExistsError, ConfigFileError, ValidationError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(summary.model_dump_json(indent=2))


features_app = typer.Typer(help="Feature definitions and the batch feature table.", no_args_is_help=True)
app.add_typer(features_app, name="features")

FeatureSetOption = Annotated[
    str | None,
    typer.Option(
        "--feature-set",
        help="Feature set as 'module:ATTRIBUTE' (default: RISKGATE_FEATURE_SET, else features.iptv).",
    ),
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: RISKGATE_DATA_DIR, else data).")
]


def _chosen_feature_set(spec: str | None) -> ChosenFeatureSet:
    """The one choice of feature set of every command: ``--feature-set``, else the setting
    (``RISKGATE_FEATURE_SET``), else the IPTV set; an unusable spec is a usage error (exit code 2)."""
    from features.registry import DEFAULT_SPEC, FeatureSetSpecError  # noqa: PLC0415
    from training.data import ChosenFeatureSet  # noqa: PLC0415 (keep --help fast)

    try:
        return ChosenFeatureSet.named(spec or get_settings().feature_set or DEFAULT_SPEC)
    except FeatureSetSpecError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


def _feature_set(spec: str | None) -> FeatureSet:
    """The feature set of :func:`_chosen_feature_set`."""
    return _chosen_feature_set(spec).feature_set


def _settings_with(data_dir: Path | None) -> Settings:
    """The settings, with ``--data-dir`` in place of the setting's when given."""
    settings = get_settings()
    return settings if data_dir is None else settings.model_copy(update={"data_dir": data_dir})


@features_app.command("build")
def features_build(
    context: typer.Context, data_dir: DataDirOption = None, feature_set: FeatureSetOption = None
) -> None:
    """Build the point-in-time feature table of the events in the data directory (DATA_DIR/features/)."""
    from events.io import EventTableMissingError  # noqa: PLC0415
    from features.batch import FeatureInputError, build_data_dir  # noqa: PLC0415

    chosen = _feature_set(feature_set)
    try:
        with _progress(context) as progress:
            written = build_data_dir(data_dir or get_settings().data_dir, chosen, progress=progress)
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


@features_app.command("load-state")
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
    from events.io import EventTableMissingError  # noqa: PLC0415
    from features.batch import FeatureInputError  # noqa: PLC0415
    from features.bulk import BulkLoadError  # noqa: PLC0415
    from features.history import load_data_dir  # noqa: PLC0415
    from features.online import OnlineEngine  # noqa: PLC0415
    from serving.api.service import journal_dir, open_store  # noqa: PLC0415
    from serving.store.journal import JournalError, shared_lock  # noqa: PLC0415

    chosen = _feature_set(feature_set)
    settings = get_settings()
    moment = datetime(9999, 1, 1, tzinfo=UTC) if until is None else until.replace(tzinfo=until.tzinfo or UTC)
    try:  # a service writing behind holds the state directory alone: not while it runs
        lock = shared_lock(journal_dir(settings))
    except JournalError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    store = open_store(settings)
    try:
        with _progress(context) as progress:
            engine = OnlineEngine(store, chosen)
            loaded = load_data_dir(engine, data_dir or settings.data_dir, moment, progress=progress)
    except (EventTableMissingError, BulkLoadError, FeatureInputError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    finally:
        store.close()
        os.close(lock)
    typer.echo(
        f"loaded {loaded.events} events into the online store ({settings.online_store}), "
        f"feature set {chosen.name} ({chosen.hash})"
    )


# --- training: train, evaluate, promote, score (the work is in training.commands) -------------------------

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Training config YAML (default: training/config.yaml).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a config key, e.g. --set model.trials=10 --set baselines.fraud=none (repeatable; "
        "every key, its default and meaning: `riskgate config show`).",
    ),
]
TaskOption = Annotated[
    list[str] | None,
    typer.Option(
        "--task",
        help="fraud, failure and/or retry (the recovery planner's retry model); default: all three; "
        "repeatable.",
    ),
]
TestStartOption = Annotated[
    str | None,
    typer.Option(
        "--test-start",
        help="Test window start, exact (ISO date or time, UTC unless zoned); as --set split.test_start=.",
    ),
]
TestEndOption = Annotated[
    str | None,
    typer.Option(
        "--test-end",
        help="Test window end, exclusive and exact; same as --set split.test_end=. Default: "
        "test start + split.test_days, or the data's last mature instant.",
    ),
]


def _split_overrides(overrides: list[str] | None, test_start: str | None, test_end: str | None) -> list[str]:
    """``--set`` overrides, then ``--test-start`` / ``--test-end`` as their split keys (last: they win)."""
    dates = [
        f"split.{key}={value}" for key, value in (("test_start", test_start), ("test_end", test_end)) if value
    ]
    return [*(overrides or []), *dates]


def _echo_or_exit(work: Callable[[], str]) -> None:
    """Print what a training command returns; a training error is a clean message and exit code 1."""
    _echo_with_progress_or_exit(lambda _: work())


def _echo_with_progress_or_exit(
    work: Callable[[Progress], str], context: typer.Context | None = None
) -> None:
    """:func:`_echo_or_exit` of a long command: ``work`` reports to the progress bars, which end before the
    result is printed."""
    from registry.errors import FeatureContractError, RegistryError  # noqa: PLC0415
    from training.errors import TrainingError  # noqa: PLC0415

    try:
        with contextlib.nullcontext(NO_PROGRESS) if context is None else _progress(context) as progress:
            text = work(progress)
    except (TrainingError, FeatureContractError, RegistryError, FileNotFoundError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(text)


@app.command()
def train(  # noqa: PLR0917 (a typer command: one parameter per option)
    context: typer.Context,
    config: ConfigOption = None,
    overrides: SetOption = None,
    task: TaskOption = None,
    feature_set: FeatureSetOption = None,
    data_dir: DataDirOption = None,
    test_start: TestStartOption = None,
    test_end: TestEndOption = None,
) -> None:
    """Train, evaluate, log and register the models from the data directory (all three by default).

    The test window is the data's last labelled split.test_days, or
    --test-start/--test-end; validation and train are laid back from it
    (split.validation places validation). `riskgate config show` lists every --set key.
    """
    from training import commands  # noqa: PLC0415

    chosen = _chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = _settings_with(data_dir)
    _echo_with_progress_or_exit(
        lambda progress: commands.train(settings, chosen, config, sets, task or [], progress=progress),
        context,
    )


@app.command("evaluate-rolling")
def evaluate_rolling(  # noqa: PLR0917 (a typer command: one parameter per option)
    context: typer.Context,
    folds: Annotated[int, typer.Option("--folds", min=1, help="How many consecutive test windows.")] = 3,
    config: ConfigOption = None,
    overrides: SetOption = None,
    task: Annotated[
        list[str] | None, typer.Option("--task", help="fraud and/or failure (default: both); repeatable.")
    ] = None,
    feature_set: FeatureSetOption = None,
    data_dir: DataDirOption = None,
    test_start: TestStartOption = None,
    test_end: TestEndOption = None,
) -> None:
    """Train and evaluate a model on each of N consecutive test windows; report each fold, the mean and the
    spread (standard deviation). Registers nothing.

    The last fold's test window is the configured one (by length, or
    --test-start/--test-end); each earlier one ends where the next starts, as long.
    Features are built once. MLflow: a parent run rolling-<N>-folds with
    <task>_mean_test_* and <task>_std_test_* metrics, and a nested run per task and
    fold (<task>-fold-1 is the oldest) with its windows and its whole test report.
    """
    from training import commands  # noqa: PLC0415

    chosen = _chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = _settings_with(data_dir)
    _echo_with_progress_or_exit(
        lambda progress: commands.evaluate_rolling(
            settings, chosen, config, sets, task or [], folds, progress=progress
        ),
        context,
    )


@app.command()
def evaluate(  # noqa: PLR0917 (a typer command: one parameter per option)
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Model URI(s) (default: both @champion aliases)."),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the reports as JSON.")
    ] = None,
    feature_set: FeatureSetOption = None,
    data_dir: DataDirOption = None,
    test_start: TestStartOption = None,
    test_end: TestEndOption = None,
) -> None:
    """Evaluate registered models on the data's test window, next to the baselines and the truth."""
    from training import commands  # noqa: PLC0415

    chosen = _chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = _settings_with(data_dir)
    _echo_or_exit(lambda: commands.evaluate(settings, chosen, model or [], config, sets, output))


@app.command()
def promote(  # noqa: PLR0917 (a typer command: one parameter per option)
    config: ConfigOption = None,
    overrides: SetOption = None,
    task: TaskOption = None,
    rescore: Annotated[
        bool, typer.Option(help="Re-score on the current data when test windows differ (builds features).")
    ] = True,
    feature_set: FeatureSetOption = None,
    data_dir: DataDirOption = None,
    test_start: TestStartOption = None,
    test_end: TestEndOption = None,
) -> None:
    """Move @champion to the newest version of each model if it beats the champion on the same test window."""
    from training import commands  # noqa: PLC0415

    chosen = _chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = _settings_with(data_dir)
    _echo_or_exit(lambda: commands.promote(settings, chosen, config, sets, task or [], rescore))


@app.command()
def score(
    source: Annotated[
        Path, typer.Argument(help="Parquet file (or folder of parts) of attempt_id + features.")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="e.g. models:/riskgate-fraud@champion")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet file to write.")],
) -> None:
    """Batch-score attempts' features with a registered model version or alias.

    Writes one row per input row, in input order, with the columns:
    attempt_id;
    p_<task> (p_fraud or p_failure): the calibrated probability (isotonic, a step
      function: many attempts share a value, often exactly 0 or 1);
    score_raw: the booster's uncalibrated score (it ranks where p_<task> ties);
    fraud_level (fraud models): normal, elevated or highest, by the model's thresholds.
    The features must be the model's feature set's (`riskgate features build`).
    """
    from training import commands  # noqa: PLC0415

    _echo_or_exit(lambda: commands.score(get_settings(), model, source, output))


config_app = typer.Typer(
    help="The training configuration (training/config.yaml) and its keys.", no_args_is_help=True
)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: ConfigOption = None, overrides: SetOption = None) -> None:
    """Every training config key (what --set takes), its value (the defaults, or CONFIG with the --set
    overrides applied) and what it does."""
    from training import commands  # noqa: PLC0415
    from training.config import config_keys  # noqa: PLC0415

    def show() -> str:
        chosen = commands.training_config(config, overrides or [])
        values = _flat(chosen.model_dump(mode="json"))
        lines = []
        for key, default, doc in config_keys():
            value = json.dumps(values.get(key), default=str)
            lines.append(f"{key} = {value}" + ("" if value == default else f" (default {default})"))
            lines.append(f"    {doc}")
        return "\n".join(lines)

    _echo_or_exit(show)


def _flat(mapping: dict[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: RISKGATE_SERVE_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: RISKGATE_SERVE_PORT, 8000).")] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="State directory (default: RISKGATE_STATE_DIR); e.g. state/backtest to show a backtest."
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port and the SQLite state (WAL): 2 uses both cores of a "
            "2-core machine. Each loads the models; an admin reload reaches the process that answers it.",
        ),
    ] = 1,
    root_path: Annotated[
        str,
        typer.Option(
            help="The URL prefix a reverse proxy serves the API under (e.g. /risk), for links and the docs."
        ),
    ] = "",
) -> None:
    """Run the scoring service (uvicorn) until Ctrl-C or SIGTERM, draining in-flight requests."""
    import uvicorn  # noqa: PLC0415

    from serving.api.app import create_app  # noqa: PLC0415
    from serving.api.connections import LimitedHttpProtocol  # noqa: PLC0415
    from serving.errors import ConfigurationError  # noqa: PLC0415

    settings = get_settings()
    if state_dir is not None:
        settings = settings.model_copy(update={"state_dir": state_dir})
        os.environ["RISKGATE_STATE_DIR"] = str(state_dir)  # worker processes build their settings from it
    if workers > 1 and settings.write_behind:  # write-behind needs one process per state directory
        typer.echo(
            f"--workers {workers}: write-behind off, the processes share the state through SQLite", err=True
        )
        settings = settings.model_copy(update={"write_behind": False})
        os.environ["RISKGATE_WRITE_BEHIND"] = "false"
    try:
        application = create_app(settings, freeze_heap=True)  # validates the configuration first
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if workers > 1:
        application.state.service.close()  # each worker process builds its own service
    _exit_zero_after_a_graceful_stop()
    uvicorn.run(
        application if workers == 1 else "riskgate.cli:worker_app",
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host or settings.serve_host,
        port=port or settings.serve_port,
        access_log=False,  # paths can hold account ids; the service keeps its own metrics by route template
        log_config=None,  # keep the logging configured by the CLI (and by worker_app in worker processes)
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        loop="uvloop",
        http=LimitedHttpProtocol,  # httptools, with limits on the request head's size and time
        timeout_keep_alive=settings.keep_alive_seconds,
        server_header=False,  # name no server software to callers
        root_path=root_path,
    )


def _exit_zero_after_a_graceful_stop() -> None:
    """SIGTERM and Ctrl-C stop the service cleanly: uvicorn drains the requests in flight, then raises the
    signal again for the handler in force before it ran; this one lets the command end with status 0 (not
    143, which `make serve` reported as an error, nor a KeyboardInterrupt traceback)."""
    import signal  # noqa: PLC0415

    def stopped(signum: int, frame: object) -> None:
        del frame
        logging.getLogger(__name__).info("riskgate serve stopped by %s", signal.Signals(signum).name)

    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, stopped)


def worker_app() -> FastAPI:
    """The application in one worker process of ``riskgate serve --workers N`` (uvicorn calls this factory
    in each process it starts): logging configured, then the app built from the same settings."""
    from serving.api.app import create_app  # noqa: PLC0415

    settings = get_settings()
    configure_logging(settings)
    return create_app(settings, freeze_heap=True)


@app.command("api-key")
def api_key(
    name: Annotated[str, typer.Argument(help="Who holds the key, e.g. billing-eu.")],
    scope: Annotated[list[str], typer.Option(help="score and/or admin (repeat the option).")] = ["score"],  # noqa: B006
) -> None:
    """Create an API key: prints the key once, and the entry to add to RISKGATE_API_KEYS (its hash only)."""
    import json  # noqa: PLC0415

    from serving.api.security import Scope, new_key  # noqa: PLC0415

    unknown = sorted(set(scope) - {s.value for s in Scope})
    if unknown:
        typer.echo(f"error: unknown scope(s) {unknown}: use score and/or admin", err=True)
        raise typer.Exit(2)
    key, digest = new_key()
    typer.echo(f"key (shown once, give it to {name}): {key}")
    typer.echo(
        "RISKGATE_API_KEYS entry: " + json.dumps({"name": name, "sha256": digest, "scopes": sorted(scope)})
    )


def _recovery_failure_model(uri: str, feature_set: FeatureSet) -> ModelBundle:
    """The registered failure bundle at ``uri``, checked against the chosen feature set."""
    from registry.store import load_bundle, tracking_store  # noqa: PLC0415
    from simulator.recovery_eval import EvaluationError  # noqa: PLC0415

    with tracking_store(get_settings().tracking_uri) as client:
        bundle = load_bundle(client, uri)
    if bundle.task != "failure":
        raise EvaluationError(f"{uri} is a {bundle.task} model: the planner needs the failure model")
    bundle.check_features(feature_set.names, feature_set.hash)
    return bundle


def _recovery_model_uri(model: str) -> str | None:
    """The registry URI ``--model`` names: 'champion' is the retry model the service serves,
    'failure-champion' the LightGBM failure model; None for the evaluation's own models ('retry',
    'oracle')."""
    from registry.names import MODEL_NAMES, RETRY_MODEL_NAME  # noqa: PLC0415

    alias = get_settings().model_alias
    if model == "champion":
        return f"models:/{RETRY_MODEL_NAME}@{alias}"
    if model == "failure-champion":
        return f"models:/{MODEL_NAMES['failure']}@{alias}"
    return model if model.startswith("models:/") else None


def _registered_retry_model(uri: str | None) -> RetryModel | None:
    """The registered retry model at ``uri`` (None when ``uri`` names no riskgate-retry version)."""
    from registry.names import RETRY_MODEL_NAME  # noqa: PLC0415

    if uri is None or not uri.removeprefix("models:/").startswith(RETRY_MODEL_NAME):
        return None
    from registry.store import load_retry_model, tracking_store  # noqa: PLC0415

    with tracking_store(get_settings().tracking_uri) as client:
        return load_retry_model(client, uri)


def _test_start_or_exit(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        typer.echo(f"error: --test-start takes a date like 2025-12-01 (UTC), got {text!r}", err=True)
        raise typer.Exit(code=2) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@app.command("recovery-eval")
def recovery_eval(
    context: typer.Context,
    *,
    data_dir: Annotated[
        Path | None, typer.Option(help="A simulated world (default: the settings' data dir).")
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            help="The planner's model: 'champion' or a 'models:/riskgate-retry/<version>' URI (the "
            "registered retry model the service plans with; evaluated from where its training data ends), "
            "'failure-champion' or a 'models:/riskgate-failure/<version>' URI (riskgate's LightGBM failure "
            "model over online features replayed from the world), 'retry' (a retry model learned here from "
            "the retries observed before the test period), or 'oracle' (the simulator's truth: a ceiling, "
            "not a result)."
        ),
    ] = "champion",
    config: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Dunning policy YAML (see recovery.config)."),
    ] = None,
    fixed_days: Annotated[
        str, typer.Option(help="The fixed schedule: days after the first decline, comma-separated.")
    ] = "1,3,5,7",
    test_months: Annotated[
        int,
        typer.Option(
            min=1, help="The world's last months to evaluate on (models learned here, and the oracle)."
        ),
    ] = 3,
    test_start: Annotated[
        str | None,
        typer.Option(
            help="Evaluate on declines from this UTC date on (default: see --model and --test-months)."
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate on the first N declined renewals only.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the common random draws and the bootstrap.")] = 7,
    out: Annotated[Path | None, typer.Option(help="Also write the figures to this JSON file.")] = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """Compare the recovery planner with a fixed retry schedule on a world's declined renewals.

    Exit code: 0 done, 2 bad options or a world that cannot support the evaluation.
    """
    from events.io import EventTableMissingError  # noqa: PLC0415
    from recovery.config import RecoveryConfig, RecoveryConfigError  # noqa: PLC0415
    from recovery.learned import RetryModelFormatError  # noqa: PLC0415
    from registry.errors import FeatureContractError, RegistryError  # noqa: PLC0415
    from simulator.recovery_eval import EvaluationError, ModelChoice, evaluate  # noqa: PLC0415
    from training.errors import TrainingError  # noqa: PLC0415

    choices = ["champion", "failure-champion", ModelChoice.RETRY.value, ModelChoice.ORACLE.value]
    if model not in choices and not model.startswith("models:/"):
        typer.echo(f"error: --model must be one of {choices} or a models:/ URI, got {model!r}", err=True)
        raise typer.Exit(code=2)
    start = _test_start_or_exit(test_start)
    chosen = _feature_set(feature_set)
    try:
        days = tuple(float(day) for day in fixed_days.split(","))
    except ValueError:
        typer.echo(f"error: --fixed-days takes numbers of days like 1,3,5,7, got {fixed_days!r}", err=True)
        raise typer.Exit(code=2) from None
    try:
        policy = RecoveryConfig.from_yaml(config) if config else RecoveryConfig()
        uri = _recovery_model_uri(model)
        retry_model = _registered_retry_model(uri)
        scorer = None if uri is None or retry_model is not None else _recovery_failure_model(uri, chosen)
        choice = ModelChoice(model) if uri is None else ModelChoice.RISKGATE
        with _progress(context) as progress:
            result = evaluate(
                data_dir or get_settings().data_dir,
                policy.model_copy(update={"max_attempts": len(days)}),
                model=ModelChoice.REGISTERED_RETRY if retry_model is not None else choice,
                fixed_days=days,
                test_months=test_months,
                limit=limit,
                seed=seed,
                scorer=scorer,
                retry_model=retry_model,
                test_start=start,
                feature_set=chosen,
                progress=progress,
            )
    except (
        RecoveryConfigError,
        EvaluationError,
        EventTableMissingError,
        TrainingError,
        FeatureContractError,
        RegistryError,
        RetryModelFormatError,
    ) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    if uri is not None:
        result = result.model_copy(update={"model": f"riskgate {uri}"})
    report = result.model_dump_json(indent=2)
    if out is not None:
        out.write_text(report + "\n", encoding="utf-8")
    typer.echo(report)
    typer.echo(result.headline())


# --- trends: backtest and report (the work is in serving.readers.backtest and serving.readers.report)

BACKTEST_DIR = Path("state/backtest")


def _moment_or_exit(name: str, text: str | None) -> datetime | None:
    from serving.readers.trends import TrendQueryError, parse_moment  # noqa: PLC0415

    try:
        return parse_moment(name, text)
    except TrendQueryError as error:
        typer.echo(f"error: --{error}", err=True)
        raise typer.Exit(2) from None


@app.command()
def backtest(
    context: typer.Context,
    *,
    data_dir: Annotated[
        Path | None, typer.Option(help="Events to replay (default: the settings' data dir).")
    ] = None,
    state_dir: Annotated[
        Path, typer.Option(help="Where the backtest's online store and decision log go (never a live one's).")
    ] = BACKTEST_DIR,
    start: Annotated[
        str | None,
        typer.Option(help="Period start, ISO date or time, UTC (default: a month before the end)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Period end (exclusive; default: just after the data's last event).")
    ] = None,
    fraud_model: Annotated[
        str | None, typer.Option(help="models:/riskgate-fraud/N or @alias (default: the served alias).")
    ] = None,
    failure_model: Annotated[
        str | None, typer.Option(help="models:/riskgate-failure/N or @alias (default: the served alias).")
    ] = None,
    feature_set: FeatureSetOption = None,
) -> None:
    """Replay a period of historical attempts through the scoring engine, as if the service had been live.

    The history before the period fills the online store first; then every attempt is scored (features, both
    models, policy, decision log) and every outcome and fraud report recorded when it happened. Show the
    result with `riskgate serve --state-dir STATE_DIR` (dashboard) or `riskgate report --state-dir STATE_DIR`.
    Running it again with the same options resumes. Exit code: 0 done, 2 unusable options, data or models.
    """
    from events.io import EventTableMissingError  # noqa: PLC0415
    from registry.errors import FeatureContractError, RegistryError  # noqa: PLC0415
    from serving.readers.backtest import BacktestError, load_models, run_backtest  # noqa: PLC0415
    from training.errors import TrainingError  # noqa: PLC0415

    settings = get_settings()
    period = _moment_or_exit("start", start), _moment_or_exit("end", end)
    chosen = _feature_set(feature_set)
    try:
        models = load_models(settings.tracking_uri, chosen, fraud_model, failure_model, settings.model_alias)
        with _progress(context) as progress:
            summary = run_backtest(
                data_dir or settings.data_dir,
                state_dir,
                models,
                chosen,
                start=period[0],
                end=period[1],
                pseudonym_secret=settings.pseudonym_secret.get_secret_value(),
                progress=progress,
            )
    except (
        BacktestError,
        TrainingError,
        FeatureContractError,
        RegistryError,
        EventTableMissingError,
    ) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for line in summary.lines():
        typer.echo(line)


@app.command()
def report(
    *,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="The decision log's state directory: a service's or a backtest's (default: settings)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write (default: STATE_DIR/report.html).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Period start, ISO (default: end - 30 days).")] = None,
    end: Annotated[
        str | None, typer.Option(help="Period end, exclusive (default: after the last decision).")
    ] = None,
    bucket: Annotated[str, typer.Option(help="hour, day or week.")] = "day",
    segment: Annotated[
        str, typer.Option(help="Also chart by plan_tier, method_type, card_country, ...")
    ] = "none",
    drift: Annotated[
        bool,
        typer.Option(help="Drift table of the models that scored the period (loaded from the registry)."),
    ] = True,
) -> None:
    """Write a static HTML report of a period of a decision log: the dashboard's charts and the drift table.

    Exit code: 0 written, 2 no decision log there or bad options.
    """
    from serving.readers.report import ReportInput, registered_models, write_report  # noqa: PLC0415
    from serving.readers.trends import FALLBACK_FRAUD_MATURITY_DAYS, TrendQueryError  # noqa: PLC0415
    from serving.store.decisions import LogNotFoundError  # noqa: PLC0415

    settings = get_settings()
    chosen = state_dir or settings.state_dir
    log_path = chosen / "decisions.sqlite"
    period = _moment_or_exit("start", start), _moment_or_exit("end", end)
    try:
        models, note, maturity = (
            registered_models(settings.tracking_uri, log_path, *period)
            if drift
            else (None, "", FALLBACK_FRAUD_MATURITY_DAYS)
        )
        note = note if drift else "turned off (--no-drift)"
        spec = ReportInput(log_path, *period, bucket, segment, models, note, maturity)
        written = write_report(spec, out or chosen / "report.html")
    except (LogNotFoundError, TrendQueryError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report written to {written}")
