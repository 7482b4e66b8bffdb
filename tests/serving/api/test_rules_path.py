"""Analysts' rules and lists in the decision path, over HTTP: a rules file (RISKGATE_RULES_FILE) blocks,
allows over a model's block and reviews, in the documented order; lists match values, CIDR ranges and stop
matching once expired; the answer and the logged decision name the rule; a bad file refuses start-up with its
position, a changed one is served after a reload."""

from __future__ import annotations

import sqlite3
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.iptv import FEATURE_SET
from registry.bundle import ModelBundle
from rules.book import RuleAction, RuleSpec
from serving.api.app import create_app
from serving.store.operations import Change
from serving.store.operations_sqlite import open_operations
from serving.store.operations_yaml import RulesFileError
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache, service_for

#: A rules file: a block list of devices, a list of IP ranges with an expired item, and rules of each action.
RULES = """
rules:
  - name: review-big
    action: review
    expression: amount > 100
  - name: block-device
    action: block
    expression: device_id in @blocked_devices
    description: devices seen in card testing
  - name: block-ip
    action: block
    expression: ip in @blocked_ips
  - name: allow-vip
    action: allow
    expression: account_id == 'acc-3'
  - name: block-everyone
    action: block
    expression: amount >= 0
    enabled: false
lists:
  - name: blocked_devices
    field: device_id
    reason: card testing
    items: [dev-1]
  - name: blocked_ips
    field: ip
    items:
      - {value: 192.0.2.16/28, reason: proxy range}
      - {value: 192.0.2.40, reason: old proxy, expires_at: "2026-03-01T12:30:00Z"}
"""


def rules_file(tmp_path: Path, text: str = RULES) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def open_client(tmp_path: Path, bundles: dict[str, ModelBundle], **settings: Any) -> DocumentedClient:
    seed_cache(tmp_path / "state" / "models", bundles)
    return DocumentedClient(create_app(service=service_for(tmp_path, **settings)))


