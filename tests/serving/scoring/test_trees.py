"""The compiled walker against LightGBM: exact raw scores, additive contributions, similar top reasons."""

from __future__ import annotations

import functools

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serving.scoring.trees import CompiledTrees, UnsupportedModelError

ROWS = 2000


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, 6))
    x[:, 2] = rng.integers(0, 8, ROWS)  # categorical
    x[:, 4] = np.where(rng.random(ROWS) < 0.3, 0.0, x[:, 4])  # many zeros
    x[rng.random(x.shape) < 0.1] = np.nan
    logit = (
        np.nan_to_num(x[:, 0]) * 1.5
        + np.isin(x[:, 2], [1, 5])
        - np.nan_to_num(x[:, 4])
        + rng.normal(size=ROWS)
    )
    return x, (logit > 0.5).astype(int)


@pytest.fixture(scope="module", params=[{"zero_as_missing": False}, {"zero_as_missing": True}])
def booster(request: pytest.FixtureRequest) -> lgb.Booster:
    x, y = _data(0)
    params = {"objective": "binary", "num_leaves": 31, "verbose": -1, "min_data_in_leaf": 5, **request.param}
    return lgb.train(params, lgb.Dataset(x, y, categorical_feature=[2]), num_boost_round=60)


def test_raw_scores_equal_lightgbm_exactly(booster: lgb.Booster) -> None:
    x, _ = _data(1)
    x[:5, 2] = [-1.0, 99.0, np.nan, 3.7, 0.0]  # negative, unseen, missing, fractional categories
    compiled = CompiledTrees.from_booster(booster)
    np.testing.assert_array_equal(compiled.raw_scores(x), booster.predict(x, raw_score=True))
    np.testing.assert_allclose(compiled.probability(compiled.raw_scores(x)), booster.predict(x), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(row=arrays(np.float64, 6, elements=st.one_of(st.floats(-5, 5), st.just(0.0), st.just(np.nan))))
def test_contributions_add_up_to_the_raw_score(row: np.ndarray) -> None:
    compiled = _small_model()
    raw, bias, contributions = compiled.explain(row)
    assert raw == compiled.raw_scores(row.reshape(1, -1))[0]
    assert bias + contributions.sum() == pytest.approx(raw, abs=1e-9)


@functools.cache
def _small_model() -> CompiledTrees:
    x, y = _data(3)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(x, y, categorical_feature=[2]), 30
    )
    return CompiledTrees.from_booster(booster)


def test_top_reason_mostly_agrees_with_treeshap(booster: lgb.Booster) -> None:
    x, _ = _data(4)
    rows = x[:300]
    shap = np.asarray(booster.predict(rows, pred_contrib=True))[:, :-1]
    compiled = CompiledTrees.from_booster(booster)
    ours = np.array([compiled.explain(row)[2] for row in rows])
    same_top = np.argmax(np.abs(ours), axis=1) == np.argmax(np.abs(shap), axis=1)
    assert same_top.mean() > 0.7
    in_top_two = [np.argmax(np.abs(ours[i])) in np.argsort(-np.abs(shap[i]))[:2] for i in range(len(rows))]
    assert np.mean(in_top_two) > 0.9


def test_non_binary_models_and_wrong_widths_are_refused(booster: lgb.Booster) -> None:
    x, y = _data(5)
    regression = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, y.astype(float)), 5)
    with pytest.raises(UnsupportedModelError, match="binary classifiers only"):
        CompiledTrees.from_booster(regression)
    with pytest.raises(UnsupportedModelError, match="expects rows of 6 features"):
        CompiledTrees.from_booster(booster).raw_scores(np.zeros((1, 5)))
