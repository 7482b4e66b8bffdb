"""What serving needs from its decision log, whatever stores it: :class:`DecisionStore` (record and read
decisions, keep labels, erase an account, hold decisions under write-behind, flush, close) and
:class:`DecisionRanges` (the range reads of trends, drift and reports), with the values they take and give.

The SQLite log (:class:`serving.store.decisions.DecisionLog`, one file in the state directory) and the
PostgreSQL one (:class:`serving.store.postgres.decisions.PostgresDecisions`, shared by a fleet) implement
both, their rows and range reads written once (:mod:`serving.store.decision_queries`); the service builds
one in one place (:func:`serving.api.service.build_service`) and everything else (the scoring engine,
write-behind, the readers and the routes) depends on these types only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Protocol, Self

import numpy as np
import numpy.typing as npt

from events.schema import FIELD_NAME_PATTERN

VECTOR_SAMPLE: Final = 50_000  # drift reads at most about this many feature vectors per model
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(moment: datetime) -> int:
    """A timezone-aware moment as integer microseconds since the epoch (the log's ``occurred_us``)."""
    if moment.tzinfo is None:
        raise ValueError(f"moment {moment.isoformat()} has no timezone; the decision log keeps UTC times")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def features_blob(row: Any) -> bytes | None:
    """A feature vector as the log stores it: float32 bytes in model order (NaN: missing)."""
    if row is None:
        return None
    return np.asarray(row, dtype=np.float32).tobytes()


def model_ref(part: Any) -> str | None:
    """``name/version`` of an answer's model part (``{"name", "version", "source"}``), None without one."""
    if not isinstance(part, dict) or not part.get("name"):
        return None
    return f"{part['name']}/{part['version']}"


@dataclass(frozen=True)
class DecisionRecord:
    """One decision as logged. ``answer`` is the JSON-ready response body.

    The fields after ``answer`` are the attempt's segments and the scoring's facts that trends and drift read;
    they default to unknown so that a caller that does not know them still logs the decision.
    """

    attempt_id: str
    occurred_at: datetime
    account_key: str | None
    method_key: str | None
    kind: str | None
    fingerprint: str
    action: str
    rule: str
    fallback: bool
    fraud_probability: float | None
    failure_probability: float | None
    answer: Mapping[str, Any]
    plan_tier: str | None = None
    plan_period: str | None = None
    method_type: str | None = None
    card_funding: str | None = None
    card_country: str | None = None
    amount: float | None = None
    currency: str | None = None
    fraud_level: str | None = None
    fraud_model: str | None = None
    failure_model: str | None = None
    features: bytes | None = None
    attributes: dict[str, str | float] | None = None  # JSON values, times as ISO 8601 (UTC)
    decided_by: str = "policy"  # "rule": an analyst's rule (``rule`` names it), "policy": the model policy
    #: the attempt's rule-readable fields kept for rule backtests (:mod:`serving.store.kept_fields`)
    fields: dict[str, str | float] | None = None


@dataclass(frozen=True)
class LoggedDecision:
    """A decision as the log gives it back (``erased``: its account was erased since)."""

    attempt_id: str
    decided_at: datetime
    fingerprint: str | None
    answer: Mapping[str, Any]
    erased: bool
    attributes: dict[str, str | float] | None = None


@dataclass(frozen=True)
class Erasure:
    """What erasing an account did: how many decisions were unlinked, how many of their outcomes stay."""

    decisions: int
    outcomes_kept: int


#: Columns trends may segment by (a whitelist: the name is put into SQL).
SEGMENT_COLUMNS: Final = (
    "plan_tier", "method_type", "card_funding", "card_country", "kind", "action",
    "fraud_model", "failure_model",
)  # fmt: skip

#: The segment value of the attributes outside a key segment's top values.
OTHER: Final = "other"


@dataclass(frozen=True)
class AttributeSegment:
    """Trends segmented by one of the attempts' attributes (a declared category or key field).

    ``top``: a key's values are many (terminals, resellers), so only the ``top`` values by volume in the range
    are series of their own and every other value is :data:`OTHER`; ``None`` (a category): every value.
    """

    name: str
    top: int | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(FIELD_NAME_PATTERN, self.name):  # the name is put into SQL
            raise ValueError(f"segment {self.name!r}: not an attribute name (lower snake case)")
        if self.top is not None and self.top < 1:
            raise ValueError(f"segment {self.name!r}: top must be at least 1")


ACTION_CODES: Final = ("approve", "review", "block", "defer")
STATUS_CODES: Final = (None, "approved", "declined", "error")  # code 0: no outcome known


@dataclass(frozen=True)
class TrendColumns:
    """The decisions of a time range as numeric columns (one entry per decision), for
    :mod:`serving.readers.trends`.

    Text columns come as codes: ``action`` indexes :data:`ACTION_CODES`, ``status`` :data:`STATUS_CODES`,
    ``currency`` and ``segment`` their ``..._values`` (-1: the decision has none; ``segment`` is all -1
    without a segment). ``reported``: a fraud report names the attempt. NaN: no such probability or amount.
    """

    occurred_us: npt.NDArray[np.int64]
    action: npt.NDArray[np.int64]
    fraud: npt.NDArray[np.float64]
    failure: npt.NDArray[np.float64]
    amount: npt.NDArray[np.float64]
    currency: npt.NDArray[np.int64]
    currency_values: list[str]
    status: npt.NDArray[np.int64]
    reported: npt.NDArray[np.bool_]
    segment: npt.NDArray[np.int64]
    segment_values: list[str]


@dataclass(frozen=True)
class DecisionRows:
    """The decisions of a time range as a draft rule reads them again (:mod:`serving.readers.rule_backtest`),
    one entry per decision in time order (then by attempt id).

    ``columns``: the attempt's fields the log keeps as columns
    (:data:`serving.store.kept_fields.COLUMN_FIELDS`; None: not known); ``fields`` and ``attributes``: the
    JSON texts of the kept fields and of the attributes (None: none kept, or erased); ``features``: the
    feature vectors (NaN rows: none of ``width``); ``action`` indexes :data:`ACTION_CODES`; ``reported_us``:
    the earliest fraud report's time (-1: none).
    """

    attempt_id: list[str]
    occurred_us: npt.NDArray[np.int64]
    account_key: list[str | None]
    action: npt.NDArray[np.int64]
    by_rule: npt.NDArray[np.bool_]
    fraud: npt.NDArray[np.float64]
    failure: npt.NDArray[np.float64]
    fraud_level: list[str | None]
    columns: dict[str, list[object]]
    fields: list[str | None]
    attributes: list[str | None]
    features: npt.NDArray[np.float32] | None
    reported_us: npt.NDArray[np.int64]
    erased: npt.NDArray[np.bool_]


class DecisionRanges(Protocol):
    """Read-only queries over the decisions of time ranges (``start_us <= occurred_us < end_us``, in
    microseconds since the epoch: :func:`epoch_us`), for trends, drift and reports. Long reads never hold up
    the scoring path's writes and see the log as of their start; a context manager (closed on exit)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    def close(self) -> None: ...

    def occurred_bounds(self) -> tuple[int, int] | None:
        """``(first, last)`` ``occurred_us`` of the logged decisions, None for an empty log."""
        ...

    def labels_as_of(self) -> datetime | None:
        """The newest outcome or fraud-report time the log knows: labels are judged as of it."""
        ...

    def distinct(self, start_us: int, end_us: int, column: str) -> list[str]:
        """The values a segment column (:data:`SEGMENT_COLUMNS` or ``currency``) takes in the range (sorted;
        missing values left out)."""
        ...

    def attribute_values(self, start_us: int, end_us: int, segment: AttributeSegment) -> list[str]:
        """The values an attribute takes in the range: all of them (sorted), or for a ``top`` segment the
        ``top`` most frequent (most first, ties by value) and :data:`OTHER` last if there are more."""
        ...

    def trend_columns(
        self, start_us: int, end_us: int, segment: str | AttributeSegment | None
    ) -> TrendColumns:
        """Every decision of the range, with its outcome and report flag, as numeric columns."""
        ...

    def scored_by(
        self, start_us: int, end_us: int, task: str, model: str, width: int, *, sample: int = VECTOR_SAMPLE
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """Probabilities and feature vectors (rows of ``width``; at most about ``sample``, evenly spread) of
        the range's decisions ``model`` scored for ``task``."""
        ...

    def models_used(self, start_us: int, end_us: int, task: str) -> list[tuple[str, int]]:
        """The model versions that scored the range's decisions for ``task``, most decisions first."""
        ...

    def decision_rows(
        self, start_us: int, end_us: int, width: int | None, reads: Collection[str] | None = None
    ) -> DecisionRows:
        """Every decision of the range with what a rule may read of it: feature vectors of ``width`` values
        (None: not read); of the model outputs, the ``fields`` and ``attributes`` texts and the columns of
        :data:`serving.store.kept_fields.COLUMN_FIELDS` (but ``READ_ALWAYS``) only those named in ``reads``
        (None: all; the others come back as None or NaN)."""
        ...


class DecisionStore(Protocol):
    """The decision log and label store as serving uses it; safe to share between threads.

    Under write-behind (a journal), :meth:`record` makes a decision durable in the journal and holds it in
    memory; :meth:`flush` writes what is held into the store with the journal position it completes
    (:attr:`applied`), and a restart gives the journal's decisions back with :meth:`restore`. Reads of one
    decision see what is held; range reads (:meth:`ranges`) see the store, so the service flushes before them.
    """

    # -- decisions-------------------------------------------------------------------------------------------

    def get(self, attempt_id: str) -> LoggedDecision | None:
        """The logged decision of an attempt, None if it was never decided."""
        ...

    def record(
        self, decision: DecisionRecord, attempt: Mapping[str, object] | None = None, first: bool = False
    ) -> LoggedDecision:
        """Log a decision durably; if the attempt was decided before, that logged decision wins. ``attempt``
        (the scored event) travels with it in the journal; ``first``: the caller looked the attempt up
        (:meth:`get`) before deciding, so the store need not look again."""
        ...

    def last_outcome_of_method(self, method_key: str | None) -> tuple[str | None, str | None]:
        """``(status, decline_code)`` of the latest known outcome of any attempt made with this method."""
        ...

    def count(self) -> int:
        """How many decisions are logged (held ones included)."""
        ...

    # -- labels----------------------------------------------------------------------------------------------

    def record_outcome(
        self, attempt_id: str, occurred_at: datetime, status: str, decline_code: str | None
    ) -> bool:
        """Keep a gateway outcome; False if this attempt's outcome was already received."""
        ...

    def record_report(self, report_id: str, attempt_id: str, reported_at: datetime, report_type: str) -> bool:
        """Keep a fraud report; False if this report was already received."""
        ...

    # -- erasure---------------------------------------------------------------------------------------------

    def erase_account(self, account_key: str, online_events: int) -> Erasure:
        """Unlink an account's decisions and drop their personal content; keep scores, actions and labels."""
        ...

    # -- range reads-----------------------------------------------------------------------------------------

    def ranges(self) -> DecisionRanges:
        """A reader of time ranges over the stored decisions (held ones are not seen: flush first)."""
        ...

    # -- write-behind----------------------------------------------------------------------------------------

    def restore(self, decision: DecisionRecord, decided_at: str) -> None:
        """Hold a decision read back from the journal (a restart), to be flushed like a new one."""
        ...

    def flush(self, marker: int | None = None) -> int:
        """Write the held decisions, with ``marker`` (the journal position read before calling) if newer
        than :attr:`applied`; how many were written. On failure they stay held and the error propagates."""
        ...

    @property
    def applied(self) -> int:
        """The journal position the store holds every decision up to."""
        ...

    @property
    def held(self) -> int:
        """How many decisions are journaled but not yet in the store."""
        ...

    # -- the service's life----------------------------------------------------------------------------------

    def ping(self) -> bool:
        """Whether the store answers (readiness)."""
        ...

    def close(self) -> None:
        """Flush what is held, then release the store."""
        ...
