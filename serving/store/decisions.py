"""The durable decision log and label store: one SQLite file (WAL) in the service's state directory.

* ``decisions``: every answered decision, committed *before* the answer leaves the service, so a crash (even
  ``kill -9``) never loses a decision the billing system acted on. Ids of people are stored only as keyed
  pseudonyms; the full answer (reasons, model versions, feature vector) is kept as JSON for audits.
* ``outcomes`` and ``fraud_reports``: gateway results and fraud reports as received, idempotent by id, kept
  for retraining and monitoring, and read back as each payment method's decline history.
* ``erasures``: which pseudonymised account was erased when, and how much (the audit trail of erasure).

Besides the answer, each decision keeps what trends and drift read without parsing JSON
(:mod:`serving.readers.trends`, :mod:`serving.readers.drift`): the attempt's segments (plan, payment method
type, card
funding and country, amount and currency), the fraud level, the model versions (``riskgate-fraud/3``), the
time as integer microseconds since the epoch (``occurred_us``, indexed for time ranges) and the feature
vector as float32 bytes in model order (``features``). A log written by an older riskgate gains these columns
when it is opened (:func:`migrate`); what its rows can still tell (time, level, model versions, feature
vector) is filled in from their answers.

With ``synchronous=NORMAL`` (the default) a committed decision survives the process being killed; ``FULL``
also survives a power loss, at the price of an fsync per decision. Checkpoints of the log run in the
background (:mod:`serving.store.upkeep`); the automatic one is only a backstop (as for the online store).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from core.errors import RiskgateError
from core.sqlite import BACKSTOP_CHECKPOINT_PAGES, Staged, open_wal, retry_locked
from serving.errors import NotReadyError
from serving.store.base import (
    DecisionRecord,
    DecisionStore,
    Erasure,
    LoggedDecision,
    epoch_us,
    features_blob,
    model_ref,
)
from serving.store.decision_queries import (
    SQLITE,
    STORED_COLUMNS,
    RangeQueries,
    decision_row,
    erase_sql,
    erased_answer,
    insert_sql,
    logged,
    now,
    stored,
)
from serving.store.journal import Journal, journal_payload

logger = logging.getLogger(__name__)

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS decisions (
        attempt_id TEXT PRIMARY KEY,
        decided_at TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        account_key TEXT,
        method_key TEXT,
        kind TEXT,
        fingerprint TEXT,
        action TEXT NOT NULL,
        rule TEXT NOT NULL,
        fallback INTEGER NOT NULL,
        fraud_probability REAL,
        failure_probability REAL,
        answer TEXT NOT NULL,
        erased_at TEXT
    )""",  # segment columns are added by migrate(), for new and old logs alike
    "CREATE INDEX IF NOT EXISTS decisions_account ON decisions (account_key) WHERE account_key IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS decisions_method ON decisions (method_key) WHERE method_key IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS outcomes (
        attempt_id TEXT PRIMARY KEY,
        occurred_at TEXT NOT NULL,
        status TEXT NOT NULL,
        decline_code TEXT,
        received_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS fraud_reports (
        report_id TEXT PRIMARY KEY,
        attempt_id TEXT NOT NULL,
        reported_at TEXT NOT NULL,
        report_type TEXT NOT NULL,
        received_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS fraud_reports_attempt ON fraud_reports (attempt_id)",
    """CREATE TABLE IF NOT EXISTS erasures (
        account_key TEXT NOT NULL,
        erased_at TEXT NOT NULL,
        decisions INTEGER NOT NULL,
        online_events INTEGER NOT NULL
    )""",
)


