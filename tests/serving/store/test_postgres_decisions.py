"""The PostgreSQL decision log as a fleet relies on it: two instances (two pools) deciding the same attempt
at once log one decision and both answer with it; an erasure by one is seen by the other at once; the
command-line readers (report, rule backtest, labels pull) read the shared database when RISKGATE_DATABASE_URL
is set."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from core.settings import get_settings
from riskgate.cli import app
from serving.store.base import LoggedDecision
from serving.store.decisions import DecisionLog
from serving.store.labels_sqlite import SQLiteReports
from serving.store.postgres.database import Database
from serving.store.postgres.decisions import PostgresDecisions, PostgresRanges
from serving.store.sources import DecisionSource, decision_source
from tests.servers import PostgresServer
from tests.serving.factories import settings_for
from tests.serving.readers.test_trends import decision
from tests.serving.store.test_decision_store import AT, _fill

ATTEMPTS = 40


@pytest.fixture
def instances(postgres_url: str) -> Iterator[tuple[PostgresDecisions, PostgresDecisions]]:
    """Two instances' decision logs over one database, each with a pool of its own."""
    pools = [Database(postgres_url, size=4), Database(postgres_url, size=4)]
    yield PostgresDecisions(pools[0]), PostgresDecisions(pools[1])
    for pool in pools:
        pool.close()