@pytest.fixture
def ruled(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Iterator[TestClient]:
    with open_client(tmp_path, bundles, rules_file=rules_file(tmp_path)) as test_client:
        yield test_client


def decision(client: TestClient, n: int, **changes: Any) -> dict[str, Any]:
    response = client.post("/v1/score", json=attempt(n, **changes), headers=SCORE)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["decision"]
    return answer


# n % 3 is the device (dev-1 is listed), n % 7 the account (acc-3 is allowed), n % 250 the IP's last byte;
# attempt n is made at 12:00 + n minutes.


def test_a_listed_device_is_blocked_and_the_answer_names_the_rule(ruled: TestClient) -> None:
    assert decision(ruled, 1) == {
        "action": "block", "rule": "block-device", "fallback": False, "decided_by": "rule",
        "reasons": [],
    }  # fmt: skip
    unlisted = decision(ruled, 2)
    assert unlisted["decided_by"] == "policy"
    assert unlisted["rule"] not in {"review-big", "block-device", "block-ip", "allow-vip"}


def test_an_allow_rule_overrides_the_models_block(tmp_path: Path, bundles: dict[str, ModelBundle]) -> None:
    rules = rules_file(tmp_path)
    with open_client(
        tmp_path, bundles, rules_file=rules, fraud_elevated_threshold=0.0, fraud_highest_threshold=0.0
    ) as client:
        assert decision(client, 0) == {
            "action": "block", "rule": "fraud_highest", "fallback": False, "decided_by": "policy",
            "reasons": [],
        }  # fmt: skip
        assert decision(client, 3)["action"] == "approve"  # acc-3, whatever the fraud model says
        assert decision(client, 3 + 7)["rule"] == "allow-vip"


def test_a_review_rule_holds_the_attempt(ruled: TestClient) -> None:
    assert decision(ruled, 2, amount=150.0) == {
        "action": "review", "rule": "review-big", "fallback": False, "decided_by": "rule",
        "reasons": [],
    }  # fmt: skip


def test_allow_then_block_then_review_decide_and_disabled_rules_never_do(ruled: TestClient) -> None:
    assert decision(ruled, 10, amount=150.0)["rule"] == "allow-vip"  # acc-3 on dev-1, big: allowed
    assert decision(ruled, 4, amount=150.0)["rule"] == "block-device"  # dev-1, big: blocked before review
    assert decision(ruled, 16, amount=150.0)["rule"] == "block-device"  # dev-1, 192.0.2.16: listing order
    assert decision(ruled, 5)["decided_by"] == "policy"  # block-everyone is disabled


def test_lists_match_cidr_ranges_and_items_stop_matching_when_they_expire(ruled: TestClient) -> None:
    assert decision(ruled, 18)["rule"] == "block-ip"  # 192.0.2.18 in 192.0.2.16/28
    assert decision(ruled, 30)["rule"] == "block-ip"  # 192.0.2.30 too
    assert decision(ruled, 33)["decided_by"] == "policy"  # 192.0.2.33: outside the range
    assert decision(ruled, 15)["decided_by"] == "policy"  # 192.0.2.15 too
    assert decision(ruled, 2, ip="192.0.2.40")["rule"] == "block-ip"  # 12:02, before the expiry at 12:30
    assert decision(ruled, 41, ip="192.0.2.40")["decided_by"] == "policy"  # 12:41: expired


def test_the_logged_decision_names_the_rule_and_who_decided(tmp_path: Path, bundles: dict[str, Any]) -> None:
    with open_client(tmp_path, bundles, rules_file=rules_file(tmp_path)) as client:
        decision(client, 1)
        decision(client, 2)
        logged = client.get(f"/v1/decisions/{attempt(1)['attempt_id']}", headers=ADMIN)
        assert logged.status_code == 200
        assert logged.json()["decision"]["rule"] == "block-device"
        assert logged.json()["decision"]["decided_by"] == "rule"
        replayed = client.post("/v1/score", json=attempt(1), headers=SCORE).json()
        assert replayed["replayed"]
        assert replayed["decision"]["decided_by"] == "rule"
    db = sqlite3.connect(tmp_path / "state" / "decisions.sqlite")
    query = "SELECT attempt_id, action, rule, decided_by FROM decisions ORDER BY attempt_id"
    rows = db.execute(query).fetchall()
    db.close()
    assert rows[0] == (attempt(1)["attempt_id"], "block", "block-device", "rule")
    assert rows[1][3] == "policy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "rules:\n  - name: ok\n    action: block\n    expression: amount > 1\n"
            "  - name: typo\n    action: block\n    expression: amout > 3\n",
            r"rule 'typo' \(rules\[1\], line 5\): line 1, column 1 \('amout'\): unknown name; did you mean "
            r"'amount'\?",
        ),
        (
            "rules:\n  - name: a\n    action: block\n    expression: device_id in @nowhere\n",
            r"rule 'a' \(rules\[0\], line 2\): line 1, column 14 \('@nowhere'\): unknown list",
        ),
        (
            "rules:\n  - name: a\n    action: deny\n    expression: amount > 1\n",
            r"rules\.0\.action \(line 2\)",
        ),
        ("rules: [\n", r"not YAML at line 2"),
        (
            "lists:\n  - name: l\n    field: ip\n    items: [{value: 10.0.0.1/8, reason: r}]\n",
            r"list 'l' \(lists\[0\], line 2\): .*host bits set",
        ),
    ],
)
def test_a_bad_rules_file_refuses_start_up_naming_the_file_the_rule_and_the_position(
    tmp_path: Path, text: str, message: str
) -> None:
    path = rules_file(tmp_path, text)
    with pytest.raises(RulesFileError, match=message) as caught:
        service_for(tmp_path, rules_file=path)
    assert str(path) in str(caught.value)


