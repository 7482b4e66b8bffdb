"""A transparent failure model of attempts that follow a decline, learned from observed outcomes.

:class:`RetryModel` is a logistic model of observed attempts that follow a decline of the same payment method
(never the simulator's truth): the decline's family and how long ago it was (through fading terms that stay
bounded beyond the delays observed), the day of the month per funding type, the amount and the retry number.
It is a :data:`recovery.models.FailureModel`.

Its learned state is a handful of numbers (the standardisation and the logistic coefficients, one per column
of :data:`RETRY_COLUMNS`), so it is stored as JSON (:meth:`RetryModel.to_dict`): that file is the registered
``riskgate-retry`` model's artifact, and :meth:`RetryModel.from_dict` refuses a file written for another
design of the columns (:data:`RETRY_DESIGN_HASH`), as serving refuses a bundle of another feature set.

:func:`retry_history` builds the training rows (observed retries and renewals after a decline, with the
planner's context) from a data directory's attempts and outcomes (:func:`observed_attempts`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from core.errors import EXIT_FAILURE, RiskgateError
from events.io import read_events
from events.schema import DECLINE_CODES, AttemptKind, CardFunding, DeclineFamily, EventKind, MethodType
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

#: The design matrix's columns, in order (named from the definition: family, fading scale, method key).
RETRY_COLUMNS: Final = (
    *(f"family={f.value}" for f in _FAMILIES),
    *(f"family={f.value}*fade_{tau:g}d" for tau in FADING_DAYS for f in _FAMILIES),
    *(f"method={k}" for k in _METHOD_KEYS),
    *(f"method={k}*day_of_month" for k in _METHOD_KEYS),
    "log_amount",
    "retry_number",
)
#: What a stored model must have been fitted on: the columns and the codes' families.
RETRY_DESIGN_HASH: Final = hashlib.sha256(
    json.dumps({"columns": RETRY_COLUMNS, "families": sorted(_FAMILY_OF.items())}).encode()
).hexdigest()[:16]
#: The observed attempts' columns the model reads, besides the planner's context columns.
INPUT_COLUMNS: Final = ("occurred_at", "method_type", "card_funding", "amount", "retry_number")
CONTEXT_INPUTS: Final = ("last_decline_code", "last_declined_at")
FORMAT_VERSION: Final = 1


class NotFittedError(RiskgateError, RuntimeError):
    """A learned model was used before ``fit``."""

    exit_code = EXIT_FAILURE  # a bug in the caller: the run did not succeed


class RetryModelFormatError(RiskgateError, ValueError):
    """A stored retry model does not match this code's design of the columns (or is not a retry model)."""


