"""The billing checks over HTTP, on by default: a second charge of a paid invoice, a price off the catalogue
and a renewal before its period are blocked with the reason billing_error and the check's name; a retry after
a decline is approved; a provider disables a check with a rule of its name, or all of them."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.bundle import ModelBundle
from serving.api.app import create_app
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, T0, attempt, seed_cache, service_for

#: The factories' attempts renew a standard monthly plan at 14.99 EUR.
CATALOGUE = "plan_tier,plan_period,currency,price\nstandard,monthly,EUR,14.99\nbasic,monthly,EUR,7.99\n"
#: Thresholds no score reaches: the model policy approves, so what blocks is a billing check.
APPROVING: dict[str, Any] = {
    "fraud_elevated_threshold": 1.0,
    "fraud_highest_threshold": 1.0,
    "failure_defer_threshold": 1.0,
}


def open_client(tmp_path: Path, bundles: dict[str, ModelBundle], **settings: Any) -> DocumentedClient:
    seed_cache(tmp_path / "state" / "models", bundles)
    catalogue = tmp_path / "catalogue.csv"
    catalogue.write_text(CATALOGUE)
    service = service_for(tmp_path, catalogue_file=catalogue, **{**APPROVING, **settings})
    return DocumentedClient(create_app(service=service))


@pytest.fixture
def billed(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Iterator[TestClient]:
    with open_client(tmp_path, bundles) as test_client:
        yield test_client


def decision(client: TestClient, n: int, **changes: Any) -> dict[str, Any]:
    response = client.post("/v1/score", json=attempt(n, **changes), headers=SCORE)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["decision"]
    return answer


def outcome(client: TestClient, n: int, status: str) -> None:
    body = {
        "attempt_id": attempt(n)["attempt_id"],
        "occurred_at": attempt(n + 1)["occurred_at"],
        "status": status,
        "decline_code": "insufficient_funds" if status == "declined" else None,
    }
    response = client.post("/v1/outcomes", json={"outcomes": [body]}, headers=SCORE)
    assert response.status_code == 200, response.text


def blocked_by(check: str) -> dict[str, Any]:
    return {
        "action": "block",
        "rule": check,
        "fallback": False,
        "decided_by": "rule",
        "reasons": ["billing_error"],
    }


# attempt n is made at 12:00 + n minutes by account acc-(n % 7) for invoice inv-n (renewal, 14.99 EUR)


def test_a_second_charge_of_an_approved_invoice_is_blocked(billed: TestClient) -> None:
    assert decision(billed, 1)["action"] == "approve"
    outcome(billed, 1, "approved")
    assert decision(billed, 8, invoice_id="inv-1") == blocked_by("billing_double_charge")


def test_the_same_try_sent_again_before_its_answer_is_blocked(billed: TestClient) -> None:
    assert decision(billed, 1)["action"] == "approve"  # sent to the gateway, no answer yet
    assert decision(billed, 2, account_id="acc-1", invoice_id="inv-1") == blocked_by("billing_double_charge")


def test_a_retry_after_a_decline_is_approved(billed: TestClient) -> None:
    assert decision(billed, 1)["action"] == "approve"
    outcome(billed, 1, "declined")
    retry = decision(billed, 8, invoice_id="inv-1", kind="retry", retry_number=1)
    assert retry["action"] == "approve"
    assert retry["reasons"] == []


def test_a_price_off_the_catalogue_is_blocked(billed: TestClient) -> None:
    assert decision(billed, 3, amount=19.99) == blocked_by("billing_price_mismatch")
    assert decision(billed, 4)["action"] == "approve"  # 14.99: the catalogue's price
    assert decision(billed, 5, kind="upgrade", amount=3.12)["action"] == "approve"  # prorated: not checked
    assert decision(billed, 6, currency="GBP", amount=12.99)["action"] == "approve"  # no entry: not checked


def test_a_renewal_before_its_period_is_blocked(billed: TestClient) -> None:
    assert decision(billed, 1)["action"] == "approve"
    outcome(billed, 1, "approved")
    assert decision(billed, 8) == blocked_by("billing_early_renewal")  # acc-1 again, 7 minutes later
    month_later = (T0.replace(month=T0.month + 1)).isoformat()
    assert decision(billed, 15, occurred_at=month_later)["action"] == "approve"


def test_the_logged_decision_keeps_the_reason(billed: TestClient) -> None:
    decision(billed, 3, amount=19.99)
    logged = billed.get(f"/v1/decisions/{attempt(3)['attempt_id']}", headers=ADMIN).json()
    assert logged["decision"] == blocked_by("billing_price_mismatch")
    replayed = billed.post("/v1/score", json=attempt(3, amount=19.99), headers=SCORE).json()
    assert replayed["replayed"]
    assert replayed["decision"] == blocked_by("billing_price_mismatch")


def test_a_rule_of_the_same_name_disables_a_check(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent("""
        rules:
          - name: billing_price_mismatch
            action: block
            expression: billing_price_mismatch
            enabled: false
          - name: review-above-catalogue
            action: review
            expression: amount > 1.5 * billing_catalogue_price
        """)
    )
    with open_client(tmp_path, bundles, rules_file=rules) as client:
        assert decision(client, 3, amount=19.99)["action"] == "approve"  # the check is off
        assert decision(client, 4, amount=29.99)["rule"] == "review-above-catalogue"  # rules read the fields
        decision(client, 1)
        outcome(client, 1, "approved")
        assert decision(client, 8, invoice_id="inv-1")["rule"] == "billing_double_charge"  # the others stay


def test_the_checks_can_be_turned_off(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    with open_client(tmp_path, bundles, billing_checks=False) as client:
        assert decision(client, 3, amount=19.99)["action"] == "approve"
        outcome(client, 3, "approved")
        assert decision(client, 10, invoice_id="inv-3")["action"] == "approve"
    assert not (tmp_path / "state" / "billing.sqlite").exists()
