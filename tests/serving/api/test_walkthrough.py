"""The README's analyst walkthrough, call for call, over HTTP: block a device, write a rule (disabled),
backtest it over the decision log, enable it, and work the review queue (a fraud resolution that blocks the
device)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from registry.bundle import ModelBundle
from serving.api.app import create_app
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, T0, attempt, seed_cache, service_for


def score(client: TestClient, n: int, **changes: Any) -> dict[str, Any]:
    answer = client.post("/v1/score", json=attempt(n, **changes), headers=SCORE)
    assert answer.status_code == 200, answer.text
    decision: dict[str, Any] = answer.json()["decision"]
    return decision


def call(client: TestClient, method: str, path: str, status: int = 200, **body: Any) -> dict[str, Any]:
    answer = client.request(method, path, json=body or None, headers=ADMIN)
    assert answer.status_code == status, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_block_a_device_write_a_rule_backtest_it_enable_it_and_work_the_queue(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    seed_cache(tmp_path / "state" / "models", bundles)
    with DocumentedClient(create_app(service=service_for(tmp_path, fraud_highest_threshold=1.0))) as client:
        for n in range(60):  # a month of traffic before the analyst starts: every tenth card is foreign
            when = (T0 + timedelta(hours=12 * n)).isoformat()
            country, amount = ("BR" if n % 10 == 0 else "DE"), (59.0 if n % 2 == 0 else 14.99)
            score(client, n, occurred_at=when, card_country=country, amount=amount)
        later = T0 + timedelta(days=31)

        # 1. block a device
        call(client, "POST", "/v1/lists", 201, name="stolen_devices", field="device_id", reason="ticket 4411")
        item = {"value": "dev-2", "expires_at": "2027-06-01T00:00:00Z"}
        call(client, "POST", "/v1/lists/stolen_devices/items", items=[item], reason="chargeback 2026-12-02")
        call(client, "POST", "/v1/rules", 201, name="block-stolen-devices", action="block",
             expression="device_id in @stolen_devices", reason="ticket 4411")  # fmt: skip
        assert score(client, 200, occurred_at=later.isoformat())["rule"] == "block-stolen-devices"  # dev-2

        # 2. write a rule, disabled
        draft = {
            "name": "review-foreign-big",
            "action": "review",
            "enabled": False,
            "expression": "card_country != ip_country and amount > 30",
            "reason": "foreign cards, big plans",
        }
        assert call(client, "POST", "/v1/rules", 201, **draft)["enabled"] is False
        foreign = {"card_country": "BR", "amount": 59.0, "device_id": "dev-0"}
        assert (
            score(client, 201, occurred_at=(later + timedelta(minutes=1)).isoformat(), **foreign)[
                "decided_by"
            ]
            == "policy"
        )  # disabled: not served

        # 3. backtest it over the month of decisions
        backtest = call(client, "POST", "/v1/rule-backtest", rule="review-foreign-big",
                        start=T0.isoformat(), end=later.isoformat())  # fmt: skip
        assert backtest["attempts"] == 60
        assert backtest["hits"]["attempts"] == 6  # n = 0, 10, ..., 50: foreign and 59.0
        assert backtest["sample"] == [attempt(n)["attempt_id"] for n in range(0, 60, 10)]
        overlap = backtest["overlap"]
        assert overlap["already_blocked"] + overlap["already_reviewed"] + overlap["newly_touched"] == 6

        # 4. enable it
        call(
            client,
            "POST",
            "/v1/rules/review-foreign-big/enable",
            reason="backtest: 6 of 60, no good customer lost",
        )
        when = (later + timedelta(minutes=2)).isoformat()
        assert score(client, 202, occurred_at=when, **foreign)["rule"] == "review-foreign-big"

        # 5. work the queue
        cases = call(client, "GET", "/v1/review/cases?status=open&rule=review-foreign-big")["cases"]
        case_id = attempt(202)["attempt_id"]
        assert case_id in [case["case_id"] for case in cases]
        call(client, "POST", f"/v1/review/cases/{case_id}/claim")
        resolved = call(client, "POST", f"/v1/review/cases/{case_id}/resolve", outcome="fraud",
                        note="issuer confirmed", block_list="stolen_devices")  # fmt: skip
        assert resolved["status"] == "closed"
        # the card's device is blocked from now on
        assert (
            score(client, 203, occurred_at=(later + timedelta(minutes=3)).isoformat(), device_id="dev-0")[
                "rule"
            ]
            == "block-stolen-devices"
        )
