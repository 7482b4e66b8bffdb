"""The durable decision log and label store: one SQLite file (WAL) in the service's state directory.

* ``decisions``: every answered decision, committed *before* the answer leaves the service, so a crash (even
  ``kill -9``) never loses a decision the billing system acted on. Ids of people are stored only as keyed
  pseudonyms; the full answer (reasons, model versions, feature vector) is kept as JSON for audits.
* ``outcomes`` and ``fraud_reports``: gateway results and fraud reports as received, idempotent by id, kept
  for retraining and monitoring, and read back as each payment method's decline history.
* ``erasures``: which pseudonymised account was erased when, and how much (the audit trail of erasure).

With ``synchronous=NORMAL`` (the default) a committed decision survives the process being killed; ``FULL``
also survives a power loss, at the price of an fsync per decision. Checkpoints of the log run in the
background (:mod:`serving.upkeep`); the automatic one is only a backstop (as for the online store).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from features.stores.sqlite import BACKSTOP_CHECKPOINT_PAGES, connect, retry_locked

logger = logging.getLogger(__name__)

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS decisions (
        attempt_id TEXT PRIMARY KEY,
        decided_at TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        account_key TEXT,
        method_key TEXT,
        kind TEXT NOT NULL,
        fingerprint TEXT,
        action TEXT NOT NULL,
        rule TEXT NOT NULL,
        fallback INTEGER NOT NULL,
        fraud_probability REAL,
        failure_probability REAL,
        answer TEXT NOT NULL,
        erased_at TEXT
    )""",
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
    """CREATE TABLE IF NOT EXISTS erasures (
        account_key TEXT NOT NULL,
        erased_at TEXT NOT NULL,
        decisions INTEGER NOT NULL,
        online_events INTEGER NOT NULL
    )""",
)


@dataclass(frozen=True)
class DecisionRecord:
    """One decision as logged. ``answer`` is the JSON-ready response body."""

    attempt_id: str
    occurred_at: datetime
    account_key: str | None
    method_key: str | None
    kind: str
    fingerprint: str
    action: str
    rule: str
    fallback: bool
    fraud_probability: float | None
    failure_probability: float | None
    answer: dict[str, Any]


@dataclass(frozen=True)
class LoggedDecision:
    attempt_id: str
    decided_at: datetime
    fingerprint: str | None
    answer: dict[str, Any]
    erased: bool


@dataclass(frozen=True)
class Erasure:
    decisions: int
    outcomes_kept: int


def _now() -> str:
    return datetime.now(UTC).isoformat()


