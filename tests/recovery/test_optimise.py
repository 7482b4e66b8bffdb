"""The dynamic programme finds the best retry sequence (checked against brute force) and stops when a retry
does not pay for itself."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.optimise import Schedule, best_schedule


def brute_force(p: np.ndarray, value: np.ndarray, cost: float, k: int) -> float:
    """Best expected net value over every increasing sequence of at most k candidates."""
    best = 0.0
    m = len(value)
    for size in range(1, k + 1):
        for chosen in combinations(range(m), size):
            node, alive, net, ok = 0, 1.0, 0.0, True
            for i in chosen:
                q = p[node, i]
                if np.isnan(q):
                    ok = False
                    break
                net += alive * (value[i] * q - cost)
                alive *= 1.0 - q
                node = i + 1
            if ok:
                best = max(best, net)
    return best


def instance(seed: int, m: int, gap: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 0.6, size=(m + 1, m))
    for j in range(1, m + 1):  # a retry follows a node only if it is at least `gap` candidates later
        p[j, : min(m, j - 1 + gap)] = np.nan
    return p, rng.uniform(5.0, 20.0, size=m)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    m=st.integers(1, 7),
    gap=st.integers(1, 3),
    k=st.integers(1, 4),
    cost=st.floats(0.0, 3.0),
)
def test_the_programme_matches_brute_force(seed: int, m: int, gap: int, k: int, cost: float) -> None:
    p, value = instance(seed, m, gap)
    schedule = best_schedule(p, value, cost, k)
    assert schedule.value == pytest.approx(brute_force(p, value, cost, k), abs=1e-9)
    assert len(schedule.candidates) <= k
    assert list(schedule.candidates) == sorted(set(schedule.candidates))  # in time order, no repeats


def test_probabilities_are_conditional_on_the_previous_retry() -> None:
    p = np.array([[0.5, 0.5], [np.nan, 0.2], [np.nan, np.nan]])
    schedule = best_schedule(p, np.array([10.0, 10.0]), cost=0.0, k=2)
    assert schedule.candidates == (0, 1)
    assert schedule.p == (0.5, 0.2)
    assert schedule.recovery_probability == pytest.approx(1 - 0.5 * 0.8)
    assert schedule.expected_attempts == pytest.approx(1.5)
    assert schedule.value == pytest.approx(5.0 + 0.5 * 2.0)


def test_a_retry_worth_less_than_its_cost_is_not_made() -> None:
    p = np.array([[0.01, 0.02], [np.nan, 0.01], [np.nan, np.nan]])
    assert best_schedule(p, np.array([10.0, 10.0]), cost=0.5, k=4) == Schedule((), (), 0.0)


def test_a_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        best_schedule(np.zeros((2, 2)), np.zeros(2), 0.0, 1)
