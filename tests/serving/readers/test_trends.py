"""Trends from the decision log: values against a hand-computed case, the API (JSON, CSV, 422s, auth)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from events.schema import LATEST_TIME
from serving.readers.trends import Range, TrendQueryError, parse_moment, resolve_range, trends, trends_csv
from serving.scoring.schemas import TrendsOut
from serving.store.base import DecisionRecord
from serving.store.decisions import DecisionLog, DecisionReader
from tests.serving.factories import ADMIN, SCORE, T0, attempt

DAY1 = datetime(2026, 3, 1, tzinfo=UTC)


def decision(
    attempt_id: str,
    at: datetime,
    *,
    action: str,
    fraud: float | None,
    failure: float | None,
    amount: float,
    currency: str = "EUR",
    plan_tier: str = "basic",
) -> DecisionRecord:
    answer = {"attempt_id": attempt_id, "decision": {"action": action}}
    return DecisionRecord(
        attempt_id=attempt_id, occurred_at=at, account_key="acc", method_key="pm", kind="renewal",
        fingerprint="fp", action=action, rule="test", fallback=fraud is None, fraud_probability=fraud,
        failure_probability=failure, answer=answer, plan_tier=plan_tier, plan_period="monthly",
        method_type="card", card_funding="credit", card_country="DE", amount=amount, currency=currency,
        fraud_level="normal", fraud_model=None if fraud is None else "riskgate-fraud/1",
        failure_model=None if failure is None else "riskgate-failure/1",
    )  # fmt: skip


@pytest.fixture
def hand_log(tmp_path: Path) -> Path:
    """Four decisions over three days, with outcomes and reports (the case the tests compute by hand).

    d1 03-01 10:00 basic   approve fraud .1 failure .2 10 EUR  approved
    d2 03-01 20:00 premium block   fraud .9 failure .4 20 EUR  (no outcome)  chargeback reported 03-03
    d3 03-02 05:00 basic   review  fraud .5 failure .6 30 GBP  declined      confirmed fraud reported 03-03
    d4 03-03 12:00 basic   approve (fallback: no scores) 5 EUR error
    as_of = 03-03 12:00 (the newest outcome); maturity 1.5 days -> mature up to 03-02 00:00: d1 and d2.
    """
    log = DecisionLog(tmp_path / "decisions.sqlite")
    h = timedelta(hours=1)
    log.record(decision("d1", DAY1 + 10 * h, action="approve", fraud=0.1, failure=0.2, amount=10.0))
    log.record(
        decision(
            "d2", DAY1 + 20 * h, action="block", fraud=0.9, failure=0.4, amount=20.0, plan_tier="premium"
        )
    )
    log.record(
        decision("d3", DAY1 + 29 * h, action="review", fraud=0.5, failure=0.6, amount=30.0, currency="GBP")
    )
    log.record(decision("d4", DAY1 + 60 * h, action="approve", fraud=None, failure=None, amount=5.0))
    log.record_outcome("d1", DAY1 + 10 * h, "approved", None)
    log.record_outcome("d3", DAY1 + 29 * h, "declined", "insufficient_funds")
    log.record_outcome("d4", DAY1 + 60 * h, "error", None)
    log.record_report("r2", "d2", DAY1 + 48 * h, "chargeback")
    log.record_report("r3", "d3", DAY1 + 49 * h, "confirmed_fraud")
    log.close()
    return tmp_path / "decisions.sqlite"


def _trends(path: Path, **kwargs: Any) -> dict[str, Any]:
    with DecisionReader(path) as reader:
        span = Range(DAY1, DAY1 + timedelta(days=3))
        return trends(reader, span, fraud_maturity_days=1.5, **kwargs)


def test_daily_trends_match_the_hand_computed_case(hand_log: Path) -> None:
    result = _trends(hand_log)
    TrendsOut.model_validate(result)
    assert result["as_of"] == "2026-03-03T12:00:00+00:00"
    assert result["segment"] is None
    [series] = result["series"]
    assert series["segment_value"] is None
    first, second, third = series["points"]
    assert [p["bucket_start"][:10] for p in (first, second, third)] == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
    ]
    assert first["attempts"] == 2
    assert first["actions"] == {"approve": 1, "review": 0, "block": 1, "defer": 0}
    fraud = first["fraud"]
    assert fraud["mean"] == pytest.approx(0.5)
    assert fraud["p50"] == pytest.approx(0.5)
    assert fraud["p90"] == pytest.approx(0.1 + 0.9 * 0.8)  # linear interpolation between .1 and .9
    assert fraud["p99"] == pytest.approx(0.1 + 0.99 * 0.8)
    assert fraud["predicted_rate"] == pytest.approx(0.5)  # both mature
    assert fraud["realised_rate"] == pytest.approx(0.5)  # d2 reported
    assert fraud["mature"] is True
    assert fraud["mature_share"] == 1.0
    failure = first["failure"]
    assert failure["mean"] == pytest.approx(0.3)
    assert failure["with_outcome"] == 1  # d2 was blocked: never sent to the gateway
    assert failure["predicted_rate"] == pytest.approx(0.2)
    assert failure["realised_rate"] == 0.0
    money = first["money_at_risk"]
    assert money["currency"] == "EUR"  # 3 of the 4 attempts
    assert money["fraud"] == pytest.approx(10 * 0.1 + 20 * 0.9)
    assert money["failure"] == pytest.approx(10 * 0.2 + 20 * 0.4)
    assert "EUR" in money["currency_note"]


def test_immature_and_fallback_buckets_say_so(hand_log: Path) -> None:
    _, second, third = _trends(hand_log)["series"][0]["points"]
    # d3: reported, but its label is not mature yet: not counted as realised fraud
    assert second["fraud"]["predicted_rate"] is None
    assert second["fraud"]["realised_rate"] is None
    assert second["fraud"]["mature"] is False
    assert second["fraud"]["mature_share"] == 0.0
    assert second["failure"]["realised_rate"] == 1.0
    assert second["failure"]["predicted_rate"] == pytest.approx(0.6)
    assert second["money_at_risk"]["fraud"] == 0.0  # nothing in EUR that day
    assert second["money_at_risk"]["by_currency"] == {
        "GBP": {"fraud": pytest.approx(15.0), "failure": pytest.approx(18.0)}
    }
    # d4: a fallback decision counts as an attempt, but has no score
    assert third["attempts"] == 1
    assert third["fraud"]["mean"] is None
    assert third["fraud"]["p99"] is None
    assert third["failure"]["with_outcome"] == 0
    assert third["failure"]["realised_rate"] is None


def test_segments_give_one_series_per_value_biggest_first(hand_log: Path) -> None:
    result = _trends(hand_log, segment="plan_tier", bucket="week")
    assert result["segment"] == "plan_tier"
    assert [s["segment_value"] for s in result["series"]] == ["basic", "premium"]
    basic, premium = result["series"]
    assert [p["attempts"] for p in basic["points"]] == [1, 2]  # d1 | d3, d4
    assert [p["attempts"] for p in premium["points"]] == [1, 0]
    assert premium["points"][0]["fraud"]["realised_rate"] == 1.0


def test_weeks_start_on_monday_and_cover_the_range(hand_log: Path) -> None:
    result = _trends(hand_log, bucket="week")
    starts = [p["bucket_start"][:10] for p in result["series"][0]["points"]]
    assert starts == ["2026-02-23", "2026-03-02"]  # the range 03-01..03-04 touches two ISO weeks
    assert [p["attempts"] for p in result["series"][0]["points"]] == [2, 2]


def test_hour_buckets_include_empty_hours(hand_log: Path) -> None:
    result = _trends(hand_log, bucket="hour")
    points = result["series"][0]["points"]
    assert len(points) == 72
    assert sum(p["attempts"] for p in points) == 4
    assert points[0]["attempts"] == 0
    assert points[0]["fraud"]["mean"] is None


def test_csv_has_one_row_per_segment_value_and_bucket(hand_log: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(trends_csv(_trends(hand_log, segment="plan_tier")))))
    assert len(rows) == 2 * 3
    first = rows[0]
    assert (first["segment"], first["segment_value"], first["bucket_start"][:10]) == (
        "plan_tier",
        "basic",
        "2026-03-01",
    )
    assert first["attempts"] == "1"
    assert float(first["money_at_risk_fraud"]) == pytest.approx(1.0)
    assert rows[1]["fraud_predicted_rate"] == ""  # null -> empty cell


def test_default_range_is_the_last_30_days_of_the_log(hand_log: Path) -> None:
    with DecisionReader(hand_log) as reader:
        span = resolve_range(reader, None, None)
    assert span.end == DAY1 + timedelta(hours=60, microseconds=1)
    assert span.end - span.start == timedelta(days=30)


def test_a_log_holding_a_time_past_the_contracts_range_still_has_a_default_range(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "decisions.sqlite")  # written before times were range-checked
    log.record(decision("far", datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), action="approve",
                        fraud=0.1, failure=0.2, amount=10.0))  # fmt: skip
    log.close()
    with DecisionReader(tmp_path / "decisions.sqlite") as reader:
        span = resolve_range(reader, None, None)
    assert span.end == LATEST_TIME


def test_parameters_are_checked() -> None:
    assert parse_moment("start", "2026-03-01") == DAY1
    assert parse_moment("start", "2026-03-01T01:00:00+01:00") == DAY1
    with pytest.raises(TrendQueryError, match="start is not an ISO 8601"):
        parse_moment("start", "yesterday")


# -- over HTTP -----------------------------------------------------------------------------------------------


def _filled(client: TestClient, n: int = 12) -> None:
    for i in range(n):
        body = attempt(i, card_country="FR" if i % 3 == 0 else "DE")
        assert client.post("/v1/score", json=body, headers=SCORE).status_code == 200
    outcomes = [
        {
            "attempt_id": f"att-{i:06d}",
            "occurred_at": (T0 + timedelta(minutes=i)).isoformat(),
            "status": "approved",
        }
        for i in range(n)
    ]
    assert client.post("/v1/outcomes", json={"outcomes": outcomes}, headers=SCORE).status_code == 200


def test_trends_endpoint_answers_the_contract(client: TestClient) -> None:
    _filled(client)
    response = client.get("/v1/trends", params={"segment": "card_country", "bucket": "hour"}, headers=SCORE)
    assert response.status_code == 200, response.text
    body = response.json()
    TrendsOut.model_validate(body)
    by_country = {s["segment_value"]: sum(p["attempts"] for p in s["points"]) for s in body["series"]}
    assert by_country == {"DE": 8, "FR": 4}
    assert body["series"][0]["segment_value"] == "DE"
    assert body["as_of"] is not None
    assert body["fraud_maturity_days"] == 90.0  # the synthetic bundle has no label delay: the fallback


def test_trends_csv_export(client: TestClient) -> None:
    _filled(client, 3)
    response = client.get("/v1/trends", params={"format": "csv"}, headers={"X-API-Key": "rg-dev-admin-key"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sum(int(r["attempts"]) for r in rows) == 3


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"bucket": "minute"}, "bucket"),
        ({"segment": "account_id"}, "segment"),
        ({"format": "xml"}, "format"),
        ({"start": "not-a-date"}, "start is not an ISO 8601"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "must be before end"),
        ({"start": "2020-01-01", "end": "2026-01-01", "bucket": "hour"}, "at most"),
        ({"start": "1970-01-01"}, "start must be from 2000-01-01 to 2100-01-01"),
        ({"end": "9999-12-31T23:59:59-14:00"}, "end must be from 2000-01-01 to 2100-01-01"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "start must be from 2000-01-01"),
    ],
)
def test_bad_parameters_are_422_with_a_precise_message(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    response = client.get("/v1/trends", params=params, headers=SCORE)
    assert response.status_code == 422
    assert fragment in response.text


def test_trends_need_a_key(client: TestClient) -> None:
    assert client.get("/v1/trends").status_code == 401
    assert client.get("/v1/trends", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/v1/trends", headers=ADMIN).status_code == 200


def test_an_empty_log_answers_empty_buckets(client: TestClient) -> None:
    body = client.get("/v1/trends", headers=SCORE).json()
    assert body["as_of"] is None
    assert sum(p["attempts"] for s in body["series"] for p in s["points"]) == 0
