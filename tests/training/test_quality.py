"""A model-quality floor on a small simulated world: the models must beat the baselines and near the truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.registry import DEFAULT_SPEC
from tests.training.conftest import SMALL_WORLD_OVERRIDES
from training.baselines import IPTV_BASELINES
from training.config import Task, load_config
from training.data import ChosenFeatureSet, load_inputs
from training.dataset import task_data
from training.trainer import TrainedModel, train_task


@pytest.fixture(scope="module")
def trained(small_world: Path) -> dict[Task, TrainedModel]:
    config = load_config(overrides=SMALL_WORLD_OVERRIDES)
    inputs = load_inputs(small_world, ChosenFeatureSet.named(DEFAULT_SPEC), IPTV_BASELINES)
    return {task: train_task(task_data(inputs.frame, task, inputs.contract, config), config) for task in Task}


def test_fraud_model_beats_the_rules_and_is_calibrated(trained: dict[Task, TrainedModel]) -> None:
    report = trained[Task.FRAUD].report
    assert report["model"]["roc_auc"] >= 0.88
    assert report["model"]["roc_auc"] > report["baseline"]["roc_auc"] + 0.1
    assert report["model"]["average_precision"] > 3 * report["baseline"]["average_precision"]
    assert report["model"]["ece"] < 0.02


def test_failure_model_beats_declined_last_time_and_nears_the_truth(
    trained: dict[Task, TrainedModel],
) -> None:
    report = trained[Task.FAILURE].report
    assert report["model"]["roc_auc"] > report["baseline"]["roc_auc"] + 0.03
    assert report["model"]["roc_auc"] >= report["truth"]["roc_auc"] - 0.04
    assert report["model"]["ece"] < 0.02
