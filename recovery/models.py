"""The failure model the planner evaluates at candidate times, behind one small protocol.

A :data:`FailureModel` maps a frame of *candidate attempts* to their failure probabilities. A candidate is
the declined attempt's invoice retried at another time: the contract's attempt columns (same invoice and
payment method, ``kind`` = retry, ``retry_number`` + 1, ``occurred_at`` = the candidate time) plus the
planner's context columns :data:`CONTEXT_COLUMNS` (the last decline's code and time, and the first decline's
time), which a model may use or ignore.

* :class:`FeatureVectorModel` plugs riskgate's failure model: a feature source (the online engine's
  ``features_for(attempt)``, which computes the features as of the candidate's ``occurred_at`` from state
  before it) and a calibrated scorer (the bundle's ``predict_proba``).
* :class:`recovery.learned.RetryModel` is a transparent model learned from observed attempts that follow a
  decline (the evaluation's default when riskgate's trained failure model is not at hand).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

#: Context the planner adds to each candidate attempt.
CONTEXT_COLUMNS: Final = ("last_decline_code", "last_declined_at", "first_declined_at")


#: Failure probability of each candidate attempt (one row each), in row order.
FailureModel = Callable[[pd.DataFrame], FloatArray]


class FeatureSource(Protocol):
    """The feature vector of one attempt as of its ``occurred_at`` (e.g. ``features.online.OnlineEngine``)."""

    def features_for(self, attempt: Mapping[str, object]) -> FloatArray: ...


class ProbabilityScorer(Protocol):
    """Calibrated probabilities of feature rows (e.g. ``training.bundle.ModelBundle``)."""

    def predict_proba(self, x: FloatArray) -> FloatArray: ...


class FeatureVectorModel:
    """riskgate's failure model at candidate times: features from a source, probabilities from a scorer."""

    def __init__(self, features: FeatureSource, scorer: ProbabilityScorer) -> None:
        self.features = features
        self.scorer = scorer

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        if candidates.empty:
            return np.empty(0)
        attempts = candidates.drop(columns=[c for c in CONTEXT_COLUMNS if c in candidates])
        keys = pd.util.hash_pandas_object(attempts, index=False).to_numpy()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        unique = attempts.iloc[first]  # the engine sees no context: score each distinct attempt once
        rows = [
            self.features.features_for({str(k): v for k, v in row.items()})
            for row in unique.to_dict("records")
        ]
        scores = np.asarray(self.scorer.predict_proba(np.vstack(rows)), dtype=np.float64)
        return np.asarray(scores[inverse.ravel()], dtype=np.float64)
