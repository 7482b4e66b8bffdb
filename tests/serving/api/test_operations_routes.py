"""The rules and lists admin API over HTTP, as an analyst's tooling calls it: rules with every version (who,
when, why), refusals naming the position, lists with CIDR ranges and expiry, CSV import that is all or
nothing with its problems by row and column, pagination, and the change counter moving. Every answer is
checked against the OpenAPI document (DocumentedClient)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rules.lists import to_us
from serving.api.app import create_app
from serving.store.operations import OperationsStore
from serving.store.operations_sqlite import SQLiteOperations
from serving.store.postgres.database import Database
from serving.store.postgres.operations import PostgresOperations
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, service_for

CARD = "4111 1111 1111 1111"


@pytest.fixture(params=["sqlite", "postgres"])
def admin(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The service over the state directory's SQLite files, or over a PostgreSQL database of its own."""
    database = {} if request.param == "sqlite" else {"database_url": request.getfixturevalue("postgres_url")}
    with DocumentedClient(create_app(service=service_for(tmp_path, **database))) as client:
        yield client


@contextlib.contextmanager
def another_instance(client: TestClient, tmp_path: Path) -> Iterator[OperationsStore]:
    """The store as another scoring instance opens it (the same file, or the same database)."""
    served = client.app.state.service.database  # type: ignore[attr-defined]
    database = None if served is None else Database(served.url, 1)
    store: OperationsStore = (
        SQLiteOperations.in_state_dir(tmp_path / "state")
        if database is None
        else PostgresOperations(database)
    )
    try:
        yield store
    finally:
        store.close()
        if database is not None:
            database.close()


def rule(name: str = "big_amount", expression: str = "amount > 100", **fields: Any) -> dict[str, Any]:
    return {"name": name, "action": "review", "expression": expression, "reason": "first try", **fields}


