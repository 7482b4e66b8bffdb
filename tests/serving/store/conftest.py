"""The decision log under every backend, for tests whose body proves the same behaviour of each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.store.base import DecisionStore
from serving.store.decisions import DecisionLog
from serving.store.journal import Journal

#: ``sqlite``: the file, committed per decision; ``journaled``: the file under write-behind (decisions held
#: until a flush); ``postgres``: the fleet's shared database, committed per decision.
BACKENDS = ("sqlite", "journaled", "postgres")


@pytest.fixture(params=BACKENDS)
def decision_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DecisionStore]:
    """A new, empty decision log of each backend (range reads see held decisions after ``flush()``)."""
    if request.param == "postgres":
        from serving.store.postgres.database import Database  # noqa: PLC0415
        from serving.store.postgres.decisions import PostgresDecisions  # noqa: PLC0415

        database = Database(request.getfixturevalue("postgres_url"), size=4)
        store: DecisionStore = PostgresDecisions(database)
        yield store
        store.close()
        database.close()
        return
    journal = Journal(tmp_path / "journal") if request.param == "journaled" else None
    store = DecisionLog(tmp_path / "decisions.sqlite", journal=journal)
    yield store
    store.close()
    if journal is not None:
        journal.close()