#: Columns the decisions table gained after its first version (name -> SQL type), added at open when missing.
ADDED_COLUMNS: Final[dict[str, str]] = {
    "occurred_us": "INTEGER",  # occurred_at as microseconds since the epoch (UTC), for time ranges
    "plan_tier": "TEXT",
    "plan_period": "TEXT",
    "method_type": "TEXT",
    "card_funding": "TEXT",
    "card_country": "TEXT",
    "amount": "REAL",
    "currency": "TEXT",
    "fraud_level": "TEXT",
    "fraud_model": "TEXT",  # "riskgate-fraud/3": the version that scored it (NULL: no model)
    "failure_model": "TEXT",
    "features": "BLOB",  # float32 feature vector in the model's order (NULL: no features); erased as personal
    "attributes": "TEXT",  # the attempt's attributes as a JSON object (NULL: none); erased as personal
    "decided_by": "TEXT",  # 'rule': an analyst's rule decided (``rule`` names it); 'policy': the model policy
    "fields": "TEXT",  # the attempt's rule-readable fields as JSON (serving.store.kept_fields); erased
}
#: The log's schema version (SQLite's ``user_version``): 2 = ``kind`` may be NULL (an attempt without a kind)
#: and ``attributes`` exists; 3 = ``decided_by`` says whether an analyst's rule or the model policy decided
#: (every earlier decision: the policy). :func:`migrate` brings an older file up to it.
LOG_VERSION: Final = 3
#: Time ranges, and a covering index for the trends query: it holds every column trends read, so a year of
#: decisions is read without touching the wide rows (answer JSON, feature vector).
_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS decisions_trends ON decisions (occurred_us, action, fraud_probability, "
    "failure_probability, amount, currency, kind, plan_tier, plan_period, method_type, card_funding, "
    "card_country, fraud_model, failure_model, attempt_id)",
)
_MIGRATION_BATCH: Final = 5_000


_INSERT: Final = insert_sql(SQLITE)
_ERASE: Final = erase_sql(SQLITE)


#: a decision held in memory: the record, when it was decided, its answer as JSON (written to the journal)
_Held = tuple[DecisionRecord, str, bytes]


def _journal_position(db: sqlite3.Connection) -> int:
    """The journal position the file's decisions include (a one-row table, created at 0)."""
    db.execute("CREATE TABLE IF NOT EXISTS journal_position (position INTEGER NOT NULL)")
    row = db.execute("SELECT position FROM journal_position").fetchone()
    if row is None:
        db.execute("INSERT INTO journal_position (position) VALUES (0)")
        return 0
    return int(row[0])


