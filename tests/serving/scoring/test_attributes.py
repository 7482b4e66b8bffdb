"""A provider's own attempt fields over HTTP: accepted by declared type, refused precisely, logged, returned,
journalled, erased, documented, and segmenting trends. The optional core fields and €0 attempts.

The test feature set (``ATTRIBUTE_SET``) carries the fields without reading them in its features (the feature
engine's reading of extension fields is parallel work): what is tested here is the service's handling.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from core.sqlite import connect
from events.schema import ATTEMPT_COLUMNS
from serving.api.app import create_app
from serving.readers.backtest import _attempt_body
from serving.scoring.attributes import InvalidAttributeError, conform, validation_context
from serving.scoring.schemas import AttemptIn
from serving.store.base import DecisionRecord
from serving.store.decisions import LOG_VERSION, DecisionLog, migrate
from serving.store.journal import from_journal, journal_payload
from tests.serving.documented import DocumentedClient
from tests.serving.factories import (
    ADMIN,
    ATTRIBUTE_SET,
    ATTRIBUTE_SET_SPEC,
    SCORE,
    attempt,
    service_for,
)
from tests.serving.readers.test_decision_segments import OLD_SCHEMA
from tests.serving.store.test_writebehind import _killed_after

PAN = "4111111111111111"
FIELDS = {field.name: field for field in ATTRIBUTE_SET.fields}
GOOD = {
    "terminal_id": "term-7",
    "channel": "app",
    "basket_items": 3,
    "opened_at": "2026-01-31T23:30:00-02:00",
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[TestClient]:
    """The app serving the test feature set that declares four attributes (no models: fallback decisions)."""
    with DocumentedClient(
        create_app(service=service_for(tmp_path, feature_set=ATTRIBUTE_SET_SPEC))
    ) as client:
        yield client


def _score(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _refused(client: TestClient, path: str, body: object) -> dict[str, Any]:
    response = client.post(path, json=body, headers=SCORE)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    return dict(response.json())


# -- accepted, logged, returned -----------------------------------------------------------------------------


def test_attributes_are_accepted_logged_and_returned_typed(served: TestClient) -> None:
    _score(served, attempt(1, attributes={**GOOD, "terminal_id": "  term-7 "}))
    logged = served.get("/v1/decisions/att-000001", headers=SCORE).json()
    assert logged["attributes"] == {
        "terminal_id": "term-7",
        "channel": "app",
        "basket_items": 3.0,
        "opened_at": "2026-02-01T01:30:00+00:00",  # in UTC
    }
    served.app.state.service.engine.flush()  # type: ignore[attr-defined]
    again = served.get("/v1/decisions/att-000001", headers=SCORE).json()  # from SQLite now
    assert again["attributes"] == logged["attributes"]


def test_null_attributes_are_missing_and_an_attempt_without_any_logs_none(served: TestClient) -> None:
    _score(served, attempt(2, attributes={"channel": None, "terminal_id": "t"}))
    _score(served, attempt(3))
    assert served.get("/v1/decisions/att-000002", headers=SCORE).json()["attributes"] == {"terminal_id": "t"}
    assert served.get("/v1/decisions/att-000003", headers=SCORE).json()["attributes"] is None


def test_the_engine_gets_the_attributes_as_top_level_keys_of_the_attempt(served: TestClient) -> None:
    engine = served.app.state.service.engine  # type: ignore[attr-defined]
    seen: list[dict[str, object]] = []
    original = engine.features.score_and_record

    def spy(event: dict[str, object]) -> object:
        seen.append(dict(event))
        return original(event)

    engine.features.score_and_record = spy
    _score(served, attempt(4, attributes=GOOD))
    assert seen[0]["terminal_id"] == "term-7"
    assert seen[0]["basket_items"] == 3.0
    assert seen[0]["opened_at"] == datetime(2026, 2, 1, 1, 30, tzinfo=UTC)
    assert "attributes" not in seen[0]


def test_a_repeat_with_other_attributes_is_a_conflict(served: TestClient) -> None:
    _score(served, attempt(5, attributes={"channel": "web"}))
    response = served.post("/v1/score", json=attempt(5, attributes={"channel": "app"}), headers=SCORE)
    assert response.status_code == 409


def test_batch_and_recovery_plan_take_attributes_and_refuse_bad_ones_first(served: TestClient) -> None:
    batch = [attempt(10, attributes=GOOD), attempt(11, attributes={"channel": "tv"})]
    body = _refused(served, "/v1/score/batch", {"attempts": batch})
    assert body["details"][0]["loc"][:3] == ["body", "attempts", 1]
    assert served.get("/v1/decisions/att-000010", headers=SCORE).status_code == 404  # none was scored
    response = served.post("/v1/score/batch", json={"attempts": batch[:1]}, headers=SCORE)
    assert response.status_code == 200
    case = {"attempt": attempt(12, attributes=GOOD), "decline_code": "insufficient_funds"}
    assert served.post("/v1/recovery-plan", json=case, headers=SCORE).status_code == 200
    _refused(served, "/v1/recovery-plan", {**case, "attempt": attempt(12, attributes={"nope": 1})})
    batch_case = {"cases": [{**case, "attempt": attempt(13, attributes={"basket_items": "3"})}]}
    _refused(served, "/v1/recovery-plan/batch", batch_case)


def test_a_bad_body_without_a_key_is_still_401(served: TestClient) -> None:
    response = served.post("/v1/score/batch", json={"attempts": [attempt(1, attributes={"x": 1})]})
    assert response.status_code == 401


# -- refused, by declared type, without echo --------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"colour": "red"}, "unknown attribute 'colour'"),
        ({"terminal_id": ""}, "'terminal_id' is a key"),
        ({"terminal_id": "   "}, "'terminal_id' is a key"),
        ({"terminal_id": 12}, "'terminal_id' is a key"),
        ({"terminal_id": "t" * 257}, "at most 256"),
        ({"channel": "tv"}, "'channel' must be one of web, app"),
        ({"channel": 1}, "'channel' must be one of"),
        ({"basket_items": True}, "'basket_items' is a number"),
        ({"basket_items": "3"}, "'basket_items' is a number"),
        ({"opened_at": "2026-01-31T23:30:00"}, "'opened_at' is a time"),
        ({"opened_at": "1999-12-31T23:00:00+00:00"}, "'opened_at' is a time"),
        ({"opened_at": "yesterday"}, "'opened_at' is a time"),
        ({"opened_at": 1_700_000_000}, "'opened_at' is a time"),
        ([["channel", "web"]], "dict"),
    ],
)
def test_each_refusal_names_the_attribute_and_why(
    served: TestClient, attributes: object, message: str
) -> None:
    body = _refused(served, "/v1/score", attempt(20, attributes=attributes))
    text = json.dumps(body["details"])
    assert message.lower() in text.lower()
    assert all(detail["loc"][:2] == ["body", "attributes"] for detail in body["details"])
    assert "red" not in text
    assert "tv" not in text
    assert "yesterday" not in text


def test_every_bad_attribute_is_named_at_once(served: TestClient) -> None:
    bad = {"a_b": 1, "channel": "x", "basket_items": []}
    body = _refused(served, "/v1/score", attempt(21, attributes=bad))
    text = json.dumps(body["details"])
    assert "'a_b'" in text
    assert "'channel'" in text
    assert "'basket_items'" in text


def test_a_non_finite_number_is_refused(served: TestClient) -> None:
    raw = json.dumps(attempt(22, attributes={"basket_items": 1}))
    raw = raw.replace('"basket_items": 1', '"basket_items": NaN')
    response = served.post("/v1/score", content=raw, headers={**SCORE, "content-type": "application/json"})
    assert response.status_code == 422


@pytest.mark.parametrize("where", ["value", "name", "value of an unknown name", "spaced value"])
def test_a_card_number_in_attributes_is_refused_without_echo(served: TestClient, where: str) -> None:
    attributes = {
        "value": {"terminal_id": PAN},
        "name": {PAN: "x"},
        "value of an unknown name": {"colour": f"card {PAN}"},
        "spaced value": {"channel": "4111 1111 1111 1111"},
    }[where]
    for path, body in (
        ("/v1/score", attempt(23, attributes=attributes)),
        ("/v1/score/batch", {"attempts": [attempt(23, attributes=attributes)]}),
    ):
        response = served.post(path, json=body, headers=SCORE)
        assert response.status_code == 422
        assert "card number" in response.text
        assert "4111" not in response.text
    assert served.get("/v1/decisions/att-000023", headers=SCORE).status_code == 404


def test_a_service_whose_set_declares_no_field_refuses_any_attribute(bare_client: TestClient) -> None:
    body = _refused(bare_client, "/v1/score", attempt(24, attributes={"channel": "web"}))
    assert "unknown attribute 'channel': the served feature set declares none" in json.dumps(body)


@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15))
def test_any_finite_number_is_kept_exactly_as_a_float(value: float) -> None:
    assert conform({"basket_items": value}, FIELDS) == {"basket_items": float(value)}


@given(value=st.text(max_size=300))
def test_a_category_takes_exactly_its_declared_values(value: str) -> None:
    if value.strip() in ("web", "app"):
        assert conform({"channel": value}, FIELDS) == {"channel": value.strip()}
    else:
        with pytest.raises(InvalidAttributeError, match="'channel'"):
            conform({"channel": value}, FIELDS)


# -- documented ---------------------------------------------------------------------------------------------


def test_openapi_lists_the_served_fields_and_every_body(served: TestClient) -> None:
    schemas = served.get("/openapi.json").json()["components"]["schemas"]
    attributes = schemas["AttemptIn"]["properties"]["attributes"]["anyOf"][0]
    assert attributes["type"] == "object"
    assert attributes["additionalProperties"] is False
    listed = attributes["properties"]
    assert set(listed) == set(FIELDS)
    assert listed["channel"]["anyOf"][0]["enum"] == ["web", "app"]
    assert listed["basket_items"]["anyOf"][0]["type"] == "number"
    assert listed["opened_at"]["anyOf"][0]["format"] == "date-time"
    assert {"BatchIn", "RecoveryCaseIn", "RecoveryBatchIn"} <= set(schemas)
    paths = served.get("/openapi.json").json()["paths"]
    for path, model in (("/v1/score/batch", "BatchIn"), ("/v1/recovery-plan", "RecoveryCaseIn")):
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}


def test_without_declared_fields_openapi_allows_no_attribute(bare_client: TestClient) -> None:
    schemas = bare_client.get("/openapi.json").json()["components"]["schemas"]
    attributes = schemas["AttemptIn"]["properties"]["attributes"]["anyOf"][0]
    assert attributes["type"] == "object"
    assert attributes["additionalProperties"] is False  # as the service refuses any name it does not serve


# -- optional core fields and €0 ----------------------------------------------------------------------------

OPTIONAL_OVER_HTTP = ("kind", "plan_tier", "plan_period", "method_type", "currency", "retry_number")


@pytest.fixture
def strict_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """A contract that requires ``kind`` (as the IPTV-only contract did): the API follows the declarations."""
    columns = tuple(replace(c, required=True) if c.name == "kind" else c for c in ATTEMPT_COLUMNS)
    monkeypatch.setattr(AttemptIn, "contract_columns", columns)


@pytest.mark.usefixtures("strict_contract")
def test_absent_core_fields_are_refused_while_the_contract_requires_them(served: TestClient) -> None:
    body = attempt(30)
    del body["kind"]
    assert "kind is required by the contract" in json.dumps(_refused(served, "/v1/score", body))


def test_an_attempt_without_the_optional_core_fields_is_scored_and_logged(served: TestClient) -> None:
    body = {k: v for k, v in attempt(31).items() if k not in OPTIONAL_OVER_HTTP}
    answer = _score(served, body)
    assert answer["decision"]["rule"] == "fallback_new_money"  # no kind: not a renewal (held for review)
    logged = served.get("/v1/decisions/att-000031", headers=SCORE).json()
    assert logged["decision"] == answer["decision"]
    trends = served.get("/v1/trends", params={"segment": "kind"}, headers=SCORE).json()
    assert [s["segment_value"] for s in trends["series"]] == [None]


def test_a_zero_amount_authorisation_check_is_scored(client: TestClient) -> None:
    answer = _score(client, attempt(32, amount=0))
    assert answer["fraud"]["probability"] is not None
    assert client.post("/v1/score", json=attempt(33, amount=-0.01), headers=SCORE).status_code == 422


# -- the decision log: journal, erasure, migration -----------------------------------------------------------


def _record(attempt_id: str, attributes: dict[str, str | float]) -> DecisionRecord:
    """A fallback decision without a kind (the provider did not send one), with ``attributes``."""
    return DecisionRecord(
        attempt_id, datetime(2026, 3, 2, tzinfo=UTC), None, None, None, "fp", "approve", "default", False,
        None, None, {"attempt_id": attempt_id}, attributes=attributes,
    )  # fmt: skip


def test_journal_records_bring_the_attributes_and_time_attributes_back_typed() -> None:
    record = _record("a", {"channel": "web", "opened_at": "2026-02-01T01:30:00+00:00"})
    opened = datetime(2026, 2, 1, tzinfo=UTC)
    event = {"attempt_id": "a", "occurred_at": record.occurred_at, "opened_at": opened}
    payload = journal_payload(record, "2026-03-01T00:00:00+00:00", event, b"{}")
    decision, _, attempt_back = from_journal(payload)
    assert decision.attributes == record.attributes
    assert decision.kind is None
    assert attempt_back == event


_KILLED = """
import os, signal, sys
from pathlib import Path
from serving.scoring.schemas import AttemptIn
from tests.serving.factories import ATTRIBUTE_SET_SPEC, attempt, service_for