def _ns(values: pd.Series) -> npt.NDArray[np.int64]:
    """UTC times as int64 nanoseconds (NaT as the int64 minimum)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        values = pd.to_datetime(values, utc=True)
    return np.asarray(pd.DatetimeIndex(values).as_unit("ns").asi8)


def retry_features(candidates: pd.DataFrame) -> FloatArray:
    """The retry model's design matrix (columns :data:`RETRY_COLUMNS`), from observables only.

    A candidate without a previous decline (``last_decline_code`` missing) has every family term at zero.
    """
    missing = [c for c in (*INPUT_COLUMNS, *CONTEXT_INPUTS) if c not in candidates.columns]
    if missing:
        raise KeyError(f"the retry model needs columns {missing} (the attempt's and the planner's context)")
    at = _ns(candidates["occurred_at"])
    last = _ns(candidates["last_declined_at"])
    days = np.where(last == np.iinfo(np.int64).min, np.inf, np.clip((at - last) / 86_400e9, 0.0, None))
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


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


class RetryModel:
    """Logistic failure model of attempts that follow a decline, learned from observed ones and outcomes.

    Follows the scikit-learn estimator contract: ``__init__`` stores parameters, :meth:`fit` returns self,
    learned attributes end in ``_`` (``mean_``/``scale_`` standardise the columns, ``coef_``/``intercept_``
    are the logistic model on the standardised columns). Call it as a :class:`FailureModel`.
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
        x = retry_features(candidates)
        scaler = StandardScaler().fit(x)
        logistic = LogisticRegression(C=self.regularisation, max_iter=2000)
        logistic.fit(scaler.transform(x), failed)
        self.mean_: FloatArray = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale_: FloatArray = np.asarray(scaler.scale_, dtype=np.float64)
        self.coef_: FloatArray = np.asarray(logistic.coef_[0], dtype=np.float64)
        self.intercept_ = float(logistic.intercept_[0])
        self.n_training_rows_ = len(failed)
        self.info_: dict[str, str] = {}  # where the rows came from (training sets the data window)
        return self

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        if not hasattr(self, "coef_"):
            raise NotFittedError("RetryModel used before fit(): fit it on observed retries first")
        if candidates.empty:
            return np.empty(0)
        z = ((retry_features(candidates) - self.mean_) / self.scale_) @ self.coef_ + self.intercept_
        return _sigmoid(z)

    # -- storage ---------------------------------------------------------------------------------------

    def coefficients(self) -> pd.DataFrame:
        """One row per column: its mean and scale in training, and its coefficient (standardised and raw)."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("RetryModel has no coefficients before fit()")
        return pd.DataFrame(
            {
                "column": RETRY_COLUMNS,
                "mean": self.mean_,
                "scale": self.scale_,
                "coefficient": self.coef_,
                "raw_coefficient": self.coef_ / self.scale_,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything the model needs to predict, as JSON-ready data."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("RetryModel cannot be stored before fit()")
        return {
            "kind": "riskgate-retry-model",
            "format_version": FORMAT_VERSION,
            "design_hash": RETRY_DESIGN_HASH,
            "columns": list(RETRY_COLUMNS),
            "regularisation": self.regularisation,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "n_training_rows": self.n_training_rows_,
            "info": dict(getattr(self, "info_", {})),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "the stored retry model") -> RetryModel:
        """The model :meth:`to_dict` stored; refuses another kind, format or design of the columns."""
        if data.get("kind") != "riskgate-retry-model" or data.get("format_version") != FORMAT_VERSION:
            raise RetryModelFormatError(
                f"{where} is not a riskgate retry model of format {FORMAT_VERSION} (kind "
                f"{data.get('kind')!r}, format {data.get('format_version')!r}): retrain it with "
                "`riskgate train`"
            )
        if data.get("design_hash") != RETRY_DESIGN_HASH:
            raise RetryModelFormatError(
                f"{where} was fitted on retry columns {data.get('design_hash')} but this code builds "
                f"{RETRY_DESIGN_HASH} ({len(RETRY_COLUMNS)} columns): retrain it with `riskgate train`, or "
                "run the code version it was trained with"
            )
        model = cls(float(data["regularisation"]))
        model.mean_ = np.asarray(data["mean"], dtype=np.float64)
        model.scale_ = np.asarray(data["scale"], dtype=np.float64)
        model.coef_ = np.asarray(data["coef"], dtype=np.float64)
        model.intercept_ = float(data["intercept"])
        model.n_training_rows_ = int(data["n_training_rows"])
        model.info_ = {str(k): str(v) for k, v in dict(data.get("info", {})).items()}
        if not len(model.mean_) == len(model.scale_) == len(model.coef_) == len(RETRY_COLUMNS):
            raise RetryModelFormatError(
                f"{where} holds arrays of the wrong length for {len(RETRY_COLUMNS)} columns"
            )
        return model

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> RetryModel:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RetryModelFormatError(f"cannot read the retry model {path}: {error}") from error
        return cls.from_dict(data, where=str(path))


# -- training rows -------------------------------------------------------------------------------------------


def observed_attempts(data_dir: Path) -> pd.DataFrame:
    """A data directory's attempts with their gateway answer (``status``, ``decline_code``), UTC times."""
    attempts = read_events(data_dir, EventKind.ATTEMPTS)
    outcomes = read_events(data_dir, EventKind.OUTCOMES, columns=["attempt_id", "status", "decline_code"])
    frame = attempts.merge(outcomes, on="attempt_id", validate="one_to_one")
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


def retry_history(
    frame: pd.DataFrame,
    before: datetime | pd.Timestamp,
    horizon: timedelta = timedelta(days=60),
    *,
    since: datetime | pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, npt.NDArray[np.bool_]]:
    """Observed attempts in ``[since, before)`` that follow a decline of the same payment method (with no
    approval since, within ``horizon``), with the planner's context, and whether each failed.

    Retries give the outcome a few days after a decline (the provider's own schedule); renewals charged on a
    card declined at its previous renewal give it about a period later: together they span the times the
    planner chooses among. The context of an attempt comes from every attempt before it, also before
    ``since``.
    """
    ordered = frame[frame["kind"].isin([AttemptKind.RENEWAL.value, AttemptKind.RETRY.value])]
    ordered = ordered.sort_values(["payment_method_id", "occurred_at"])
    method = ordered["payment_method_id"]
    approved = ordered["decline_code"].isna()
    # the latest decline of the method, cleared by an approval ("" until the next decline)
    code = ordered["decline_code"].where(~approved, "")
    at = ordered["occurred_at"].where(~approved, pd.NaT)
    last_code = code.groupby(method).shift(1)
    last_at = at.groupby(method).shift(1).where(last_code != "")
    first_at = ordered.groupby("invoice_id")["occurred_at"].transform("first")
    context = ordered.assign(
        last_decline_code=last_code.where(last_code != ""),
        last_declined_at=last_at,
        first_declined_at=first_at,
    )
    since_decline = context["occurred_at"] - context["last_declined_at"]
    chosen = (
        (context["occurred_at"] < before) & context["last_decline_code"].notna() & (since_decline <= horizon)
    )
    if since is not None:
        chosen &= context["occurred_at"] >= since
    kept = context[chosen]
    return kept.reset_index(drop=True), kept["decline_code"].notna().to_numpy(bool)
