"""The best retry sequence over a grid of candidate times, by dynamic programming.

Node 0 is the decline just received; node ``i`` (1..M) is a retry at candidate time ``i - 1``.
``p[j, i]`` is the success probability of a retry at candidate ``i`` when the last decline happened at node
``j`` (so the model can account for the time since the *previous* declined retry: successive retries are not
independent); ``nan`` where a retry at ``i`` cannot follow ``j`` (too soon, or not later). ``value[i]`` is
what recovering at candidate ``i`` is worth and ``cost`` what one retry costs.

With ``k`` retries left after a decline at node ``j``::

    V_k(j) = max(0, max_i [ value_i p_ji − cost + (1 − p_ji) V_{k−1}(i) ]),   V_0 = 0

The ``0`` is stopping: a retry whose expected gain, including what it leads to, is below its cost is not made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Schedule:
    """Chosen candidates (indices into the grid) in time order, each with its conditional success
    probability (given that the retries before it were declined), and the expected net value."""

    candidates: tuple[int, ...]
    p: tuple[float, ...]
    value: float

    @property
    def recovery_probability(self) -> float:
        return 1.0 - float(np.prod([1.0 - p for p in self.p]))

    @property
    def expected_attempts(self) -> float:
        return float(sum(np.prod([1.0 - q for q in self.p[:n]]) for n in range(len(self.p))))


def best_schedule(p: FloatArray, value: FloatArray, cost: float, k: int) -> Schedule:
    """The schedule of at most ``k`` retries maximising the expected net value (see the module docstring)."""
    m = len(value)
    if p.shape != (m + 1, m):
        raise ValueError(f"p must have shape (candidates + 1, candidates) = {(m + 1, m)}, got {p.shape}")
    feasible = ~np.isnan(p)
    q = np.where(feasible, p, 0.0)
    future = np.zeros(m)  # V_{k-1} at each candidate node
    choices: list[npt.NDArray[np.int64]] = []
    gains: list[FloatArray] = []
    for _ in range(k):
        gain = np.where(feasible, value[None, :] * q - cost + (1.0 - q) * future[None, :], -np.inf)
        best = np.argmax(gain, axis=1) if m else np.zeros(m + 1, dtype=np.int64)
        top = gain[np.arange(m + 1), best] if m else np.full(m + 1, -np.inf)
        choices.append(best)
        gains.append(np.maximum(top, 0.0))
        future = gains[-1][1:]
    return _walk(q, choices, gains, k)


def _walk(q: FloatArray, choices: list[npt.NDArray[np.int64]], gains: list[FloatArray], k: int) -> Schedule:
    """Follow the best choices from node 0 while a retry adds value."""
    node, picked, probabilities = 0, [], []
    total = float(gains[-1][0]) if k else 0.0
    for left in range(k, 0, -1):
        if gains[left - 1][node] <= 0.0:
            break
        i = int(choices[left - 1][node])
        picked.append(i)
        probabilities.append(float(q[node, i]))
        node = i + 1
    return Schedule(tuple(picked), tuple(probabilities), total)
