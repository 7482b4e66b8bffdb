"""Who decided (an analyst's rule or the model policy) is logged with every decision, and a log written before
analysts' rules existed says of its decisions that the model policy decided them."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from serving.store.decisions import LOG_VERSION, DecisionLog
from serving.store.journal import Journal
from tests.serving.readers.test_trends import decision

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _who(path: Path) -> list[tuple[str, str, str | None]]:
    db = sqlite3.connect(path)
    rows = db.execute("SELECT attempt_id, rule, decided_by FROM decisions ORDER BY attempt_id").fetchall()
    db.close()
    return rows


def test_the_log_keeps_the_rule_and_who_decided_directly_and_through_the_journal(tmp_path: Path) -> None:
    ruled = replace(decision("a", T0, action="block", fraud=0.1, failure=0.1, amount=9.0), rule="block-x")
    ruled = replace(ruled, decided_by="rule")
    log = DecisionLog(tmp_path / "direct.sqlite")
    log.record(ruled)
    log.record(decision("b", T0, action="approve", fraud=0.1, failure=0.1, amount=9.0))
    log.close()
    assert _who(tmp_path / "direct.sqlite") == [("a", "block-x", "rule"), ("b", "test", "policy")]
    behind = DecisionLog(tmp_path / "behind.sqlite", journal=Journal(tmp_path / "journal"))
    behind.record(ruled)
    behind.close()  # flushed from what the journal holds
    assert _who(tmp_path / "behind.sqlite") == [("a", "block-x", "rule")]


def test_a_log_of_the_previous_version_reads_policy_for_its_decisions(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    log = DecisionLog(path)
    log.record(decision("old", T0, action="approve", fraud=0.1, failure=0.1, amount=9.0))
    log.close()
    db = sqlite3.connect(path)  # as version 2 left it: no decided_by column
    db.execute("ALTER TABLE decisions DROP COLUMN decided_by")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    DecisionLog(path).close()
    assert _who(path) == [("old", "test", "policy")]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (LOG_VERSION,)
    db.close()
