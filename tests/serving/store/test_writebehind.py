"""Write-behind: the journal, the buffered online store, and what a restart after a kill recovers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from features.iptv import FEATURE_SET
from features.online import OnlineEngine
from features.stores.base import Transaction
from features.stores.memory import MemoryStore
from features.stores.sqlite import SQLiteStore
from features.stores.writebehind import MARKER_KEY, WriteBehindStore
from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.api.service import Service
from serving.scoring.schemas import AttemptIn
from serving.store.decisions import DecisionLog
from serving.store.journal import Journal, JournalError, shared_lock
from tests.serving.documented import DocumentedClient
from tests.serving.factories import SCORE, attempt, seed_cache, service_for

# -- the journal ---------------------------------------------------------------------------------------------


def test_journal_replays_what_was_not_released_in_order_and_numbers_on(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    assert [journal.append(f"r{k}".encode()) for k in range(3)] == [1, 2, 3]
    assert journal.rotate() == 3
    journal.append(b"r3")
    assert journal.rotate() == 4
    assert journal.release(3) == 1  # the first segment only: the second holds position 4
    journal.close()
    again = Journal(tmp_path / "j")
    assert list(again.replay()) == [(4, b"r3")]
    assert again.append(b"r4") == 5
    again.advance(100)  # SQLite remembers a later position than the journal's files
    assert again.append(b"r5") == 101
    again.close()


def test_a_torn_last_record_is_ignored_and_the_intact_ones_kept(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(b"kept")
    journal.append(b"torn by a kill")
    journal.rotate()
    journal.close()
    (segment,) = (tmp_path / "j").glob("*.log")
    segment.write_bytes(segment.read_bytes()[:-5])
    assert list(Journal(tmp_path / "j").replay()) == [(1, b"kept")]


def test_one_process_at_a_time_writes_a_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    with pytest.raises(JournalError, match="in use by another riskgate process"):
        Journal(tmp_path / "j")
    with pytest.raises(JournalError, match="--workers N"):
        shared_lock(tmp_path / "j")  # a process sharing SQLite directly cannot join either
    journal.close()
    fd = shared_lock(tmp_path / "j")  # several direct processes may share it
    os.close(fd)


# -- the buffered store --------------------------------------------------------------------------------------


def test_writes_stay_in_memory_until_a_flush_sends_them_with_the_marker(tmp_path: Path) -> None:
    path = tmp_path / "online.sqlite"
    store = WriteBehindStore(SQLiteStore(path), writer=SQLiteStore(path))

    def work(tx: Transaction) -> None:
        tx.put("a", b"1", 5)
        tx.put("b", b"2")
        tx.delete("b")

    store.transact(work)
    assert store.get_many(["a", "b", "c"]) == [b"1", None, None]
    on_disk = SQLiteStore(path)
    assert on_disk.get_many(["a"]) == [None]
    assert store.dirty == 2
    assert store.flush(marker=7) == 2
    assert on_disk.get_many(["a", "b", MARKER_KEY]) == [b"1", None, b"7"]
    assert store.flush(marker=3) == 0  # an older position never moves the marker back
    store.close()
    assert WriteBehindStore(on_disk).applied == 7


def test_a_failed_unit_of_work_leaves_nothing_and_a_failed_flush_loses_nothing(tmp_path: Path) -> None:
    store = WriteBehindStore(SQLiteStore(tmp_path / "online.sqlite"))

    def fails(tx: object) -> None:
        tx.put("x", b"never")  # type: ignore[attr-defined]
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        store.transact(fails)
    assert store.get_many(["x"]) == [None]
    store.transact(lambda tx: tx.put("y", b"1"))
    store.writer.close()  # the file is unwritable for a while
    with pytest.raises(Exception, match="closed"):
        store.flush(marker=1)
    assert store.get_many(["y"]) == [b"1"]
    assert store.dirty == 1
    store.writer = store.inner = SQLiteStore(tmp_path / "online.sqlite")  # writable again
    assert store.flush(marker=1) == 1
    assert SQLiteStore(tmp_path / "online.sqlite").get_many(["y"]) == [b"1"]


def test_a_small_cache_evicts_clean_values_and_still_reads_right(tmp_path: Path) -> None:
    path = tmp_path / "online.sqlite"
    store = WriteBehindStore(SQLiteStore(path), cache_bytes=1_000)  # a handful of entries
    for k in range(50):
        store.transact(lambda tx, k=k: tx.put(f"key-{k}", bytes([k]) * 10))  # type: ignore[misc]
        if k % 7 == 0:
            store.flush()
    store.flush()
    assert store._clean_bytes <= 1_000
    assert store.get_many([f"key-{k}" for k in range(50)]) == [bytes([k]) * 10 for k in range(50)]


# -- the service: a kill, then a restart ---------------------------------------------------------------------

_KILLED = """
import os, signal, sys
from pathlib import Path
from serving.scoring.schemas import AttemptIn
from tests.serving.factories import attempt, service_for

service = service_for(Path(sys.argv[1]), write_behind_ms=60_000)  # no background flush before the kill
service.start()
for n in range(int(sys.argv[2])):
    service.engine.score(AttemptIn.model_validate(attempt(n)))
