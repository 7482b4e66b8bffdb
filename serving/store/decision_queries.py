"""What both decision-log backends (SQLite: :mod:`serving.store.decisions`, PostgreSQL:
:mod:`serving.store.postgres.decisions`) share: the row a decision is written as, the logged decision it gives
back, the erased answer, and the range reads of trends, drift and reports (:class:`RangeQueries`), written
once over a :class:`Dialect` that says how each database spells the few things they spell differently.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Self

import numpy as np
import numpy.typing as npt
import orjson

from serving.store.base import (
    ACTION_CODES,
    OTHER,
    SEGMENT_COLUMNS,
    STATUS_CODES,
    VECTOR_SAMPLE,
    AttributeSegment,
    DecisionRanges,
    DecisionRecord,
    DecisionRows,
    LoggedDecision,
    TrendColumns,
    epoch_us,
)
from serving.store.kept_fields import COLUMN_FIELDS, READ_ALWAYS
from serving.store.moments import moment

#: The columns of a ``decisions`` row as :func:`decision_row` gives them (``erased_at`` is set by erasure).
DECISION_COLUMNS: Final = (
    "attempt_id", "decided_at", "occurred_at", "account_key", "method_key", "kind", "fingerprint", "action",
    "rule", "fallback", "fraud_probability", "failure_probability", "answer", "occurred_us", "plan_tier",
    "plan_period", "method_type", "card_funding", "card_country", "amount", "currency", "fraud_level",
    "fraud_model", "failure_model", "features", "attributes", "decided_by", "fields",
)  # fmt: skip


@dataclass(frozen=True)
class Dialect:
    """How one database spells what the shared queries need.

    ``param``: the placeholder; ``insert``: the statement that adds a row unless its key exists (``{columns}``
    and ``{values}`` filled in); ``trends_index``: the hint naming the covering index (SQLite chooses badly
    without it); ``attribute``: an attribute's value in a row ``d`` as text or JSON scalar (``{name}``);
    ``flag``: a boolean as 0/1 (``{}``); ``collate``: the byte order of text (ties in top values);
    ``sample``: the range's feature blobs of every k-th decision (``{where}``; parameters: the range's,
    then k).
    """

    param: str
    insert: str
    trends_index: str
    attribute: str
    flag: str
    collate: str
    sample: str


SQLITE: Final = Dialect(
    param="?",
    insert="INSERT OR IGNORE INTO decisions ({columns}) VALUES ({values})",
    trends_index=" INDEXED BY decisions_trends",
    attribute="json_extract(d.attributes, '$.{name}')",
    flag="{}",
    collate="",
    sample="SELECT features FROM decisions d INDEXED BY decisions_trends {where} AND rowid % ? = 0",
)
POSTGRES: Final = Dialect(
    param="%s",
    insert="INSERT INTO decisions ({columns}) VALUES ({values}) ON CONFLICT (attempt_id) DO NOTHING",
    trends_index="",
    attribute="(d.attributes::jsonb ->> '{name}')",
    flag="({})::int",
    collate=' COLLATE "C"',
    # every k-th decision in time order, numbered over the covering index; only those rows' blobs are read
    sample=(
        "SELECT t.features FROM (SELECT d.attempt_id, row_number() OVER (ORDER BY d.occurred_us, "
        "d.attempt_id) AS n FROM decisions d {where}) s JOIN decisions t ON t.attempt_id = s.attempt_id "
        "WHERE s.n %% %s = 0"
    ),
)


def insert_sql(dialect: Dialect) -> str:
    """The statement that logs a decision (the parameters of :func:`decision_row`) unless its attempt is."""
    values = ", ".join([dialect.param] * len(DECISION_COLUMNS))
    return dialect.insert.format(columns=", ".join(DECISION_COLUMNS), values=values)


def now() -> str:
    """The current time as the logs keep it (ISO 8601, UTC)."""
    return datetime.now(UTC).isoformat()


def decision_row(
    decision: DecisionRecord, decided_at: str, answer: bytes | None = None
) -> tuple[object, ...]:
    """The ``decisions`` row of a decision (in :data:`DECISION_COLUMNS` order); ``answer``: its JSON if the
    caller has it already. Times are ISO text, which PostgreSQL reads into its timestamptz columns."""
    d = decision
    return (
        d.attempt_id, decided_at, d.occurred_at.isoformat(), d.account_key, d.method_key, d.kind,
        d.fingerprint, d.action, d.rule, d.fallback, d.fraud_probability, d.failure_probability,
        (orjson.dumps(d.answer) if answer is None else answer).decode(),  # compact JSON, as before
        epoch_us(d.occurred_at), d.plan_tier, d.plan_period, d.method_type, d.card_funding, d.card_country,
        d.amount, d.currency, d.fraud_level, d.fraud_model, d.failure_model, d.features,
        None if d.attributes is None else orjson.dumps(d.attributes).decode(), d.decided_by,
        None if d.fields is None else orjson.dumps(d.fields).decode(),
    )  # fmt: skip


def logged(decision: DecisionRecord, decided_at: str) -> LoggedDecision:
    """The logged decision a caller gets back for the decision it just logged at ``decided_at``."""
    return LoggedDecision(
        decision.attempt_id,
        datetime.fromisoformat(decided_at),
        decision.fingerprint,
        decision.answer,
        False,
        decision.attributes,
    )


#: The columns :func:`stored` reads a logged decision from.
STORED_COLUMNS: Final = "attempt_id, decided_at, fingerprint, answer, erased_at, attributes"


def stored(row: Sequence[Any]) -> LoggedDecision:
    """A logged decision from its :data:`STORED_COLUMNS` (times as ISO text or as datetimes)."""
    return LoggedDecision(
        row[0],
        moment(row[1]),
        row[2],
        orjson.loads(row[3]),
        row[4] is not None,
        None if row[5] is None else orjson.loads(row[5]),
    )


#: What erasure sets in a decision row besides its answer and ``erased_at``: its personal content.
ERASED_COLUMNS: Final = ("account_key", "method_key", "fingerprint", "features", "attributes", "fields")


def erased_answer(answer: str) -> str:
    """The logged answer's JSON text without the feature vector and the reason values."""
    cleaned = {key: value for key, value in json.loads(answer).items() if key != "features"}
    for model in ("fraud", "failure"):
        part = cleaned.get(model)
        if isinstance(part, dict) and isinstance(part.get("reasons"), list):
            part["reasons"] = [{**reason, "value": None} for reason in part["reasons"]]
    return json.dumps(cleaned)


