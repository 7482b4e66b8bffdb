"""The model registry's names, defined once: registered model names, the serving alias and version tags.

Training registers and tags versions under these names; serving, the readers and the CLI look them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: The alias the promotion gate moves and the service serves by default.
CHAMPION: Final = "champion"

#: The registered name of each LightGBM model, by task (``fraud``, ``failure``).
MODEL_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {"fraud": "riskgate-fraud", "failure": "riskgate-failure"}
)
#: The tasks of the LightGBM models, in the order they are trained, loaded and reported.
TASKS: Final = tuple(MODEL_NAMES)
#: The task of the recovery planner's retry model (its local copy's directory, its reload report).
RETRY_TASK: Final = "retry"
#: The registered name of the retry model (:class:`recovery.learned.RetryModel`).
RETRY_MODEL_NAME: Final = "riskgate-retry"

#: Version tag: what "the same test window" is (bounds, data end, labelled attempts); see the promotion gate.
TEST_WINDOW_TAG: Final = "test_window"
#: Version tag: ``{"<metric>": value}``, the primary metric on that test window.
PRIMARY_METRIC_TAG: Final = "primary_metric"
#: Version (and run) tag: the hash of the model's inputs (feature set, or the retry model's design).
FEATURE_HASH_TAG: Final = "feature_set_hash"
#: Version tag of the retry model: the end (exclusive, ISO 8601) of the data it was fitted on.
TRAINED_UNTIL_TAG: Final = "trained_until"
#: Run tag: the task a run trained.
TASK_TAG: Final = "task"
