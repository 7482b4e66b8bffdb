"""The API over HTTP (TestClient): scoring, batch, outcomes, idempotency, auth, card numbers, erasure."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.schema import EARLIEST_TIME, LATEST_TIME
from features.iptv import FEATURE_SET
from features.stores.base import StoreError
from serving.scoring.engine import ThresholdOverrides
from serving.scoring.schemas import LoggedDecisionOut, ScoreOut
from tests.serving.factories import ADMIN, SCORE, attempt

CARD = "4111 1111 1111 1111"


def score(client: TestClient, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = client.post("/v1/score", json=body, headers=SCORE, params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    ScoreOut.model_validate(answer)  # the documented response schema
    return answer


def test_score_answers_probabilities_action_reasons_and_versions(client: TestClient) -> None:
    answer = score(client, attempt(1))
    assert 0.0 <= answer["fraud"]["probability"] <= 1.0
    assert 0.0 <= answer["failure"]["probability"] <= 1.0
    assert answer["fraud"]["level"] in {"normal", "elevated", "highest"}
    assert answer["decision"]["action"] in {"approve", "review", "block", "defer"}
    assert answer["decision"]["fallback"] is False
    assert answer["fraud"]["model"] == {"name": "riskgate-fraud", "version": "1", "source": "cache"}
    assert answer["failure"]["model"]["name"] == "riskgate-failure"
    reasons = answer["fraud"]["reasons"]
    assert 1 <= len(reasons) <= 5
    magnitudes = [abs(r["contribution"]) for r in reasons]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert answer["scoring_ms"] > 0
    assert answer["features"] is None
    assert answer["replayed"] is False


def test_explain_returns_the_full_feature_vector(client: TestClient) -> None:
    answer = score(client, attempt(2, amount=29.5), explain="true")
    assert list(answer["features"]) == FEATURE_SET.names
    assert answer["features"]["amount"] == 29.5


def test_same_attempt_twice_returns_the_logged_decision_and_counts_once(client: TestClient) -> None:
    first = score(client, attempt(3))
    again = score(client, attempt(3), explain="true")
    assert again["replayed"] is True
    assert again["decision"] == first["decision"]
    assert again["fraud"]["probability"] == first["fraud"]["probability"]
    # the next attempt on the same card sees exactly one earlier attempt in the last hour
    later = score(
        client, attempt(3, attempt_id="att-later", occurred_at="2026-03-01T12:30:00+00:00"), explain="true"
    )
    assert later["features"]["card_attempts_count_1h"] == 1.0


def test_reusing_an_attempt_id_with_another_payload_is_a_conflict(client: TestClient) -> None:
    score(client, attempt(4))
    response = client.post("/v1/score", json=attempt(4, amount=99.0), headers=SCORE)
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_batch_gives_the_same_answers_as_single_calls(client: TestClient) -> None:
    bodies = [attempt(n) for n in range(10, 15)]
    response = client.post("/v1/score/batch", json={"attempts": bodies}, headers=SCORE)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["attempt_id"] for r in results] == [b["attempt_id"] for b in bodies]
    assert all(r["replayed"] is False for r in results)
    singles = [score(client, body) for body in bodies]  # now replays of the logged decisions
    for batch_answer, single in zip(results, singles, strict=True):
        assert single["replayed"] is True
        assert single["decision"] == batch_answer["decision"]
        assert single["fraud"]["probability"] == batch_answer["fraud"]["probability"]


def test_oversized_batch_and_body_are_refused(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    service.limits.max_batch = 3
    response = client.post(
        "/v1/score/batch", json={"attempts": [attempt(n) for n in range(4)]}, headers=SCORE
    )
    assert response.status_code == 413
    assert "limit of 3" in response.json()["message"]
    huge = json.dumps({"attempts": [attempt(0)], "pad": "x" * 2_000_000})
    response = client.post(
        "/v1/score/batch", content=huge, headers={**SCORE, "content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "field", ["payment_method_id", "account_id", "device_id", "invoice_id", "attempt_id"]
)
def test_card_numbers_are_refused_without_being_echoed(client: TestClient, field: str) -> None:
    response = client.post("/v1/score", json=attempt(5, **{field: f"tok {CARD}"}), headers=SCORE)
    assert response.status_code == 422
    assert "card number" in response.text
    assert "4111" not in response.text
    assert client.get(f"/v1/decisions/{attempt(5)['attempt_id']}", headers=SCORE).status_code == 404


def test_card_number_in_an_unknown_field_name_or_outcome_is_refused(client: TestClient) -> None:
    response = client.post("/v1/score", json={**attempt(6), "4111111111111111": "x"}, headers=SCORE)
    assert response.status_code == 422
    assert "4111" not in response.text
    outcome = {"attempt_id": f"x{CARD}", "occurred_at": "2026-03-01T12:00:00Z", "status": "approved"}
    response = client.post("/v1/outcomes", json={"outcomes": [outcome]}, headers=SCORE)
    assert response.status_code == 422
    assert "4111" not in response.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "ISO 4217"),
        ({"amount": -1}, "amount"),
        ({"account_created_at": "2099-01-01T00:00:00Z"}, "after occurred_at"),
        ({"occurred_at": "2026-03-01T12:00:00"}, "with an offset"),
        ({"kind": "gift"}, "kind"),
        ({"card_bin": "12ab"}, "BIN"),
        ({"ip": "999.1.1.1"}, "IP"),
        ({"card_country": "XX"}, "country"),
        ({"retry_number": -2}, "retry_number"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_attempts_get_precise_422s(client: TestClient, change: dict[str, Any], message: str) -> None:
    response = client.post("/v1/score", json=attempt(7, **change), headers=SCORE)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert message.lower() in json.dumps(body["details"]).lower()
    assert all("input" not in detail for detail in body["details"])


def test_missing_field_and_non_json_bodies_are_422(client: TestClient) -> None:
    body = attempt(8)
    del body["account_id"]
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == ["body", "account_id"]
    response = client.post(
        "/v1/score", content=b"{not json", headers={**SCORE, "content-type": "application/json"}
    )
    assert response.status_code == 422
    response = client.post("/v1/score", json=[1, 2], headers=SCORE)
    assert response.status_code == 422


def test_keys_and_scopes(client: TestClient) -> None:
    assert client.post("/v1/score", json=attempt(9)).status_code == 401
    wrong = client.post("/v1/score", json=attempt(9), headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "unauthenticated", "message": "invalid API key"}
    assert client.post("/v1/admin/reload", headers=SCORE).status_code == 403
    assert client.delete("/v1/accounts/acc-1", headers=SCORE).status_code == 403
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200


def test_outcomes_are_idempotent_and_feed_the_decline_history(client: TestClient) -> None:
    never = 2.0  # no probability reaches it: only the decline history can decide
    client.app.state.service.engine.overrides = ThresholdOverrides(never, never, never)  # type: ignore[attr-defined]
    first = score(client, attempt(20, payment_method_id="pm_stolen"))
    assert first["decision"]["rule"] != "retry_forbidden"
    outcome = {
        "attempt_id": "att-000020",
        "occurred_at": "2026-03-01T12:20:30Z",
        "status": "declined",
        "decline_code": "stolen_card",
    }
    report = {"report_id": "r1", "attempt_id": "att-000020", "reported_at": "2026-03-05T00:00:00Z",
              "report_type": "chargeback"}  # fmt: skip
    body = {"outcomes": [outcome], "fraud_reports": [report]}
    response = client.post("/v1/outcomes", json=body, headers=SCORE)
    assert response.json() == {"outcomes_recorded": 1, "outcomes_duplicate": 0,
                               "fraud_reports_recorded": 1, "fraud_reports_duplicate": 0}  # fmt: skip
    again = client.post("/v1/outcomes", json=body, headers=SCORE).json()
    assert again["outcomes_duplicate"] == 1
    assert again["fraud_reports_duplicate"] == 1
    retry = score(
        client, attempt(21, payment_method_id="pm_stolen", kind="retry", retry_number=1), explain="true"
    )
    assert retry["decision"] == {
        "action": "block",
        "rule": "retry_forbidden",
        "fallback": False,
        "decided_by": "policy",
        "reasons": [],
    }
    assert retry["features"]["card_outcomes_fraud_declines_count_90d"] == 1.0


def test_an_outcome_before_its_attempt_is_kept_and_applied(client: TestClient) -> None:
    outcome = {"attempt_id": "att-000030", "occurred_at": "2026-03-01T12:31:00Z", "status": "declined",
               "decline_code": "insufficient_funds"}  # fmt: skip
    assert client.post("/v1/outcomes", json={"outcomes": [outcome]}, headers=SCORE).status_code == 200
    score(client, attempt(30))
    later = score(
        client, attempt(30, attempt_id="att-after", occurred_at="2026-03-01T13:00:00+00:00"), explain="true"
    )
    assert later["features"]["card_outcomes_declined_count_1d"] == 1.0


def test_outcome_validation(client: TestClient) -> None:
    declined = {"attempt_id": "a", "occurred_at": "2026-03-01T12:31:00Z", "status": "declined"}
    response = client.post("/v1/outcomes", json={"outcomes": [declined]}, headers=SCORE)
    assert response.status_code == 422
    assert "decline_code" in response.text
    assert client.post("/v1/outcomes", json={}, headers=SCORE).status_code == 422


def test_decisions_are_logged_for_audits(client: TestClient) -> None:
    answer = score(client, attempt(40))
    response = client.get("/v1/decisions/att-000040", headers=SCORE)
    assert response.status_code == 200
    logged = LoggedDecisionOut.model_validate(response.json())
    assert logged.decision.action == answer["decision"]["action"]
    assert logged.features is not None
    assert logged.erased is False
    missing = client.get("/v1/decisions/nope", headers=SCORE)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_erasure_removes_personal_data_and_says_what_is_kept(client: TestClient) -> None:
    for n in (50, 57):  # both on account acc-1
        score(client, attempt(n))
    response = client.delete("/v1/accounts/acc-1", headers=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["decisions_unlinked"] == 2
    assert body["online_events_removed"] >= 2
    assert body["account"] != "acc-1"
    assert body["kept"]
    logged = client.get("/v1/decisions/att-000050", headers=SCORE).json()
    assert logged["erased"] is True
    assert logged["features"] is None
    assert all(reason["value"] is None for reason in logged["fraud"]["reasons"])
    # the account's history is gone from the online store
    fresh = score(client, attempt(64, account_id="acc-1", payment_method_id="pm_new", device_id="dev-new",
                                  card_bin="999999", ip="198.51.100.1"), explain="true")  # fmt: skip
    assert fresh["features"]["account_attempts_count_30d"] == 0.0
    assert "acc-1" not in client.get("/metrics").text  # routes are labelled by template, never by id


def test_metrics_label_a_route_by_its_template_even_when_an_id_repeats_the_prefix(client: TestClient) -> None:
    score(client, attempt(90, attempt_id="v1"))
    assert client.get("/v1/decisions/v1", headers=SCORE).status_code == 200
    assert client.get("/v1/decisions/decisions", headers=SCORE).status_code == 404
    text = client.get("/metrics").text
    assert 'method="GET",route="/v1/decisions/{attempt_id}",status="200"' in text
    assert 'method="GET",route="/v1/decisions/{attempt_id}",status="404"' in text
    assert "/{attempt_id}/decisions" not in text


def test_without_models_the_service_answers_a_marked_fallback(bare_client: TestClient) -> None:
    renewal = score(bare_client, attempt(70, kind="renewal"))
    assert renewal["decision"] == {
        "action": "approve",
        "rule": "fallback_recurring",
        "fallback": True,
        "decided_by": "policy",
        "reasons": [],
    }
    assert renewal["fraud"]["probability"] is None
    assert renewal["fraud"]["level"] == "unknown"
    signup = score(bare_client, attempt(71, kind="signup"))
    assert signup["decision"] == {
        "action": "review",
        "rule": "fallback_new_money",
        "fallback": True,
        "decided_by": "policy",
        "reasons": [],
    }
    ready = bare_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["fraud_model"] is False


def test_health_readiness_metrics_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    assert client.get("/readyz").json()["ready"] is True
    score(client, attempt(80))
    client.post("/v1/score", json=attempt(81, currency="nope"), headers=SCORE)
    text = client.get("/metrics").text
    assert 'riskgate_request_seconds_count{method="POST",route="/v1/score",status="200"}' in text
    assert "riskgate_decisions_total{" in text
    assert 'riskgate_model_info{name="riskgate-fraud",source="cache",task="fraud",version="1"} 1.0' in text
    assert 'riskgate_errors_total{kind="validation"} 1.0' in text
    assert 'riskgate_score_count{model="fraud"} 1.0' in text
    spec = client.get("/openapi.json").json()
    assert {"/v1/score", "/v1/score/batch", "/v1/outcomes", "/v1/decisions/{attempt_id}",
            "/v1/accounts/{account_id}", "/v1/admin/reload"} <= set(spec["paths"])  # fmt: skip


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(list(attempt(0))), value=JSON, n=st.integers(0, 10_000))
def test_no_input_produces_a_server_error(client: TestClient, field: str, value: Any, n: int) -> None:
    body = attempt(90_000 + n)
    body[field] = value
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code in {200, 409, 422}, response.text


OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moment=st.datetimes(timezones=OFFSETS))
def test_no_time_produces_a_server_error(client: TestClient, moment: datetime) -> None:
    """Any year, any offset: scored, or refused; the same for its outcome and for a trends query."""
    body = attempt(96_000, attempt_id=f"time-{uuid.uuid4().hex}", occurred_at=moment.isoformat())
    response = client.post("/v1/score", json=body, headers=SCORE)
    assert response.status_code in {200, 422}, response.text
    assert (response.status_code == 200) == (EARLIEST_TIME <= moment < LATEST_TIME)
    outcome = {"attempt_id": body["attempt_id"], "occurred_at": moment.isoformat(), "status": "approved"}
    assert client.post("/v1/outcomes", json=outcome, headers=SCORE).status_code in {200, 404, 422}
    assert client.get("/v1/trends", params={"start": moment.isoformat()}, headers=SCORE).status_code in {
        200,
        422,
    }


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_amounts_are_422(client: TestClient, literal: str) -> None:
    raw = json.dumps(attempt(95)).replace('"amount": 14.99', f'"amount": {literal}')
    response = client.post("/v1/score", content=raw, headers={**SCORE, "content-type": "application/json"})
    assert response.status_code == 422


class BrokenStore:
    """A feature source whose store is down."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any) -> Any:
            raise StoreError("the online store is unreachable")

        return fail


