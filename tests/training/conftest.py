from __future__ import annotations

from pathlib import Path

import pytest

from simulator import WorldConfig, simulate
from tests.training.factories import CONTRACT, make_world
from training.baselines import IPTV_BASELINES
from training.config import TrainingConfig, load_config
from training.data import Inputs
from training.dataset import assemble

FAST = {
    "model.trials": 2,
    "model.max_rounds": 40,
    "model.num_threads": 1,
    "labels.fraud_label_delay_days": 20,
}


@pytest.fixture(scope="session")
def inputs() -> Inputs:
    world = make_world(rows=4000)
    return Inputs(
        assemble(
            world.attempts,
            world.outcomes,
            world.reports,
            world.features,
            world.truth,
            baselines=IPTV_BASELINES,
        ),
        CONTRACT,
    )


@pytest.fixture
def fast_config() -> TrainingConfig:
    return load_config(overrides=FAST)


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, Path]:
    """A fresh MLflow tracking store (SQLite) and artifact root in a temporary directory."""
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts"


#: A small simulated world and the overrides that fit its nine months (fixed label delay, shorter windows).
SMALL_WORLD_OVERRIDES = {
    "labels.fraud_label_delay_days": 30,
    "split.test_days": 28,
    "split.validation_days": 28,
    "retry.test_days": 28,
    "model.trials": 2,
    "model.num_threads": 1,
}


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated world (12,000 subscribers, 9 months, ~300 fraud reports), built once per session."""
    data_dir = tmp_path_factory.mktemp("small-world") / "data"
    simulate(WorldConfig(accounts=12_000, months=9, seed=7), data_dir)
    return data_dir
