"""Models for the serving benchmark and tests: real LightGBM bundles on the real feature set, registered in
MLflow exactly as training registers them (a pyfunc model carrying the bundle artifact).

The benchmark uses the project's own ``@champion`` models when the tracking store has them (``make train``);
otherwise it builds synthetic ones of production size here, so it runs on a fresh clone.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features.definitions import FeatureSet
from features.iptv import FEATURE_SET
from registry.bundle import FeatureContract, ModelBundle, Thresholds
from registry.calibration import IsotonicCalibrator
from registry.names import MODEL_NAMES
from training.trainer import reference_distributions


def synthetic_bundle(
    task: str,
    *,
    feature_set: FeatureSet = FEATURE_SET,
    seed: int = 0,
    rounds: int = 40,
    leaves: int = 15,
    rows: int = 3000,
) -> ModelBundle:
    """A real LightGBM bundle on the feature set's columns (categorical and missing values included)."""
    rng = np.random.default_rng(seed)
    names = feature_set.names
    x = rng.gamma(1.0, 2.0, size=(rows, len(names)))
    x[rng.random(x.shape) < 0.15] = np.nan
    categorical = [names.index(c) for c in feature_set.categorical]
    for column in categorical:
        x[:, column] = rng.integers(0, 4, rows)
    signal = np.nan_to_num(x[:, names.index("card_attempts_count_1h")]) + np.nan_to_num(x[:, 0]) * 0.3
    signal += rng.normal(0, 1.5, rows) + 0.2 * np.nansum(x[:, 13:40], axis=1) / 10
    y = (signal > np.quantile(signal, 0.95 if task == "fraud" else 0.8)).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": leaves, "verbose": -1, "seed": seed, "num_threads": 1,
         "min_data_in_leaf": 5},
        lgb.Dataset(x, y, feature_name=names, categorical_feature=categorical),
        num_boost_round=rounds,
    )  # fmt: skip
    probabilities = np.asarray(booster.predict(x), dtype=float)
    calibrator = IsotonicCalibrator().fit(probabilities, y.astype(float))
    calibrated = calibrator.transform(probabilities)
    if task == "fraud":
        highest = float(np.quantile(calibrated, 0.99))
        thresholds = Thresholds(
            highest, {"elevated": float(np.quantile(calibrated, 0.9)), "highest": highest}
        )
    else:
        thresholds = Thresholds(float(np.quantile(calibrated, 0.8)))
    bundle = ModelBundle(
        task=task,
        booster=booster,
        calibrator=calibrator,
        features=FeatureContract(tuple(names), feature_set.hash, tuple(feature_set.categorical)),
        thresholds=thresholds,
        costs={},
    )
    bundle.reference = reference_distributions(bundle, x, calibrated)  # drift references, as training saves
    return bundle


def register(
    tracking_uri: str, artifact_root: Path | None, bundle: ModelBundle, champion: bool = True
) -> str:
    """Log ``bundle`` as training does (pyfunc model + bundle artifact), register it, set ``@champion``."""
    from registry.bundle import BUNDLE_ARTIFACT  # noqa: PLC0415
    from registry.pyfunc import RiskgateModel  # noqa: PLC0415 - MLflow is slow to import

    return register_pyfunc(
        tracking_uri,
        artifact_root,
        MODEL_NAMES[bundle.task],
        RiskgateModel(),
        lambda scratch: {BUNDLE_ARTIFACT: bundle.save(scratch / BUNDLE_ARTIFACT)},
        champion=champion,
    )


#: what :func:`register_production_size` registers
PRODUCTION_SIZE: str = (
    "synthetic models (fraud: 500 trees x 63 leaves; failure: 300 x 63) on the real feature set"
)


def production_size_bundles() -> dict[str, ModelBundle]:
    """Both models at the size the issue measures serving with: fraud 500 trees of 63 leaves, failure 300."""
    return {
        "fraud": synthetic_bundle("fraud", rounds=500, leaves=63, rows=20_000),
        "failure": synthetic_bundle("failure", seed=1, rounds=300, leaves=63, rows=20_000),
    }


def register_production_size(mlruns: Path) -> str:
    """Register :func:`production_size_bundles` as the ``@champion`` pair of a scratch MLflow store in
    ``mlruns`` (``mlflow.db`` and ``artifacts/``); returns its tracking URI."""
    uri = f"sqlite:///{mlruns / 'mlflow.db'}"
    for bundle in production_size_bundles().values():
        register(uri, mlruns / "artifacts", bundle)
    return uri


def register_pyfunc(
    tracking_uri: str,
    artifact_root: Path | None,
    name: str,
    python_model: Any,
    artifacts: Callable[[Path], dict[str, Path]],
    *,
    champion: bool = True,
) -> str:
    """Log ``python_model`` with the ``artifacts`` written into a scratch directory, register it as ``name``
    (in the experiment ``serving-synthetic``) and, with ``champion``, point ``@champion`` at it."""
    import mlflow  # noqa: PLC0415 - slow import

    from registry.names import CHAMPION  # noqa: PLC0415
    from registry.store import ensure_experiment, tracking_store  # noqa: PLC0415

    with tracking_store(tracking_uri) as client, tempfile.TemporaryDirectory() as scratch:
        experiment = ensure_experiment(client, "serving-synthetic", artifact_root)
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                artifacts={key: str(path) for key, path in artifacts(Path(scratch)).items()},
                registered_model_name=name,
                # as training does: MLflow would otherwise infer them (a subprocess, tens of seconds)
                pip_requirements=[
                    f"mlflow=={mlflow.__version__}",
                    f"lightgbm=={lgb.__version__}",
                    f"numpy=={np.__version__}",
                ],
            )
        version = str(info.registered_model_version)
        if champion:
            client.set_registered_model_alias(name, CHAMPION, version)
    return version
