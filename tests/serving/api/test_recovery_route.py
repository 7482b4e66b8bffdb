"""POST /v1/recovery-plan over HTTP: plans on the served failure model, hard rules, fallback, auth, limits."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from features.stores.base import StoreError
from recovery.config import QuietHours, RecoveryConfig
from registry.bundle import ModelBundle
from serving.api.app import create_app
from serving.errors import ConfigurationError
from serving.scoring.recovery import FALLBACK_RETRY_DAYS, outside_quiet_hours
from serving.scoring.schemas import AttemptIn, RecoveryBatchOut, RecoveryPlanOut
from serving.store.base import DecisionRecord
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, attempt, seed_cache, service_for

DEFAULTS = RecoveryConfig()


def recent(n: int, hours_ago: float = 1.0, **overrides: Any) -> dict[str, Any]:
    """An attempt made ``hours_ago`` before the server's clock (plans are made as of server time)."""
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    return attempt(n, occurred_at=at.isoformat(), **overrides)


def plan(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/recovery-plan", json=body, headers=SCORE)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    RecoveryPlanOut.model_validate(answer)  # the documented response schema
    return answer


def retries(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in answer["steps"] if step["kind"] == "retry"]


def times(steps: list[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(step["at"]) for step in steps]


@pytest.fixture
def configured(tmp_path: Path, bundles: dict[str, ModelBundle]) -> Iterator[Any]:
    """A factory of clients whose service reads a recovery config YAML (``RISKGATE_RECOVERY_CONFIG``)."""
    seed_cache(tmp_path / "state" / "models", bundles)
    clients: list[TestClient] = []

    def make(yaml_text: str) -> TestClient:
        path = tmp_path / f"recovery-{len(clients)}.yaml"
        path.write_text(yaml_text)
        client = DocumentedClient(create_app(service=service_for(tmp_path, recovery_config=path)))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_a_declined_renewal_gets_ordered_retries_within_the_window_and_the_cap(client: TestClient) -> None:
    body = recent(1, hours_ago=2.0, retry_number=1)
    declined_at = datetime.fromisoformat(body["occurred_at"])
    answer = plan(client, {"attempt": body, "decline_code": "insufficient_funds"})
    planned = retries(answer)
    at = times(planned)
    assert 1 <= len(planned) <= DEFAULTS.max_attempts - 1
    assert at == sorted(at)
    assert at[0] >= declined_at + DEFAULTS.min_gap
    assert all(b - a >= DEFAULTS.min_gap for a, b in itertools.pairwise(at))
    assert all(t < declined_at + DEFAULTS.window for t in at)
    assert not any(DEFAULTS.quiet_hours.is_quiet(t.hour) for t in at)
    assert all(0.0 < step["success_probability"] <= 1.0 and step["reason"] for step in planned)
    assert answer["fallback"] is False
    assert answer["hard_rule"] is None
    assert answer["model"] == {"name": "riskgate-failure", "version": "1", "source": "cache"}
    assert answer["candidates"] > 0
    assert answer["invoice_id"] == "inv-1"
    assert 0.0 < answer["recovery_probability"] <= 1.0


def test_retries_already_made_count_against_the_cap(client: TestClient) -> None:
    body = recent(2, retry_number=DEFAULTS.max_attempts)
    answer = plan(client, {"attempt": body, "decline_code": "insufficient_funds"})
    assert retries(answer) == []
    assert answer["stop"] == "max_attempts"


def test_the_dunning_window_opens_at_the_first_decline(client: TestClient) -> None:
    body = recent(3, retry_number=2)
    first = datetime.now(UTC) - DEFAULTS.window + timedelta(hours=1)  # one hour of the window is left
    answer = plan(
        client,
        {"attempt": body, "decline_code": "do_not_honor", "first_declined_at": first.isoformat()},
    )
    assert retries(answer) == []
    assert answer["stop"] == "no_candidate"


@pytest.mark.parametrize("code", ["stolen_card", "lost_card", "fraudulent"])
def test_a_forbidden_decline_gets_no_retry(client: TestClient, code: str) -> None:
    answer = plan(client, {"attempt": recent(4), "decline_code": code})
    assert retries(answer) == []
    assert answer["hard_rule"] == "retry_forbidden"
    assert answer["stop"] == "hard_rule"
    assert [step["action"] for step in answer["steps"]] == ["other_method"]


def test_an_attempt_riskgate_blocked_as_fraud_gets_no_retry(client: TestClient) -> None:
    body = recent(5)
    log = client.app.state.service.engine.log  # type: ignore[attr-defined]
    log.record(
        DecisionRecord(
            attempt_id=body["attempt_id"], occurred_at=datetime.now(UTC), account_key=None, method_key=None,
            kind="renewal", fingerprint="f", action="block", rule="fraud_highest", fallback=False,
            fraud_probability=0.99, failure_probability=0.1, answer={"decision": {"action": "block"}},
        )
    )  # fmt: skip
    answer = plan(client, {"attempt": body, "decline_code": "insufficient_funds"})
    assert retries(answer) == []
    assert answer["hard_rule"] == "fraud_blocked"
    other = plan(client, {"attempt": recent(6), "decline_code": "insufficient_funds"})
    assert retries(other), "only the blocked attempt loses its retries"
    smuggled = {"attempt": recent(6), "decline_code": "insufficient_funds", "fraud_blocked": False}
    assert client.post("/v1/recovery-plan", json=smuggled, headers=SCORE).status_code == 422


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_a_renewal_before_its_charge_gets_a_reminder_when_failure_is_likely(
    configured: Any, threshold: float
) -> None:
    client = configured(f"reminder_threshold: {threshold}\nreminder_lead_hours: 48\n")
    charge_at = datetime.now(UTC) + timedelta(days=5)
    answer = plan(client, {"attempt": attempt(7, occurred_at=charge_at.isoformat())})
    kinds = [step["kind"] for step in answer["steps"]]
    assert kinds[-1] == "charge"
    assert answer["stop"] == "not_declined"
    charge = answer["steps"][-1]
    assert datetime.fromisoformat(charge["at"]) == charge_at
    p_fail = 1.0 - charge["success_probability"]
    reminders = [step for step in answer["steps"] if step["action"] == "reminder"]
    assert bool(reminders) == (p_fail >= threshold)
    if reminders:
        assert datetime.fromisoformat(reminders[0]["at"]) == charge_at - timedelta(hours=48)


def test_a_card_expiring_before_the_renewal_asks_for_the_new_card(client: TestClient) -> None:
    charge_at = datetime.now(UTC) + timedelta(days=40)
    expiring = f"{datetime.now(UTC):%Y-%m}"
    answer = plan(client, {"attempt": attempt(8, occurred_at=charge_at.isoformat(), card_exp=expiring)})
    assert "update_card" in [step["action"] for step in answer["steps"]]


def test_planning_never_changes_the_online_state(client: TestClient) -> None:
    engine = client.app.state.service.engine  # type: ignore[attr-defined]
    body = recent(9, hours_ago=3.0)
    assert client.post("/v1/score", json=body, headers=SCORE).status_code == 200
    outcome = {"attempt_id": body["attempt_id"], "occurred_at": body["occurred_at"], "status": "declined",
               "decline_code": "insufficient_funds"}  # fmt: skip
    assert client.post("/v1/outcomes", json={"outcomes": [outcome]}, headers=SCORE).status_code == 200
    probe_body = {**recent(9, hours_ago=0.0), "attempt_id": "probe", "kind": "retry", "retry_number": 1}
    probe = AttemptIn.model_validate(probe_body).as_event()
    before = engine.features.features_for(probe)
    assert np.isfinite(before).any()
    plan(client, {"attempt": body, "decline_code": "insufficient_funds"})
    np.testing.assert_array_equal(engine.features.features_for(probe), before)


def test_the_planner_warms_up_at_start_and_writes_nothing(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    recovery = client.app.state.recovery  # type: ignore[attr-defined]
    assert service.engine.log.count() == 0
    assert not list(service.engine.features.store.keys(""))  # the probe plan read the store, wrote nothing
    assert recovery.warm_up(service.engine) > 0.0
    assert not list(service.engine.features.store.keys(""))


def test_keys_and_scopes(client: TestClient) -> None:
    body = {"attempt": recent(10), "decline_code": "stolen_card"}
    assert client.post("/v1/recovery-plan", json=body).status_code == 401
    assert client.post("/v1/recovery-plan", json=body, headers={"X-API-Key": "nope"}).status_code == 401
    assert client.post("/v1/recovery-plan", json=body, headers=ADMIN).status_code == 200
    assert client.post("/v1/recovery-plan/batch", json={"cases": [body]}).status_code == 401


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"decline_code": "card_on_fire"}, "decline_code"),
        ({"declined_at": "2026-03-01T12:00:00"}, "declined_at"),  # no time zone
        ({"decline_code": None, "declined_at": "2026-03-01T12:00:00Z"}, "need a decline_code"),
        ({"first_declined_at": "2099-01-01T00:00:00Z"}, "first_declined_at is after"),
        ({"card_retry_times": ["2026-03-01T12:00:00Z"] * 101}, "card_retry_times"),
        ({"attempt": {"attempt_id": "x"}}, "attempt"),
        ({"declined_at": "1999-12-31T23:59:59Z"}, "declined_at"),
        ({"first_declined_at": "0001-01-01T00:00:00+14:00"}, "first_declined_at"),
        ({"card_retry_times": ["9999-12-31T23:59:59Z"]}, "card_retry_times"),
    ],
)
def test_invalid_cases_get_422s(client: TestClient, change: dict[str, Any], where: str) -> None:
    body = {"attempt": recent(11), "decline_code": "insufficient_funds", **change}
    response = client.post("/v1/recovery-plan", json=body, headers=SCORE)
    assert response.status_code == 422
    assert where in response.text


