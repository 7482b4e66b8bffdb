"""The backtest: a small simulated world's last month replayed through the scoring engine."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from bench._models import synthetic_bundle
from events.io import read_events
from events.schema import EventKind
from features.iptv import FEATURE_SET
from serving.api.app import create_app
from serving.readers.backtest import MANIFEST, BacktestError, run_backtest
from serving.scoring.models import ModelPair, ServingModel
from serving.store.decisions import DecisionLog
from simulator import WorldConfig, simulate
from tests.serving.documented import DocumentedClient
from tests.serving.factories import SCORE, service_for

TINY = WorldConfig(accounts=250, months=2, seed=3, chunk_accounts=250)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("backtest-world") / "data"
    simulate(TINY, out)
    return out


@pytest.fixture(scope="session")
def models() -> ModelPair:
    return ModelPair(
        ServingModel.from_bundle(synthetic_bundle("fraud"), "riskgate-fraud", "3", "test"),
        ServingModel.from_bundle(synthetic_bundle("failure", seed=1), "riskgate-failure", "2", "test"),
    )


def _period_attempts(world: Path, start: pd.Timestamp, end: pd.Timestamp) -> int:
    times = pd.to_datetime(read_events(world, EventKind.ATTEMPTS)["occurred_at"], utc=True)
    return int(((times >= start) & (times < end)).sum())


def test_backtest_scores_every_attempt_of_the_last_month(
    tiny_world: Path, models: ModelPair, tmp_path: Path
) -> None:
    state = tmp_path / "backtest"
    summary = run_backtest(tiny_world, state, models, FEATURE_SET)
    start, end = pd.Timestamp(summary.start), pd.Timestamp(summary.end)
    assert end - start >= pd.Timedelta(days=28)
    expected = _period_attempts(tiny_world, start, end)
    assert expected > 50
    assert summary.attempts == expected
    assert sum(summary.actions.values()) == expected
    assert summary.history_events > summary.attempts  # the month before was loaded first
    assert summary.models == {"fraud": "riskgate-fraud/3", "failure": "riskgate-failure/2"}
    assert summary.outcomes > 0
    assert any("attempts/s" in line for line in summary.lines())
    log = DecisionLog(state / "decisions.sqlite")
    assert log.count() == expected
    log.close()
    db = sqlite3.connect(state / "decisions.sqlite")
    (with_history,) = db.execute(
        "SELECT count(*) FROM decisions WHERE json_extract(answer, '$.decision.fallback') = 0"
    ).fetchone()
    assert with_history == expected  # every decision had features and both models
    assert json.loads((state / MANIFEST).read_text())["models"]["fraud"] == "riskgate-fraud/3"
    # a service over the backtest's state directory (riskgate serve --state-dir) shows its trends
    service = service_for(tmp_path, state_dir=state)
    with DocumentedClient(create_app(service=service)) as client:
        params = {"start": summary.start, "end": summary.end, "bucket": "week", "segment": "kind"}
        response = client.get("/v1/trends", params=params, headers=SCORE)
    assert response.status_code == 200, response.text
    counts = {s["segment_value"]: sum(p["attempts"] for p in s["points"]) for s in response.json()["series"]}
    assert sum(counts.values()) == expected
    assert "renewal" in counts


def test_a_second_run_resumes_and_another_backtest_is_refused(
    tiny_world: Path, models: ModelPair, tmp_path: Path
) -> None:
    state = tmp_path / "backtest"
    first = run_backtest(tiny_world, state, models, FEATURE_SET)
    start, end = pd.Timestamp(first.start).to_pydatetime(), pd.Timestamp(first.end).to_pydatetime()
    last_week = end - timedelta(days=7)
    again = run_backtest(tiny_world, state, models, FEATURE_SET, start=start, end=end)
    assert again.replayed == again.attempts == first.attempts  # already decided: nothing scored twice
    with pytest.raises(BacktestError, match="holds another backtest"):
        run_backtest(tiny_world, state, models, FEATURE_SET, start=last_week)
    with pytest.raises(BacktestError, match="is not before end"):
        run_backtest(tiny_world, tmp_path / "other", models, FEATURE_SET, start=end, end=start)


def test_a_live_log_is_never_mixed_with_a_backtest(
    tiny_world: Path, models: ModelPair, tmp_path: Path
) -> None:
    live = tmp_path / "state"
    first = run_backtest(tiny_world, live, models, FEATURE_SET)
    assert first.attempts > 0
    (live / MANIFEST).unlink()  # as a live service's state directory: a log no backtest wrote
    with pytest.raises(BacktestError, match="no backtest wrote"):
        run_backtest(tiny_world, live, models, FEATURE_SET)
