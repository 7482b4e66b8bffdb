"""The rules a billing team would use without a model; the models must beat them.

* Fraud (``baselines.fraud`` in the training config, :func:`choose`): the IPTV billing team's velocity and
  country-mismatch rules over the attempt's own fields (the score is the number that fire, 0–5); or rules
  declared over the feature set's features (in the config, or as ``BASELINES`` in the feature set's module);
  or none. The IPTV rules are computed only for the IPTV feature set unless asked for: on another provider's
  data their country rules can flag half the attempts.
* Failure: "declined last time": 1 if the account's previous attempt (whose answer was already known) was
  declined or errored, 0 if it was approved, and the training window's failure rate when the account has no
  earlier answered attempt (a stated prior, not a hidden zero).

Every rule looks only at the attempt itself and at attempts strictly before it.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from features.definitions import FeatureSet
from features.registry import DEFAULT_SPEC
from training.config import BaselineConfig, BaselineRule
from training.errors import ConfigError

FRAUD_RULES_COLUMN = "baseline_fraud_rules"
#: One time resolution for the as-of join (inputs may come in µs from Parquet or ns from pandas).
TIME_DTYPE = pd.DatetimeTZDtype("ns", "UTC")
DECLINED_LAST_TIME_COLUMN = "baseline_declined_last_time"

#: Velocity rules: (entity column, window, attempts before this one in the window that fire the rule).
VELOCITY_RULES: tuple[tuple[str, pd.Timedelta, int], ...] = (
    ("account_id", pd.Timedelta(hours=24), 3),
    ("payment_method_id", pd.Timedelta(hours=24), 3),
    ("ip", pd.Timedelta(hours=1), 3),
)
#: Country-mismatch rules: both countries known and different.
MISMATCH_RULES: tuple[tuple[str, str], ...] = (
    ("card_country", "ip_country"),
    ("billing_country", "ip_country"),
)

#: The attempt columns the rules read (the attempt's id, account and time, and the rules' own columns).
ATTEMPT_COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            "attempt_id",
            "occurred_at",
            "account_id",
            *(column for column, _, _ in VELOCITY_RULES),
            *(column for pair in MISMATCH_RULES for column in pair),
        ]
    )
)


#: The feature set module's attribute that declares its fraud baseline (a list of rules, see BaselineRule).
MODULE_BASELINES: Final = "BASELINES"
IPTV_MODULE: Final = DEFAULT_SPEC.partition(":")[0]
_COMPARE: Final[dict[str, Callable[[np.ndarray, float], np.ndarray]]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Baselines:
    """The baseline scorers of a run: the fraud rules (IPTV, declared over features, or none) and whether
    the failure model is compared with "declined last time"."""

    fraud: Literal["iptv_rules"] | tuple[BaselineRule, ...] | None
    failure: bool = True

    def attempt_columns(self) -> tuple[str, ...]:
        """The attempt columns the baselines read beyond the id, time and account."""
        return ATTEMPT_COLUMNS if self.fraud == "iptv_rules" else ATTEMPT_COLUMNS[:3]

    def describe(self) -> str:
        """One line for run params: which baselines were computed."""
        if self.fraud is None or self.fraud == "iptv_rules":
            fraud = str(self.fraud or "none")
        else:
            fraud = "; ".join(f"{rule.feature} {rule.op} {rule.value:g}" for rule in self.fraud)
        return f"fraud: {fraud}, failure: {'declined_last_time' if self.failure else 'none'}"


#: The IPTV billing team's rules for both tasks (the default world's baselines).
IPTV_BASELINES: Final = Baselines("iptv_rules")


def choose(config: BaselineConfig, feature_set_spec: str, feature_set: FeatureSet) -> Baselines:
    """The baselines ``config`` asks for, for the feature set named by ``feature_set_spec``.

    ``auto`` takes the module's :data:`MODULE_BASELINES` when it declares them, the IPTV rules for the IPTV
    feature set, else no fraud baseline. Rules over features the set lacks are a :class:`ConfigError`.
    """
    fraud: Literal["iptv_rules"] | tuple[BaselineRule, ...] | None
    if config.fraud == "auto":
        module_name = feature_set_spec.partition(":")[0]
        declared = getattr(importlib.import_module(module_name), MODULE_BASELINES, None)
        if declared is not None:
            fraud = _declared_rules(declared, module_name)
        else:
            fraud = "iptv_rules" if module_name == IPTV_MODULE else None
    elif config.fraud == "none":
        fraud = None
    else:
        fraud = config.fraud
    if isinstance(fraud, tuple):
        unknown = sorted({rule.feature for rule in fraud} - set(feature_set.names))
        if unknown:
            raise ConfigError(
                f"baseline rules read {unknown}, which feature set {feature_set.name} ({feature_set.hash}) "
                "does not define: name its features (`riskgate features list`) or set baselines.fraud=none"
            )
    return Baselines(fraud, failure=config.failure != "none")


def _declared_rules(declared: object, module_name: str) -> tuple[BaselineRule, ...]:
    try:
        return TypeAdapter(tuple[BaselineRule, ...]).validate_python(declared)
    except ValidationError as error:
        raise ConfigError(
            f"{module_name}.{MODULE_BASELINES} must be a list of rules {{feature, op, value}} "
            f"(training.config.BaselineRule): {error.errors()[0]['msg']}"
        ) from error


def rules_fired(features: pd.DataFrame, rules: tuple[BaselineRule, ...]) -> np.ndarray:
    """Per row of ``features``, how many of ``rules`` fire (a missing value never fires)."""
    fired = np.zeros(len(features))
    for rule in rules:
        values = features[rule.feature].to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            fired += np.isfinite(values) & _COMPARE[rule.op](values, rule.value)
    return fired


def prior_count(entity: pd.Series, times: pd.Series, window: pd.Timedelta) -> np.ndarray:
    """Per row, how many rows of the same entity occurred in ``[time - window, time)``.

    Rows with a missing entity count 0 (no entity, no velocity). Ties at the same instant are not "before".
    """
    codes, _ = pd.factorize(entity, use_na_sentinel=True)
    seconds = (times - times.min()).dt.total_seconds().to_numpy()
    span = float(seconds.max()) + window.total_seconds() + 1.0
    key = codes.astype(float) * span + seconds
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    before = np.searchsorted(sorted_key, key, side="left")
    window_start = np.searchsorted(sorted_key, key - window.total_seconds(), side="left")
    counts = (before - window_start).astype(float)
    counts[codes < 0] = 0.0
    return np.asarray(counts, dtype=float)


def fraud_rules(attempts: pd.DataFrame) -> pd.Series:
    """Number of fraud rules that fire per attempt (index aligned with ``attempts``)."""
    fired = np.zeros(len(attempts))
    for column, window, limit in VELOCITY_RULES:
        fired += prior_count(attempts[column], attempts["occurred_at"], window) >= limit
    for left, right in MISMATCH_RULES:
        known = attempts[left].notna() & attempts[right].notna()
        fired += (known & (attempts[left] != attempts[right])).to_numpy(dtype=bool)
    return pd.Series(fired, index=attempts.index, name=FRAUD_RULES_COLUMN)


def declined_last_time(attempts: pd.DataFrame, outcomes: pd.DataFrame) -> pd.Series:
    """1/0 whether the account's last answered attempt failed; NaN when there is none yet.

    "Answered" means the gateway's answer (``outcomes.occurred_at``) came strictly before this attempt.
    """
    answers = attempts[["attempt_id", "account_id"]].merge(
        outcomes[["attempt_id", "occurred_at", "status"]], on="attempt_id", how="inner"
    )
    answers = answers.rename(columns={"occurred_at": "answered_at"})
    answers["answered_at"] = answers["answered_at"].astype(TIME_DTYPE)
    answers["failed"] = (answers["status"] != "approved").astype(float)
    answers = answers.sort_values("answered_at", kind="stable")
    left = pd.DataFrame(
        {
            "_row": np.arange(len(attempts)),
            "account_id": attempts["account_id"].reset_index(drop=True),
            "occurred_at": attempts["occurred_at"].reset_index(drop=True).astype(TIME_DTYPE),
        }
    ).sort_values("occurred_at", kind="stable")
    merged = pd.merge_asof(
        left,
        answers[["account_id", "answered_at", "failed"]],
        left_on="occurred_at",
        right_on="answered_at",
        by="account_id",
        allow_exact_matches=False,
    )
    return pd.Series(
        merged.set_index("_row")["failed"].reindex(range(len(attempts))).to_numpy(),
        index=attempts.index,
        name=DECLINED_LAST_TIME_COLUMN,
    )
