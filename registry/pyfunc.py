"""The MLflow pyfunc wrappers of riskgate's models: a :class:`~registry.bundle.ModelBundle`, the retry model.

MLflow stores the bundle directory as the model's ``bundle`` artifact; :meth:`RiskgateModel.load_context`
loads it, and :meth:`RiskgateModel.predict` takes a frame of features (by name, any column order, extra
columns such as ``attempt_id`` ignored) and returns calibrated probabilities (and levels for fraud).
:class:`RetryPyfunc` does the same for :class:`recovery.learned.RetryModel` (artifact ``retry_model``).
Serving skips pyfunc and loads the stored files directly (:func:`registry.bundle.bundle_from_model_dir`,
:func:`registry.retry.retry_model_from_dir`): this module imports MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

from recovery.learned import RetryModel
from registry.bundle import BUNDLE_ARTIFACT, ModelBundle
from registry.errors import FeatureContractError
from registry.retry import MODEL_ARTIFACT


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


class RetryPyfunc(PythonModel):
    """Failure probabilities of attempts that follow a decline (columns
    :data:`registry.retry.SIGNATURE_COLUMNS`, times as UTC)."""

    def load_context(self, context: Any) -> None:
        self.model = RetryModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"probability": self.model(model_input)}, index=model_input.index)
