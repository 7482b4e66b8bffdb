"""The service over PostgreSQL (RISKGATE_DATABASE_URL) as a client sees it: every decision, outcome, report,
erasure, trend and drift answer is the one the SQLite service gives for the same requests; a second instance
over the same database answers for the first's decisions; each decision is in the database before its
answer; a database whose schema is not upgraded is refused at start-up."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.store.postgres.database import Database
from serving.store.postgres.schema import SchemaVersionError
from tests.servers import PostgresServer
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, T0, attempt, seed_cache, service_for

#: What differs between two runs of the same request, whatever the backend: how long it took, and when.
_TIMED = ("scoring_ms", "decided_at")


def _instance(stack: ExitStack, root: Path, bundles: dict[str, ModelBundle], **settings: Any) -> TestClient:
    seed_cache(root / "state" / "models", bundles)
    client = DocumentedClient(create_app(service=service_for(root, **settings)))
    return stack.enter_context(client)


@pytest.fixture
def fleet(
    tmp_path: Path, bundles: dict[str, ModelBundle], postgres_url: str
) -> Iterator[tuple[TestClient, TestClient, TestClient]]:
    """The SQLite service, and two instances (state directories of their own) over one PostgreSQL."""
    with ExitStack() as stack:
        yield (
            _instance(stack, tmp_path / "sqlite", bundles),
            _instance(stack, tmp_path / "one", bundles, database_url=postgres_url),
            _instance(stack, tmp_path / "two", bundles, database_url=postgres_url),
        )


def _untimed(body: Any) -> Any:
    """An answer without its timings, ``decided_at`` kept as its shape (digits zeroed: same format)."""
    if isinstance(body, dict):
        return {
            key: re.sub(r"\d", "0", value) if key == "decided_at" else _untimed(value)
            for key, value in body.items()
            if key != "scoring_ms"
        }
    if isinstance(body, list):
        return [_untimed(item) for item in body]
    return body


def _session(client: TestClient) -> dict[str, Any]:
    """Scores, a replay, outcomes and reports, single reads, an erasure, trends and drift: every answer."""
    answers: dict[str, Any] = {}

    def call(name: str, method: str, path: str, **kwargs: Any) -> None:
        response = client.request(method, path, **kwargs)
        assert response.status_code in (200, 404), response.text
        kind = response.headers["content-type"]
        body = _untimed(response.json()) if kind == "application/json" else response.text
        answers[name] = (response.status_code, kind, body)

    for n in range(12):
        call(
            f"score {n}",
            "POST",
            "/v1/score",
            json=attempt(n, card_country="FR" if n % 3 else "DE"),
            headers=SCORE,
        )
    call("replay", "POST", "/v1/score", json=attempt(3), headers=SCORE)  # the logged decision
    outcomes = [{"attempt_id": f"att-{n:06d}", "occurred_at": (T0 + timedelta(minutes=n)).isoformat(),
                 "status": "approved"} for n in range(8)]  # fmt: skip
    reports = [{"report_id": "r1", "attempt_id": "att-000002", "reported_at": "2026-03-05T00:00:00Z",
                "report_type": "chargeback"}]  # fmt: skip
    for name in ("labels", "labels again"):  # the second time: duplicates
        call(
            name, "POST", "/v1/outcomes", json={"outcomes": outcomes, "fraud_reports": reports}, headers=SCORE
        )
    for attempt_id in ("att-000001", "att-000007", "nope"):
        call(attempt_id, "GET", f"/v1/decisions/{attempt_id}", headers=SCORE)
    call("erasure", "DELETE", "/v1/accounts/acc-1", headers=ADMIN)
    call("erased", "GET", "/v1/decisions/att-000001", headers=SCORE)
    for params in (
        {"segment": "card_country", "bucket": "hour"},
        {"format": "csv"},
        {"segment": "plan_tier"},
    ):
        call(f"trends {params}", "GET", "/v1/trends", params=params, headers=ADMIN)
    call("drift", "GET", "/v1/drift", headers=ADMIN)
    return answers


def test_the_service_answers_over_postgres_as_over_sqlite(
    fleet: tuple[TestClient, TestClient, TestClient],
) -> None:
    sqlite, one, _ = fleet
    expected, answers = _session(sqlite), _session(one)
    assert answers == expected
    # the session did what it says
    assert answers["replay"][2]["replayed"] is True
    assert answers["labels again"][2]["outcomes_duplicate"] == 8
    assert answers["erasure"][2]["decisions_unlinked"] >= 1
    assert (answers["erased"][2]["erased"], answers["erased"][2]["features"]) == (True, None)
    assert answers["nope"][0] == 404
    assert re.fullmatch(r"0{4}-00-00T00:00:00(\.0{6})?Z", answers["att-000007"][2]["decided_at"])
    assert answers["trends {'format': 'csv'}"][1].startswith("text/csv")


def test_a_second_instance_answers_for_the_first(
    fleet: tuple[TestClient, TestClient, TestClient], postgres_url: str
) -> None:
    _, one, two = fleet
    first = one.post("/v1/score", json=attempt(1), headers=SCORE).json()
    database = Database(postgres_url, size=1)  # the decision is in the database as soon as it is answered
    with database.transaction() as connection:
        row = connection.execute("SELECT action FROM decisions WHERE attempt_id = 'att-000001'").fetchone()
    database.close()
    assert row == (first["decision"]["action"],)
    logged = two.get("/v1/decisions/att-000001", headers=SCORE).json()
    assert logged["decision"] == first["decision"]
    again = two.post("/v1/score", json=attempt(1), headers=SCORE).json()
    assert again["replayed"] is True
    assert again["decision"] == first["decision"]
    trend = two.get("/v1/trends", params={"bucket": "hour"}, headers=ADMIN).json()
    assert sum(point["attempts"] for point in trend["series"][0]["points"]) == 1  # counted once, fleet-wide
    assert two.delete("/v1/accounts/acc-1", headers=ADMIN).json()["decisions_unlinked"] == 1
    assert one.get("/v1/decisions/att-000001", headers=SCORE).json()["erased"] is True


def test_an_instance_keeps_no_journal_over_postgres(
    tmp_path: Path, bundles: dict[str, ModelBundle], postgres_url: str
) -> None:
    service = service_for(tmp_path, database_url=postgres_url)
    try:
        assert (service.write_behind, service.journal_lock) == (None, None)
        assert not (tmp_path / "state" / "journal").exists()
        assert all(path.name != "decisions.sqlite" for path in service.sqlite_files)
    finally:
        service.close()


def test_a_database_whose_schema_is_not_upgraded_is_refused(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    empty = postgres_server.create_database("never_upgraded")
    with pytest.raises(SchemaVersionError, match="riskgate db upgrade"):
        service_for(tmp_path, database_url=empty)
