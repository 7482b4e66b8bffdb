"""The data scientist's controls as a user types them: the feature set, the data directory, a test window by
date, the validation placement, rolling folds, the baselines and the config's keys."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from typer.testing import CliRunner

from core.settings import get_settings
from features.batch import FEATURES_TABLE
from riskgate.cli import app
from tests.training.tiny_features import FEATURE_SET as TINY
from training.data import FEATURE_SET_METADATA

TINY_SPEC = "tests.training.tiny_features:FEATURE_SET"
WITH_RULES_SPEC = "tests.training.tiny_features_with_rules:FEATURE_SET"
#: Fit the small world's nine months, train in seconds.
FAST = [
    *("--set", "labels.fraud_label_delay_days=30"),
    *("--set", "split.validation_days=28"),
    *("--set", "model.trials=1"),
    *("--set", "model.max_rounds=60"),
    *("--set", "model.num_threads=1"),
]


@pytest.fixture
def data_dir(small_world: Path, tmp_path: Path) -> Path:
    """The small world's events (not its features table: another test may build one)."""
    copy = tmp_path / "provider"
    shutil.copytree(small_world, copy, ignore=shutil.ignore_patterns(FEATURES_TABLE))
    return copy


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    """A fresh tracking store; the settings' data directory holds nothing (--data-dir must be honoured)."""
    monkeypatch.setenv("RISKGATE_DATA_DIR", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("RISKGATE_MLRUNS_DIR", str(tmp_path / "mlruns"))
    monkeypatch.delenv("RISKGATE_FEATURE_SET", raising=False)
    get_settings.cache_clear()
    uri = get_settings().tracking_uri
    yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    get_settings.cache_clear()


def runs(client: MlflowClient) -> list[Run]:
    experiment = client.get_experiment_by_name("riskgate")
    return [] if experiment is None else list(client.search_runs([experiment.experiment_id]))


def test_train_uses_the_feature_set_setting_a_test_window_by_date_and_labels_known_at_its_start(
    data_dir: Path, tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKGATE_FEATURE_SET", TINY_SPEC)
    get_settings.cache_clear()
    start, end = "2025-08-03T05:17:00.000250", "2025-08-24T11:00:00"
    command = ["train", "--task", "fraud", "--data-dir", str(data_dir), "--test-start", start]
    result = CliRunner().invoke(
        app, [*command, "--test-end", end, "--set", "split.validation=labels_cut_at_test_start", *FAST]
    )
    assert result.exit_code == 0, result.output
    (run,) = runs(tracking)
    params = run.data.params
    assert (params["feature_set_hash"], params["n_features"]) == (TINY.hash, str(len(TINY.names)))
    assert params["test_start"] == pd.Timestamp(start, tz="UTC").isoformat()  # to the microsecond
    assert params["test_end"] == pd.Timestamp(end, tz="UTC").isoformat()
    assert params["validation_placement"] == "labels_cut_at_test_start"
    assert params["validation_end"] == params["gap_start"]
    assert (params["feature_set"], params["baselines"]) == (
        TINY_SPEC,
        "fraud: none, failure: declined_last_time",
    )
    # a feature set without the IPTV fields (nor declared baselines) gets no IPTV rules
    assert "| metric | model | truth |" in result.output
    assert "baseline" not in result.output


def test_a_features_table_of_another_feature_set_is_refused_not_rebuilt(
    data_dir: Path, tracking: MlflowClient
) -> None:
    runner = CliRunner()
    built = runner.invoke(app, ["features", "build", "--data-dir", str(data_dir), "--feature-set", TINY_SPEC])
    assert built.exit_code == 0, built.output
    refused = runner.invoke(app, ["train", "--data-dir", str(data_dir), *FAST])
    assert refused.exit_code == 1
    message = " ".join(refused.output.split())
    assert f"built with feature set {TINY.hash}" in message
    assert "features.iptv:FEATURE_SET" in message  # the set the command uses ...
    assert f"riskgate features build --data-dir {data_dir} --feature-set features.iptv:FEATURE_SET" in message
    first = sorted((data_dir / FEATURES_TABLE).rglob("*.parquet"))[0]
    schema = pq.read_schema(first)  # ... and the table is untouched
    assert (schema.metadata or {})[FEATURE_SET_METADATA] == TINY.hash.encode()
    assert runs(tracking) == []


def test_a_test_window_whose_labels_are_not_mature_is_refused(data_dir: Path, tracking: MlflowClient) -> None:
    late = ["--test-start", "2025-09-10", "--test-end", "2025-09-24"]  # the world ends on 2025-10-01
    result = CliRunner().invoke(
        app,
        ["train", "--task", "fraud", "--data-dir", str(data_dir), "--feature-set", TINY_SPEC, *late, *FAST],
    )
    assert result.exit_code == 1
    assert "is not mature" in result.output
    assert "days of the window are immature" in " ".join(result.output.split())


def test_rolling_folds_report_each_fold_and_the_mean_with_the_module_baselines_and_no_money(
    data_dir: Path, tracking: MlflowClient
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "evaluate-rolling",
            *("--folds", "2", "--task", "fraud", "--data-dir", str(data_dir)),
            *("--feature-set", WITH_RULES_SPEC, "--set", "money_metrics=false", *FAST),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| metric | fold 1 | fold 2 | mean | std | baseline mean |" in result.output  # the module's rules
    assert "money" not in result.output
    folds = {run.data.tags["mlflow.runName"]: run for run in runs(tracking)}
    assert set(folds) == {"rolling-2-folds", "fraud-fold-1", "fraud-fold-2"}
    parent = folds.pop("rolling-2-folds")
    assert {run.data.tags["mlflow.parentRunId"] for run in folds.values()} == {parent.info.run_id}
    first, second = folds["fraud-fold-1"].data.params, folds["fraud-fold-2"].data.params
    assert first["test_end"] == second["test_start"]  # consecutive windows, the last one the configured one
    aucs = [run.data.metrics["test_model_roc_auc"] for run in folds.values()]
    assert parent.data.metrics["fraud_mean_test_model_roc_auc"] == pytest.approx(sum(aucs) / 2)
    assert "fraud_std_test_model_roc_auc" in parent.data.metrics
    assert tracking.search_registered_models() == []  # nothing registered


def test_config_show_lists_every_set_key_with_its_value() -> None:
    result = CliRunner().invoke(app, ["config", "show", "--set", "split.test_start=2026-03-01"])
    assert result.exit_code == 0, result.output
    assert 'split.test_start = "2026-03-01T00:00:00Z" (default null)' in result.output
    for key in ("split.validation", "baselines.fraud", "baselines.failure", "money_metrics", "model.trials"):
        assert f"\n{key} = " in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["train"],
        ["evaluate"],
        ["promote"],
        ["evaluate-rolling"],
        ["backtest"],
        ["recovery-eval"],
        ["features", "build"],
        ["features", "list"],
        ["features", "load-state"],
    ],
)
def test_every_command_that_reads_features_takes_the_feature_set_flag(
    command: list[str], tracking: MlflowClient
) -> None:
    result = CliRunner().invoke(app, [*command, "--feature-set", "nowhere"])
    assert result.exit_code == 2
    assert "'nowhere' must look like 'package.module:ATTRIBUTE'" in " ".join(result.output.split())
