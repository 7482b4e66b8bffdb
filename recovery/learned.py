"""A transparent failure model of attempts that follow a decline, learned from observed outcomes.

:class:`RetryModel` is a logistic model of observed attempts that follow a decline of the same payment method
(never the simulator's truth): the decline's family and how long ago it was (through fading terms that stay
bounded beyond the delays observed), the day of the month per funding type, the amount and the retry number.
It is a :data:`recovery.models.FailureModel`; the evaluation uses it when riskgate's trained failure model is
not at hand.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from events.schema import DECLINE_CODES, CardFunding, DeclineFamily, MethodType
from recovery.models import FloatArray

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
