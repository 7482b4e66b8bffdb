"""The MLflow pyfunc wrapper around a :class:`~registry.bundle.ModelBundle`.

MLflow stores the bundle directory as the model's ``bundle`` artifact; :meth:`RiskgateModel.load_context`
loads it, and :meth:`RiskgateModel.predict` takes a frame of features (by name, any column order, extra
columns such as ``attempt_id`` ignored) and returns calibrated probabilities (and levels for fraud).
Serving can skip pyfunc and load the bundle directly with :func:`bundle_from_model_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from registry.bundle import ModelBundle
from training.errors import FeatureContractError

BUNDLE_ARTIFACT = "bundle"


def feature_matrix(frame: pd.DataFrame, names: tuple[str, ...], task: str) -> np.ndarray:
    """The frame's features in contract order as float64; raise if any is missing."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise FeatureContractError(
            f"the {task} model needs {len(names)} features; the input lacks {len(missing)} of them "
            f"(first: {missing[:5]}): build the input with the batch engine of the model's feature set"
        )
    return frame[list(names)].to_numpy(dtype=np.float64)


class RiskgateModel(PythonModel):
    """Calibrated probabilities from a riskgate bundle."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return predict_frame(self.bundle, model_input)


def predict_frame(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    """``probability`` per row (and ``level`` for fraud), in input order."""
    probability = bundle.predict_proba(feature_matrix(frame, bundle.features.names, bundle.task))
    result = pd.DataFrame({"probability": probability}, index=frame.index)
    if bundle.thresholds.levels:
        result["level"] = bundle.level(probability)
    return result


def bundle_from_model_dir(model_dir: Path) -> ModelBundle:
    """Load the bundle from a downloaded MLflow model directory (``.../artifacts/bundle``)."""
    candidates = sorted(model_dir.glob(f"artifacts/{BUNDLE_ARTIFACT}*"))
    if not candidates:
        raise FileNotFoundError(
            f"{model_dir} holds no riskgate bundle (expected artifacts/{BUNDLE_ARTIFACT}/): "
            "was this model logged by `riskgate train`?"
        )
    return ModelBundle.load(candidates[0])
