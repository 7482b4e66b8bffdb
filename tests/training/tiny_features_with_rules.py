"""The tiny feature set with its own fraud baseline declared beside it (``BASELINES``)."""

from __future__ import annotations

from tests.training.tiny_features import FEATURE_SET

#: Fires on a card seen three times in the last 24 hours (the set's first feature).
BASELINES = [{"feature": FEATURE_SET.names[0], "op": ">=", "value": 3}]

__all__ = ["BASELINES", "FEATURE_SET"]
