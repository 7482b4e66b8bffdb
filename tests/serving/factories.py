"""Test data for the service: attempts, small real LightGBM bundles on the real feature set, a service."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from features.definitions import FeatureSet
from features.iptv import FEATURE_SET
from riskgate.settings import Settings
from serving.models import MODEL_NAMES, ModelLoader, ServingModel
from serving.service import Service, build_service
from training.bundle import FeatureContract, ModelBundle, Thresholds
from training.calibration import IsotonicCalibrator

SCORE_KEY = "rg-dev-score-key"
ADMIN_KEY = "rg-dev-admin-key"
SCORE = {"X-API-Key": SCORE_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def attempt(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid attempt body (JSON-ready), the n-th of a small world of accounts and cards."""
    body: dict[str, Any] = {
        "attempt_id": f"att-{n:06d}",
        "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
        "account_id": f"acc-{n % 7}",
        "kind": "renewal",
        "plan_tier": "standard",
        "plan_period": "monthly",
        "amount": 14.99,
        "currency": "EUR",
        "payment_method_id": f"pm_tok_{n % 5}",
        "method_type": "card",
        "card_bin": "411111",
        "card_funding": "credit",
        "card_country": "DE",
        "card_exp": "2027-08",
        "device_id": f"dev-{n % 3}",
        "ip": f"192.0.2.{n % 250}",
        "ip_country": "DE",
        "billing_country": "DE",
        "invoice_id": f"inv-{n}",
        "retry_number": 0,
    }
    body.update(overrides)
    return body


def make_bundle(
    task: str, feature_set: FeatureSet = FEATURE_SET, seed: int = 0, rounds: int = 40, leaves: int = 15
) -> ModelBundle:
    """A real, small LightGBM bundle on the feature set's columns (with categorical and missing values)."""
    rng = np.random.default_rng(seed)
    names = feature_set.names
    rows = 3000
    x = rng.gamma(1.0, 2.0, size=(rows, len(names)))
    x[rng.random(x.shape) < 0.15] = np.nan
    categorical = [names.index(c) for c in feature_set.categorical]
    for column in categorical:
        x[:, column] = rng.integers(0, 4, rows)
    signal = np.nan_to_num(x[:, names.index("card_attempts_count_1h")]) + np.nan_to_num(x[:, 0]) * 0.3
    y = (signal + rng.normal(0, 1.5, rows) > (4.0 if task == "fraud" else 2.5)).astype(int)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": leaves, "verbose": -1, "seed": seed, "num_threads": 1},
        lgb.Dataset(x, y, feature_name=names, categorical_feature=categorical),
        num_boost_round=rounds,
    )
    probabilities = np.asarray(booster.predict(x), dtype=float)
    calibrator = IsotonicCalibrator().fit(probabilities, y.astype(float))
    calibrated = calibrator.transform(probabilities)
    if task == "fraud":
        thresholds = Thresholds(
            float(np.quantile(calibrated, 0.99)),
            {
                "elevated": float(np.quantile(calibrated, 0.9)),
                "highest": float(np.quantile(calibrated, 0.99)),
            },
        )
    else:
        thresholds = Thresholds(float(np.quantile(calibrated, 0.8)))
    return ModelBundle(
        task=task,
        booster=booster,
        calibrator=calibrator,
        features=FeatureContract(tuple(names), feature_set.hash, tuple(feature_set.categorical)),
        thresholds=thresholds,
        costs={},
    )


def seed_cache(cache_dir: Path, bundles: dict[str, ModelBundle], version: str = "1") -> None:
    """Put bundles in the service's local model copy, as if they had been loaded from the registry once."""
    loader = ModelLoader("sqlite:////nonexistent/mlflow.db", cache_dir, FEATURE_SET.names, FEATURE_SET.hash)
    for task, bundle in bundles.items():
        model = ServingModel.from_bundle(bundle, MODEL_NAMES[task], version, "registry")
        loader._save_cache(task, model)


def settings_for(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp / "state",
        "mlruns_dir": tmp / "mlruns",
        "data_dir": tmp / "data",
        "model_reload_seconds": 0,
        **overrides,
    }
    return Settings(**values)


def service_for(tmp: Path, **overrides: Any) -> Service:
    return build_service(settings_for(tmp, **overrides))


def with_limits(service: Service, **limits: Any) -> Service:
    service.limits = replace(service.limits, **limits)
    return service


def register(tracking_uri: str, artifact_root: Path, bundle: ModelBundle, champion: bool = True) -> str:
    """Log ``bundle`` as training does (pyfunc model + bundle artifact), register it, set @champion."""
    import mlflow  # noqa: PLC0415 - slow import, only the registry tests need it

    from training.pyfunc import BUNDLE_ARTIFACT, RiskgateModel  # noqa: PLC0415
    from training.tracking import CHAMPION, ensure_experiment, tracking_store  # noqa: PLC0415

    name = MODEL_NAMES[bundle.task]
    with tracking_store(tracking_uri) as client, tempfile.TemporaryDirectory() as scratch:
        experiment = ensure_experiment(client, "serving-tests", artifact_root)
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=RiskgateModel(),
                artifacts={BUNDLE_ARTIFACT: str(bundle.save(Path(scratch) / BUNDLE_ARTIFACT))},
                registered_model_name=name,
            )
        version = str(info.registered_model_version)
        if champion:
            client.set_registered_model_alias(name, CHAMPION, version)
    return version