class DecisionLog(DecisionStore):
    """The SQLite decision log (:class:`serving.store.base.DecisionStore`); safe to share between threads (one
    connection behind a lock).

    With a ``journal`` (write-behind, :mod:`serving.store.writebehind`), :meth:`record` appends the decision
    to the journal and holds it in memory (durable from then on: the journal survives a kill) instead of
    committing it; :meth:`flush` writes what is held into SQLite in one transaction on a connection of its
    own, with the journal position it completes (:attr:`applied`). Reads of one decision see what is held; the
    readers of whole ranges (trends, drift, reports) read SQLite, so the service flushes before them.
    """

    def __init__(
        self,
        path: Path,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        autocheckpoint_pages: int = BACKSTOP_CHECKPOINT_PAGES,
        busy_timeout_s: float = 10.0,
        *,
        journal: Journal | None = None,
        max_held: int = 100_000,
    ) -> None:
        self.path = path
        self._timeout_s = busy_timeout_s
        # several worker processes share the file: see retry_locked
        self._db = open_wal(path, busy_timeout_s, synchronous, autocheckpoint_pages)
        for statement in _SCHEMA:
            self._execute(statement)
        migrate(self._db, path)
        self._lock = threading.Lock()
        self.journal = journal
        self.max_held = max_held  # beyond this many unflushed decisions, scoring is refused (SQLite failing)
        self._held_lock = threading.Lock()
        self._held: Staged[_Held] = Staged(self._held_lock)  # journaled, not yet in SQLite
        self._flush_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        if journal is not None:
            writer = self._writer = open_wal(path, busy_timeout_s, synchronous, autocheckpoint_pages)
            self._held.applied = _journal_position(writer)
        logger.info(
            "decision log: SQLite (WAL, synchronous=%s%s) at %s",
            synchronous,
            ", write-behind" if journal is not None else "",
            path,
        )

    def _execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        """One statement, retried while another process holds the write lock (the caller holds ``_lock``)."""
        return retry_locked(lambda: self._db.execute(sql, parameters), self._timeout_s)

    # -- decisions ------------------------------------------------------------------------------------------

    def get(self, attempt_id: str) -> LoggedDecision | None:
        if self.journal is not None:
            with self._held_lock:
                held = self._held.get(attempt_id)
            if held is not None:
                return logged(held[0], held[1])
        return self._stored(attempt_id)

    def _stored(self, attempt_id: str) -> LoggedDecision | None:
        with self._lock:
            row = self._execute(
                f"SELECT {STORED_COLUMNS} FROM decisions WHERE attempt_id = ?", (attempt_id,)
            ).fetchone()
        return None if row is None else stored(row)

    def record(
        self, decision: DecisionRecord, attempt: Mapping[str, object] | None = None, first: bool = False
    ) -> LoggedDecision:
        """Log a decision durably; if the attempt was decided before, that logged decision wins.

        With a journal, ``attempt`` (the scored event) travels in the same record, so that a restart can
        record it in the online store again if the store had not flushed it; ``first`` says the caller
        looked the attempt up (:meth:`get`) before deciding and then recorded it first in the online store,
        so no other decision for it can have reached SQLite since (the lookup in SQLite is skipped).
        """
        if self.journal is not None:
            return self._journaled(self.journal, decision, attempt, first)
        decided_at = now()
        with self._lock:
            inserted = self._execute(_INSERT, decision_row(decision, decided_at)).rowcount == 1
        if inserted:
            return logged(decision, decided_at)
        existing = self.get(decision.attempt_id)
        if existing is None:  # pragma: no cover - the row was there a moment ago and is never deleted
            raise RuntimeError(f"decision log {self.path}: a decision vanished between insert and read")
        return existing

    def _journaled(
        self, journal: Journal, decision: DecisionRecord, attempt: Mapping[str, object] | None, first: bool
    ) -> LoggedDecision:
        with self._held_lock:  # held or flushing until committed, so one of the three sees every decision
            held = self._held.get(decision.attempt_id)
            if held is not None:
                return logged(held[0], held[1])
            stored = None if first else self._stored(decision.attempt_id)
            if stored is not None:
                return stored
            if len(self._held) >= self.max_held:
                raise NotReadyError(
                    f"{self.max_held} decisions wait for the decision log {self.path}, which is not taking "
                    "writes (see the service's log): retry later"
                )
            decided_at = now()
            answer = orjson.dumps(decision.answer)  # once, for the journal and (at flush) the row
            journal.append(journal_payload(decision, decided_at, attempt, answer))
            self._held.new[decision.attempt_id] = (decision, decided_at, answer)
        return logged(decision, decided_at)

    def restore(self, decision: DecisionRecord, decided_at: str) -> None:
        """Hold a decision read back from the journal (a restart), to be flushed like a new one (without a
        journal of this log's own: committed at once), unless its attempt is logged already."""
        if self.journal is None:
            with self._lock:
                self._execute(_INSERT, decision_row(decision, decided_at))
            return
        with self._held_lock:
            self._held.new.setdefault(
                decision.attempt_id, (decision, decided_at, orjson.dumps(decision.answer))
            )

    @property
    def held(self) -> int:
        """How many decisions are journaled but not yet in SQLite."""
        with self._held_lock:
            return len(self._held)

    def flush(self, marker: int | None = None) -> int:
        """Write the held decisions into SQLite in one transaction, with ``marker`` (if newer than
        :attr:`applied`): the journal position read before calling. Returns how many were written; on
        failure they stay held (a later flush retries) and the error propagates."""
        if self._writer is None:
            return 0
        with self._flush_lock:
            return self._held.flush(marker, self._insert_held)

    def _insert_held(self, batch: dict[str, _Held], marker: int | None) -> None:
        writer = self._writer
        if writer is None:  # pragma: no cover - flush() checks it
            raise RuntimeError("the decision log has no journal to flush")
        retry_locked(lambda: writer.execute("BEGIN IMMEDIATE"), self._timeout_s)
        try:
            writer.executemany(_INSERT, [decision_row(*held) for held in batch.values()])
            if marker is not None:
                writer.execute("UPDATE journal_position SET position = ?", (marker,))
            writer.execute("COMMIT")
        except BaseException:
            writer.execute("ROLLBACK")
            raise

    @property
    def applied(self) -> int:
        """The journal position the SQLite file holds every decision up to."""
        return self._held.applied

    def last_outcome_of_method(self, method_key: str | None) -> tuple[str | None, str | None]:
        """``(status, decline_code)`` of the latest known outcome of any attempt made with this method."""
        if method_key is None:
            return None, None
        with self._lock:
            row = self._execute(
                "SELECT o.status, o.decline_code FROM decisions d "
                "JOIN outcomes o ON o.attempt_id = d.attempt_id "
                "WHERE d.method_key = ? ORDER BY o.occurred_at DESC LIMIT 1",
                (method_key,),
            ).fetchone()
        return (None, None) if row is None else (row[0], row[1])

    def ping(self) -> bool:
        try:
            with self._lock:
                self._execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def count(self) -> int:
        with self._flush_lock, self._lock:  # no decision moves from held to SQLite while counting
            (total,) = self._execute("SELECT count(*) FROM decisions").fetchone()
            return int(total) + self.held

    # -- labels ---------------------------------------------------------------------------------------------

    def record_outcome(
        self, attempt_id: str, occurred_at: datetime, status: str, decline_code: str | None
    ) -> bool:
        """Keep a gateway outcome; False if this attempt's outcome was already received."""
        with self._lock:
            cursor = self._execute(
                "INSERT OR IGNORE INTO outcomes (attempt_id, occurred_at, status, decline_code, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (attempt_id, occurred_at.isoformat(), status, decline_code, now()),
            )
        return cursor.rowcount == 1

    def record_report(self, report_id: str, attempt_id: str, reported_at: datetime, report_type: str) -> bool:
        """Keep a fraud report; False if this report was already received."""
        with self._lock:
            cursor = self._execute(
                "INSERT OR IGNORE INTO fraud_reports "
                "(report_id, attempt_id, reported_at, report_type, received_at) VALUES (?, ?, ?, ?, ?)",
                (report_id, attempt_id, reported_at.isoformat(), report_type, now()),
            )
        return cursor.rowcount == 1

    # -- range reads -----------------------------------------------------------------------------------------

    def ranges(self) -> DecisionReader:
        """A reader of time ranges over this file, on a connection of its own (held decisions are not in
        the file yet: flush first)."""
        return DecisionReader(self.path)

    # -- erasure --------------------------------------------------------------------------------------------

    def erase_account(self, account_key: str, online_events: int) -> Erasure:
        """Unlink an account's decisions and drop their personal content; keep scores, actions and labels.

        What stays: per decision the attempt id, times, kind, scores, action, rule and model versions, and the
        gateway outcomes and fraud reports (aggregates for monitoring and retraining, linked to no person).
        What goes: the account and payment-method pseudonyms, the payload fingerprint, the feature vector
        (in the answer and as the ``features`` blob), the values of the reason codes, the attempt's
        attributes (a provider's own fields may identify a person: a set-top box, an e-mail domain) and its
        kept fields (device, IP, ...: :mod:`serving.store.kept_fields`). The
        segments (plan,
        method type, card funding and country, amount, currency) stay: they describe a payment, not a
        person, once the decision is unlinked.
        """
        erased_at = now()
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                rows = self._execute(
                    "SELECT attempt_id, answer FROM decisions WHERE account_key = ?", (account_key,)
                ).fetchall()
                for attempt_id, answer in rows:
                    self._execute(_ERASE, (erased_answer(answer), erased_at, attempt_id))
                (outcomes,) = self._execute(
                    f"SELECT count(*) FROM outcomes WHERE attempt_id IN ({','.join('?' * len(rows))})",
                    tuple(r[0] for r in rows),
                ).fetchone()
                self._execute(
                    "INSERT INTO erasures (account_key, erased_at, decisions, online_events) "
                    "VALUES (?, ?, ?, ?)",
                    (account_key, erased_at, len(rows), online_events),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Erasure(decisions=len(rows), outcomes_kept=int(outcomes))

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()
        if self._writer is not None:
            self._writer.close()


# -- migration of an older log ------------------------------------------------------------------------------


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Add the columns and indexes a log written by an older riskgate lacks; never drops or loses a row.

    Rows logged before the columns existed get what their answer still tells: the time (``occurred_us``),
    the fraud level, the model versions and the feature vector. Their segments (plan, method, card, amount)
    were never logged and stay NULL (unknown), which trends report as their own segment value.
    """
    missing = _missing_columns(db)
    if missing:  # under the write lock, checked again: worker processes may open the log together
        _in_write_transaction(db, partial(_add_columns, db))
    for statement in _INDEXES:
        db.execute(statement)
    if missing:
        filled = _backfill(db)
        if filled:
            logger.info(
                "decision log %s: added columns %s; filled %d earlier decisions", path, missing, filled
            )
    if _version(db) < 2:
        _in_write_transaction(db, partial(_to_version_2, db, path))
    if _version(db) < LOG_VERSION:
        _in_write_transaction(db, partial(_to_version_3, db, path))


#: How long opening a log waits for another process that migrates it (a rebuild copies every row).
MIGRATION_WAIT_S: Final = 600.0


def _in_write_transaction(db: sqlite3.Connection, work: Callable[[], object]) -> None:
    """Run ``work`` in one write transaction (waiting while another connection holds the write lock)."""
    retry_locked(lambda: db.execute("BEGIN IMMEDIATE"), MIGRATION_WAIT_S)
    try:
        work()
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _missing_columns(db: sqlite3.Connection) -> list[str]:
    present = {str(row[1]) for row in db.execute("PRAGMA table_info(decisions)")}
    return [name for name in ADDED_COLUMNS if name not in present]


def _add_columns(db: sqlite3.Connection) -> None:
    for name in _missing_columns(db):
        db.execute(f"ALTER TABLE decisions ADD COLUMN {name} {ADDED_COLUMNS[name]}")


def _version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def _to_version_2(db: sqlite3.Connection, path: Path) -> None:
    """Let ``kind`` be NULL (an attempt that does not say why it is charged). SQLite cannot drop a NOT NULL
    constraint in place, so a log created with it is rebuilt once (in the caller's transaction): the table is
    copied under the same definition without the constraint, and its indexes are made again. Another process
    opening the log at the same time waits for the lock, then finds the version done."""
    if _version(db) >= 2:
        return
    columns = db.execute("PRAGMA table_info(decisions)").fetchall()
    if any(row[1] == "kind" and row[3] for row in columns):
        _rebuild_without_kind_constraint(db)
        logger.info("decision log %s: 'kind' may now be missing (table rebuilt once)", path)
    db.execute("PRAGMA user_version = 2")


def _to_version_3(db: sqlite3.Connection, path: Path) -> None:
    """Say of every decision logged before analysts' rules existed that the model policy decided it."""
    if _version(db) >= LOG_VERSION:
        return
    filled = db.execute("UPDATE decisions SET decided_by = 'policy' WHERE decided_by IS NULL").rowcount
    if filled:
        logger.info(
            "decision log %s: %d earlier decisions marked as decided by the model policy", path, filled
        )
    db.execute(f"PRAGMA user_version = {LOG_VERSION}")


def _rebuild_without_kind_constraint(db: sqlite3.Connection) -> None:
    (definition,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
    ).fetchone()
    relaxed, found = re.subn(r"\bkind\s+TEXT\s+NOT\s+NULL", "kind TEXT", str(definition), count=1)
    renamed, named = re.subn(
        r"^CREATE TABLE\s+\"?decisions\"?", "CREATE TABLE decisions_v2", relaxed, count=1
    )
    if not (found and named):  # pragma: no cover - every riskgate log was created by _SCHEMA
        raise RuntimeError(f"decision log: unexpected definition of the decisions table: {definition}")
    db.execute("DROP TABLE IF EXISTS decisions_v2")
    db.execute(renamed)
    db.execute("INSERT INTO decisions_v2 SELECT * FROM decisions")
    db.execute("DROP TABLE decisions")
    db.execute("ALTER TABLE decisions_v2 RENAME TO decisions")
    for statement in (*_SCHEMA, *_INDEXES):
        db.execute(statement)


def _backfill(db: sqlite3.Connection) -> int:
    """Fill the derived columns of rows that predate them, in batches of one transaction each."""
    filled = 0
    while True:
        rows = db.execute(
            "SELECT attempt_id, occurred_at, answer, erased_at FROM decisions "
            "WHERE occurred_us IS NULL LIMIT ?",
            (_MIGRATION_BATCH,),
        ).fetchall()
        if not rows:
            return filled
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "UPDATE decisions SET occurred_us = ?, fraud_level = ?, fraud_model = ?, failure_model = ?, "
                "features = ? WHERE attempt_id = ?",
                [_derived(*row) for row in rows],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        filled += len(rows)


def _derived(
    attempt_id: str, occurred_at: str, answer_text: str, erased_at: str | None
) -> tuple[int, str | None, str | None, str | None, bytes | None, str]:
    answer: dict[str, Any] = json.loads(answer_text)
    fraud, failure = answer.get("fraud") or {}, answer.get("failure") or {}
    vector = answer.get("features")
    blob = None
    if isinstance(vector, dict) and erased_at is None:
        blob = features_blob([math.nan if value is None else float(value) for value in vector.values()])
    return (
        epoch_us(datetime.fromisoformat(occurred_at)),
        fraud.get("level"),
        model_ref(fraud.get("model")),
        model_ref(failure.get("model")),
        blob,
        attempt_id,
    )


# -- read queries for trends, drift and reports -----------------------------------------------------------


class LogNotFoundError(RiskgateError, FileNotFoundError):
    """There is no decision log at the given path."""


class DecisionReader(RangeQueries):
    """Read-only queries over a SQLite decision log (:class:`serving.store.base.DecisionRanges`, written once
    for both backends in :class:`serving.store.decision_queries.RangeQueries`), on a connection of their own.

    Long reads (a year of decisions) never take the lock the scoring path writes under; in WAL mode they see
    the log as of their start while decisions keep being written. Opening a log written by an older riskgate
    migrates it first (as :class:`DecisionLog` would), so every query finds its columns and indexes.
    """

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise LogNotFoundError(
                f"no decision log at {path}: give the state directory of a service or of a backtest "
                "(the log is STATE_DIR/decisions.sqlite)"
            )
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
        for statement in _SCHEMA:  # a log no current DecisionLog has opened yet: bring it up to date once
            self._db.execute(statement)
        migrate(self._db, path)
        self._db.execute("PRAGMA query_only = ON")

    def __str__(self) -> str:
        return str(self.path)

    def _rows(self, sql: str, parameters: Sequence[object] = ()) -> Iterable[Sequence[Any]]:
        return self._db.execute(sql, parameters)

    def close(self) -> None:
        self._db.close()