if len(sys.argv) > 3:
    service.engine.flush()  # some records are in SQLite already: they must not count twice
    for n in range(int(sys.argv[2]), int(sys.argv[3])):
        service.engine.score(AttemptIn.model_validate(attempt(n)))
sys.stdout.write("answered\\n")
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_after(tmp_path: Path, *counts: int, script: str = _KILLED) -> None:
    """Run ``script`` (scores, then kills itself with SIGKILL) over the state directory ``tmp_path``."""
    finished = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), str(tmp_path), *map(str, counts)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert finished.stdout == "answered\n", finished.stderr[-3000:]
    assert finished.returncode == -9


@pytest.mark.parametrize("counts", [(12,), (5, 12)], ids=["nothing flushed", "half flushed"])
def test_a_restart_after_kill_9_recovers_every_answered_decision_and_the_features_once(
    tmp_path: Path, bundles: dict[str, ModelBundle], counts: tuple[int, ...]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    _killed_after(tmp_path, *counts)
    total = counts[-1]
    assert list((tmp_path / "state" / "journal").glob("*.log"))  # the answers live in the journal only
    service = service_for(tmp_path)
    service.start()
    try:
        assert service.engine.log.count() == total
        for n in range(total):
            logged = service.engine.log.get(f"att-{n:06d}")
            assert logged is not None
            assert logged.answer["attempt_id"] == f"att-{n:06d}"
        reference = OnlineEngine(MemoryStore(), FEATURE_SET)
        for n in range(total):
            reference.record_attempt(AttemptIn.model_validate(attempt(n)).as_event())
        for probe in (attempt(total + 1), attempt(total + 2, account_id="acc-3", device_id="dev-1")):
            event = AttemptIn.model_validate(probe).as_event()
            np.testing.assert_array_equal(
                service.engine.features.features_for(event), reference.features_for(event)
            )
        assert service.write_behind is not None
        assert service.write_behind.store is not None
        assert service.write_behind.store.dirty == 0
        assert not list((tmp_path / "state" / "journal").glob("*.log"))  # all in SQLite: segments deleted
    finally:
        service.close()


def test_outcomes_are_durable_when_answered_and_trends_see_every_decision(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    with _serving(tmp_path, bundles, write_behind_ms=60_000) as (client, service):  # only explicit flushes
        for n in range(3):
            assert client.post("/v1/score", json=attempt(n), headers=SCORE).status_code == 200
        assert service.write_behind is not None
        assert service.engine.log.held == 3
        outcome = {"attempt_id": "att-000001", "occurred_at": attempt(1)["occurred_at"], "status": "approved"}
        assert client.post("/v1/outcomes", json={"outcomes": [outcome]}, headers=SCORE).status_code == 200
        assert service.engine.log.held == 0
        assert service.write_behind.store is not None
        assert service.write_behind.store.dirty == 0
        assert client.post("/v1/score", json=attempt(3), headers=SCORE).status_code == 200
        trends = client.get("/v1/trends", params={"bucket": "day"}, headers=SCORE)
        assert trends.status_code == 200, trends.text
        assert sum(p["attempts"] for s in trends.json()["series"] for p in s["points"]) == 4


def test_a_failing_flush_shows_in_readiness_and_metrics_and_catches_up(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    with _serving(tmp_path, bundles, write_behind_ms=20) as (client, service):
        log = service.engine.log
        assert isinstance(log, DecisionLog)  # the SQLite log's writer connection, broken below
        healthy_writer = log._writer
        log._writer = sqlite3.connect(":memory:")  # a decision log that takes no writes
        assert client.post("/v1/score", json=attempt(1), headers=SCORE).status_code == 200
        assert _eventually(lambda: client.get("/readyz").status_code == 503)
        assert client.get("/readyz").json()["checks"]["write_behind"] is False
        assert 'riskgate_errors_total{kind="write_behind"}' in client.get("/metrics").text
        assert client.get("/v1/decisions/att-000001", headers=SCORE).status_code == 200  # held, still served
        log._writer = healthy_writer
        assert _eventually(lambda: client.get("/readyz").status_code == 200)
        assert log.held == 0


def test_scoring_is_refused_when_too_many_decisions_wait_for_sqlite(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    with _serving(tmp_path, bundles, write_behind_ms=60_000) as (client, service):
        log = service.engine.log
        assert isinstance(log, DecisionLog)
        log.max_held = 2
        for n in range(2):
            assert client.post("/v1/score", json=attempt(n), headers=SCORE).status_code == 200
        refused = client.post("/v1/score", json=attempt(2), headers=SCORE)
        assert refused.status_code == 503
        assert refused.json()["error"] == "not_ready"
        service.engine.flush()
        assert client.post("/v1/score", json=attempt(2), headers=SCORE).status_code == 200


@contextmanager
def _serving(
    tmp_path: Path, bundles: dict[str, ModelBundle], write_behind_ms: float
) -> Iterator[tuple[TestClient, Service]]:
    """The app over a fresh state directory with both models, flushing every ``write_behind_ms``."""
    seed_cache(tmp_path / "state" / "models", bundles)
    service = service_for(tmp_path, write_behind_ms=write_behind_ms)
    with DocumentedClient(create_app(service=service)) as client:
        yield client, service


def _eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