service = service_for(Path(sys.argv[1]), write_behind_ms=60_000, feature_set=ATTRIBUTE_SET_SPEC)
service.start()
context = service.engine.validation_context
attributes = {"terminal_id": "term-1", "opened_at": "2026-01-01T00:00:00+01:00"}
service.engine.score(AttemptIn.model_validate(attempt(1, attributes=attributes), context=context))
sys.stdout.write("answered\\n")
sys.stdout.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_restart_after_kill_9_restores_the_attributes(tmp_path: Path) -> None:
    _killed_after(tmp_path, script=_KILLED)
    service = service_for(tmp_path, feature_set=ATTRIBUTE_SET_SPEC)
    service.start()
    try:
        logged = service.engine.log.get("att-000001")
        assert logged is not None
        assert logged.attributes == {"terminal_id": "term-1", "opened_at": "2025-12-31T23:00:00+00:00"}
        service.engine.flush()
        stored = service.engine.log.get("att-000001")
        assert stored is not None
        assert stored.attributes == logged.attributes
    finally:
        service.close()


def test_erasure_removes_the_attributes(served: TestClient) -> None:
    _score(served, attempt(40, attributes=GOOD))
    assert served.delete("/v1/accounts/acc-5", headers=ADMIN).status_code == 200
    logged = served.get("/v1/decisions/att-000040", headers=SCORE).json()
    assert logged["erased"] is True
    assert logged["attributes"] is None
    service = served.app.state.service  # type: ignore[attr-defined]
    db = sqlite3.connect(service.engine.log.path)
    row = db.execute("SELECT attributes FROM decisions WHERE attempt_id = 'att-000040'").fetchone()
    assert row == (None,)


