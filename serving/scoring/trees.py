"""A LightGBM booster compiled to flat arrays and walked by numba: raw score and per-feature contributions.

Serving scores one attempt at a time, where ``Booster.predict`` pays a fixed cost per call and
``pred_contrib=True`` (TreeSHAP) costs milliseconds. Here the booster's own model dump is flattened once into
two node tables (one row per node of every tree: integers and floats, packed for cache locality) and small
jit-compiled loops walk them:

* :meth:`CompiledTrees.raw_scores` sums the leaf values of each row's path, tree by tree, the way LightGBM
  does, so the raw score is the booster's own (tested for exact equality);
* :meth:`CompiledTrees.explain` walks the same paths and credits each split's feature with the change of the
  node value along the path (Saabas attribution): ``bias + sum(contributions) == raw score``.

Decisions follow LightGBM's rules: numerical splits go left when ``value <= threshold``; a missing value
follows the node's missing type (``None``: it is 0; ``Zero``/``NaN``: the default direction); categorical
splits go left when the integer value is in the node's category set (negative or NaN: right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

from core.errors import RiskgateError

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

# Columns of the integer node table (a split's left child is the next node: they are laid out depth-first).
FEATURE, RIGHT, KIND, CAT_START = range(4)
# KIND of a split: missing type (bits 0-1), default left (bit 2), categorical (bit 3); a categorical split's
# categories are categories[CAT_START : CAT_START of the next categorical split], kept as (start, end) pairs.
_DEFAULT_LEFT_BIT: Final = 4
_CATEGORICAL_BIT: Final = 8
# Columns of the float node table.
THRESHOLD, VALUE = range(2)

MISSING_NONE: Final = 0
MISSING_ZERO: Final = 1
MISSING_NAN: Final = 2
_MISSING_TYPES: Final = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}
_ZERO_THRESHOLD: Final = 1e-35  # LightGBM's kZeroThreshold
_BINARY_OBJECTIVES: Final = frozenset({"binary", "cross_entropy", "xentropy"})


class UnsupportedModelError(RiskgateError, ValueError):
    """The booster uses something this walker does not implement (it refuses rather than guess)."""


@numba.njit(cache=True, nogil=True, inline="always")
def _child(node: int, value: float, ints: I32, floats: F64, categories: I32) -> int:
    """The child of split ``node`` that a row whose split feature is ``value`` goes to (LightGBM's rules)."""
    right: int = ints[node, RIGHT]
    kind = ints[node, KIND]
    if kind & _CATEGORICAL_BIT:
        return _categorical_child(node, right, value, ints, categories)
    if math.isnan(value):
        if kind & 3 == MISSING_NAN:
            return node + 1 if kind & _DEFAULT_LEFT_BIT else right
        value = 0.0  # missing type None (or Zero): a missing value counts as 0
    if kind & 3 == MISSING_ZERO and abs(value) <= _ZERO_THRESHOLD:
        return node + 1 if kind & _DEFAULT_LEFT_BIT else right
    return node + 1 if value <= floats[node, THRESHOLD] else right


@numba.njit(cache=True, nogil=True, inline="always")
def _categorical_child(node: int, right: int, value: float, ints: I32, categories: I32) -> int:
    """Left when the integer value is one of the split's categories (negative or NaN: right)."""
    if math.isnan(value) or value < 0.0:
        return right
    category = int(value)
    start = ints[node, CAT_START]
    for k in range(categories[start], categories[start + 1]):
        if categories[k] == category:
            return node + 1
    return right


@numba.njit(cache=True, nogil=True)
def _raw_scores(rows: F64, roots: I32, ints: I32, floats: F64, categories: I32) -> F64:
    out = np.empty(rows.shape[0])
    for r in range(rows.shape[0]):
        total = 0.0
        for root in roots:
            node = root
            while ints[node, FEATURE] >= 0:
                node = _child(node, rows[r, ints[node, FEATURE]], ints, floats, categories)
            total += floats[node, VALUE]
        out[r] = total
    return out


@numba.njit(cache=True, nogil=True)
def _explain(row: F64, roots: I32, ints: I32, floats: F64, categories: I32) -> tuple[float, float, F64]:
    """(raw score, bias, contribution per feature) of one row."""
    contributions = np.zeros(row.shape[0])
    total = 0.0
    bias = 0.0
    for root in roots:
        node = root
        bias += floats[root, VALUE]
        while ints[node, FEATURE] >= 0:
            child = _child(node, row[ints[node, FEATURE]], ints, floats, categories)
            contributions[ints[node, FEATURE]] += floats[child, VALUE] - floats[node, VALUE]
            node = child
        total += floats[node, VALUE]
    return total, bias, contributions


@dataclass(frozen=True)
class CompiledTrees:
    """Every tree of a binary LightGBM model as node tables (``FEATURE == -1`` marks a leaf)."""

    feature_names: tuple[str, ...]
    sigmoid: float
    roots: I32
    ints: I32
    floats: F64
    categories: I32

    @classmethod
    def from_booster(cls, booster: Any) -> CompiledTrees:
        """Compile a ``lightgbm.Booster`` (all its iterations) from its JSON model dump."""
        return _Flattener().compile(booster.dump_model(num_iteration=-1))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def raw_scores(self, rows: F64) -> F64:
        """Raw scores (log-odds) of a 2-D array of rows in feature order."""
        matrix = np.ascontiguousarray(rows, dtype=np.float64)
        self._check_width(matrix.shape[-1])
        scores: F64 = _raw_scores(matrix, self.roots, self.ints, self.floats, self.categories)
        return scores

    def explain(self, row: F64) -> tuple[float, float, F64]:
        """``(raw score, bias, contributions)`` of one row; ``bias + sum(contributions)`` is the raw score."""
        vector = np.ascontiguousarray(row, dtype=np.float64)
        self._check_width(vector.shape[-1])
        raw, bias, contributions = _explain(vector, self.roots, self.ints, self.floats, self.categories)
        return float(raw), float(bias), contributions

    def probability(self, raw: F64 | float) -> F64:
        """The booster's probability (its sigmoid of the raw score), before calibration."""
        return np.asarray(1.0 / (1.0 + np.exp(-self.sigmoid * np.asarray(raw, dtype=np.float64))))

    def _check_width(self, width: int) -> None:
        if width != len(self.feature_names):
            raise UnsupportedModelError(
                f"the model expects rows of {len(self.feature_names)} features, got {width}: "
                "build rows with the feature set the model was trained on"
            )


class _Flattener:
    """Turns the nested JSON dump into the node tables of :class:`CompiledTrees` (depth-first order)."""

    def __init__(self) -> None:
        self.ints: list[list[int]] = []
        self.floats: list[list[float]] = []
        self.categories: list[int] = []

    def compile(self, dump: dict[str, Any]) -> CompiledTrees:
        sigmoid = _sigmoid_of(str(dump.get("objective", "")))
        roots = [self._add(tree["tree_structure"]) for tree in dump["tree_info"]]
        return CompiledTrees(
            feature_names=tuple(dump["feature_names"]),
            sigmoid=sigmoid,
            roots=np.array(roots, dtype=np.int32),
            ints=np.array(self.ints, dtype=np.int32).reshape(-1, 4),
            floats=np.array(self.floats, dtype=np.float64).reshape(-1, 2),
            categories=np.array(self.categories, dtype=np.int32),
        )

    def _add(self, node: dict[str, Any]) -> int:
        index = len(self.ints)
        ints = [-1, 0, MISSING_NONE, 0]
        floats = [0.0, 0.0]
        self.ints.append(ints)
        self.floats.append(floats)
        if "leaf_value" in node:
            floats[VALUE] = float(node["leaf_value"])
            return index
        ints[FEATURE] = int(node["split_feature"])
        missing = _MISSING_TYPES[str(node["missing_type"])]
        default_left = bool(node["default_left"])
        floats[VALUE] = float(node["internal_value"])
        if node["decision_type"] == "==":
            ints[KIND] = _CATEGORICAL_BIT | (_DEFAULT_LEFT_BIT if default_left else 0) | missing
            ints[CAT_START] = len(self.categories)
            chosen = [int(v) for v in str(node["threshold"]).split("||")]
            start = len(self.categories) + 2
            self.categories.extend([start, start + len(chosen), *chosen])
        elif node["decision_type"] == "<=":
            floats[THRESHOLD] = float(node["threshold"])
            if missing != MISSING_NONE:  # otherwise KIND stays MISSING_NONE: the walker's fast path
                ints[KIND] = (_DEFAULT_LEFT_BIT if default_left else 0) | missing
        else:
            raise UnsupportedModelError(f"split decision type {node['decision_type']!r} is not supported")
        if self._add(node["left_child"]) != index + 1:  # pragma: no cover - depth-first order guarantees it
            raise UnsupportedModelError("internal error: a split's left child must be the node after it")
        ints[RIGHT] = self._add(node["right_child"])
        return index


def _sigmoid_of(objective: str) -> float:
    """The sigmoid parameter of a binary objective (``"binary sigmoid:1"``); other objectives are refused."""
    parts = objective.split()
    if not parts or parts[0] not in _BINARY_OBJECTIVES:
        raise UnsupportedModelError(
            f"objective {objective!r}: the serving walker handles binary classifiers only "
            "(train with objective='binary')"
        )
    for part in parts[1:]:
        if part.startswith("sigmoid:"):
            return float(part.split(":", 1)[1])
    return 1.0
