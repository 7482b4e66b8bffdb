"""Request-time features: the online engine's one-attempt path gives exactly the vectorised path's floats."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features import request
from features.definitions import VOCABULARY, RequestFeature, Transform
from features.iptv import FEATURE_SET

DEFINITIONS = [d for d in FEATURE_SET.definitions if isinstance(d, RequestFeature)]
MICROSECONDS = st.integers(min_value=-2_000_000_000_000_000, max_value=6_000_000_000_000_000)


def _value_of(column: str) -> st.SearchStrategy[Any]:
    """Anything an attempt's field may hold: missing, a valid value, or any other text."""
    options: list[st.SearchStrategy[Any]] = [st.none(), st.text(max_size=12)]
    if column in VOCABULARY:
        options.append(st.sampled_from(sorted(VOCABULARY[column])))
    if column == "card_exp":
        options.append(st.builds("{:04d}-{:02d}".format, st.integers(1900, 2200), st.integers(0, 13)))
    if any(d.transform == Transform.NUMBER and d.column == column for d in DEFINITIONS):
        options = [st.none(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.booleans()]
    return st.one_of(*options)


ATTEMPTS = st.fixed_dictionaries({c: _value_of(c) for c in request.required_columns(DEFINITIONS)})


def test_every_transform_of_the_feature_set_is_exercised() -> None:
    assert {d.transform for d in DEFINITIONS} == set(Transform)


@settings(max_examples=300, deadline=None)
@given(attempt=ATTEMPTS, t_us=MICROSECONDS)
def test_one_attempt_gives_the_vectorised_features_exactly(attempt: dict[str, Any], t_us: int) -> None:
    columns = {c: np.array([v], dtype=object) for c, v in attempt.items()}
    vectorised = request.compute(DEFINITIONS, columns, np.array([t_us], dtype=np.int64))[0]
    one = request.compute_one(DEFINITIONS, attempt, t_us)
    assert one.dtype == np.float64
    assert np.array_equal(one, vectorised, equal_nan=True), dict(
        zip([d.name for d in DEFINITIONS], one, strict=True)
    )


def test_a_transform_without_a_scalar_form_goes_through_the_vectorised_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempt = {"card_exp": "2027-02", "amount": 9.99, "billing_country": "DE", "ip_country": "FR"}
    t_us = 1_780_000_000_000_000
    expected = request.compute_one(DEFINITIONS, attempt, t_us)
    monkeypatch.setattr(request, "_SCALAR", {})
    assert np.array_equal(request.compute_one(DEFINITIONS, attempt, t_us), expected, equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(attempt=ATTEMPTS, t_us=MICROSECONDS)
def test_compute_at_one_time_is_the_vectorised_row(attempt: dict[str, Any], t_us: int) -> None:
    """The scoring path (one query time) takes the scalar route; it must give the batch engine's floats."""
    columns = {c: np.array([v], dtype=object) for c, v in attempt.items()}
    times = np.array([t_us], dtype=np.int64)
    vectorised = request.compute(DEFINITIONS, columns, times)
    at = request.compute_at(DEFINITIONS, attempt, times)
    assert at.shape == vectorised.shape
    assert np.array_equal(at, vectorised, equal_nan=True)
