"""The failure model the planner evaluates at candidate times, behind one small protocol.

A :data:`FailureModel` maps a frame of *candidate attempts* to their failure probabilities. A candidate is
the declined attempt's invoice retried at another time: the contract's attempt columns (same invoice and
payment method, ``kind`` = retry, ``retry_number`` + 1, ``occurred_at`` = the candidate time) plus the
planner's context columns :data:`CONTEXT_COLUMNS` (the last decline's code and time, and the first decline's
time), which a model may use or ignore.

* :class:`FeatureVectorModel` plugs riskgate's failure model: a feature source (the online engine's
  ``features_for(attempt)``, which computes the features as of the candidate's ``occurred_at`` from state
  before it) and a calibrated scorer (the bundle's ``predict_proba``).
* :class:`RetryModel` is a transparent logistic model learned from observed attempts that follow a decline
  of the same payment method (never the simulator's truth): the decline's family and how long ago it was
  (through fading terms that stay bounded beyond the delays observed), the day of the month per funding
  type, the amount and the retry number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from events.schema import DECLINE_CODES, CardFunding, DeclineFamily, MethodType

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


_FAMILIES: Final = tuple(DeclineFamily)
_METHOD_KEYS: Final = (
    *(f.value for f in CardFunding),
    *(m.value for m in MethodType if m != MethodType.CARD),
)
_FAMILY_OF: Final = {code.value: rule.family for code, rule in DECLINE_CODES.items()}


#: Time scales (days) over which the effect of a decline may fade: the model weighs each, per decline family.
#: A sum of decays stays bounded beyond the observed delays, where a polynomial in time would run away.
FADING_DAYS: Final = (1.0, 3.0, 10.0, 30.0)


class NotFittedError(RuntimeError):
    """A learned model was used before ``fit``."""


def _ns(values: pd.Series) -> npt.NDArray[np.int64]:
    """UTC times as int64 nanoseconds (NaT as the int64 minimum)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        values = pd.to_datetime(values, utc=True)
    return np.asarray(pd.DatetimeIndex(values).as_unit("ns").asi8)


def retry_features(candidates: pd.DataFrame) -> FloatArray:
    """The retry model's design matrix: what a retry's outcome plausibly depends on, from observables."""
    at = _ns(candidates["occurred_at"])
    days = np.clip((at - _ns(candidates["last_declined_at"])) / 86_400e9, 0.0, None)
    codes = candidates["last_decline_code"].to_numpy(object)
    family = np.array([_FAMILY_OF.get(code) for code in codes], dtype=object)
    families = np.column_stack([(family == f).astype(float) for f in _FAMILIES])
    method = candidates["method_type"].to_numpy(object)
    key = np.where(method == MethodType.CARD.value, candidates["card_funding"].to_numpy(object), method)
    methods = np.column_stack([(key == k).astype(float) for k in _METHOD_KEYS])
    day = pd.DatetimeIndex(pd.to_datetime(at, utc=True)).day.to_numpy(float)
    payday = (day - 1.0) / 30.0 - 0.5
    amount = np.log(np.maximum(candidates["amount"].to_numpy(np.float64), 0.5))
    return np.column_stack(
        [
            families,
            *(families * np.exp(-days / tau)[:, None] for tau in FADING_DAYS),
            methods,
            methods * payday[:, None],
            amount,
            candidates["retry_number"].to_numpy(float),
        ]
    )


class RetryModel:
    """Logistic failure model of attempts that follow a decline, learned from observed ones and outcomes.

    Follows the scikit-learn estimator contract: ``__init__`` stores parameters, :meth:`fit` returns self,
    learned attributes end in ``_``. Call it as a :class:`FailureModel`.
    """

    def __init__(self, regularisation: float = 1.0) -> None:
        self.regularisation = regularisation

    def fit(self, candidates: pd.DataFrame, failed: npt.NDArray[np.bool_]) -> RetryModel:
        """Learn from retries (attempt + context columns) and whether each failed."""
        if len(np.unique(failed)) < 2:
            raise ValueError(
                f"RetryModel.fit needs both failed and approved retries; got {len(failed)} rows, all "
                f"{'failed' if len(failed) and failed[0] else 'approved'}: use a longer training period"
            )
        self.pipeline_: Pipeline = make_pipeline(
            StandardScaler(), LogisticRegression(C=self.regularisation, max_iter=2000)
        )
        self.pipeline_.fit(retry_features(candidates), failed)
        return self

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        if not hasattr(self, "pipeline_"):
            raise NotFittedError("RetryModel used before fit(): fit it on observed retries first")
        if candidates.empty:
            return np.empty(0)
        proba: FloatArray = self.pipeline_.predict_proba(retry_features(candidates))[:, 1]
        return proba