def erase_sql(dialect: Dialect) -> str:
    """The statement that erases one decision (parameters: its erased answer, the time, the attempt id)."""
    cleared = ", ".join(f"{column} = NULL" for column in ERASED_COLUMNS)
    p = dialect.param
    return f"UPDATE decisions SET {cleared}, answer = {p}, erased_at = {p} WHERE attempt_id = {p}"


def case_sql(dialect: Dialect, column: str, values: Sequence[str], first: int = 0, missing: int = -1) -> str:
    """SQL mapping ``column``'s values to their position (+ ``first``) in ``values`` (bound as parameters)."""
    if not values:
        return str(missing)
    whens = " ".join(f"WHEN {dialect.param} THEN {first + i}" for i in range(len(values)))
    return f"CASE {column} {whens} ELSE {missing} END"


#: Whether a fraud report names the decision ``d``'s attempt (inside EXISTS).
_REPORTED: Final = "SELECT 1 FROM fraud_reports r WHERE r.attempt_id = d.attempt_id"


def _vectors(blobs: Sequence[bytes | None], width: int) -> npt.NDArray[np.float32]:
    """The feature vectors of ``blobs`` as rows of ``width`` (NaN: no vector of that width)."""
    missing = np.full(width, np.nan, dtype=np.float32).tobytes()
    joined = b"".join(
        bytes(blob) if blob is not None and len(blob) == 4 * width else missing for blob in blobs
    )
    return np.frombuffer(joined, dtype=np.float32).reshape(len(blobs), width)


