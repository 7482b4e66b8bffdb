"""Progress bars of the long commands: the stages library code reports, and where the CLI draws them."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from bench._models import synthetic_bundle
from core.progress import Prefixed
from core.settings import get_settings
from events.io import to_arrow, write_part
from events.schema import EventKind
from features.batch import build_data_dir, read_features
from features.iptv import FEATURE_SET
from riskgate.cli import app, options
from riskgate.progress import RichProgress
from serving.readers.backtest import run_backtest
from serving.scoring.models import ModelPair, ServingModel
from simulator import WorldConfig, simulate
from tests.features.factory import random_history
from tests.training.factories import CONTRACT, make_world
from training.baselines import IPTV_BASELINES
from training.config import load_config
from training.data import Inputs
from training.dataset import assemble
from training.pipeline import train_models

STAGES_IN_MEMORY = ["read events", "build features", "write features"]


class Recorder:
    """A progress that remembers each stage, its total and the units reported for it."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None]] = []
        self.done: list[int] = []

    def stage(self, name: str, total: int | None = None) -> None:
        self.stages.append((name, total))
        self.done.append(0)

    def advance(self, n: int = 1) -> None:
        self.done[-1] += n

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.stages]


@pytest.fixture(autouse=True)
def fresh_settings() -> None:
    get_settings.cache_clear()


@pytest.fixture
def events(tmp_path: Path) -> Path:
    history = random_history(60, 2)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path, kind.value, 0, to_arrow(kind, frame))
    return tmp_path


def test_features_build_reports_its_steps_in_memory(events: Path) -> None:
    recorder = Recorder()
    build_data_dir(events, FEATURE_SET, progress=recorder)
    assert recorder.names == STAGES_IN_MEMORY


def test_a_bounded_features_build_counts_buckets_and_partitions_and_builds_the_same_table(
    events: Path,
) -> None:
    build_data_dir(events, FEATURE_SET)
    whole = read_features(events).sort_values("attempt_id", ignore_index=True)
    recorder = Recorder()
    build_data_dir(events, FEATURE_SET, partition_attempts=20, progress=recorder)
    entities = len(FEATURE_SET.entities)
    assert recorder.stages == [
        ("bucket events", None),
        ("partition buckets by entity", 3),
        ("build features per partition", entities * 3),
        ("write features", None),
    ]
    assert recorder.done == [0, 3, entities * 3, 0]
    pd.testing.assert_frame_equal(read_features(events).sort_values("attempt_id", ignore_index=True), whole)


def test_train_reports_each_models_steps_and_search_trials(tmp_path: Path) -> None:
    world = make_world(rows=3000)
    frame = assemble(
        world.attempts, world.outcomes, world.reports, world.features, world.truth, baselines=IPTV_BASELINES
    )
    config = load_config(overrides={"model.trials": 3, "model.max_rounds": 20, "model.num_threads": 1})
    recorder = Recorder()
    train_models(
        Inputs(frame, CONTRACT),
        config,
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=tmp_path / "artifacts",
        progress=recorder,
    )
    steps = ["windows", "bin the training data", "search trials", "calibrate, set thresholds and evaluate"]
    steps += ["log and register"]
    assert recorder.names == [f"{task}: {step}" for task in ("fraud", "failure") for step in steps]
    trials = [k for k, name in enumerate(recorder.names) if name.endswith("search trials")]
    assert [recorder.stages[k][1] for k in trials] == [3, 3]
    assert [recorder.done[k] for k in trials] == [3, 3]


def test_simulate_counts_its_blocks(tmp_path: Path) -> None:
    recorder = Recorder()
    simulate(WorldConfig(accounts=300, months=2, seed=3, chunk_accounts=100), tmp_path, progress=recorder)
    assert recorder.stages == [("prepare the world", None), ("simulate blocks of subscribers", 3)]
    assert recorder.done == [0, 3]


def test_backtest_counts_the_periods_attempts(tmp_path: Path) -> None:
    simulate(WorldConfig(accounts=300, months=2, seed=3), tmp_path / "data")
    models = ModelPair(
        ServingModel.from_bundle(synthetic_bundle("fraud"), "riskgate-fraud", "3", "test"),
        ServingModel.from_bundle(synthetic_bundle("failure", seed=1), "riskgate-failure", "2", "test"),
    )
    recorder = Recorder()
    summary = run_backtest(tmp_path / "data", tmp_path / "state", models, FEATURE_SET, progress=recorder)
    replay = ("replay the period's attempts", summary.attempts)
    assert recorder.stages == [("read events", None), ("load the history before the period", None), replay]
    assert summary.attempts > 0


def _terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Make the CLI draw its bars on a terminal console writing to the returned buffer."""
    screen = io.StringIO()
    monkeypatch.setattr(
        options, "progress_console", lambda: Console(file=screen, force_terminal=True, width=120)
    )
    return screen


def test_without_a_terminal_the_cli_draws_no_bar(events: Path) -> None:
    result = CliRunner().invoke(app, ["features", "build", "--data-dir", str(events)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert not any(stage in result.output for stage in STAGES_IN_MEMORY)
    assert result.stdout.startswith(f"feature set {FEATURE_SET.name}")


def test_on_a_terminal_the_bars_name_the_stages_and_stdout_is_unchanged(
    events: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = CliRunner().invoke(app, ["features", "build", "--data-dir", str(events)])
    screen = _terminal(monkeypatch)
    drawn = CliRunner().invoke(app, ["features", "build", "--data-dir", str(events)])
    assert drawn.exit_code == 0, drawn.output
    assert all(stage in screen.getvalue() for stage in STAGES_IN_MEMORY)
    assert drawn.stdout == plain.stdout


def test_load_state_shows_its_stages_on_a_terminal(events: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(events / "state"))
    screen = _terminal(monkeypatch)
    result = CliRunner().invoke(app, ["features", "load-state", "--data-dir", str(events)])
    assert result.exit_code == 0, result.output
    for stage in ("read events", "order events", "load into the online store"):
        assert stage in screen.getvalue()
    assert result.stdout.startswith("loaded ")


def test_quiet_draws_no_bar_even_on_a_terminal(events: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _terminal(monkeypatch)
    result = CliRunner().invoke(app, ["--quiet", "features", "build", "--data-dir", str(events)])
    assert result.exit_code == 0, result.output
    assert screen.getvalue() == ""


def test_rich_bars_complete_each_stage_when_the_next_starts() -> None:
    screen = io.StringIO()
    with RichProgress(Console(file=screen, force_terminal=True, width=120)) as bars:
        steps = Prefixed(bars, "fraud: ")
        steps.stage("search trials", 4)
        steps.advance()
        steps.stage("log and register")
    text = screen.getvalue()
    assert "fraud: search trials" in text
    assert "4/4" in text
    assert "fraud: log and register" in text


def test_log_lines_print_above_the_bars_then_go_back_to_stderr() -> None:
    screen, stderr = io.StringIO(), sys.stderr
    handler = logging.StreamHandler(stderr)
    logging.getLogger().addHandler(handler)
    try:
        with RichProgress(Console(file=screen, force_terminal=True, width=120)) as bars:
            bars.stage("build features")
            logging.getLogger(__name__).warning("a column is absent")
        assert "a column is absent" in screen.getvalue()
        assert handler.stream is stderr
    finally:
        logging.getLogger().removeHandler(handler)
