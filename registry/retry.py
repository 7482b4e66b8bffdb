"""The retry model's stored form in the registry: the artifact a ``riskgate-retry`` version holds.

A version is an MLflow pyfunc (:class:`registry.pyfunc.RetryPyfunc`) whose artifact ``retry_model`` is the
model's JSON file (:meth:`recovery.learned.RetryModel.save`). Serving reads that file directly from a
downloaded model directory (:func:`retry_model_from_dir`); loading it refuses a model of another design of
the retry columns (:class:`recovery.learned.RetryModelFormatError`). No MLflow import here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from recovery.learned import CONTEXT_INPUTS, INPUT_COLUMNS, RetryModel, RetryModelFormatError

#: The artifact name of the model's JSON file inside a logged MLflow model.
MODEL_ARTIFACT: Final = "retry_model"
#: The model's JSON file (in the logged model's artifacts, and in the service's local copy).
MODEL_FILE: Final = "retry_model.json"
#: What to do when a registered retry model cannot be downloaded.
RETRY_HINT: Final = "run `make train` and `make promote` first"
#: The columns the pyfunc takes (times as UTC).
SIGNATURE_COLUMNS: Final = (*INPUT_COLUMNS, *CONTEXT_INPUTS)


def retry_model_from_dir(model_dir: Path) -> RetryModel:
    """The retry model of a downloaded MLflow model directory (``.../artifacts/retry_model.json``)."""
    path = model_dir / "artifacts" / MODEL_FILE
    if not path.exists():
        raise RetryModelFormatError(
            f"{model_dir} holds no retry model (expected artifacts/{MODEL_FILE}): was it logged by "
            "`riskgate train`?"
        )
    return RetryModel.load(path)