def test_an_older_log_is_migrated_to_take_attempts_without_a_kind(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    db = sqlite3.connect(path)
    db.execute(OLD_SCHEMA)
    db.execute(
        "INSERT INTO decisions VALUES ('old', '2026-03-01T12:00:01+00:00', '2026-03-01T12:00:00+00:00', "
        "'acc', 'pm', 'renewal', 'fp', 'approve', 'r', 0, 0.2, 0.1, '{}', NULL)"
    )
    db.commit()
    db.close()
    log = DecisionLog(path)
    log.record(_record("new", {"channel": "web"}))
    assert log.count() == 2
    new = log.get("new")
    assert new is not None
    assert new.attributes == {"channel": "web"}
    log.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (LOG_VERSION,)
    assert db.execute("SELECT kind FROM decisions ORDER BY attempt_id").fetchall() == [(None,), ("renewal",)]
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"decisions_trends", "decisions_account", "decisions_method"} <= indexes
    db.close()
    DecisionLog(path).close()  # opening again changes nothing


def test_a_log_being_written_by_another_process_is_migrated_once_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(OLD_SCHEMA)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")  # another worker holds the write lock for a moment
    releaser = threading.Timer(0.5, lambda: db.execute("COMMIT"))
    releaser.start()
    opening = connect(path)  # as a DecisionLog opens it: no busy handler of SQLite's own
    migrate(opening, path)  # waits for the lock instead of failing with "database is locked"
    releaser.join()
    opening.close()
    assert db.execute("PRAGMA user_version").fetchone() == (LOG_VERSION,)
    assert "attributes" in {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
    db.close()


def test_the_backtest_sends_the_data_s_own_fields_as_attributes() -> None:
    opened = pd.Timestamp("2026-01-01T00:00:00Z")
    own = {"channel": "web", "terminal_id": None, "basket_items": math.nan, "opened_at": opened}
    row = {**attempt(60), **own}
    body = _attempt_body(row, list(FIELDS))
    assert body["attributes"] == {"channel": "web", "opened_at": opened.to_pydatetime()}
    assert not set(FIELDS) & set(body)
    parsed = AttemptIn.model_validate(body, context=validation_context(FIELDS.values()))
    assert parsed.as_event()["opened_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert "attributes" not in _attempt_body(attempt(61), list(FIELDS))


# -- trends segmented by an attribute ---------------------------------------------------------------------


def test_trends_segment_by_a_category_attribute_and_export_it(served: TestClient) -> None:
    for n, channel in enumerate(["web", "app", "app", None, "web", "app"]):
        _score(served, attempt(50 + n, attributes={"channel": channel}))
    trends = served.get("/v1/trends", params={"segment": "channel"}, headers=SCORE).json()
    assert trends["segment"] == "channel"
    totals = {s["segment_value"]: sum(p["attempts"] for p in s["points"]) for s in trends["series"]}
    assert totals == {"app": 3, "web": 2, None: 1}
    exported = served.get("/v1/trends", params={"segment": "channel", "format": "csv"}, headers=SCORE)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["segment"] for row in rows} == {"channel"}
    assert sum(int(row["attempts"]) for row in rows if row["segment_value"] == "app") == 3


def test_a_key_segment_has_its_top_values_then_other(served: TestClient) -> None:
    terminals = [f"t{k:02d}" for k in range(12) for _ in range(12 - k)]  # t00 most frequent, ..., t11 once
    for n, terminal in enumerate(terminals):
        _score(served, attempt(100 + n, attributes={"terminal_id": terminal}))
    trends = served.get("/v1/trends", params={"segment": "terminal_id"}, headers=SCORE).json()
    totals = {s["segment_value"]: sum(p["attempts"] for p in s["points"]) for s in trends["series"]}
    assert list(totals)[:10] == [f"t{k:02d}" for k in range(10)]
    assert totals["other"] == 2 + 1  # t10 and t11
    assert sum(totals.values()) == len(terminals)


def test_a_segment_that_is_no_column_nor_category_or_key_attribute_is_422(served: TestClient) -> None:
    for segment in ("basket_items", "opened_at", "colour", "attributes"):
        response = served.get("/v1/trends", params={"segment": segment}, headers=SCORE)
        assert response.status_code == 422
        assert "channel" in response.json()["message"]


def test_status_lists_the_category_attributes_for_the_segment_picker(served: TestClient) -> None:
    status = served.get("/v1/status", headers=SCORE).json()
    assert status["attribute_segments"] == [
        {"name": "channel", "doc": "The sales channel.", "values": ["web", "app"]}
    ]
