"""The training commands as a user types them: train, promote, evaluate, score."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from core.settings import get_settings
from features.batch import build_data_dir
from features.registry import load_feature_set
from riskgate.cli import app
from serving.store.postgres.notices import RELOAD
from tests.training.conftest import SMALL_WORLD_OVERRIDES

SETS = [arg for key, value in SMALL_WORLD_OVERRIDES.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture
def project(small_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings pointing at the small world and a fresh tracking store."""
    monkeypatch.setenv("RISKGATE_DATA_DIR", str(small_world))
    monkeypatch.setenv("RISKGATE_MLRUNS_DIR", str(tmp_path / "mlruns"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_train_promote_evaluate_score(
    project: Path, small_world: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    trained = runner.invoke(app, ["train", *SETS])
    assert trained.exit_code == 0, trained.output
    assert "riskgate-fraud v1" in trained.output
    assert "riskgate-failure v1" in trained.output
    assert "riskgate-retry v1" in trained.output  # the recovery planner's retry model, after the two
    assert "| failure_model |" in trained.output  # compared with the failure model trained in the same run
    assert "| roc_auc |" in trained.output

    promoted = runner.invoke(app, ["promote", *SETS])
    assert promoted.exit_code == 0, promoted.output
    assert promoted.output.count("there is no champion yet") == 3

    again = runner.invoke(app, ["promote", "--no-rescore", *SETS])
    assert again.output.count("already the champion") == 3
    monkeypatch.setenv("RISKGATE_DATABASE_URL", postgres_url)  # a fleet: its instances are told to reload
    get_settings.cache_clear()
    with psycopg.connect(postgres_url, autocommit=True) as listening:
        listening.execute(f"LISTEN {RELOAD}")
        retry_only = runner.invoke(app, ["promote", "--task", "retry", *SETS])
        heard = [(n.channel, n.payload) for n in listening.notifies(timeout=5, stop_after=1)]
    assert retry_only.output.count("already the champion") == 1
    assert "riskgate-retry" in retry_only.output
    assert "told the instances sharing postgresql://riskgate@" in retry_only.output
    assert heard == [(RELOAD, "riskgate promote")]

    report_path = project / "report.json"
    evaluated = runner.invoke(app, ["evaluate", *SETS, "-o", str(report_path)])
    assert evaluated.exit_code == 0, evaluated.output
    reports = json.loads(report_path.read_text())
    assert set(reports) == {"models:/riskgate-fraud@champion", "models:/riskgate-failure@champion"}

    build_data_dir(small_world, load_feature_set(None))
    output = project / "scores.parquet"
    scored = runner.invoke(
        app,
        [
            "score",
            str(small_world / "features"),
            "--model",
            "models:/riskgate-failure@champion",
            "-o",
            str(output),
        ],
    )
    assert scored.exit_code == 0, scored.output
    scores = pd.read_parquet(output)
    assert list(scores.columns) == ["attempt_id", "p_failure", "score_raw"]
    assert scores["p_failure"].between(0, 1).all()
    # the raw score ranks where the calibrated probability (a step function of it) ties attempts
    by_raw = scores.sort_values("score_raw")
    assert by_raw["p_failure"].is_monotonic_increasing
    assert scores["score_raw"].nunique() > scores["p_failure"].nunique()


def test_errors_are_messages_not_tracebacks(project: Path) -> None:
    runner = CliRunner()
    bad_key = runner.invoke(app, ["train", "--set", "model.trails=3"])
    assert bad_key.exit_code == 1
    assert "trails" in bad_key.output
    missing = runner.invoke(
        app,
        [
            "score",
            str(project / "nothing.parquet"),
            "-m",
            "models:/riskgate-fraud@champion",
            "-o",
            "x.parquet",
        ],
    )
    assert missing.exit_code == 1
    assert "error:" in missing.output
