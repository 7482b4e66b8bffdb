"""Models by registry alias: loaded, refused on a feature-set mismatch, kept locally, swapped atomically."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench._models import register
from bench._models import synthetic_bundle as make_bundle
from features.iptv import FEATURE_SET
from registry.bundle import FeatureContract, ModelBundle
from serving.scoring.models import ModelHolder, ModelLoader, ModelPair, ServingModel


@pytest.fixture
def registry(tmp_path: Path) -> tuple[str, Path]:
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", tmp_path / "mlruns" / "artifacts"


def loader_for(uri: str, tmp_path: Path) -> ModelLoader:
    return ModelLoader(uri, tmp_path / "state" / "models", FEATURE_SET.names, FEATURE_SET.hash)


def test_champions_load_from_the_registry_and_a_new_champion_replaces_them(
    registry: tuple[str, Path], tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    uri, artifacts = registry
    for bundle in bundles.values():
        register(uri, artifacts, bundle)
    loader = loader_for(uri, tmp_path)
    pair, results = loader.load_pair(ModelPair(None, None))
    assert pair.fraud is not None
    assert pair.failure is not None
    assert (pair.fraud.version, pair.fraud.source) == ("1", "registry")
    assert all(r.changed and r.error is None for r in results if r.task != "retry")
    (retry,) = [r for r in results if r.task == "retry"]  # optional: no riskgate-retry@champion here
    assert retry.model is None
    assert not retry.changed
    assert "no version of riskgate-retry" in str(retry.error)
    assert pair.retry is None
    row = np.full(len(FEATURE_SET.names), np.nan)
    scored = pair.fraud.score(row)
    expected = bundles["fraud"].predict_proba(row.reshape(1, -1))[0]
    assert scored.probability == pytest.approx(expected, abs=1e-12)

    same, results = loader.load_pair(pair)
    assert same is pair
    assert not any(r.changed for r in results)

    register(uri, artifacts, make_bundle("fraud", seed=7))
    newer, results = loader.load_pair(pair)
    assert newer.fraud is not None
    assert newer.fraud.version == "2"
    assert newer.failure is pair.failure


def test_a_model_of_another_feature_set_is_refused_with_a_clear_log(
    registry: tuple[str, Path],
    tmp_path: Path,
    bundles: dict[str, ModelBundle],
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri, artifacts = registry
    stale = make_bundle("fraud", seed=3)
    stale.features = FeatureContract(stale.features.names, "0000000000000000", stale.features.categorical)
    register(uri, artifacts, stale)
    with caplog.at_level(logging.ERROR, logger="registry.loader"):
        result = loader_for(uri, tmp_path).load("fraud", None)
    assert result.model is None
    assert "REFUSED riskgate-fraud version 1" in caplog.text
    assert "retrain" in (result.error or "")


def test_the_local_copy_serves_when_the_tracking_store_is_gone(
    registry: tuple[str, Path], tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    uri, artifacts = registry
    register(uri, artifacts, bundles["failure"])
    assert loader_for(uri, tmp_path).load("failure", None).model is not None  # leaves a local copy
    offline = loader_for(f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}", tmp_path)
    result = offline.load("failure", None)
    assert result.model is not None
    assert (result.model.version, result.model.source) == ("1", "cache")
    assert "registry unreachable" in (result.error or "")


def test_the_holder_swaps_whole_pairs(bundles: dict[str, ModelBundle]) -> None:
    fraud = ServingModel.from_bundle(bundles["fraud"], "riskgate-fraud", "1", "registry")
    failure = ServingModel.from_bundle(bundles["failure"], "riskgate-failure", "1", "registry")
    holder = ModelHolder()
    before = holder.current
    assert before.fraud is None
    assert not before.complete
    new = ModelPair(fraud, failure)
    assert holder.swap(new) is before
    assert holder.current is new
    assert new.complete


def test_the_service_imports_neither_training_nor_mlflow() -> None:
    """Serving reads models through the registry only, and MLflow (slow to import) only when it asks it."""
    probe = (
        "import sys, serving.api.app, serving.readers.backtest, serving.readers.report; "
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'training', 'mlflow'}))"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
