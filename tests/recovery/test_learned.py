"""The retry model: its stored form predicts exactly what the fitted model does, refuses another design, and
its training rows come only from the period asked for."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from recovery.learned import (
    RETRY_COLUMNS,
    RETRY_DESIGN_HASH,
    NotFittedError,
    RetryModel,
    RetryModelFormatError,
    observed_attempts,
    retry_features,
    retry_history,
)
from tests.recovery.factories import DECLINED_AT, fitted_retry_model, retry_rows


def test_predictions_are_the_logistic_regression_on_standardised_columns() -> None:
    frame, failed = retry_rows()
    model = RetryModel().fit(frame, failed)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    reference.fit(retry_features(frame), failed)
    np.testing.assert_allclose(model(frame), reference.predict_proba(retry_features(frame))[:, 1], atol=1e-9)
    assert retry_features(frame).shape[1] == len(RETRY_COLUMNS) == len(model.coefficients())


@settings(max_examples=25, deadline=None)
@given(
    days=st.lists(st.floats(0.0, 90.0), min_size=1, max_size=20),
    amount=st.floats(0.5, 500.0),
    retry_number=st.integers(1, 6),
    funding=st.sampled_from(["debit", "credit", "prepaid"]),
)
def test_the_stored_model_predicts_what_the_fitted_one_does(
    days: list[float], amount: float, retry_number: int, funding: str
) -> None:
    model = fitted_retry_model()
    frame, _ = retry_rows(n=len(days))
    frame["occurred_at"] = pd.Timestamp(DECLINED_AT) + pd.to_timedelta(days, unit="D")
    frame["amount"], frame["retry_number"], frame["card_funding"] = amount, retry_number, funding
    stored = RetryModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(stored(frame), model(frame))
    assert stored.info_ == model.info_
    assert ((stored(frame) > 0) & (stored(frame) < 1)).all()


def test_a_stored_model_of_another_design_or_kind_is_refused(tmp_path: Path) -> None:
    data = fitted_retry_model().to_dict()
    with pytest.raises(RetryModelFormatError, match=f"this code builds {RETRY_DESIGN_HASH}"):
        RetryModel.from_dict({**data, "design_hash": "0123456789abcdef"})
    with pytest.raises(RetryModelFormatError, match="not a riskgate retry model"):
        RetryModel.from_dict({**data, "kind": "something-else"})
    with pytest.raises(RetryModelFormatError, match="wrong length"):
        RetryModel.from_dict({**data, "coef": data["coef"][:-1]})
    broken = tmp_path / "retry_model.json"
    broken.write_text("{not json")
    with pytest.raises(RetryModelFormatError, match="cannot read"):
        RetryModel.load(broken)
    with pytest.raises(NotFittedError):
        RetryModel().to_dict()


def test_a_candidate_without_a_previous_decline_gets_no_family_terms() -> None:
    frame, _ = retry_rows(n=2)
    frame["last_decline_code"] = None
    frame["last_declined_at"] = pd.NaT
    x = retry_features(frame)
    family_columns = [i for i, name in enumerate(RETRY_COLUMNS) if name.startswith("family=")]
    assert (x[:, family_columns] == 0).all()
    with pytest.raises(KeyError, match="last_declined_at"):
        retry_features(frame.drop(columns="last_declined_at"))


def test_retry_history_takes_rows_of_the_period_with_context_from_before(recovery_world: Path) -> None:
    frame = observed_attempts(recovery_world)
    middle = pd.Timestamp(frame["occurred_at"].sort_values().iloc[len(frame) // 2])
    before, failed_before = retry_history(frame, middle)
    inside, failed_inside = retry_history(frame, middle + timedelta(days=30), since=middle)
    assert (before["occurred_at"] < middle).all()
    assert ((inside["occurred_at"] >= middle) & (inside["occurred_at"] < middle + timedelta(days=30))).all()
    assert (inside["last_declined_at"] < inside["occurred_at"]).all()
    assert len(failed_before) == len(before)
    assert len(failed_inside) == len(inside) > 0
    assert set(np.unique(failed_inside)) == {False, True}
