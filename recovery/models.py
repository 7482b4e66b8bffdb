"""The failure model the planner evaluates at candidate times, behind one small protocol.

A :data:`FailureModel` maps a frame of *candidate attempts* to their failure probabilities. A candidate is
the declined attempt's invoice retried at another time: the contract's attempt columns (same invoice and
payment method, ``kind`` = retry, ``retry_number`` + 1, ``occurred_at`` = the candidate time) plus the
planner's context columns :data:`CONTEXT_COLUMNS` (the last decline's code and time, and the first decline's
time), which a model may use or ignore.

* :class:`FeatureVectorModel` plugs riskgate's failure model: a feature source (the online engine's
  ``features_at(attempt, times)``, the features of the attempt as of each candidate time from state before
  it, reading the state once) and a calibrated scorer (the bundle's ``predict_proba``).
* :class:`recovery.learned.RetryModel` is a transparent model learned from observed attempts that follow a
  decline (the evaluation's default when riskgate's trained failure model is not at hand).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

#: Context the planner adds to each candidate attempt.
CONTEXT_COLUMNS: Final = ("last_decline_code", "last_declined_at", "first_declined_at")
#: What differs between the candidates of one attempt: the time, and the id made from it.
_VARYING: Final = ("occurred_at", "attempt_id")


#: Failure probability of each candidate attempt (one row each), in row order.
FailureModel = Callable[[pd.DataFrame], FloatArray]


class FeatureSource(Protocol):
    """Feature vectors of one attempt made at several times (e.g. ``features.online.OnlineEngine``): row ``k``
    as of ``times[k]``, from state before it."""

    def features_at(self, attempt: Mapping[str, object], times: Sequence[datetime]) -> FloatArray: ...


class ProbabilityScorer(Protocol):
    """Calibrated probabilities of feature rows (e.g. ``registry.bundle.ModelBundle``)."""

    def predict_proba(self, x: FloatArray) -> FloatArray: ...


class FeatureVectorModel:
    """riskgate's failure model at candidate times: features from a source, probabilities from a scorer."""

    def __init__(self, features: FeatureSource, scorer: ProbabilityScorer) -> None:
        self.features = features
        self.scorer = scorer

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        if candidates.empty:
            return np.empty(0)
        # The engine sees neither the planner's context nor the candidate's id: candidates that differ only in
        # their time are one attempt made at several times, read once and scored at each distinct time.
        fixed = candidates.drop(columns=[c for c in (*CONTEXT_COLUMNS, *_VARYING) if c in candidates])
        groups = pd.util.hash_pandas_object(fixed, index=False).to_numpy()
        times = pd.DatetimeIndex(pd.to_datetime(candidates["occurred_at"], utc=True))
        ticks = times.asi8  # integer time in the index's own unit: only compared with each other
        blocks: list[FloatArray] = []
        where = np.empty(len(candidates), dtype=np.int64)
        offset = 0
        for group in np.unique(groups):
            rows = np.flatnonzero(groups == group)
            distinct, first, inverse = np.unique(ticks[rows], return_index=True, return_inverse=True)
            attempt = {str(k): v for k, v in fixed.iloc[rows[0]].items()}
            at = [times[rows[k]] for k in first]
            blocks.append(self.features.features_at(attempt, at))
            where[rows] = offset + inverse.ravel()
            offset += len(distinct)
        scores = np.asarray(self.scorer.predict_proba(np.vstack(blocks)), dtype=np.float64)
        return np.asarray(scores[where], dtype=np.float64)