def test_a_reload_serves_the_changed_file_and_a_bad_one_keeps_the_rules_served(ruled: TestClient) -> None:
    assert decision(ruled, 2)["decided_by"] == "policy"
    path = Path(ruled.app.state.service.rules_file)  # type: ignore[attr-defined]
    path.write_text(RULES.replace("items: [dev-1]", "items: [dev-1, dev-2]"))
    assert ruled.post("/v1/admin/reload", headers=ADMIN).status_code == 200
    assert decision(ruled, 5)["rule"] == "block-device"  # dev-2, listed now
    path.write_text("rules:\n  - name: typo\n    action: block\n    expression: amout > 3\n")
    refused = ruled.post("/v1/admin/reload", headers=ADMIN)
    assert refused.status_code == 422
    assert "amout" in refused.json()["message"]
    assert decision(ruled, 8)["rule"] == "block-device"  # dev-2: the book served before stays


# -- the store's rules reach the decision path -------------------------------------------------------------


def _by_api(client: TestClient, name: str, expression: str, action: str = "block") -> None:
    body = {"name": name, "action": action, "expression": expression, "reason": "seen in a ring"}
    created = client.post("/v1/rules", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text


def test_a_rule_made_through_the_api_decides_from_the_next_request(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    with open_client(tmp_path, bundles, rules_poll_seconds=0) as client:  # no polling: served on the change
        assert decision(client, 1)["decided_by"] == "policy"
        created = client.post(
            "/v1/lists", json={"name": "ring", "field": "device_id", "reason": "new"}, headers=ADMIN
        )
        assert created.status_code == 201, created.text
        _by_api(client, "block-ring", "device_id in @ring")
        assert decision(client, 4)["decided_by"] == "policy"  # dev-1, not listed yet
        items = {"items": [{"value": "dev-1"}], "reason": "chargeback"}
        assert client.post("/v1/lists/ring/items", json=items, headers=ADMIN).status_code == 200
        assert decision(client, 7)["rule"] == "block-ring"  # dev-1
        disabled = client.post("/v1/rules/block-ring/disable", json={"reason": "too wide"}, headers=ADMIN)
        assert disabled.status_code == 200
        assert decision(client, 10)["decided_by"] == "policy"


def test_a_change_made_elsewhere_reaches_a_running_instance(
    tmp_path: Path, bundles: dict[str, ModelBundle]
) -> None:
    """Another instance (or `riskgate rules load`) changes the shared store: the poll serves it."""
    with open_client(tmp_path, bundles, rules_poll_seconds=0.05) as client:
        assert decision(client, 2, amount=150.0)["decided_by"] == "policy"
        elsewhere = open_operations(tmp_path / "state", FEATURE_SET)
        made = Change("ana", datetime.now(UTC), "big tickets need a look")
        elsewhere.create_rule(RuleSpec("review-big", RuleAction.REVIEW, "amount > 100"), made)
        elsewhere.store.close()
        deadline = time.monotonic() + 10
        n = 100
        while decision(client, n, amount=150.0)["decided_by"] != "rule":
            assert time.monotonic() < deadline, "the change was not served within 10 s"
            time.sleep(0.05)
            n += 1
        assert decision(client, n + 1, amount=150.0)["rule"] == "review-big"


def test_a_rules_file_is_the_whole_set_a_reload_removes_what_it_does_not_name(ruled: TestClient) -> None:
    _by_api(ruled, "block-big", "amount > 1000")
    assert decision(ruled, 2, amount=2000.0)["rule"] == "block-big"
    assert ruled.post("/v1/admin/reload", headers=ADMIN).status_code == 200
    assert decision(ruled, 5, amount=2000.0)["rule"] == "review-big"  # block-big: gone with the reload
    versions = ruled.get("/v1/rules/block-big/versions", headers=ADMIN).json()["versions"]
    assert [(v["change"], v["changed_by"]) for v in versions] == [
        ("created", "dev-admin"),
        ("deleted", "rules file"),
    ]
    kept = ruled.get("/v1/rules/block-device/versions", headers=ADMIN).json()["versions"]
    assert [v["changed_by"] for v in kept] == ["rules file"]  # loaded once, unchanged by the reload
