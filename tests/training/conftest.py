from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.factories import CONTRACT, make_world
from training.config import TrainingConfig, load_config
from training.dataset import assemble
from training.pipeline import Inputs

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
        assemble(world.attempts, world.outcomes, world.reports, world.features, world.truth), CONTRACT
    )


@pytest.fixture
def fast_config() -> TrainingConfig:
    return load_config(overrides=FAST)


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, Path]:
    """A fresh MLflow tracking store (SQLite) and artifact root in a temporary directory."""
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts"