def test_a_broken_feature_store_never_stalls_scoring(client: TestClient) -> None:
    client.app.state.service.engine.features = BrokenStore()  # type: ignore[attr-defined]
    answer = score(client, attempt(96, kind="renewal"))
    assert answer["decision"] == {
        "action": "approve",
        "rule": "fallback_recurring",
        "fallback": True,
        "decided_by": "policy",
        "reasons": [],
    }
    assert answer["fraud"]["model"]["name"] == "riskgate-fraud"
    assert answer["fraud"]["probability"] is None
    outcome = {"attempt_id": "att-000096", "occurred_at": "2026-03-01T13:00:00Z", "status": "approved"}
    response = client.post("/v1/outcomes", json={"outcomes": [outcome]}, headers=SCORE)
    assert response.status_code == 503
    assert "retry later" in response.json()["message"]
    assert 'riskgate_errors_total{kind="feature_store"}' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("written", "status"),
    [
        ("2000-01-01T01:00:00+01:00", 200),  # the range's first instant, written an hour ahead of UTC
        ("1999-12-31T23:30:00-01:00", 200),  # in range, though its written date is before it
        ("2000-01-01T00:30:00+01:00", 422),  # 1999-12-31T23:30Z
        ("2099-12-31T23:30:00-01:00", 422),  # 2100-01-01T00:30Z
    ],
)
def test_every_time_of_the_range_is_accepted_whatever_its_offset(
    client: TestClient, written: str, status: int
) -> None:
    body = attempt(97_000, attempt_id=f"edge-{uuid.uuid4().hex}", occurred_at=written)
    assert client.post("/v1/score", json=body, headers=SCORE).status_code == status
