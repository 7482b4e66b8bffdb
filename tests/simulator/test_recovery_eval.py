"""The evaluation by simulation: the planner beats the fixed schedule on a small world, with common random
numbers, honest test periods and the command as a user types it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from core.settings import get_settings
from recovery.config import RecoveryConfig
from recovery.learned import RetryModel, observed_attempts, retry_history
from registry.store import load_retry_model, tracking_store
from riskgate.cli import app
from simulator.recovery_eval import (
    Evaluation,
    EvaluationError,
    ModelChoice,
    OracleModel,
    default_test_start,
    evaluate,
    fixed_schedule,
    load_population,
    simulate_policy,
)
from simulator.replay import load_world
from training.config import load_config
from training.retry import promote_retry_model, train_retry_model

runner = CliRunner()


@pytest.fixture(scope="module")
def evaluation(recovery_world: Path) -> Evaluation:
    return evaluate(recovery_world, RecoveryConfig(), test_months=2)


def test_the_planner_recovers_more_revenue_with_no_more_retries(evaluation: Evaluation) -> None:
    assert evaluation.invoices > 100
    assert evaluation.planner.recovered_revenue_eur > evaluation.fixed.recovered_revenue_eur
    assert evaluation.planner.retries <= evaluation.fixed.retries
    assert evaluation.revenue_uplift == pytest.approx(
        evaluation.planner.recovered_revenue_eur / evaluation.fixed.recovered_revenue_eur - 1, abs=1e-4
    )
    low, high = evaluation.revenue_uplift_ci95
    assert low < evaluation.revenue_uplift < high
    assert "planner vs fixed" in evaluation.headline()


def test_the_fixed_schedule_retries_at_its_days_and_stops_at_hard_declines(recovery_world: Path) -> None:
    config = RecoveryConfig()
    world = load_world(recovery_world)
    frame = observed_attempts(recovery_world)
    population = load_population(
        recovery_world, frame, world, default_test_start(recovery_world, world, 2), config
    )
    draws = np.random.default_rng(1).random((len(population.cases), 4, 3))
    first = simulate_policy(population, fixed_schedule((1.0, 3.0, 5.0, 7.0)), 4, draws)
    again = simulate_policy(population, fixed_schedule((1.0, 3.0, 5.0, 7.0)), 4, draws)
    pd.testing.assert_frame_equal(first, again)  # common random numbers: same draws, same outcomes
    hard = population.cases["decline_code"].isin(["expired_card", "stolen_card", "do_not_try_again"])
    assert (first.loc[hard.to_numpy(), "retries"] == 0).all()
    assert first["retries"].max() <= 4
    recovered = first[first["recovered"]]
    assert set(np.round(recovered["hours_to_recovery"] / 24.0, 6)) <= {1.0, 3.0, 5.0, 7.0}


def test_the_model_learns_only_from_before_the_test_period(recovery_world: Path) -> None:
    world = load_world(recovery_world)
    start = default_test_start(recovery_world, world, 2)
    retries, failed = retry_history(observed_attempts(recovery_world), start)
    assert (retries["occurred_at"] < start).all()
    assert (retries["last_declined_at"] < retries["occurred_at"]).all()
    assert 0 < failed.mean() < 1


def test_the_oracle_reproduces_the_simulated_failure_probability(recovery_world: Path) -> None:
    config = RecoveryConfig()
    world = load_world(recovery_world)
    frame = observed_attempts(recovery_world)
    population = load_population(
        recovery_world, frame, world, default_test_start(recovery_world, world, 2), config
    )
    truth = pd.read_parquet(recovery_world / "truth").set_index("attempt_id")["p_fail"]
    cases = population.cases.head(20)
    candidates = cases.assign(last_decline_code="insufficient_funds", first_declined_at=cases["occurred_at"])
    candidates["last_declined_at"] = pd.NaT  # no prior decline: the code is then ignored, as in the truth
    p = OracleModel(population)(candidates)
    np.testing.assert_allclose(p, truth.loc[cases["attempt_id"]].to_numpy(), rtol=1e-6)


def test_a_test_period_as_long_as_the_world_is_refused(recovery_world: Path) -> None:
    with pytest.raises(EvaluationError, match="leaves no months"):
        evaluate(recovery_world, RecoveryConfig(), test_months=6)
    with pytest.raises(EvaluationError, match="same maximum"):
        evaluate(recovery_world, RecoveryConfig(max_attempts=3))


def test_the_command_as_a_user_types_it(recovery_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    args = ["recovery-eval", "--data-dir", str(recovery_world), "--test-months", "2", "--limit", "15"]
    result = runner.invoke(app, [*args, "--model", "oracle", "--fixed-days", "1,4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["invoices"] == 15
    assert figures["max_attempts"] == 2
    assert figures["model"] == ModelChoice.ORACLE.value
    assert "planner vs fixed [1.0, 4.0]" in result.output


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--model", "crystal-ball"], "crystal-ball"),
        (["--fixed-days", "1,x"], "1,3,5,7"),
        (["--test-months", "6", "--model", "retry"], "leaves no months"),
        (["--test-start", "first of May"], "2025-12-01"),
    ],
)
def test_bad_options_exit_2_with_the_reason(recovery_world: Path, option: list[str], message: str) -> None:
    """Bad options and a world too short for the test period: exit code 2 and the reason."""
    result = runner.invoke(app, ["recovery-eval", "--data-dir", str(recovery_world), *option])
    assert result.exit_code == 2
    assert message in result.output


# -- the registered retry model (what the service serves) ----------------------------------------------------

#: The failure split on the six-month world, with a test window long enough to evaluate the planner on.
REGISTERED_SPLIT = {"split.test_days": 56, "split.validation_days": 28, "retry.test_days": 56}


@pytest.fixture(scope="module")
def registered(recovery_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tracking store holding riskgate-retry@champion, trained by `riskgate train` on the small world."""
    mlruns = tmp_path_factory.mktemp("recovery-mlruns")
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    config = load_config(overrides=REGISTERED_SPLIT)
    train_retry_model(recovery_world, config, tracking_uri=uri, artifact_root=mlruns / "artifacts")
    assert promote_retry_model(config, tracking_uri=uri, data_dir=recovery_world).promoted
    return mlruns


