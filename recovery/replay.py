"""riskgate's trained failure model in the recovery evaluation: online features from the world's own history.

:class:`ReplayedFailureModel` scores candidate retries with a failure-model bundle (``predict_proba`` over
feature rows) and the features the service would compute: an :class:`features.online.OnlineEngine` on a
memory store into which the world's events (attempts, outcomes, fraud reports as of when they were reported)
are replayed in time order, up to the moment each invoice is planned. Cases must be planned in time order
(the evaluation sorts them): the replay only moves forward, so a case never sees an event after its decline.

What the engine does not see: the retries the evaluation itself simulates (the planner's context columns carry
the last simulated decline, which :class:`recovery.models.FeatureVectorModel` does not pass to the engine), so
after a simulated decline the features still describe the invoice's first decline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.definitions import FeatureSet
from features.history import event_stream, load_history, ns_of, record
from features.online import OnlineEngine
from features.stores.memory import MemoryStore
from recovery.models import FeatureVectorModel, FloatArray, ProbabilityScorer

logger = logging.getLogger(__name__)


class ReplayedFailureModel:
    """A failure bundle over online features replayed from a world's history, forward in time."""

    def __init__(self, data_dir: Path, feature_set: FeatureSet, scorer: ProbabilityScorer) -> None:
        self.engine = OnlineEngine(MemoryStore(), feature_set)
        self.model = FeatureVectorModel(self.engine, scorer)
        self._stream = event_stream(data_dir)
        self._times = np.array([event[0] for event in self._stream], dtype=np.int64)
        self._invoice: object = None
        self.replayed = 0

    def replay_until(self, until: datetime) -> None:
        """Record every event at or before ``until`` not recorded yet: in bulk the first time (the engine is
        empty then), one by one afterwards."""
        end = int(np.searchsorted(self._times, ns_of(until), side="right"))
        if end <= self.replayed:
            return
        if self.replayed == 0:
            after_last = pd.Timestamp(int(self._times[end - 1]) + 1, unit="ns", tz="UTC")
            load_history(self.engine, self._stream[:end], after_last)
        else:
            for event in self._stream[self.replayed : end]:
                record(self.engine, event)
        self.replayed = end

    def __call__(self, candidates: pd.DataFrame) -> FloatArray:
        if candidates.empty:
            return np.empty(0)
        invoice = candidates["invoice_id"].iloc[0]
        if invoice != self._invoice:  # a new case: bring the history up to its decline
            self._invoice = invoice
            self.replay_until(pd.to_datetime(candidates["last_declined_at"], utc=True).min().to_pydatetime())
        return self.model(candidates)
