"""The fraud team's rules, lists and review queue over HTTP on two instances sharing one PostgreSQL
(``RISKGATE_DATABASE_URL``), their periodic rules check off: a rule or list item made through one instance
decides that instance's next request and is served by the other at once (its change notice); a case claimed
on one instance is refused to another analyst on the other (409), and resolving it as fraud there records
the fraud report and blocks the device on both; ``riskgate rules load`` with the same URL reaches the running
instances at once. Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from core.settings import get_settings
from registry.bundle import ModelBundle
from riskgate.cli import app
from rules.lists import to_us
from serving.api.app import create_app
from serving.api.service import Service
from serving.store.base import DecisionRecord
from tests.riskgate.test_cli_rules import RULES
from tests.serving.api.test_review_queue import KEYS, OTHER, REVIEW_ALL
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache, service_for
from tests.serving.store.decision_rows import FraudReportRows, insert_decision

#: How long another instance may take to serve a change (its periodic check is off: only a notice can do it).
PROMPTLY_S = 5.0


def service_of(client: DocumentedClient) -> Service:
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    return service


def eventually(condition: Callable[[], bool], within: float = PROMPTLY_S) -> float | None:
    """How long ``condition`` took to hold (None: it did not within ``within`` seconds)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if condition():
            return time.monotonic() - start
        time.sleep(0.01)
    return None


@pytest.fixture
def fleet(
    tmp_path: Path, bundles: dict[str, ModelBundle], postgres_url: str
) -> Iterator[list[DocumentedClient]]:
    """Two instances (state directories of their own) over one PostgreSQL; every attempt is reviewed by the
    policy; the periodic rules check is off."""
    with ExitStack() as stack:
        clients = []
        for name in ("a", "b"):
            home = tmp_path / name
            seed_cache(home / "state" / "models", bundles)
            service = service_for(
                home, database_url=postgres_url, rules_poll_seconds=0, api_keys=KEYS, **REVIEW_ALL
            )
            clients.append(stack.enter_context(DocumentedClient(create_app(service=service))))
        for client in clients:
            listener = service_of(client).listener
            assert listener is not None
            assert listener.connected.wait(10)
        yield clients


@pytest.fixture
def command(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Result]]:
    """Runs a ``riskgate`` command as an operator would, with the fleet's RISKGATE_DATABASE_URL set (and a
    state directory of its own, where nothing should go)."""
    monkeypatch.setenv("RISKGATE_DATABASE_URL", postgres_url)
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "command"))
    get_settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, [str(arg) for arg in args])
    get_settings.cache_clear()
    assert not (tmp_path / "command").exists()


def score(client: DocumentedClient, n: int, **changes: Any) -> dict[str, Any]:
    answer = client.post("/v1/score", json=attempt(n, **changes), headers=SCORE)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def served(client: DocumentedClient) -> list[str]:
    """The names of the analysts' enabled rules the instance serves now (not the built-in ones)."""
    rules = service_of(client).engine.rules
    assert rules is not None
    return [spec.name for spec in rules.current.specs if spec not in rules.builtin]


def blocks(client: DocumentedClient, name: str, value: str) -> bool:
    """Whether the list the instance serves as ``name`` holds ``value`` now."""
    rules = service_of(client).engine.rules
    assert rules is not None
    served_list = rules.current.lists.get(name)
    return served_list is not None and served_list.contains(value, to_us(datetime.now(UTC)))


def test_a_rule_made_on_one_instance_decides_there_at_once_and_on_the_other_promptly(
    fleet: list[DocumentedClient],
) -> None:
    a, b = fleet
    rule = {"name": "huge", "action": "block", "expression": "amount > 1000", "reason": "card testing"}
    assert a.post("/v1/rules", json=rule, headers=ADMIN).status_code == 201
    decided = score(a, 1, amount=5000.0)["decision"]
    assert (decided["action"], decided["rule"]) == ("block", "huge")
    assert eventually(lambda: served(b) == ["huge"]) is not None
    decided = score(b, 2, amount=5000.0)["decision"]
    assert (decided["action"], decided["rule"]) == ("block", "huge")
    assert b.get("/v1/rules/huge", headers=ADMIN).json()["changed_by"] == "dev-admin"

    disable = b.post("/v1/rules/huge/disable", json={"reason": "false positives"}, headers=ADMIN)
    assert disable.status_code == 200
    assert eventually(lambda: served(a) == []) is not None
    assert score(a, 3, amount=5000.0)["decision"]["action"] == "review"
    versions = a.get("/v1/rules/huge/versions", headers=ADMIN).json()["versions"]
    assert [(v["version"], v["change"]) for v in versions] == [(1, "created"), (2, "disabled")]