class DecisionLog:
    """The SQLite decision log; safe to share between threads (one connection behind a lock)."""

    def __init__(
        self,
        path: Path,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        autocheckpoint_pages: int = BACKSTOP_CHECKPOINT_PAGES,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout_s = busy_timeout_s
        self._db = connect(path)  # several worker processes share the file: see retry_locked
        for statement in (
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={synchronous}",
            f"PRAGMA wal_autocheckpoint={int(autocheckpoint_pages)}",
            *_SCHEMA,
        ):
            self._execute(statement)
        self._lock = threading.Lock()
        logger.info("decision log: SQLite (WAL, synchronous=%s) at %s", synchronous, path)

    def _execute(self, sql: str, parameters: Sequence[object] = ()) -> sqlite3.Cursor:
        """One statement, retried while another process holds the write lock (the caller holds ``_lock``)."""
        return retry_locked(lambda: self._db.execute(sql, parameters), self._timeout_s)

    # -- decisions ------------------------------------------------------------------------------------------

    def get(self, attempt_id: str) -> LoggedDecision | None:
        with self._lock:
            row = self._execute(
                "SELECT attempt_id, decided_at, fingerprint, answer, erased_at FROM decisions "
                "WHERE attempt_id = ?",
                (attempt_id,),
            ).fetchone()
        if row is None:
            return None
        return LoggedDecision(
            row[0], datetime.fromisoformat(row[1]), row[2], json.loads(row[3]), row[4] is not None
        )

    def record(self, decision: DecisionRecord) -> LoggedDecision:
        """Log a decision durably; if the attempt was decided before, that logged decision wins."""
        decided_at = _now()
        with self._lock:
            cursor = self._execute(
                "INSERT OR IGNORE INTO decisions (attempt_id, decided_at, occurred_at, account_key, "
                "method_key, kind, fingerprint, action, rule, fallback, fraud_probability, "
                "failure_probability, answer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    decision.attempt_id, decided_at, decision.occurred_at.isoformat(), decision.account_key,
                    decision.method_key, decision.kind, decision.fingerprint, decision.action, decision.rule,
                    int(decision.fallback), decision.fraud_probability, decision.failure_probability,
                    json.dumps(decision.answer, separators=(",", ":")),
                ),
            )  # fmt: skip
            inserted = cursor.rowcount == 1
        if inserted:
            return LoggedDecision(
                decision.attempt_id,
                datetime.fromisoformat(decided_at),
                decision.fingerprint,
                decision.answer,
                False,
            )
        existing = self.get(decision.attempt_id)
        if existing is None:  # pragma: no cover - the row was there a moment ago and is never deleted
            raise RuntimeError(f"decision log {self.path}: a decision vanished between insert and read")
        return existing

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
        with self._lock:
            (total,) = self._execute("SELECT count(*) FROM decisions").fetchone()
        return int(total)

    # -- labels ---------------------------------------------------------------------------------------------

    def record_outcome(
        self, attempt_id: str, occurred_at: datetime, status: str, decline_code: str | None
    ) -> bool:
        """Keep a gateway outcome; False if this attempt's outcome was already received."""
        with self._lock:
            cursor = self._execute(
                "INSERT OR IGNORE INTO outcomes (attempt_id, occurred_at, status, decline_code, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (attempt_id, occurred_at.isoformat(), status, decline_code, _now()),
            )
        return cursor.rowcount == 1

    def record_report(self, report_id: str, attempt_id: str, reported_at: datetime, report_type: str) -> bool:
        """Keep a fraud report; False if this report was already received."""
        with self._lock:
            cursor = self._execute(
                "INSERT OR IGNORE INTO fraud_reports "
                "(report_id, attempt_id, reported_at, report_type, received_at) VALUES (?, ?, ?, ?, ?)",
                (report_id, attempt_id, reported_at.isoformat(), report_type, _now()),
            )
        return cursor.rowcount == 1

    # -- erasure --------------------------------------------------------------------------------------------

    def erase_account(self, account_key: str, online_events: int) -> Erasure:
        """Unlink an account's decisions and drop their personal content; keep scores, actions and labels.

        What stays: per decision the attempt id, times, kind, scores, action, rule and model versions, and the
        gateway outcomes and fraud reports (aggregates for monitoring and retraining, linked to no person).
        What goes: the account and payment-method pseudonyms, the payload fingerprint, the feature vector and
        the values of the reason codes.
        """
        erased_at = _now()
        with self._lock:
            self._execute("BEGIN IMMEDIATE")
            try:
                rows = self._execute(
                    "SELECT attempt_id, answer FROM decisions WHERE account_key = ?", (account_key,)
                ).fetchall()
                for attempt_id, answer in rows:
                    self._execute(
                        "UPDATE decisions SET account_key = NULL, method_key = NULL, fingerprint = NULL, "
                        "answer = ?, erased_at = ? WHERE attempt_id = ?",
                        (json.dumps(_without_personal_data(json.loads(answer))), erased_at, attempt_id),
                    )
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
        with self._lock:
            self._db.close()


def _without_personal_data(answer: dict[str, Any]) -> dict[str, Any]:
    """The logged answer without the feature vector and the reason values."""
    cleaned = {key: value for key, value in answer.items() if key != "features"}
    for model in ("fraud", "failure"):
        part = cleaned.get(model)
        if isinstance(part, dict) and isinstance(part.get("reasons"), list):
            part["reasons"] = [{**reason, "value": None} for reason in part["reasons"]]
    return cleaned