def test_a_decline_in_the_future_is_refused_with_what_to_send(client: TestClient) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {"attempt": recent(12), "decline_code": "insufficient_funds", "declined_at": future}
    response = client.post("/v1/recovery-plan", json=body, headers=SCORE)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_recovery_case"
    assert "in the future" in response.json()["message"]


def test_batch_answers_as_single_calls_and_is_limited(client: TestClient) -> None:
    cases: list[dict[str, Any]] = [
        {"attempt": recent(13), "decline_code": "insufficient_funds"},
        {"attempt": recent(14), "decline_code": "stolen_card"},
        {"attempt": attempt(15, occurred_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())},
    ]
    now = datetime.now(UTC)
    client.app.state.recovery.clock = lambda: now  # type: ignore[attr-defined]  # customer steps are "now"
    response = client.post("/v1/recovery-plan/batch", json={"cases": cases}, headers=SCORE)
    assert response.status_code == 200, response.text
    results = RecoveryBatchOut.model_validate(response.json()).results
    singles = [plan(client, case) for case in cases]
    assert [r.model_dump(mode="json", exclude={"planning_ms"}) for r in results] == [
        RecoveryPlanOut.model_validate(s).model_dump(mode="json", exclude={"planning_ms"}) for s in singles
    ]
    client.app.state.service.limits.max_batch = 2  # type: ignore[attr-defined]
    response = client.post("/v1/recovery-plan/batch", json={"cases": cases}, headers=SCORE)
    assert response.status_code == 413
    assert "limit of 2" in response.json()["message"]
    assert client.post("/v1/recovery-plan/batch", json={"cases": []}, headers=SCORE).status_code == 422