def champion(mlruns: Path) -> RetryModel:
    with tracking_store(f"sqlite:///{mlruns / 'mlflow.db'}") as client:
        return load_retry_model(client, "models:/riskgate-retry@champion")


def test_the_served_retry_model_beats_the_fixed_schedule_after_its_training_data(
    recovery_world: Path, registered: Path
) -> None:
    model = champion(registered)
    result = evaluate(recovery_world, RecoveryConfig(), model=ModelChoice.REGISTERED_RETRY, retry_model=model)
    trained_until = pd.Timestamp(model.info_["trained_until"])
    assert result.model_trained_until == trained_until.isoformat()
    assert result.test_start == f"{trained_until:%Y-%m-%d %H:%M}"
    assert result.invoices > 50
    assert result.planner.recovered_revenue_eur > result.fixed.recovered_revenue_eur
    assert result.planner.retries <= result.fixed.retries


def test_a_model_that_saw_the_evaluation_period_is_refused(recovery_world: Path, registered: Path) -> None:
    model = champion(registered)
    earlier = pd.Timestamp(model.info_["trained_until"]).to_pydatetime() - timedelta(days=7)
    with pytest.raises(EvaluationError, match="overlaps the evaluation period"):
        evaluate(
            recovery_world,
            RecoveryConfig(),
            model=ModelChoice.REGISTERED_RETRY,
            retry_model=model,
            test_start=earlier,
        )
    model.info_ = {}
    with pytest.raises(EvaluationError, match="does not record where its training data ends"):
        evaluate(recovery_world, RecoveryConfig(), model=ModelChoice.REGISTERED_RETRY, retry_model=model)
    with pytest.raises(EvaluationError, match="needs the retry model"):
        evaluate(recovery_world, RecoveryConfig(), model=ModelChoice.REGISTERED_RETRY)


def test_the_champion_command_refuses_an_overlapping_period(
    recovery_world: Path, registered: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RISKGATE_MLRUNS_DIR", str(registered))
    get_settings.cache_clear()
    try:
        args = ["recovery-eval", "--data-dir", str(recovery_world), "--model", "champion"]
        refused = runner.invoke(app, [*args, "--test-start", "2025-04-01"])
        out = tmp_path / "eval.json"
        done = runner.invoke(app, [*args, "--limit", "10", "--out", str(out)])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 2
    assert "overlaps the evaluation period" in refused.output
    assert done.exit_code == 0, done.output
    figures = json.loads(out.read_text())
    assert figures["model"] == "riskgate models:/riskgate-retry@champion"
    assert figures["invoices"] == 10
    assert figures["model_trained_until"] is not None
