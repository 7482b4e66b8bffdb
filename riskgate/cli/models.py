"""The model commands: ``train``, ``evaluate-rolling``, ``evaluate``, ``promote``, ``score`` and ``config
show``; the work, and the text they print, is in :mod:`training.pipeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.settings import Settings, get_settings
from riskgate.cli.options import (
    DataDirOption,
    FeatureSetOption,
    chosen_feature_set,
    progress_bars,
    settings_with,
)

config_app = typer.Typer(
    help="The training configuration (training/config.yaml) and its keys.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app`` (``config show`` under ``config``)."""
    app.command()(train)
    app.command("evaluate-rolling")(evaluate_rolling)
    app.command()(evaluate)
    app.command()(promote)
    app.command()(score)
    app.add_typer(config_app, name="config")


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
    from training import pipeline  # noqa: PLC0415 (keep --help fast)

    chosen = chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = settings_with(data_dir)
    with progress_bars(context) as progress:
        text = pipeline.train(settings, chosen, config, sets, task or [], progress=progress)
    typer.echo(text)


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
    from training import pipeline  # noqa: PLC0415 (keep --help fast)

    chosen = chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = settings_with(data_dir)
    with progress_bars(context) as progress:
        text = pipeline.evaluate_rolling(settings, chosen, config, sets, task or [], folds, progress=progress)
    typer.echo(text)


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
    from training import pipeline  # noqa: PLC0415 (keep --help fast)

    chosen = chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = settings_with(data_dir)
    typer.echo(pipeline.evaluate(settings, chosen, model or [], config, sets, output))


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
    from training import pipeline  # noqa: PLC0415 (keep --help fast)

    chosen = chosen_feature_set(feature_set)
    sets = _split_overrides(overrides, test_start, test_end)
    settings = settings_with(data_dir)
    typer.echo(pipeline.promote(settings, chosen, config, sets, task or [], rescore))
    _tell_the_fleet(settings)


def _tell_the_fleet(settings: Settings) -> None:
    """With PostgreSQL (a fleet), tell every running instance to reload its models now rather than at its
    next periodic check; a notice that cannot be sent is said, and the periodic check follows."""
    if settings.database_url is None:
        return
    from serving.store.postgres.database import redact  # noqa: PLC0415 (keep --help fast)
    from serving.store.postgres.notices import RELOAD, notify_url  # noqa: PLC0415

    url = settings.database_url.get_secret_value()
    try:
        notify_url(url, RELOAD, "riskgate promote")
    except Exception as error:  # the promotion stands; the instances' periodic checks follow
        typer.echo(f"warning: the instances could not be told to reload ({redact(url)}: {error})", err=True)
        return
    typer.echo(f"told the instances sharing {redact(url)} to reload")


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
    from training import pipeline  # noqa: PLC0415 (keep --help fast)

    typer.echo(pipeline.score(get_settings(), model, source, output))


@config_app.command("show")
def config_show(config: ConfigOption = None, overrides: SetOption = None) -> None:
    """Every training config key (what --set takes), its value (the defaults, or CONFIG with the --set
    overrides applied) and what it does."""
    from training import pipeline  # noqa: PLC0415 (keep --help fast)

    typer.echo(pipeline.config_show(config, overrides or []))
