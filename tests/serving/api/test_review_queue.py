"""The review queue over HTTP, as an analyst's tooling uses it: every first ``review`` decision opens exactly
one case (replays and concurrent duplicates never a second), cases listed oldest first with filters and
pages, a case read with its reasons and its account's history, claims that conflict and lapse, resolutions
(a fraud one records the fraud report and, asked, adds the card to a block list, all or nothing), and the
``review.opened`` / ``review.resolved`` events reaching a real receiver. Every answer is checked against the
OpenAPI document (DocumentedClient)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.settings import ApiKey
from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.api.routes.dashboard import QUEUE_ASSETS, STATIC_DIR
from serving.api.security import hash_key
from serving.errors import ConfigurationError
from serving.scoring.review import ReviewDesk
from serving.store.outbox import EVENTS, EventType
from tests.serving.api.receiver import Receiver, receiving
from tests.serving.api.test_dashboard_page import _resources
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, ADMIN_KEY, SCORE, SCORE_KEY, attempt, seed_cache, service_for

OTHER_KEY = "rg-test-other-analyst"
OTHER = {"X-API-Key": OTHER_KEY}
KEYS = [
    ApiKey(name="dev-score", sha256=hash_key(SCORE_KEY), scopes=frozenset({"score"})),
    ApiKey(name="dev-admin", sha256=hash_key(ADMIN_KEY), scopes=frozenset({"admin"})),
    ApiKey(name="other-analyst", sha256=hash_key(OTHER_KEY), scopes=frozenset({"admin"})),
]
#: every scored attempt is at the elevated fraud level (never the highest): the policy reviews it
REVIEW_ALL: dict[str, Any] = {"fraud_elevated_threshold": 0.0, "fraud_highest_threshold": 1.0}


def queue_client(tmp_path: Path, bundles: dict[str, ModelBundle], **settings: Any) -> DocumentedClient:
    seed_cache(tmp_path / "state" / "models", bundles)
    return DocumentedClient(
        create_app(service=service_for(tmp_path, api_keys=KEYS, **{**REVIEW_ALL, **settings}))
    )


@pytest.fixture
def queue(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Iterator[TestClient]:
    with queue_client(tmp_path, bundles) as client:
        yield client


def desk_of(client: TestClient) -> ReviewDesk:
    desk: ReviewDesk = client.app.state.service.review  # type: ignore[attr-defined]
    return desk


def score(client: TestClient, n: int, **changes: Any) -> dict[str, Any]:
    answer = client.post("/v1/score", json=attempt(n, **changes), headers=SCORE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def cases(client: TestClient, **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/review/cases", params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [case["case_id"] for case in page["cases"]]


def resolve(client: TestClient, case_id: str, headers: dict[str, str] = ADMIN, **body: Any) -> Any:
    return client.post(f"/v1/review/cases/{case_id}/resolve", json=body, headers=headers)


def test_every_first_review_decision_opens_one_case_and_replays_open_none(queue: TestClient) -> None:
    for n in range(3):
        assert score(queue, n)["decision"]["action"] == "review"
    assert score(queue, 1)["replayed"] is True
    with ThreadPoolExecutor(4) as pool:  # concurrent duplicates of one new attempt
        list(pool.map(lambda _: score(queue, 7), range(4)))
    page = cases(queue)
    assert ids(page) == ["att-000000", "att-000001", "att-000002", "att-000007"]
    first = page["cases"][0]
    assert first["status"] == "open"
    assert first["rule"] == "fraud_elevated"
    assert first["fraud_level"] == "elevated"
    assert first["amount"] == 14.99
    assert first["block_fields"] == ["device_id", "payment_method_id"]
    assert first["claim"] is None
    assert first["resolution"] is None
    assert "pm_tok" not in queue.get("/v1/review/cases", headers=ADMIN).text  # raw values never shown


def test_cases_are_filtered_and_paged_oldest_first(queue: TestClient) -> None:
    for n in range(5):
        score(queue, n, amount=10.0 * (n + 1), kind="renewal" if n % 2 else "signup")
    assert ids(cases(queue, min_amount=20, max_amount=40)) == ["att-000001", "att-000002", "att-000003"]
    assert ids(cases(queue, kind="signup")) == ["att-000000", "att-000002", "att-000004"]
    assert ids(cases(queue, rule="fraud_elevated", fraud_level="elevated")) == [
        f"att-00000{n}" for n in range(5)
    ]
    assert ids(cases(queue, rule="nope")) == []
    assert ids(cases(queue, min_age_hours=1)) == []  # all opened just now
    assert len(ids(cases(queue, max_age_hours=1))) == 5
    first = cases(queue, limit=2)
    second = cases(queue, limit=2, after=first["next_after"])
    last = cases(queue, limit=2, after=second["next_after"])
    assert ids(first) + ids(second) + ids(last) == [f"att-00000{n}" for n in range(5)]
    assert last["next_after"] is None
    resolve(queue, "att-000001", outcome="approved")
    assert "att-000001" not in ids(cases(queue))
    assert ids(cases(queue, status="closed")) == ["att-000001"]


def test_a_case_shows_its_reasons_and_its_accounts_history(queue: TestClient) -> None:
    for n in (0, 7, 14):  # one account (n % 7), three attempts
        score(queue, n)
    queue.post(
        "/v1/outcomes",
        json={"outcomes": [{"attempt_id": "att-000000", "occurred_at": attempt(0)["occurred_at"],
                            "status": "declined", "decline_code": "insufficient_funds"}]},
        headers=SCORE,
    )  # fmt: skip
    detail = queue.get("/v1/review/cases/att-000014", headers=ADMIN).json()
    assert detail["case"]["fraud_reasons"]  # the model's reasons, as logged
    assert detail["case"]["account"] is not None
    assert detail["case"]["account"] != "acc-0"
    history = detail["history"]
    assert [entry["attempt_id"] for entry in history] == ["att-000014", "att-000007", "att-000000"]
    assert history[2]["status"] == "declined"
    assert history[2]["decline_code"] == "insufficient_funds"
    limited = queue.get("/v1/review/cases/att-000014", params={"history": 1}, headers=ADMIN).json()
    assert len(limited["history"]) == 1
    assert queue.get("/v1/review/cases/nope", headers=ADMIN).status_code == 404


def test_a_claim_conflicts_with_another_analyst_until_it_lapses(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    with queue_client(tmp_path, bundles, review_claim_minutes=20) as client:
        score(client, 0)
        claimed = client.post("/v1/review/cases/att-000000/claim", headers=ADMIN)
        assert claimed.status_code == 200
        assert claimed.json()["claim"]["claimed_by"] == "dev-admin"
        refused = client.post("/v1/review/cases/att-000000/claim", headers=OTHER)
        assert refused.status_code == 409
        assert "dev-admin" in refused.json()["message"]
        assert resolve(client, "att-000000", OTHER, outcome="approved").status_code == 409
        assert client.post("/v1/review/cases/att-000000/claim", headers=ADMIN).status_code == 200  # extends
        desk_of(client).clock = lambda: datetime.now(UTC) + timedelta(minutes=19)
        assert client.post("/v1/review/cases/att-000000/claim", headers=OTHER).status_code == 409
        desk_of(client).clock = lambda: datetime.now(UTC) + timedelta(minutes=21)
        taken = client.post("/v1/review/cases/att-000000/claim", headers=OTHER)
        assert taken.status_code == 200
        assert taken.json()["claim"]["claimed_by"] == "other-analyst"


def test_a_resolution_is_final_and_names_who(queue: TestClient) -> None:
    score(queue, 0)
    closed = resolve(queue, "att-000000", outcome="customer_contacted", note="called, will pay by SEPA")
    assert closed.status_code == 200
    made = closed.json()["resolution"]
    assert (made["outcome"], made["resolved_by"], made["report_id"]) == (
        "customer_contacted",
        "dev-admin",
        None,
    )
    assert made["note"] == "called, will pay by SEPA"
    again = resolve(queue, "att-000000", outcome="fraud")
    assert again.status_code == 409
    assert resolve(queue, "nope", outcome="fraud").status_code == 404
    assert resolve(queue, "att-000000", outcome="declined").status_code == 422  # expiry's alone
    assert queue.post("/v1/review/cases/att-000000/claim", headers=ADMIN).status_code == 409


def test_a_fraud_resolution_records_the_report_and_blocks_the_card(queue: TestClient, tmp_path: Path) -> None:
    queue.post(
        "/v1/lists", json={"name": "stolen_cards", "field": "payment_method_id", "reason": "r"}, headers=ADMIN
    )
    score(queue, 3)
    closed = resolve(
        queue, "att-000003", outcome="fraud", note="confirmed with the bank", block_list="stolen_cards"
    )
    assert closed.status_code == 200, closed.text
    made = closed.json()["resolution"]
    assert made["report_id"] == "review-att-000003"
    with sqlite3.connect(tmp_path / "state" / "decisions.sqlite") as db:
        reports = db.execute(
            "SELECT report_id, attempt_id, reported_at, report_type FROM fraud_reports"
        ).fetchall()
    assert reports == [
        ("review-att-000003", "att-000003", made["resolved_at"].replace("Z", "+00:00"), "confirmed_fraud")
    ]
    items = queue.get("/v1/lists/stolen_cards/items", headers=ADMIN).json()["items"]
    assert [(item["value"], item["added_by"]) for item in items] == [("pm_tok_3", "dev-admin")]
    assert "review case att-000003" in items[0]["reason"]
    assert metric(queue, "riskgate_errors_total", kind="feature_store") is None
    later = attempt(8, occurred_at=datetime.now(UTC).isoformat())  # the same card (n % 5), after the report
    scored = queue.post("/v1/score", params={"explain": "true"}, json=later, headers=SCORE)
    assert scored.json()["features"]["card_reports_count_lifetime"] == 1  # the online features learned it too


def test_a_block_that_fails_leaves_the_case_open_and_no_report(queue: TestClient, tmp_path: Path) -> None:
    score(queue, 3)
    for block_list, status in (("nope", 404), ("stolen_ips", 422)):
        if block_list == "stolen_ips":
            queue.post("/v1/lists", json={"name": "stolen_ips", "field": "ip", "reason": "r"}, headers=ADMIN)
        answer = resolve(queue, "att-000003", outcome="fraud", block_list=block_list)
        assert answer.status_code == status, answer.text
    assert resolve(queue, "att-000003", outcome="approved", block_list="stolen_ips").status_code == 422
    assert ids(cases(queue)) == ["att-000003"]
    with sqlite3.connect(tmp_path / "state" / "decisions.sqlite") as db:
        assert db.execute("SELECT count(*) FROM fraud_reports").fetchone() == (0,)


def test_a_block_refused_after_the_resolution_undoes_it(queue: TestClient, tmp_path: Path) -> None:
    queue.post(
        "/v1/lists", json={"name": "stolen_cards", "field": "payment_method_id", "reason": "r"}, headers=ADMIN
    )
    score(queue, 3)
    store = queue.app.state.operations.store  # type: ignore[attr-defined]
    original = store.add_items

    def failing(*args: Any) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    store.add_items = failing  # the second half fails after the first was written
    with pytest.raises(sqlite3.OperationalError):
        resolve(queue, "att-000003", outcome="fraud", block_list="stolen_cards")
    store.add_items = original
    assert ids(cases(queue)) == ["att-000003"]
    with sqlite3.connect(tmp_path / "state" / "decisions.sqlite") as db:
        assert db.execute("SELECT count(*) FROM fraud_reports").fetchone() == (0,)
    assert resolve(queue, "att-000003", outcome="fraud", block_list="stolen_cards").status_code == 200


def test_card_numbers_in_a_note_are_refused_never_echoed(queue: TestClient) -> None:
    score(queue, 0)
    answer = resolve(queue, "att-000000", outcome="approved", note="card 4111 1111 1111 1111")
    assert answer.status_code == 422
    assert "1111" not in answer.text


def test_the_queue_needs_the_admin_scope(queue: TestClient) -> None:
    assert queue.get("/v1/review/cases").status_code == 401
    assert queue.get("/v1/review/cases", headers=SCORE).status_code == 403
    assert resolve(queue, "x", SCORE, outcome="fraud").status_code == 403


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


def test_opened_and_resolved_events_reach_the_receiver_once(
    tmp_path: Path, bundles: dict[str, ModelBundle], receiver: Receiver
) -> None:
    endpoint = {"url": receiver.url, "secret": "whsec-test", "events": ["review.opened", "review.resolved"]}
    settings = {"webhooks": [endpoint], "webhook_poll_seconds": 0.02}
    with queue_client(tmp_path, bundles, **settings) as client:
        score(client, 0)
        score(client, 0)  # a replay opens nothing
        resolve(client, "att-000000", outcome="not_fraud", note="known customer")
        events = [orjson.loads(received.body) for received in receiver.wait_for(2)]
    by_type = {event["type"]: event["data"] for event in events}
    assert len(events) == 2
    opened, resolved = by_type[EventType.REVIEW_OPENED], by_type[EventType.REVIEW_RESOLVED]
    assert set(opened) == set(EVENTS[EventType.REVIEW_OPENED].payload)
    assert set(resolved) == set(EVENTS[EventType.REVIEW_RESOLVED].payload)
    assert opened["case_id"] == resolved["case_id"] == "att-000000"
    assert opened["rule"] == "fraud_elevated"
    assert resolved["outcome"] == "not_fraud"
    assert opened["account"] == resolved["account"] != "acc-0"


def metric(client: TestClient, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_metrics_show_the_queue_its_resolutions_and_the_analysts_agreement(queue: TestClient) -> None:
    assert metric(queue, "riskgate_review_open_cases") == 0
    assert metric(queue, "riskgate_review_oldest_open_age_seconds") == 0
    for n in range(4):
        score(queue, n)
    desk_of(queue).clock = lambda: datetime.now(UTC) + timedelta(hours=1)
    assert metric(queue, "riskgate_review_open_cases") == 4
    age = metric(queue, "riskgate_review_oldest_open_age_seconds")
    assert age is not None
    assert 3590 < age < 3700
    for case_id, outcome in (
        ("att-000000", "fraud"),
        ("att-000001", "not_fraud"),
        ("att-000002", "not_fraud"),
    ):
        resolve(queue, case_id, outcome=outcome)
    assert metric(queue, "riskgate_review_open_cases") == 1
    resolved = "riskgate_review_resolutions_total"
    assert metric(queue, resolved, outcome="fraud", fraud_level="elevated") == 1
    assert metric(queue, resolved, outcome="not_fraud", fraud_level="elevated") == 2
    assert metric(queue, "riskgate_review_fraud_share", fraud_level="elevated") == pytest.approx(1 / 3)


def test_a_bad_expiry_setting_stops_the_service_from_starting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"RISKGATE_REVIEW_EXPIRY: rules\.0\.after_hours"):
        service_for(tmp_path, review_expiry='{"rules": [{"after_hours": -1, "outcome": "approve"}]}')


def test_the_queue_page_is_public_locked_to_its_origin_and_loads_only_local_files(
    bare_client: TestClient,
) -> None:
    page = bare_client.get("/dashboard/queue")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    urls = _resources(page.text)
    assert {url.rsplit("/", 1)[1] for url in urls if url.startswith("/dashboard/assets/")} == {
        "dashboard.css",
        "api.js",
        *QUEUE_ASSETS,
    }
    assert all(url.startswith(("/dashboard/assets/", "data:")) for url in urls), urls
    for url in urls:
        if url.startswith("/dashboard/assets/"):
            assert bare_client.get(url).status_code == 200, url
    for file, _ in QUEUE_ASSETS.values():
        assert "http://" not in (STATIC_DIR / file).read_text()
        assert "https://" not in (STATIC_DIR / file).read_text()
