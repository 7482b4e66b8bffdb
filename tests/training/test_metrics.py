from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.costs import NEVER, Stakes, best_threshold, money
from training.errors import DatasetError
from training.metrics import precision_top_k, ranking_metrics, recall_at_fpr, reliability


def test_recall_at_fpr_by_hand() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.2, 0.8, 0.4, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert recall_at_fpr(labels, scores, 0.0) == pytest.approx(1 / 3)  # only 0.9 above every negative
    assert recall_at_fpr(labels, scores, 1 / 9) == pytest.approx(2 / 3)  # allow the 0.8 negative
    assert recall_at_fpr(labels, scores, 1.0) == 1.0


def test_precision_top_k_per_day_and_per_account() -> None:
    days = pd.Series(["d1"] * 4 + ["d2"] * 2)
    accounts = pd.Series(["a", "a", "b", "c", "d", "e"])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.6, 0.5])
    labels = np.array([1, 1, 0, 1, 0, 1])
    # per attempt: d1 top2 = two hits of account a; d2 top2 = one hit
    assert precision_top_k(scores, labels, days, 2) == pytest.approx(3 / 4)
    # per account: d1 top2 = a (hit), b (miss); d2 = d (miss), e (hit)
    assert precision_top_k(scores, labels, days, 2, accounts) == pytest.approx(2 / 4)


def test_reliability_and_ece_by_hand() -> None:
    scores = np.array([0.05, 0.05, 0.95, 0.95])
    labels = np.array([0, 1, 1, 1])
    curve = reliability(scores, labels, bins=10)
    assert curve.predicted.tolist() == pytest.approx([0.05, 0.95])
    assert curve.observed.tolist() == pytest.approx([0.5, 1.0])
    assert curve.ece == pytest.approx((2 * 0.45 + 2 * 0.05) / 4)


def test_ranking_metrics_refuse_a_single_class() -> None:
    with pytest.raises(DatasetError, match="both classes"):
        ranking_metrics(
            np.array([0.1, 0.2]), np.array([0, 0]), pd.Series(["d", "d"]), pd.Series(["a", "b"]), (1,)
        )


def test_perfect_scores_have_perfect_ranking_metrics() -> None:
    labels = np.array([0, 0, 0, 1, 1] * 20)
    metrics = ranking_metrics(
        labels.astype(float), labels, pd.Series(["d"] * 100), pd.Series([str(i) for i in range(100)]), (5,)
    )
    assert metrics["roc_auc"] == 1.0
    assert metrics["average_precision"] == 1.0
    assert metrics["recall_at_0.5pct_fpr"] == 1.0
    assert metrics["brier"] == 0.0
    assert metrics["precision_top5_per_day"] == 1.0


def test_best_threshold_by_hand() -> None:
    scores = np.array([0.9, 0.7, 0.5, 0.3])
    labels = np.array([1, 0, 1, 0])
    stakes = Stakes(gain=np.array([10.0, 10.0, 10.0, 10.0]), cost=np.array([4.0, 4.0, 4.0, 4.0]))
    # flag 0.9: +10; flag ≥0.7: +6; flag ≥0.5: +16; flag all: +12
    assert best_threshold(scores, labels, stakes) == 0.5
    result = money(scores, labels, stakes, 0.5)
    assert result["net_value"] == 16.0
    assert result["value_saved"] == 20.0
    assert result["cost_of_false_flags"] == 4.0
    assert result["flagged"] == 3.0


def test_nothing_is_flagged_when_no_threshold_pays() -> None:
    stakes = Stakes(gain=np.array([1.0, 1.0]), cost=np.array([50.0, 50.0]))
    assert best_threshold(np.array([0.9, 0.8]), np.array([0, 1]), stakes) == NEVER


def test_tied_scores_are_flagged_together() -> None:
    scores = np.array([0.5, 0.5, 0.5])
    labels = np.array([1, 0, 0])
    stakes = Stakes(gain=np.array([100.0] * 3), cost=np.array([1.0] * 3))
    assert best_threshold(scores, labels, stakes) == 0.5
    assert money(scores, labels, stakes, 0.5)["flagged"] == 3


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.booleans(), st.floats(0.1, 100), st.floats(0.1, 100)),
        min_size=1,
        max_size=40,
    )
)
def test_best_threshold_beats_every_other_cut(rows: list[tuple[float, bool, float, float]]) -> None:
    scores = np.array([r[0] for r in rows])
    labels = np.array([int(r[1]) for r in rows])
    stakes = Stakes(gain=np.array([r[2] for r in rows]), cost=np.array([r[3] for r in rows]))
    best = money(scores, labels, stakes, best_threshold(scores, labels, stakes))["net_value"]
    for cut in [*scores, NEVER]:
        assert best >= money(scores, labels, stakes, cut)["net_value"] - 1e-9
