"""The ``recovery-eval`` command: the recovery planner against a fixed retry schedule on a simulated world
(:mod:`simulator.recovery_eval`), with the model ``--model`` names (resolved here: only the command line sees
both the registry's training side and the service's model names)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import InputError
from core.settings import get_settings
from riskgate.cli.options import FeatureSetOption, chosen_feature_set, progress_bars

if TYPE_CHECKING:
    from features.definitions import FeatureSet
    from recovery.learned import RetryModel
    from registry.bundle import ModelBundle


def register(app: typer.Typer) -> None:
    """Add this area's command to ``app``."""
    app.command("recovery-eval")(recovery_eval)


def _recovery_failure_model(uri: str, feature_set: FeatureSet) -> ModelBundle:
    """The registered failure bundle at ``uri``, checked against the chosen feature set."""
    from registry.store import load_bundle, tracking_store  # noqa: PLC0415
    from simulator.recovery_eval import EvaluationError  # noqa: PLC0415

    settings = get_settings()
    with tracking_store(settings.tracking_uri, settings.registry_uri) as client:
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

    settings = get_settings()
    with tracking_store(settings.tracking_uri, settings.registry_uri) as client:
        return load_retry_model(client, uri)


def _test_start(text: str | None) -> datetime | None:
    """``--test-start`` as a UTC moment (a time without offset is UTC)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--test-start takes a date like 2025-12-01 (UTC), got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _fixed_days(text: str) -> tuple[float, ...]:
    """``--fixed-days`` as days after the first decline."""
    try:
        return tuple(float(day) for day in text.split(","))
    except ValueError:
        raise InputError(f"--fixed-days takes numbers of days like 1,3,5,7, got {text!r}") from None


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
    from recovery.config import RecoveryConfig  # noqa: PLC0415 (keep --help fast)
    from simulator.recovery_eval import ModelChoice, evaluate  # noqa: PLC0415

    choices = ["champion", "failure-champion", ModelChoice.RETRY.value, ModelChoice.ORACLE.value]
    if model not in choices and not model.startswith("models:/"):
        raise InputError(f"--model must be one of {choices} or a models:/ URI, got {model!r}")
    start = _test_start(test_start)
    chosen = chosen_feature_set(feature_set).feature_set
    days = _fixed_days(fixed_days)
    policy = RecoveryConfig.from_yaml(config) if config else RecoveryConfig()
    uri = _recovery_model_uri(model)
    retry_model = _registered_retry_model(uri)
    scorer = None if uri is None or retry_model is not None else _recovery_failure_model(uri, chosen)
    choice = ModelChoice(model) if uri is None else ModelChoice.RISKGATE
    with progress_bars(context) as progress:
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
    if uri is not None:
        result = result.model_copy(update={"model": f"riskgate {uri}"})
    report = result.model_dump_json(indent=2)
    if out is not None:
        out.write_text(report + "\n", encoding="utf-8")
    typer.echo(report)
    typer.echo(result.headline())
