"""riskgate's failure bundle in the recovery evaluation: online features replayed from the world, forward."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bench._models import synthetic_bundle
from core.settings import get_settings
from events.io import read_events
from events.schema import EventKind
from features.history import event_stream
from features.iptv import FEATURE_SET
from recovery.config import RecoveryConfig
from recovery.models import FloatArray
from recovery.planner import candidate_frame
from recovery.replay import ReplayedFailureModel
from recovery.rules import decline_code
from riskgate.cli import app
from simulator.recovery_eval import EvaluationError, ModelChoice, evaluate


class _Recording:
    """A scorer that remembers the rows it scored (and answers a constant)."""

    def __init__(self) -> None:
        self.rows: list[FloatArray] = []

    def predict_proba(self, x: FloatArray) -> FloatArray:
        self.rows.append(x)
        return np.full(len(x), 0.4)


def test_a_case_sees_the_history_up_to_its_decline_and_nothing_after(recovery_world: Path) -> None:
    attempts = read_events(recovery_world, EventKind.ATTEMPTS)
    outcomes = read_events(recovery_world, EventKind.OUTCOMES)
    declined = attempts.merge(
        outcomes[outcomes["status"] == "declined"], on="attempt_id", suffixes=("", "_o")
    )
    case = declined.sort_values("occurred_at").iloc[len(declined) // 2]
    at = pd.Timestamp(case["occurred_at_o"]).to_pydatetime()
    scorer = _Recording()
    model = ReplayedFailureModel(recovery_world, FEATURE_SET, scorer)
    attempt = {str(k): v for k, v in case.drop(labels=[c for c in case.index if c.endswith("_o")]).items()}
    code = decline_code(str(case["decline_code"]))
    frame = candidate_frame(
        attempt,
        [at + timedelta(days=1), at + timedelta(days=2)],
        code=code,
        last_declined=at,
        first_declined_at=at,
    )
    p = model(frame)
    assert p.tolist() == [0.4, 0.4]
    times = np.array([t for t, *_ in event_stream(recovery_world)])
    seen = int((times <= pd.Timestamp(at).as_unit("ns").value).sum())
    assert model.replayed == seen  # the history up to the decline, not after
    since_decline = FEATURE_SET.names.index("card_outcomes_declined_since_last_hours")
    hours = np.sort(scorer.rows[0][:, since_decline])  # each distinct candidate scored once, in any order
    np.testing.assert_allclose(hours, [24.0, 48.0], atol=0.01)
    model(frame)
    assert model.replayed == seen  # the same case again: no further replay


def test_the_evaluation_plans_with_a_failure_bundle(recovery_world: Path) -> None:
    bundle = synthetic_bundle("failure", seed=3)
    result = evaluate(
        recovery_world,
        RecoveryConfig(grid_hours=12.0, attempt_cost=0.0),  # any chance of success is worth a retry
        model=ModelChoice.RISKGATE,
        test_months=2,
        limit=6,
        scorer=bundle,
    )
    assert result.model == "riskgate"
    assert result.invoices == 6
    assert result.fixed.retries > 0
    assert result.planner.retries == 0  # this synthetic bundle forecasts every retry to fail: none pays
    with pytest.raises(EvaluationError, match="needs the failure bundle"):
        evaluate(recovery_world, RecoveryConfig(), model=ModelChoice.RISKGATE, test_months=2, limit=2)


@pytest.fixture
def empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RISKGATE_MLRUNS_DIR", str(tmp_path / "mlruns"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_champion_without_a_registered_model_exits_2_with_what_to_do(
    recovery_world: Path, empty_registry: Path
) -> None:
    args = ["recovery-eval", "--data-dir", str(recovery_world), "--test-months", "2"]
    result = CliRunner().invoke(app, [*args, "--model", "failure-champion"])
    assert result.exit_code == 2, result.output
    assert "models:/riskgate-failure@champion" in result.output
    result = CliRunner().invoke(app, [*args, "--model", "champion"])  # the retry model the service serves
    assert result.exit_code == 2, result.output
    assert "models:/riskgate-retry@champion" in result.output
    assert "make train" in result.output