def test_a_rule_is_created_changed_disabled_and_deleted_with_every_version_kept(admin: TestClient) -> None:
    created = admin.post("/v1/rules", json=rule(), headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["version"] == 1
    assert created.json()["changed_by"] == "dev-admin"
    change = {"action": "block", "expression": "amount > 300", "reason": "too many reviews"}
    assert admin.put("/v1/rules/big_amount", json=change, headers=ADMIN).json()["version"] == 2
    assert (
        admin.post("/v1/rules/big_amount/disable", json={"reason": "xmas"}, headers=ADMIN).status_code == 200
    )
    again = admin.post("/v1/rules/big_amount/disable", json={"reason": "xmas"}, headers=ADMIN)
    assert again.status_code == 409
    listed = admin.get("/v1/rules", headers=ADMIN).json()
    assert [(r["name"], r["action"], r["enabled"]) for r in listed["rules"]] == [
        ("big_amount", "block", False)
    ]
    deleted = admin.delete("/v1/rules/big_amount", params={"reason": "replaced"}, headers=ADMIN)
    assert deleted.json()["change"] == "deleted"
    assert admin.get("/v1/rules/big_amount", headers=ADMIN).status_code == 404
    versions = admin.get("/v1/rules/big_amount/versions", headers=ADMIN).json()["versions"]
    assert [(v["version"], v["change"], v["reason"]) for v in versions] == [
        (1, "created", "first try"),
        (2, "changed", "too many reviews"),
        (3, "disabled", "xmas"),
        (4, "deleted", "replaced"),
    ]
    assert versions[1]["expression"] == "amount > 300"
    assert all(v["changed_by"] == "dev-admin" for v in versions)
    assert datetime.fromisoformat(versions[0]["changed_at"]) <= datetime.fromisoformat(
        versions[3]["changed_at"]
    )


def test_the_current_set_is_listed_in_evaluation_order(admin: TestClient) -> None:
    for name, action in (("rev", "review"), ("blk", "block"), ("alw", "allow")):
        admin.post("/v1/rules", json=rule(name, action=action), headers=ADMIN)
    assert [r["name"] for r in admin.get("/v1/rules", headers=ADMIN).json()["rules"]] == ["alw", "blk", "rev"]


@pytest.mark.parametrize(
    ("expression", "where"),
    [
        ("amout > 100", "line 1, column 1 ('amout')"),
        ("amount > 'ten'", "line 1, column 1"),
        ("amount >", "line 1, column 8 ('>')"),
        ("device_id in @stolen", "'@stolen'"),
        ("kind == 'renewel'", "'renewel'"),
    ],
)
def test_a_bad_expression_is_refused_naming_its_position(
    admin: TestClient, expression: str, where: str
) -> None:
    answer = admin.post("/v1/rules", json=rule(expression=expression), headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid_rule"
    assert where in answer.json()["message"]
    assert admin.get("/v1/rules", headers=ADMIN).json() == {"version": 0, "rules": []}


def test_card_numbers_and_missing_reasons_are_refused_never_echoed(admin: TestClient) -> None:
    for body in (
        rule(expression=f"payment_method_id == '{CARD}'"),
        rule(description=f"card {CARD}"),
        rule(reason=CARD),
        {k: v for k, v in rule().items() if k != "reason"},
    ):
        answer = admin.post("/v1/rules", json=body, headers=ADMIN)
        assert answer.status_code == 422
        assert "1111" not in answer.text
    assert admin.delete("/v1/rules/x", params={"reason": CARD}, headers=ADMIN).status_code in (404, 422)


def test_the_admin_api_needs_the_admin_scope(admin: TestClient) -> None:
    assert admin.get("/v1/rules").status_code == 401
    assert admin.get("/v1/rules", headers=SCORE).status_code == 403
    assert (
        admin.post("/v1/lists", json={"name": "x", "field": "ip", "reason": "r"}, headers=SCORE).status_code
        == 403
    )


def new_list(client: TestClient, name: str, field: str) -> None:
    answer = client.post(
        "/v1/lists", json={"name": name, "field": field, "reason": "fraud ring"}, headers=ADMIN
    )
    assert answer.status_code == 201, answer.text


def test_lists_take_cidr_ranges_and_expiry_and_rules_read_them(admin: TestClient, tmp_path: Path) -> None:
    new_list(admin, "bad_networks", "ip")
    soon = datetime(2026, 3, 2, tzinfo=UTC)
    items = [
        {"value": "203.0.113.0/24", "reason": "botnet"},
        {"value": "2001:db8::/32"},
        {"value": "198.51.100.7", "expires_at": soon.isoformat()},
    ]
    added = admin.post("/v1/lists/bad_networks/items", json={"items": items, "reason": "ring"}, headers=ADMIN)
    assert (added.json()["changed"], added.json()["items"]) == (3, 3)
    refused = admin.post(
        "/v1/lists/bad_networks/items",
        json={"items": [{"value": "203.0.113.9/24"}], "reason": "x"},
        headers=ADMIN,
    )
    assert refused.status_code == 422
    assert "did you mean '203.0.113.0/24'" in refused.json()["message"]
    answer = admin.post("/v1/rules", json=rule("bad_ip", "ip in @bad_networks"), headers=ADMIN)
    assert answer.status_code == 201
    assert (
        admin.post("/v1/rules", json=rule("wrong", "amount in @bad_networks"), headers=ADMIN).status_code
        == 422
    )
    page = admin.get("/v1/lists/bad_networks/items", params={"limit": 2}, headers=ADMIN).json()
    assert page["total"] == 3
    assert [i["value"] for i in page["items"]] == ["198.51.100.7", "2001:db8::/32"]
    assert datetime.fromisoformat(page["items"][0]["expires_at"]) == soon
    assert page["items"][1]["reason"] == "ring"  # the change's reason stands in
    rest = admin.get("/v1/lists/bad_networks/items", params={"offset": 2, "limit": 2}, headers=ADMIN).json()
    assert [i["value"] for i in rest["items"]] == ["203.0.113.0/24"]
    with another_instance(admin, tmp_path) as store:  # what a scoring instance reloads
        networks = store.current_lists()["bad_networks"]
        assert [spec.name for spec in store.current_rules()] == ["bad_ip"]
    assert networks.contains("203.0.113.200", to_us(soon))
    assert networks.contains("198.51.100.7", to_us(soon - timedelta(seconds=1)))
    assert not networks.contains("198.51.100.7", to_us(soon))
    busy = admin.delete("/v1/lists/bad_networks", params={"reason": "done"}, headers=ADMIN)
    assert busy.status_code == 409
    assert "bad_ip" in busy.json()["message"]


def test_items_are_removed_and_the_log_says_who_and_when(admin: TestClient) -> None:
    new_list(admin, "stolen_devices", "device_id")
    body = {"items": [{"value": "dev-1"}, {"value": "dev-2"}], "reason": "chargebacks"}
    admin.post("/v1/lists/stolen_devices/items", json=body, headers=ADMIN)
    removed = admin.post(
        "/v1/lists/stolen_devices/items/remove",
        json={"values": ["dev-1", "dev-9"], "reason": "ok"},
        headers=ADMIN,
    )
    assert (removed.json()["changed"], removed.json()["items"]) == (1, 1)
    log = admin.get("/v1/lists/stolen_devices/log", headers=ADMIN).json()["entries"]
    assert [(e["change"], e["value"], e["changed_by"]) for e in log] == [
        ("removed", "dev-1", "dev-admin"),
        ("added", "dev-2", "dev-admin"),
        ("added", "dev-1", "dev-admin"),
        ("created", None, "dev-admin"),
    ]
    assert admin.get("/v1/lists/nowhere/items", headers=ADMIN).status_code == 404
    assert (
        admin.post(
            "/v1/lists", json={"name": "x", "field": "amount", "reason": "r"}, headers=ADMIN
        ).status_code
        == 422
    )


def test_csv_import_is_all_or_nothing_with_problems_by_row_and_column(admin: TestClient) -> None:
    new_list(admin, "bins", "card_bin")
    bad = f"value,expires_at,reason\n411111,,test\n12,,short\n422222,tomorrow,x\n{CARD},,card\n"
    answer = admin.post(
        "/v1/lists/bins/import",
        params={"reason": "import"},
        content=bad,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 422
    message = answer.json()["message"]
    assert "row 2, column value" in message
    assert "row 3, column expires_at" in message
    assert "row 4" in message
    assert "1111" not in answer.text
    assert "the CSV body" in message
    assert "/tmp" not in message
    assert admin.get("/v1/lists/bins", headers=ADMIN).json()["items"] == 0  # nothing imported
    good = "value,expires_at,reason\n411111,2026-12-31T23:59:59Z,test bin\n422222,,\n"
    imported = admin.post(
        "/v1/lists/bins/import",
        params={"reason": "q1 review"},
        content=good,
        headers={**ADMIN, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["changed"] == 2
    items = admin.get("/v1/lists/bins/items", headers=ADMIN).json()["items"]
    assert [(i["value"], i["reason"]) for i in items] == [("411111", "test bin"), ("422222", "q1 review")]


def test_the_change_counter_moves_with_every_change(admin: TestClient) -> None:
    def version() -> int:
        return int(admin.get("/v1/lists", headers=ADMIN).json()["version"])

    assert version() == 0
    new_list(admin, "accounts", "account_id")
    assert version() == 1
    admin.post("/v1/lists/accounts/items", json={"items": [{"value": "acc-1"}], "reason": "r"}, headers=ADMIN)
    admin.post("/v1/rules", json=rule(), headers=ADMIN)
    assert version() == 3
    admin.post("/v1/rules", json=rule(expression="amout > 1"), headers=ADMIN)  # refused: no change
    assert version() == 3
    assert admin.get("/v1/rules", headers=ADMIN).json()["version"] == 3


def test_a_service_built_without_the_store_says_so(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    service.operations = None  # a service put together by hand, not by build_service
    with DocumentedClient(create_app(service=service)) as client:
        answer = client.get("/v1/rules", headers=ADMIN)
    assert answer.status_code == 503
    assert "riskgate serve" in answer.json()["message"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [("/v1/rules", "GET, POST"), ("/v1/rules/x", "GET, PUT, DELETE"), ("/v1/lists/x/items", "GET, POST")],
)
def test_a_405_names_every_method_of_the_path(admin: TestClient, path: str, allowed: str) -> None:
    answer = admin.request("PATCH", path, headers=ADMIN)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed


def test_a_draft_is_checked_without_being_saved(admin: TestClient) -> None:
    new_list(admin, "stolen_devices", "device_id")
    draft = {"expression": "device_id in @stolen_devices and fraud_probability > 0.3"}
    answer = admin.post("/v1/rule-check", json=draft, headers=ADMIN)
    assert answer.json() == {
        "expression": draft["expression"],
        "names": ["device_id", "fraud_probability"],
        "lists": ["stolen_devices"],
    }
    refused = admin.post("/v1/rule-check", json={"expression": "fraud_level == 'hihg'"}, headers=ADMIN)
    assert refused.status_code == 422
    assert "line 1, column 16 (\"'hihg'\")" in refused.json()["message"]
    assert admin.get("/v1/rules", headers=ADMIN).json()["rules"] == []
