"""Decisions written into PostgreSQL's ``decisions`` table as plain rows (every column of schema version
0001), and its fraud reports read back as plain rows, for the tests of the review queue without depending on
a decision log class."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from serving.store.base import DecisionRecord, LoggedDecision, epoch_us
from serving.store.labels import ReportSource, StoredReport
from serving.store.moments import moment
from serving.store.postgres.database import Database

_COLUMNS = (
    "attempt_id", "decided_at", "occurred_at", "occurred_us", "account_key", "method_key", "kind",
    "fingerprint", "action", "rule", "decided_by", "fallback", "fraud_probability", "failure_probability",
    "fraud_level", "fraud_model", "failure_model", "plan_tier", "plan_period", "method_type", "card_funding",
    "card_country", "amount", "currency", "answer", "features", "attributes", "fields", "erased_at",
)  # fmt: skip


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def insert_decision(connection: psycopg.Connection[Any], d: DecisionRecord) -> LoggedDecision:
    """Log ``d`` decided now, unless its attempt has a decision already (the first one stays, as in every
    decision log); the decision as logged."""
    values = (
        d.attempt_id, datetime.now(UTC), d.occurred_at, epoch_us(d.occurred_at), d.account_key, d.method_key,
        d.kind, d.fingerprint, d.action, d.rule, d.decided_by, d.fallback, d.fraud_probability,
        d.failure_probability, d.fraud_level, d.fraud_model, d.failure_model, d.plan_tier, d.plan_period,
        d.method_type, d.card_funding, d.card_country, d.amount, d.currency, _json(d.answer), d.features,
        _json(d.attributes), _json(d.fields), None,
    )  # fmt: skip
    connection.execute(
        f"INSERT INTO decisions ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
        "ON CONFLICT (attempt_id) DO NOTHING",
        values,
    )
    row = connection.execute(
        "SELECT decided_at, fingerprint, answer FROM decisions WHERE attempt_id = %s", (d.attempt_id,)
    ).fetchone()
    assert row is not None
    decided_at, fingerprint, answer = row
    return LoggedDecision(d.attempt_id, decided_at, fingerprint, orjson.loads(answer), False, d.attributes)


class DecisionRows:
    """Logs decisions into a PostgreSQL database's ``decisions`` table, one transaction each (the
    :meth:`serving.store.base.DecisionStore.record` of the tests of the review queue)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def record(self, decision: DecisionRecord) -> LoggedDecision:
        with self.database.transaction() as connection:
            return insert_decision(connection, decision)


class FraudReportRows(ReportSource):
    """The ``fraud_reports`` rows of a PostgreSQL database, as the label pull reads a log's reports."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def reports(self) -> list[StoredReport]:
        with self.database.transaction() as connection:
            rows = connection.execute(
                "SELECT report_id, attempt_id, reported_at, report_type FROM fraud_reports "
                "ORDER BY reported_at, report_id"
            ).fetchall()
        return [StoredReport(str(r[0]), str(r[1]), moment(r[2]), str(r[3])) for r in rows]

    def close(self) -> None:
        """The pool is the test's."""