class RangeQueries(DecisionRanges, ABC):
    """The range reads of :class:`serving.store.base.DecisionRanges`, once for both backends: a backend gives
    its :class:`Dialect`, runs a query (:meth:`_rows`) and closes its connection."""

    dialect: Dialect

    @abstractmethod
    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> Iterable[Sequence[Any]]:
        """The rows of one read-only query."""

    def _all(self, sql: str, parameters: Sequence[object] = ()) -> list[Sequence[Any]]:
        return list(self._rows(sql, parameters))

    def _numbers(self, sql: str, parameters: Sequence[object], width: int) -> npt.NDArray[np.float64]:
        """The rows of a query of ``width`` numeric columns as one float array (NULL: NaN)."""
        rows = self._all(sql, parameters)
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _attribute(self, segment: AttributeSegment) -> str:
        """The attribute's value in a decision row ``d`` (NULL: the attempt had none)."""
        return self.dialect.attribute.format(name=segment.name)

    def _case(self, column: str, values: Sequence[str], first: int = 0, missing: int = -1) -> str:
        return case_sql(self.dialect, column, values, first, missing)

    def occurred_bounds(self) -> tuple[int, int] | None:
        """``(first, last)`` ``occurred_us`` of the logged decisions, None for an empty log."""
        ((low, high),) = self._all("SELECT min(occurred_us), max(occurred_us) FROM decisions")
        return None if low is None else (int(low), int(high))

    def labels_as_of(self) -> datetime | None:
        """The newest outcome or fraud-report time the log knows: labels are judged as of it."""
        ((outcome,),) = self._all("SELECT max(occurred_at) FROM outcomes")
        ((report,),) = self._all("SELECT max(reported_at) FROM fraud_reports")
        times = [moment(t) for t in (outcome, report) if t is not None]
        return max(times) if times else None

    def distinct(self, start_us: int, end_us: int, column: str) -> list[str]:
        """The values a segment column takes in the range (sorted; NULL left out), read from the index."""
        if column not in (*SEGMENT_COLUMNS, "currency"):
            raise ValueError(f"unknown segment {column!r}: use one of {SEGMENT_COLUMNS}")
        p = self.dialect.param
        rows = self._rows(
            f"SELECT DISTINCT {column} FROM decisions "
            f"WHERE occurred_us >= {p} AND occurred_us < {p} AND {column} IS NOT NULL",
            (start_us, end_us),
        )
        return sorted(str(row[0]) for row in rows)

    def attribute_values(self, start_us: int, end_us: int, segment: AttributeSegment) -> list[str]:
        """The values an attribute takes in the range: all of them (sorted), or for a ``top`` segment the
        ``top`` most frequent (most first, ties by value) and :data:`OTHER` last if there are more."""
        p, value = self.dialect.param, self._attribute(segment)
        where = f"WHERE d.occurred_us >= {p} AND d.occurred_us < {p} AND {value} IS NOT NULL"
        if segment.top is None:
            rows = self._rows(f"SELECT DISTINCT {value} FROM decisions d {where}", (start_us, end_us))
            return sorted(str(row[0]) for row in rows)
        found = self._all(
            f"SELECT {value} AS v, count(*) AS n FROM decisions d {where} "
            f"GROUP BY v ORDER BY n DESC, {value}{self.dialect.collate} LIMIT {p}",
            (start_us, end_us, segment.top + 2),  # + 2: a real value "other" may be among them
        )
        values = [str(row[0]) for row in found if str(row[0]) != OTHER]
        return values[: segment.top] + ([OTHER] if len(found) > len(values[: segment.top]) else [])

    def _segment(
        self, start_us: int, end_us: int, segment: str | AttributeSegment | None
    ) -> tuple[str, list[str], list[str]]:
        """SQL for a decision's segment code + 1 (0: no value), its parameters, and the segment values."""
        if segment is None:
            return "0", [], []
        if isinstance(segment, str):
            values = self.distinct(start_us, end_us, segment)
            return f"({self._case(f'd.{segment}', values)} + 1)", values, values
        values = self.attribute_values(start_us, end_us, segment)
        value = self._attribute(segment)
        if OTHER not in values or segment.top is None:
            return f"({self._case(value, values)} + 1)", values, values
        known = values[:-1]  # every value not among them (and not NULL) is "other", the last code
        whens = " ".join(f"WHEN {self.dialect.param} THEN {i + 1}" for i in range(len(known)))
        other = f"CASE WHEN {value} IS NULL THEN 0 ELSE {len(values)} END"
        return f"(CASE {value} {whens} ELSE {other} END)", known, values

    def trend_columns(
        self, start_us: int, end_us: int, segment: str | AttributeSegment | None
    ) -> TrendColumns:
        """Every decision with ``start_us <= occurred_us < end_us``, with its outcome and report flag.

        ``segment``: a segment column's name, an attribute (:class:`AttributeSegment`), or None.

        One query, answered from the covering index (the wide answer and feature blobs are never read).
        Python's cost is per cell, so the query returns five numbers per decision: the time, both
        probabilities, the amount, and one integer packing the codes of the action, outcome, report flag,
        currency and segment; the rows become one float array in a single C call.
        """
        currencies = self.distinct(start_us, end_us, "currency")
        segment_code, parameters, values = self._segment(start_us, end_us, segment)
        c, v = len(currencies) + 1, len(values) + 1  # +1: the "none" code (-1 shifted to 0)
        p, reported = self.dialect.param, f"EXISTS ({_REPORTED})"
        table = self._numbers(
            "SELECT d.occurred_us, d.fraud_probability, d.failure_probability, d.amount, "
            f"{self._case('d.action', ACTION_CODES)} "
            f"+ 4 * {self._case('o.status', STATUS_CODES[1:], first=1, missing=0)} "
            f"+ 16 * {self.dialect.flag.format(reported)} "
            f"+ 32 * ({self._case('d.currency', currencies)} + 1) + {32 * c} * {segment_code} "
            f"FROM decisions d{self.dialect.trends_index} "
            "LEFT JOIN outcomes o ON o.attempt_id = d.attempt_id "
            f"WHERE d.occurred_us >= {p} AND d.occurred_us < {p}",
            (*ACTION_CODES, *STATUS_CODES[1:], *currencies, *parameters, start_us, end_us),
            5,
        )
        packed = table[:, 4].astype(np.int64)
        return TrendColumns(
            occurred_us=table[:, 0].astype(np.int64),  # µs since 1970 are exact in float64 (< 2**53)
            action=packed % 4,
            fraud=table[:, 1],
            failure=table[:, 2],
            amount=table[:, 3],
            currency=packed // 32 % c - 1,
            currency_values=currencies,
            status=packed // 4 % 4,
            reported=packed // 16 % 2 == 1,
            segment=packed // (32 * c) % v - 1,
            segment_values=values,
        )

    def scored_by(
        self, start_us: int, end_us: int, task: str, model: str, width: int, *, sample: int = VECTOR_SAMPLE
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """Probabilities and feature vectors (rows of ``width``) of the range's decisions ``model`` scored.

        Every probability (read from the covering index); feature vectors of at most about ``sample``
        decisions, evenly spread over the range (every k-th decision), since reading a year of vectors costs
        seconds and a PSI over 50,000 values is as precise as the bands need. Decisions without a stored
        vector (erased, or scored without features) are left out of the vectors.
        """
        if task not in ("fraud", "failure"):
            raise ValueError(f"unknown task {task!r}: use 'fraud' or 'failure'")
        p = self.dialect.param
        where = (
            f"WHERE d.occurred_us >= {p} AND d.occurred_us < {p} AND d.{task}_model = {p} "
            f"AND d.{task}_probability IS NOT NULL"
        )
        scores = np.fromiter(
            (row[0] for row in self._rows(
                f"SELECT d.{task}_probability FROM decisions d{self.dialect.trends_index} {where}",
                (start_us, end_us, model),
            )),
            dtype=np.float64,
        )  # fmt: skip
        step = max(1, -(-len(scores) // sample))
        blobs = [
            bytes(blob)
            for (blob,) in self._rows(
                self.dialect.sample.format(where=where), (start_us, end_us, model, step)
            )
            if blob is not None and len(blob) == 4 * width
        ]
        vectors = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), width)
        return scores, vectors

    def models_used(self, start_us: int, end_us: int, task: str) -> list[tuple[str, int]]:
        """The model versions that scored the range's decisions for ``task``, most decisions first."""
        if task not in ("fraud", "failure"):
            raise ValueError(f"unknown task {task!r}: use 'fraud' or 'failure'")
        p = self.dialect.param
        rows = self._rows(
            f"SELECT {task}_model, count(*) FROM decisions WHERE occurred_us >= {p} AND occurred_us < {p} "
            f"AND {task}_model IS NOT NULL GROUP BY {task}_model ORDER BY count(*) DESC",
            (start_us, end_us),
        )
        return [(str(name), int(count)) for name, count in rows]

    def decision_rows(
        self, start_us: int, end_us: int, width: int | None, reads: Collection[str] | None = None
    ) -> DecisionRows:
        """Every decision with ``start_us <= occurred_us < end_us`` as a rule reads it again, in time order.

        One query over the rows (the wide answer JSON is never read; the feature blobs only with ``width``;
        of the optional columns only those in ``reads``) and one over the range's fraud reports (their
        earliest time per attempt)."""

        def read(column: str) -> str:
            always = column in READ_ALWAYS or reads is None or column in reads
            return f"d.{column}" if always else "NULL"

        p = self.dialect.param
        vector = ", d.features" if width is not None else ""
        columns = ", ".join(read(name) for name in COLUMN_FIELDS)
        rows = self._all(
            "SELECT d.attempt_id, d.occurred_us, d.account_key, "
            f"{self._case('d.action', ACTION_CODES)}, d.decided_by = 'rule', {read('fraud_probability')}, "
            f"{read('failure_probability')}, {read('fraud_level')}, d.erased_at IS NOT NULL, "
            f"{read('fields')}, {read('attributes')}, {columns}{vector} "
            f"FROM decisions d WHERE d.occurred_us >= {p} AND d.occurred_us < {p} "
            "ORDER BY d.occurred_us, d.attempt_id",
            (*ACTION_CODES, start_us, end_us),
        )
        first_reports: dict[str, int] = {}
        for attempt_id, reported_at in self._rows(
            "SELECT r.attempt_id, r.reported_at FROM fraud_reports r JOIN decisions d "
            f"ON d.attempt_id = r.attempt_id WHERE d.occurred_us >= {p} AND d.occurred_us < {p}",
            (start_us, end_us),
        ):
            at = epoch_us(moment(reported_at))
            first_reports[attempt_id] = min(at, first_reports.get(attempt_id, at))
        count = 11 + len(COLUMN_FIELDS) + (width is not None)
        cells: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * count
        return DecisionRows(
            attempt_id=list(cells[0]),
            occurred_us=np.array(cells[1], dtype=np.int64),
            account_key=list(cells[2]),
            action=np.array(cells[3], dtype=np.int64),
            by_rule=np.array(cells[4], dtype=np.bool_),
            fraud=np.array(cells[5], dtype=np.float64),
            failure=np.array(cells[6], dtype=np.float64),
            fraud_level=list(cells[7]),
            erased=np.array(cells[8], dtype=np.bool_),
            fields=list(cells[9]),
            attributes=list(cells[10]),
            columns={name: list(cells[11 + i]) for i, name in enumerate(COLUMN_FIELDS)},
            features=None if width is None else _vectors(cells[-1], width),
            reported_us=np.array([first_reports.get(a, -1) for a in cells[0]], dtype=np.int64),
        )