def test_the_review_loop_across_instances_claim_conflict_and_a_fraud_resolution(
    fleet: list[DocumentedClient],
) -> None:
    a, b = fleet
    assert b.post(
        "/v1/lists", json={"name": "blocked_devices", "field": "device_id", "reason": "review"}, headers=ADMIN
    ).status_code == 201  # fmt: skip
    block = {"name": "devices", "action": "block", "expression": "device_id in @blocked_devices",
             "reason": "confirmed fraud"}  # fmt: skip
    assert b.post("/v1/rules", json=block, headers=ADMIN).status_code == 201
    answer = score(a, 1, device_id="dev-stolen")
    assert answer["decision"]["action"] == "review"
    case_id = answer["attempt_id"]
    _logged_in_postgres(a, answer, attempt(1)["account_id"])
    listed = a.get("/v1/review/cases", headers=ADMIN).json()["cases"]  # keeps the case's device too
    assert [case["case_id"] for case in listed] == [case_id]
    assert listed[0]["block_fields"] == ["device_id", "payment_method_id"]

    claimed = a.post(f"/v1/review/cases/{case_id}/claim", headers=ADMIN)
    assert claimed.status_code == 200, claimed.text
    refused = b.post(f"/v1/review/cases/{case_id}/claim", headers=OTHER)
    assert refused.status_code == 409
    assert "claimed by dev-admin" in refused.json()["message"]
    fraud = {"outcome": "fraud", "note": "bank confirmed", "block_list": "blocked_devices"}
    assert b.post(f"/v1/review/cases/{case_id}/resolve", json=fraud, headers=OTHER).status_code == 409

    resolved = b.post(f"/v1/review/cases/{case_id}/resolve", json=fraud, headers=ADMIN)
    assert resolved.status_code == 200, resolved.text  # the holder, on the other instance
    assert resolved.json()["resolution"]["report_id"] == f"review-{case_id}"
    database = service_of(a).database
    assert database is not None
    reports = FraudReportRows(database).reports()
    assert [(r.report_id, r.attempt_id, r.report_type) for r in reports] == [
        (f"review-{case_id}", case_id, "confirmed_fraud")
    ]
    case = a.get(f"/v1/review/cases/{case_id}", headers=ADMIN).json()["case"]
    assert (case["status"], case["resolution"]["resolved_by"]) == ("closed", "dev-admin")
    assert eventually(lambda: blocks(a, "blocked_devices", "dev-stolen")) is not None
    decided = score(a, 2, device_id="dev-stolen")["decision"]
    assert (decided["action"], decided["rule"]) == ("block", "devices")
    items = a.get("/v1/lists/blocked_devices/items", headers=ADMIN).json()
    assert [item["value"] for item in items["items"]] == ["dev-stolen"]


