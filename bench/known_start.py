"""History that starts mid-life: drift of "time since first seen" against an age from the known start.

A provider's export begins on some date, so ``*_since_first`` features measure how far the export reaches
back, not the customer: they grow with the export's age, and a model's reference distribution (taken on its
validation window) never matches later months. The default IPTV world now exports each account's known start
(``account_created_at``, before the export for subscribers who joined earlier), and an ``AGE`` request feature
reads it. This benchmark simulates the default world, builds both kinds of feature with the batch engine, and
measures the population stability index (PSI, :func:`serving.readers.drift.psi`, on the reference quantiles
training
saves, :data:`training.trainer.REFERENCE_QUANTILES`) of the last 28 days (what a backtest of the last month
serves) against the default fraud model's validation window (21 days ending 28 + 80 days before the data's
end: the test window and the 80-day label delay after it). Below 0.1 is stable, from 0.25 significant.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

VALIDATION_DAYS = 21
TEST_DAYS = 28
LABEL_DELAY_DAYS = 80
CURRENT_DAYS = 28


def _feature_set() -> Any:
    from features.definitions import (  # noqa: PLC0415 - heavy imports stay out of discovery
        ACCOUNT,
        CARD,
        Aggregate,
        FeatureSet,
        Op,
        RequestFeature,
        Source,
        Transform,
    )

    return FeatureSet(
        "known_start",
        (
            Aggregate(ACCOUNT, Source.ATTEMPTS, Op.TIME_SINCE_FIRST, unit="days"),
            Aggregate(CARD, Source.ATTEMPTS, Op.TIME_SINCE_FIRST, unit="days"),
            RequestFeature(Transform.AGE, "account_created_at", unit="days"),
        ),
    )


def _psi(reference: pd.Series, current: pd.Series) -> dict[str, Any]:
    from serving.readers.drift import Bins, band, psi  # noqa: PLC0415
    from training.trainer import REFERENCE_QUANTILES  # noqa: PLC0415

    finite = reference[np.isfinite(reference)]
    bins = Bins.from_reference(
        np.quantile(finite, REFERENCE_QUANTILES).tolist(),
        REFERENCE_QUANTILES,
        float(1.0 - len(finite) / len(reference)),
    )
    value = round(psi(bins.expected, bins.shares(current.to_numpy(dtype=np.float64))), 4)
    return {
        "psi": value,
        "band": band(value),
        "reference_median_days": round(float(np.nanmedian(reference)), 1),
        "current_median_days": round(float(np.nanmedian(current)), 1),
    }


def run(scratch: Path) -> dict[str, Any]:
    from events.io import read_events  # noqa: PLC0415
    from events.schema import EventKind  # noqa: PLC0415
    from features.batch import build_features  # noqa: PLC0415
    from simulator import WorldConfig, simulate  # noqa: PLC0415

    data_dir = scratch / "data"
    simulate(WorldConfig(), data_dir)
    attempts, outcomes, reports = (read_events(data_dir, kind) for kind in EventKind)
    feature_set = _feature_set()
    features = build_features(attempts, outcomes, reports, feature_set)
    at = pd.to_datetime(attempts["occurred_at"], utc=True).reset_index(drop=True)
    end = at.max()
    validation_end = end - pd.Timedelta(days=TEST_DAYS + LABEL_DELAY_DAYS)
    reference = (at >= validation_end - pd.Timedelta(days=VALIDATION_DAYS)) & (at < validation_end)
    current = at >= end - pd.Timedelta(days=CURRENT_DAYS)
    names = feature_set.names
    rows = {name: _psi(features.loc[reference, name], features.loc[current, name]) for name in names}
    return {
        "world": "default (simulator.WorldConfig())",
        "attempts": len(attempts),
        "reference_window": [str(validation_end - pd.Timedelta(days=VALIDATION_DAYS)), str(validation_end)],
        "current_window": [str(end - pd.Timedelta(days=CURRENT_DAYS)), str(end)],
        "reference_rows": int(reference.sum()),
        "current_rows": int(current.sum()),
        "features": rows,
        "load_average": os.getloadavg()[0],
    }
