"""The trend commands: ``backtest`` (history replayed through the scoring engine, over
:mod:`serving.readers.backtest`) and ``report`` (a decision log's period as HTML, over
:mod:`serving.readers.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings
from riskgate.cli.options import FeatureSetOption, chosen_feature_set, progress_bars

BACKTEST_DIR = Path("state/backtest")


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    app.command()(backtest)
    app.command()(report)


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
    from serving.readers.backtest import load_models, run_backtest  # noqa: PLC0415 (keep --help fast)
    from serving.readers.trends import parse_moment  # noqa: PLC0415

    settings = get_settings()
    period = parse_moment("--start", start), parse_moment("--end", end)
    chosen = chosen_feature_set(feature_set).feature_set
    models = load_models(
        settings.tracking_uri,
        chosen,
        fraud_model,
        failure_model,
        settings.model_alias,
        registry_uri=settings.registry_uri,
    )
    with progress_bars(context) as progress:
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
    for line in summary.lines():
        typer.echo(line)


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
    from serving.readers.trends import FALLBACK_FRAUD_MATURITY_DAYS, parse_moment  # noqa: PLC0415
    from serving.store.sources import decision_source  # noqa: PLC0415

    settings = get_settings()
    chosen = state_dir or settings.state_dir
    log = decision_source(settings, state_dir)
    period = parse_moment("--start", start), parse_moment("--end", end)
    models, note, maturity = (
        registered_models(settings.tracking_uri, log, *period, registry_uri=settings.registry_uri)
        if drift
        else (None, "", FALLBACK_FRAUD_MATURITY_DAYS)
    )
    note = note if drift else "turned off (--no-drift)"
    spec = ReportInput(log, *period, bucket, segment, models, note, maturity)
    written = write_report(spec, out or chosen / "report.html")
    typer.echo(f"report written to {written}")