def test_a_block_refused_after_the_resolution_undoes_it_for_every_instance(
    fleet: list[DocumentedClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = fleet
    listed = {"name": "stolen_cards", "field": "payment_method_id", "reason": "review"}
    assert a.post("/v1/lists", json=listed, headers=ADMIN).status_code == 201
    answer = score(a, 3)
    _logged_in_postgres(a, answer, attempt(3)["account_id"])
    assert block_fields(a) == {answer["attempt_id"]: ["device_id", "payment_method_id"]}
    operations = service_of(b).operations
    assert operations is not None

    def failing(*args: Any) -> int:
        raise psycopg.OperationalError("the server closed the connection unexpectedly")

    monkeypatch.setattr(operations.store, "add_items", failing)  # the second half fails after the first
    fraud = {"outcome": "fraud", "note": "bank confirmed", "block_list": "stolen_cards"}
    with pytest.raises(psycopg.OperationalError):
        b.post(f"/v1/review/cases/{answer['attempt_id']}/resolve", json=fraud, headers=ADMIN)
    case = a.get(f"/v1/review/cases/{answer['attempt_id']}", headers=ADMIN).json()["case"]
    assert (case["status"], case["resolution"]) == ("open", None)
    database = service_of(a).database
    assert database is not None
    assert FraudReportRows(database).reports() == []
    monkeypatch.undo()
    again = b.post(f"/v1/review/cases/{answer['attempt_id']}/resolve", json=fraud, headers=ADMIN)
    assert again.status_code == 200, again.text
    assert [r.report_id for r in FraudReportRows(database).reports()] == [f"review-{answer['attempt_id']}"]
    items = a.get("/v1/lists/stolen_cards/items", headers=ADMIN).json()["items"]
    assert [item["value"] for item in items] == ["pm_tok_3"]


def _logged_in_postgres(client: DocumentedClient, answer: dict[str, Any], account_id: str) -> None:
    """The ``review`` decision ``answer`` of an attempt of ``account_id`` as the decision log keeps it in
    PostgreSQL (a decision the instance logged there already stays as it is)."""
    service = service_of(client)
    assert service.database is not None
    fraud, decision = answer["fraud"], answer["decision"]
    record = DecisionRecord(
        attempt_id=answer["attempt_id"], occurred_at=datetime.fromisoformat(attempt(1)["occurred_at"]),
        account_key=service.engine.pseudonymise(account_id), method_key="pm", kind="renewal",
        fingerprint="fp",
        action=decision["action"], rule=decision["rule"], fallback=False,
        fraud_probability=fraud["probability"], failure_probability=None, answer=answer, amount=14.99,
        currency="EUR", fraud_level=fraud["level"],
    )  # fmt: skip
    with service.database.transaction() as connection:
        insert_decision(connection, record)


def block_fields(client: DocumentedClient) -> dict[str, list[str]]:
    """The fields each open case kept for block lists, by case."""
    page = client.get("/v1/review/cases", headers=ADMIN).json()
    return {case["case_id"]: case["block_fields"] for case in page["cases"]}


def test_erasing_an_account_on_one_instance_drops_its_cases_raw_values(fleet: list[DocumentedClient]) -> None:
    a, b = fleet
    answers = {n: score(a, n) for n in (1, 2)}  # two accounts
    for n, answer in answers.items():
        _logged_in_postgres(a, answer, attempt(n)["account_id"])
    first, second = (answers[n]["attempt_id"] for n in (1, 2))
    kept = ["device_id", "payment_method_id"]
    assert block_fields(a) == {first: kept, second: kept}
    erased = b.delete(f"/v1/accounts/{attempt(1)['account_id']}", headers=ADMIN)
    assert erased.status_code == 200, erased.text
    assert block_fields(a) == {first: [], second: kept}


def test_rules_load_reaches_the_running_instances_and_exports_as_a_state_directory_would(
    fleet: list[DocumentedClient], command: Callable[..., Result], tmp_path: Path
) -> None:
    (tmp_path / "networks.csv").write_text("value,reason\n203.0.113.0/24,botnet\n10.0.0.1,test\n")
    (tmp_path / "rules.yaml").write_text(RULES)
    loaded = command("rules", "load", tmp_path / "rules.yaml", "--reason", "git")
    assert loaded.exit_code == 0, loaded.output
    expected = [["allow-staff", "block-stolen-devices"]] * 2
    assert eventually(lambda: [served(client) for client in fleet] == expected)
    assert blocks(fleet[1], "stolen_devices", "dev-1")
    exported = command("rules", "export")
    assert exported.exit_code == 0, exported.output
    (tmp_path / "exported.yaml").write_text(exported.output)
    elsewhere = ("--state-dir", tmp_path / "elsewhere")
    assert command("rules", "load", tmp_path / "exported.yaml", "--reason", "copy", *elsewhere).exit_code == 0
    assert command("rules", "export", *elsewhere).output == exported.output
