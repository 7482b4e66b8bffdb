"""The model bundle: everything needed to turn a feature vector into a calibrated probability and a level.

A bundle is a directory with ``model.txt`` (the LightGBM booster as text) and ``bundle.json`` (task, feature
contract, calibration breakpoints, thresholds, cost model, reference distributions for drift monitoring).
It is what MLflow stores as the artifact of a registered model version and what serving loads: loading needs
only LightGBM and numpy, and :meth:`ModelBundle.check_features` refuses a feature set that differs from the
one the model was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from registry.calibration import IsotonicCalibrator
from registry.errors import FeatureContractError

FORMAT_VERSION = 1
MODEL_FILE = "model.txt"
META_FILE = "bundle.json"
#: The artifact name of the bundle directory inside a logged MLflow model.
BUNDLE_ARTIFACT = "bundle"
#: What to do when a registered bundle cannot be downloaded.
BUNDLE_HINT = "check the name and alias/version with `make ui`, or run `make train` first"


@dataclass(frozen=True)
class FeatureContract:
    """The ordered feature names a model expects, their hash, and which are categorical."""

    names: tuple[str, ...]
    hash: str
    categorical: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "hash": self.hash, "categorical": list(self.categorical)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureContract:
        return cls(tuple(data["names"]), str(data["hash"]), tuple(data.get("categorical", ())))


@dataclass(frozen=True)
class Thresholds:
    """Decision cut-offs on the calibrated probability.

    ``decision`` is the cost-optimal flag threshold (fraud: block, failure: defer). For fraud, ``levels`` maps
    ``elevated`` and ``highest`` to their cut-offs (``normal`` is below ``elevated``).
    """

    decision: float
    levels: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelBundle:
    """A trained, calibrated model with its contract, thresholds and reference distributions."""

    task: str
    booster: lgb.Booster
    calibrator: IsotonicCalibrator
    features: FeatureContract
    thresholds: Thresholds
    costs: dict[str, float]
    reference: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        """The booster's uncalibrated probabilities (one thread: this is the serving path)."""
        self._check_shape(x)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=float)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for rows of features in contract order."""
        return self.calibrator.transform(self.raw_scores(x))

    def level(self, probabilities: np.ndarray) -> np.ndarray:
        """``normal`` / ``elevated`` / ``highest`` per probability (fraud bundles)."""
        levels = np.full(len(probabilities), "normal", dtype=object)
        for name in ("elevated", "highest"):
            if name in self.thresholds.levels:
                levels[probabilities >= self.thresholds.levels[name]] = name
        return levels

    def check_features(self, names: list[str] | tuple[str, ...], feature_hash: str) -> None:
        """Raise :class:`FeatureContractError` unless the offered feature set is the trained one."""
        if feature_hash != self.features.hash or tuple(names) != self.features.names:
            missing = sorted(set(self.features.names) - set(names))
            extra = sorted(set(names) - set(self.features.names))
            raise FeatureContractError(
                f"the {self.task} model was trained on feature set {self.features.hash} "
                f"({len(self.features.names)} features) but the code offers {feature_hash} "
                f"({len(names)} features; missing {missing[:5]}, unexpected {extra[:5]}): retrain the model "
                "with the current feature definitions, or run the code version the model was trained with"
            )

    def _check_shape(self, x: np.ndarray) -> None:
        if x.ndim != 2 or x.shape[1] != len(self.features.names):
            raise FeatureContractError(
                f"the {self.task} model expects rows of {len(self.features.names)} features in contract "
                f"order, got an array of shape {x.shape}"
            )

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_text(self.booster.model_to_string(num_iteration=-1))
        meta = {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "features": self.features.to_dict(),
            "calibration": self.calibrator.to_dict(),
            "thresholds": {"decision": self.thresholds.decision, "levels": self.thresholds.levels},
            "costs": self.costs,
            "reference": self.reference,
            "info": self.info,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path) -> ModelBundle:
        meta_path = directory / META_FILE
        if not meta_path.exists():
            raise FileNotFoundError(
                f"{directory} is not a model bundle: {META_FILE} is missing "
                "(was it written by ModelBundle.save?)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise FeatureContractError(
                f"bundle {directory} has format {meta.get('format_version')}, "
                f"this code reads {FORMAT_VERSION}: retrain or use the matching riskgate version"
            )
        booster = lgb.Booster(model_str=(directory / MODEL_FILE).read_text())
        thresholds = meta["thresholds"]
        return cls(
            task=meta["task"],
            booster=booster,
            calibrator=IsotonicCalibrator.from_dict(meta["calibration"]),
            features=FeatureContract.from_dict(meta["features"]),
            thresholds=Thresholds(float(thresholds["decision"]), dict(thresholds["levels"])),
            costs=dict(meta["costs"]),
            reference=dict(meta["reference"]),
            info=dict(meta["info"]),
        )


def bundle_from_model_dir(model_dir: Path) -> ModelBundle:
    """Load the bundle from a downloaded MLflow model directory (``.../artifacts/bundle``)."""
    candidates = sorted(model_dir.glob(f"artifacts/{BUNDLE_ARTIFACT}*"))
    if not candidates:
        raise FileNotFoundError(
            f"{model_dir} holds no riskgate bundle (expected artifacts/{BUNDLE_ARTIFACT}/): "
            "was this model logged by `riskgate train`?"
        )
    return ModelBundle.load(candidates[0])
