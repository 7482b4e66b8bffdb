"""The evaluation by simulation: the planner beats the fixed schedule on a small world, with common random
numbers, honest test periods and the command as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recovery.config import RecoveryConfig
from recovery.evaluate import (
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
from recovery.learned import observed_attempts, retry_history
from riskgate.cli import app
from simulator.replay import load_world

runner = CliRunner()


@pytest.fixture(scope="module")
def evaluation(small_world: Path) -> Evaluation:
    return evaluate(small_world, RecoveryConfig(), test_months=2)


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


def test_the_fixed_schedule_retries_at_its_days_and_stops_at_hard_declines(small_world: Path) -> None:
    config = RecoveryConfig()
    world = load_world(small_world)
    frame = observed_attempts(small_world)
    population = load_population(small_world, frame, world, default_test_start(small_world, world, 2), config)
    draws = np.random.default_rng(1).random((len(population.cases), 4, 3))
    first = simulate_policy(population, fixed_schedule((1.0, 3.0, 5.0, 7.0)), 4, draws)
    again = simulate_policy(population, fixed_schedule((1.0, 3.0, 5.0, 7.0)), 4, draws)
    pd.testing.assert_frame_equal(first, again)  # common random numbers: same draws, same outcomes
    hard = population.cases["decline_code"].isin(["expired_card", "stolen_card", "do_not_try_again"])
    assert (first.loc[hard.to_numpy(), "retries"] == 0).all()
    assert first["retries"].max() <= 4
    recovered = first[first["recovered"]]
    assert set(np.round(recovered["hours_to_recovery"] / 24.0, 6)) <= {1.0, 3.0, 5.0, 7.0}


def test_the_model_learns_only_from_before_the_test_period(small_world: Path) -> None:
    world = load_world(small_world)
    start = default_test_start(small_world, world, 2)
    retries, failed = retry_history(observed_attempts(small_world), start)
    assert (retries["occurred_at"] < start).all()
    assert (retries["last_declined_at"] < retries["occurred_at"]).all()
    assert 0 < failed.mean() < 1


def test_the_oracle_reproduces_the_simulated_failure_probability(small_world: Path) -> None:
    config = RecoveryConfig()
    world = load_world(small_world)
    frame = observed_attempts(small_world)
    population = load_population(small_world, frame, world, default_test_start(small_world, world, 2), config)
    truth = pd.read_parquet(small_world / "truth").set_index("attempt_id")["p_fail"]
    cases = population.cases.head(20)
    candidates = cases.assign(last_decline_code="insufficient_funds", first_declined_at=cases["occurred_at"])
    candidates["last_declined_at"] = pd.NaT  # no prior decline: the code is then ignored, as in the truth
    p = OracleModel(population)(candidates)
    np.testing.assert_allclose(p, truth.loc[cases["attempt_id"]].to_numpy(), rtol=1e-6)


def test_a_test_period_as_long_as_the_world_is_refused(small_world: Path) -> None:
    with pytest.raises(EvaluationError, match="leaves no months"):
        evaluate(small_world, RecoveryConfig(), test_months=6)
    with pytest.raises(EvaluationError, match="same maximum"):
        evaluate(small_world, RecoveryConfig(max_attempts=3))


def test_the_command_as_a_user_types_it(small_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    args = ["recovery-eval", "--data-dir", str(small_world), "--test-months", "2", "--limit", "15"]
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
        (["--test-months", "6"], "leaves no months"),
    ],
)
def test_bad_options_exit_2_with_the_reason(small_world: Path, option: list[str], message: str) -> None:
    """Bad options and a world too short for the test period: exit code 2 and the reason."""
    result = runner.invoke(app, ["recovery-eval", "--data-dir", str(small_world), *option])
    assert result.exit_code == 2
    assert message in result.output
