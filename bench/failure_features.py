"""Which candidate features close the failure model's gap to the ground truth (issue 4), on validation only.

Simulates the default world into the scratch folder, builds the default feature set plus every candidate
group below in one batch-engine pass, then fits one LightGBM per variant with the search's default parameters
(trial 0) and early stopping on the validation window, and reports each variant's validation ROC AUC next to
the ground truth's. Two *oracle* variants add the simulator's latent traits (the customer's funds fragility;
the BIN's issuer quality and the card's stolen status) to say how much of the gap those hidden causes
explain. The test window is never looked at: choices are made on validation, the test figure comes from
``riskgate train``.

The validation window holds about 19,000 attempts (3,800 failures): differences under ~0.003 ROC AUC are
noise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from pandas.api.types import is_numeric_dtype

from events.schema import DeclineFamily
from features.definitions import (
    ACCOUNT,
    APPROVED,
    BIN,
    CARD,
    DECLINED,
    Aggregate,
    Definition,
    FeatureSet,
    Op,
    Source,
    days,
    family_filter,
    hours,
)

logger = logging.getLogger(__name__)

OUT = Source.OUTCOMES
FUNDS = family_filter(DeclineFamily.FUNDS)
ISSUER = family_filter(DeclineFamily.ISSUER)
TECHNICAL = family_filter(DeclineFamily.TECHNICAL)

#: Candidate feature groups, each aimed at one cause of failure in simulator.truth.
CANDIDATES: dict[str, tuple[Definition, ...]] = {
    "bin_issuer_quality_long": (
        Aggregate(BIN, OUT, Op.RATIO, days(30), DECLINED),
        Aggregate(BIN, OUT, Op.RATIO, days(90), DECLINED),
        Aggregate(BIN, OUT, Op.RATIO, days(30), ISSUER),
        Aggregate(BIN, OUT, Op.RATIO, days(90), ISSUER),
        Aggregate(BIN, OUT, Op.RATIO, days(90), FUNDS),
    ),
    "card_last_decline_cause": (
        Aggregate(CARD, OUT, Op.TIME_SINCE_LAST, filter=FUNDS),
        Aggregate(CARD, OUT, Op.TIME_SINCE_LAST, filter=ISSUER),
        Aggregate(CARD, OUT, Op.CONSECUTIVE, filter=FUNDS),
        Aggregate(CARD, OUT, Op.CONSECUTIVE, filter=ISSUER),
    ),
    "account_fragility": (
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(90), FUNDS),
        Aggregate(ACCOUNT, OUT, Op.RATIO, days(90), FUNDS),
        Aggregate(ACCOUNT, OUT, Op.COUNT, filter=FUNDS),
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(90), APPROVED),
        Aggregate(ACCOUNT, OUT, Op.COUNT, days(90), DECLINED),
        Aggregate(ACCOUNT, OUT, Op.TIME_SINCE_LAST, filter=FUNDS, unit="days"),
    ),
    "recent_errors": (
        Aggregate(BIN, OUT, Op.COUNT, hours(1), TECHNICAL),
        Aggregate(CARD, OUT, Op.TIME_SINCE_LAST, filter=TECHNICAL),
    ),
}
#: Latent traits of the simulator's truth table, added as oracle features.
ORACLES: dict[str, tuple[str, ...]] = {
    "oracle_fragility": ("fragility",),
    "oracle_issuer_and_stolen": ("issuer_logit", "card_status"),
}


def candidate_set() -> FeatureSet:
    """The default feature set followed by every candidate group."""
    from features.iptv import FEATURE_SET  # noqa: PLC0415 - heavy imports stay out of discovery

    extra = [d for group in CANDIDATES.values() for d in group if d.name not in set(FEATURE_SET.names)]
    return FeatureSet("iptv_failure_candidates", (*FEATURE_SET.definitions, *extra))


def run(scratch: Path) -> dict[str, Any]:
    from events.io import read_table  # noqa: PLC0415
    from features.iptv import FEATURE_SET  # noqa: PLC0415
    from simulator import WorldConfig, simulate  # noqa: PLC0415
    from training.baselines import IPTV_BASELINES  # noqa: PLC0415
    from training.config import Task, load_config  # noqa: PLC0415
    from training.data import TRUTH_TABLE, ChosenFeatureSet, load_inputs  # noqa: PLC0415
    from training.dataset import task_data  # noqa: PLC0415

    data_dir = scratch / "data"
    simulate(WorldConfig(), data_dir)
    config = load_config()
    inputs = load_inputs(data_dir, ChosenFeatureSet.named(f"{__name__}:candidate_set"), IPTV_BASELINES)
    data = task_data(inputs.frame, Task.FAILURE, inputs.contract, config)
    names = list(inputs.contract.names)
    base = list(FEATURE_SET.names)
    truth = read_table(data_dir, TRUTH_TABLE).to_pandas().set_index("attempt_id")

    def latent(window: Any, columns: tuple[str, ...]) -> np.ndarray:
        rows = truth.loc[window.meta["attempt_id"].to_numpy(), list(columns)]
        # card_status is a label ("ok", "stolen", ...): its category code is the oracle feature.
        codes = {c: rows[c].astype("category").cat.codes for c in columns if not is_numeric_dtype(rows[c])}
        return np.asarray(rows.assign(**codes).to_numpy(dtype=float))

    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    results: dict[str, Any] = {
        "validation_attempts": len(data.validation.labels),
        "validation_failures": int(data.validation.labels.sum()),
        "truth_validation_roc_auc": round(
            float(roc_auc_score(data.validation.labels, data.validation.column("p_fail"))), 4
        ),
    }
    variants = {
        "default": base,
        **{f"default+{g}": base + [d.name for d in CANDIDATES[g]] for g in CANDIDATES},
    }
    variants["default+all_candidates"] = names
    for label, columns in variants.items():
        idx = [names.index(c) for c in columns]
        results[label] = _fit(
            data, config, columns, data.train.matrix.X[:, idx], data.validation.matrix.X[:, idx]
        )
    for label, traits in ORACLES.items():
        idx = [names.index(c) for c in base]
        train_x = np.hstack([data.train.matrix.X[:, idx], latent(data.train, traits)])
        valid_x = np.hstack([data.validation.matrix.X[:, idx], latent(data.validation, traits)])
        results[f"default+{label}"] = _fit(data, config, [*base, *traits], train_x, valid_x)
    return results


def _fit(
    data: Any, config: Any, columns: list[str], train_x: np.ndarray, valid_x: np.ndarray
) -> dict[str, Any]:
    """Validation ROC AUC and stopping round of one variant, with the search's default parameters."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415

    from training.booster import Matrix, datasets, default_params, fit_booster  # noqa: PLC0415

    categorical = [c for c in data.contract.categorical if c in columns]
    train_set, valid_set = datasets(
        Matrix(train_x, data.train.labels), Matrix(valid_x, data.validation.labels), columns, categorical
    )
    booster = fit_booster(
        train_set,
        valid_set,
        params=default_params(config.model.search_space),
        metric="roc_auc",
        config=config.model,
        seed=config.seed,
    )
    auc = float(roc_auc_score(data.validation.labels, booster.predict(valid_x)))
    logger.info("%d features: validation ROC AUC %.4f", len(columns), auc)
    return {"features": len(columns), "validation_roc_auc": round(auc, 4), "rounds": booster.best_iteration}