def test_without_a_failure_model_hard_rules_hold_and_retries_follow_the_fixed_schedule(
    bare_client: TestClient,
) -> None:
    stolen = plan(bare_client, {"attempt": recent(16), "decline_code": "stolen_card"})
    assert stolen["hard_rule"] == "retry_forbidden"
    assert stolen["fallback"] is False
    first = datetime.now(UTC) - timedelta(hours=2)
    body = {"attempt": recent(17, hours_ago=2.0), "decline_code": "insufficient_funds",
            "first_declined_at": first.isoformat()}  # fmt: skip
    answer = plan(bare_client, body)
    assert answer["fallback"] is True
    assert answer["model"] is None
    assert answer["recovery_probability"] is None
    planned = retries(answer)
    assert len(planned) == len(FALLBACK_RETRY_DAYS)
    for step, days in zip(times(planned), FALLBACK_RETRY_DAYS, strict=True):
        assert (
            timedelta(days=days) <= step - first < timedelta(days=days, hours=9)
        )  # moved out of quiet hours
        assert not DEFAULTS.quiet_hours.is_quiet(step.hour)
    assert all(step["success_probability"] is None for step in planned)
    before = plan(bare_client, {"attempt": attempt(18, occurred_at=datetime.now(UTC).isoformat())})
    assert before["fallback"] is True
    assert [s["kind"] for s in before["steps"]] == ["charge"]


def test_a_broken_feature_store_falls_back_instead_of_failing(client: TestClient) -> None:
    class Broken:
        def features_at(self, attempt: Any, times: Any) -> Any:
            raise StoreError("the online store is unreachable")

    client.app.state.service.engine.features = Broken()  # type: ignore[attr-defined]
    answer = plan(client, {"attempt": recent(19), "decline_code": "insufficient_funds"})
    assert answer["fallback"] is True
    assert retries(answer)
    assert 'riskgate_errors_total{kind="recovery_fallback"}' in client.get("/metrics").text


def test_an_invalid_recovery_config_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "recovery.yaml"
    path.write_text("max_attempts: 4\nretry_every_hours: 3\n")  # a misspelt key
    with pytest.raises(ConfigurationError, match="retry_every_hours"):
        create_app(service=service_for(tmp_path, recovery_config=path))


def test_the_configured_policy_is_the_one_planned_with(configured: Any) -> None:
    client = configured("max_attempts: 1\ngrid_hours: 12\n")
    answer = plan(client, {"attempt": recent(20), "decline_code": "insufficient_funds"})
    assert len(retries(answer)) <= 1
    assert all(t.hour % 12 == 0 for t in times(retries(answer)))


@given(at=st.datetimes(timezones=st.just(UTC)), start=st.integers(0, 23), end=st.integers(0, 23))
def test_fallback_times_leave_quiet_hours_at_the_first_allowed_hour(
    at: datetime, start: int, end: int
) -> None:
    quiet = QuietHours(start_hour=start, end_hour=end)
    moved = outside_quiet_hours(at, quiet)
    assert not quiet.is_quiet(moved.hour)
    assert at <= moved < at + timedelta(hours=24)
    if moved != at:
        assert quiet.is_quiet((moved - timedelta(hours=1)).hour)