def test_the_same_attempt_decided_on_two_instances_at_once_is_one_decision(
    instances: tuple[PostgresDecisions, PostgresDecisions],
) -> None:
    answers: dict[tuple[int, int], LoggedDecision] = {}
    barrier = threading.Barrier(2)

    def decide(instance: int) -> None:
        for n in range(ATTEMPTS):
            action = ("approve", "block")[instance]  # each instance decides differently
            made = decision(f"a{n}", AT, action=action, fraud=0.1 + 0.8 * instance, failure=0.2, amount=9.0)
            barrier.wait()  # both insert the same attempt at the same moment
            answers[(instance, n)] = instances[instance].record(made)

    threads = [threading.Thread(target=decide, args=(instance,)) for instance in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert instances[0].count() == instances[1].count() == ATTEMPTS  # exactly one row per attempt
    for n in range(ATTEMPTS):
        first, second = answers[(0, n)], answers[(1, n)]
        assert (first.answer, first.decided_at) == (second.answer, second.decided_at)  # both answer the same
        logged = instances[1].get(f"a{n}")
        assert logged is not None
        assert (logged.answer, logged.decided_at) == (first.answer, first.decided_at)  # and it is the log's
    winners = {answers[(0, n)].answer["decision"]["action"] for n in range(ATTEMPTS)}
    assert winners <= {"approve", "block"}


def test_what_one_instance_logs_erases_and_labels_the_other_sees_at_once(
    instances: tuple[PostgresDecisions, PostgresDecisions],
) -> None:
    one, other = instances
    one.record(decision("a1", AT, action="approve", fraud=0.1, failure=0.2, amount=9.0))
    assert other.get("a1") is not None
    assert other.record_outcome("a1", AT, "declined", "51") is True
    assert one.record_outcome("a1", AT, "approved", None) is False  # one outcome per attempt, fleet-wide
    assert one.last_outcome_of_method("pm") == ("declined", "51")
    erasure = other.erase_account("acc", 0)
    assert (erasure.decisions, erasure.outcomes_kept) == (1, 1)
    erased = one.get("a1")
    assert erased is not None
    assert erased.erased
    with one.ranges() as reader:
        assert reader.decision_rows(0, 2**60, None).account_key == [None]


def test_the_reports_read_as_the_sqlite_logs_are(postgres_url: str, tmp_path: Path) -> None:
    database = Database(postgres_url, size=2)
    _fill(PostgresDecisions(database))
    database.close()
    sqlite = DecisionLog(tmp_path / "decisions.sqlite")
    _fill(sqlite)
    sqlite.close()
    expected = SQLiteReports(tmp_path / "decisions.sqlite")
    source = DecisionSource(url=postgres_url).reports()
    try:
        assert source.reports() == expected.reports()
        assert [report.report_id for report in source.reports()] == ["r0", "r1", "r5"]
    finally:
        source.close()
        expected.close()


def test_commands_read_the_database_unless_a_state_directory_is_named(
    postgres_url: str, tmp_path: Path
) -> None:
    with_url = settings_for(tmp_path, database_url=postgres_url)
    assert decision_source(with_url) == DecisionSource(url=postgres_url)
    assert decision_source(with_url, tmp_path / "s") == DecisionSource(
        path=tmp_path / "s" / "decisions.sqlite"
    )
    assert decision_source(settings_for(tmp_path)).path == tmp_path / "state" / "decisions.sqlite"
    secret = DecisionSource(url="postgresql://rg:s3cret@db.example:5432/riskgate")
    assert "s3cret" not in f"{secret} {secret!r}"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_rule_backtest_and_the_report_read_postgres(
    postgres_url: str, tmp_path: Path, cli_env: pytest.MonkeyPatch
) -> None:
    database = Database(postgres_url, size=2)
    _fill(PostgresDecisions(database))
    database.close()
    sqlite = DecisionLog(tmp_path / "sqlite" / "decisions.sqlite")
    _fill(sqlite)
    sqlite.close()
    runner = CliRunner()
    args = ["rules", "backtest", "--expression", "amount > 12", "--start", AT.isoformat(), "--json"]
    over_file = runner.invoke(app, [*args, "--state-dir", str(tmp_path / "sqlite")])
    assert over_file.exit_code == 0, over_file.output
    cli_env.setenv("RISKGATE_DATABASE_URL", postgres_url)
    get_settings.cache_clear()
    over_database = runner.invoke(app, args)
    assert over_database.exit_code == 0, over_database.output
    answer, expected = json.loads(over_database.output), json.loads(over_file.output)
    assert {**answer, "seconds": None} == {**expected, "seconds": None}  # all but how long it took
    assert (answer["attempts"], answer["hits"]["attempts"], answer["unreadable"]["erased"]) == (10, 7, 3)

    out = tmp_path / "report.html"
    end = (AT + timedelta(days=3)).isoformat()
    made = runner.invoke(
        app, ["report", "--no-drift", "--out", str(out), "--start", AT.isoformat(), "--end", end]
    )
    assert made.exit_code == 0, made.output
    assert "<dd>10: approve 3 (30.0%)" in out.read_text()  # every decision of the shared log


def test_a_decision_keeps_its_time_to_the_microsecond_in_utc(
    instances: tuple[PostgresDecisions, ...],
) -> None:
    made = replace(
        decision("t", datetime(2026, 3, 1, 11, 30, 0, 123456, tzinfo=UTC), action="approve", fraud=0.1,
                 failure=0.1, amount=1.0),
    )  # fmt: skip
    answered = instances[0].record(made)
    stored = instances[1].get("t")
    assert stored is not None
    assert stored.decided_at == answered.decided_at
    assert stored.decided_at.tzinfo is UTC
    with instances[1].ranges() as reader:
        assert reader.occurred_bounds() == (1772364600123456, 1772364600123456)


@pytest.fixture(scope="module")
def numbers_database(postgres_server: PostgresServer) -> Iterator[Database]:
    """One database for every example of the property below (its tables are never touched)."""
    database = Database(postgres_server.create_database("numbers", template="riskgate_template"), size=1)
    yield database
    database.close()


_FLOATS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**53), 2**53))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_FLOATS, _FLOATS, _FLOATS), max_size=50))
def test_numeric_rows_read_in_binary_are_the_rows_fetched(
    numbers_database: Database, rows: list[tuple[float | int | None, ...]]
) -> None:
    """Trends read their numbers through PostgreSQL's binary COPY: the same values (NULL: NaN) as fetching."""
    columns = [[None if row[i] is None else float(row[i]) for row in rows] for i in range(3)]  # type: ignore[arg-type]
    sql = "SELECT * FROM unnest(%s::float8[], %s::float8[], %s::float8[]) WITH ORDINALITY AS u(a, b, c, n)"
    ordered = f"SELECT a, b, c FROM ({sql}) AS t ORDER BY n"
    with PostgresRanges(numbers_database) as reader:
        copied = reader._numbers(ordered, columns, 3)
        fetched = np.array(reader._all(ordered, columns), dtype=np.float64).reshape(len(rows), 3)
    assert copied.shape == (len(rows), 3)
    assert np.array_equal(copied, fetched, equal_nan=True)
