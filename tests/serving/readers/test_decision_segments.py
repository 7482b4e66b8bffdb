"""The decision log's segment columns: what scoring logs, the migration of an older log, erasure."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.iptv import FEATURE_SET
from serving.store.base import epoch_us
from serving.store.decisions import ADDED_COLUMNS, DecisionLog, DecisionReader
from tests.serving.factories import ADMIN, SCORE, T0, attempt

#: The decisions table as riskgate wrote it before the segment columns existed.
OLD_SCHEMA = """CREATE TABLE decisions (
    attempt_id TEXT PRIMARY KEY, decided_at TEXT NOT NULL, occurred_at TEXT NOT NULL, account_key TEXT,
    method_key TEXT, kind TEXT NOT NULL, fingerprint TEXT, action TEXT NOT NULL, rule TEXT NOT NULL,
    fallback INTEGER NOT NULL, fraud_probability REAL, failure_probability REAL, answer TEXT NOT NULL,
    erased_at TEXT
)"""


def _row(log: TestClient | Path, attempt_id: str) -> dict[str, object]:
    """The decision's row in a log's SQLite file; of a service's log after a flush (with write-behind the
    journal holds a decision first, SQLite within milliseconds)."""
    if isinstance(log, TestClient):
        service = log.app.state.service  # type: ignore[attr-defined]
        service.engine.flush()
        log = service.engine.log.path
    db = sqlite3.connect(log)
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT * FROM decisions WHERE attempt_id = ?", (attempt_id,)).fetchone()
    db.close()
    return dict(row)


def test_scoring_logs_the_segments_models_and_feature_vector(client: TestClient, tmp_path: Path) -> None:
    body = attempt(
        1, plan_tier="premium", card_funding="prepaid", card_country="FR", amount=29.99, currency="GBP"
    )
    answer = client.post("/v1/score", json=body, headers=SCORE, params={"explain": "true"}).json()
    row = _row(client, "att-000001")
    segments = ("plan_tier", "plan_period", "method_type", "card_funding", "card_country")
    assert {k: row[k] for k in segments} == {
        "plan_tier": "premium", "plan_period": "monthly", "method_type": "card", "card_funding": "prepaid",
        "card_country": "FR",
    }  # fmt: skip
    assert (row["amount"], row["currency"]) == (29.99, "GBP")
    assert row["fraud_level"] == answer["fraud"]["level"]
    assert (row["fraud_model"], row["failure_model"]) == ("riskgate-fraud/1", "riskgate-failure/1")
    assert row["occurred_us"] == epoch_us(T0.replace(minute=1))
    vector = np.frombuffer(row["features"], dtype=np.float32)  # type: ignore[call-overload]
    assert len(vector) == len(FEATURE_SET.names)
    expected = np.array([np.nan if v is None else v for v in answer["features"].values()], dtype=np.float32)
    np.testing.assert_array_equal(vector, expected)


def test_a_fallback_decision_names_no_model(bare_client: TestClient, tmp_path: Path) -> None:
    assert bare_client.post("/v1/score", json=attempt(2), headers=SCORE).status_code == 200
    row = _row(bare_client, "att-000002")
    assert (row["fraud_model"], row["failure_model"], row["plan_tier"]) == (None, None, "standard")


def test_erasure_drops_the_feature_vector_and_keeps_the_segments(client: TestClient, tmp_path: Path) -> None:
    assert client.post("/v1/score", json=attempt(7), headers=SCORE).status_code == 200
    assert client.delete("/v1/accounts/acc-0", headers=ADMIN).status_code == 200
    row = _row(client, "att-000007")
    assert row["features"] is None
    assert row["account_key"] is None
    assert (row["plan_tier"], row["card_country"], row["amount"]) == ("standard", "DE", 14.99)


def test_an_older_log_gains_the_columns_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    db = sqlite3.connect(path)
    db.execute(OLD_SCHEMA)
    answer = {
        "fraud": {
            "probability": 0.3,
            "level": "elevated",
            "model": {"name": "riskgate-fraud", "version": "4"},
        },
        "failure": {"probability": 0.1, "model": {"name": "riskgate-failure", "version": "2", "source": "x"}},
        "features": {"a": 1.5, "b": None},
    }
    for i, erased in enumerate((None, "2026-03-02T00:00:00+00:00")):
        db.execute(
            "INSERT INTO decisions VALUES "
            "(?, ?, ?, 'acc', 'pm', 'renewal', 'fp', 'review', 'r', 0, 0.3, 0.1, ?, ?)",
            (
                f"old-{i}",
                "2026-03-01T12:00:01+00:00",
                f"2026-03-01T12:00:0{i}.5+00:00",
                json.dumps(answer),
                erased,
            ),
        )
    db.commit()
    db.close()

    log = DecisionLog(path)
    assert log.count() == 2
    log.close()
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(decisions)")}
    assert set(ADDED_COLUMNS) <= columns
    row = _row(path, "old-0")
    assert row["occurred_us"] == epoch_us(T0.replace(second=0, microsecond=500_000))
    assert (row["fraud_level"], row["fraud_model"], row["failure_model"]) == (
        "elevated", "riskgate-fraud/4", "riskgate-failure/2",
    )  # fmt: skip
    vector = np.frombuffer(row["features"], dtype=np.float32)  # type: ignore[call-overload]
    assert vector[0] == 1.5
    assert np.isnan(vector[1])
    assert row["plan_tier"] is None  # never logged: unknown, not guessed
    assert _row(path, "old-1")["features"] is None  # erased before: stays without a vector
    with DecisionReader(path) as reader:  # and the migrated rows are in the trends' time range
        assert reader.occurred_bounds() == (row["occurred_us"], row["occurred_us"] + 1_000_000)
    DecisionLog(path).close()  # opening again changes nothing
    assert _row(path, "old-0") == row


def test_a_reader_migrates_a_log_no_current_service_opened(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    db = sqlite3.connect(path)
    db.execute(OLD_SCHEMA)
    db.execute(
        "INSERT INTO decisions VALUES ('x', 'now', '2026-03-01T12:00:00+00:00', NULL, NULL, 'renewal', NULL, "
        "'approve', 'r', 0, 0.2, 0.1, '{}', NULL)"
    )
    db.commit()
    db.close()
    with DecisionReader(path) as reader:
        columns = reader.trend_columns(0, 2**62, "plan_tier")
    assert columns.fraud.tolist() == [0.2]
    assert columns.segment.tolist() == [-1]  # never logged: no value


def test_a_reader_needs_an_existing_log(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no decision log"):
        DecisionReader(tmp_path / "missing.sqlite")
    with DecisionReader(DecisionLog(tmp_path / "empty.sqlite").path) as reader:
        assert reader.occurred_bounds() is None
        assert reader.labels_as_of() is None
        with pytest.raises(ValueError, match="unknown segment"):
            reader.trend_columns(0, 1, "account_key")
        with pytest.raises(ValueError, match="unknown task"):
            reader.models_used(0, 1, "churn")
