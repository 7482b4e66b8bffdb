"""Backtesting a draft rule before enabling it, over HTTP (POST /v1/rule-backtest) and as a user types it
(`riskgate rules backtest`): a small world of attempts scored through the service, with fraud reports; every
figure checked against a plain pandas computation over the attempts as they were sent; maturity and labels
known at the time respected; refusals naming the position or the field; an empty log and an unknown period
answered clearly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bench._models import synthetic_bundle
from features.iptv import FEATURE_SET
from riskgate.cli import app as cli
from serving.api.app import create_app
from serving.readers.trends import maturity_days
from serving.store.operations_sqlite import open_operations
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, T0, attempt, seed_cache, service_for

N = 240  # attempts, one every 12 hours: 120 days, so that the early ones have mature labels
STEP = timedelta(hours=12)
AMOUNTS = (9.99, 14.99, 29.99, 59.0)
DEVICES_LISTED = ("dev-1", "dev-4")
EXPIRING = "dev-5"  # listed until EXPIRY: attempts after it are not hit
EXPIRY = T0 + timedelta(days=30)
DRAFT = "device_id in @suspects and amount > 10"
SUSPECTS = {
    "name": "suspects",
    "field": "device_id",
    "items": [{"value": v} for v in DEVICES_LISTED] + [{"value": EXPIRING, "expires_at": EXPIRY.isoformat()}],
}


def body(n: int) -> dict[str, Any]:
    return attempt(
        n,
        occurred_at=(T0 + n * STEP).isoformat(),
        account_id=f"acc-{n % 17}",
        amount=AMOUNTS[n % 4],
        currency="GBP" if n % 5 == 0 else "EUR",
        device_id=f"dev-{n % 6}",
        ip_country="FR" if n % 3 == 0 else "DE",
    )


def report_time(n: int) -> datetime:
    """Every 7th attempt is reported as fraud, 20 days after it (the last reports come after the period)."""
    return T0 + n * STEP + timedelta(days=20)


@dataclass(frozen=True)
class World:
    tmp: Path
    frame: pd.DataFrame  # the attempts as sent, with the action the service answered and the report time


def client_over(tmp: Path) -> DocumentedClient:
    """The app over ``tmp``'s state directory with its store of rules and lists (the service's own once the
    service builds it; until then given to the app here)."""
    app = create_app(service=service_for(tmp))
    if getattr(app.state, "operations", None) is None:
        app.state.operations = open_operations(tmp / "state", FEATURE_SET)
    return DocumentedClient(app)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("rule-backtest")
    seed_cache(
        tmp / "state" / "models",
        {"fraud": synthetic_bundle("fraud"), "failure": synthetic_bundle("failure", seed=1)},
    )
    rows = []
    with client_over(tmp) as client:
        for n in range(N):
            sent = body(n)
            answer = client.post("/v1/score", json=sent, headers=SCORE)
            assert answer.status_code == 200, answer.text
            reported = report_time(n) if n % 7 == 0 else None
            rows.append({**sent, "action": answer.json()["decision"]["action"], "reported_at": reported})
        reports = [
            {"report_id": f"r-{r['attempt_id']}", "attempt_id": r["attempt_id"],
             "reported_at": r["reported_at"].isoformat(), "report_type": "chargeback"}
            for r in rows if r["reported_at"] is not None
        ]  # fmt: skip
        for chunk in range(0, len(reports), 100):
            posted = client.post(
                "/v1/outcomes", json={"fraud_reports": reports[chunk : chunk + 100]}, headers=SCORE
            )
            assert posted.status_code == 200, posted.text
    frame = pd.DataFrame(rows)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    return World(tmp, frame)


@pytest.fixture
def admin(world: World) -> Iterator[TestClient]:
    with client_over(world.tmp) as client:
        yield client


def expected(frame: pd.DataFrame, as_of: pd.Timestamp, maturity: float) -> dict[str, Any]:
    """The figures computed plainly with pandas from the attempts as sent."""
    listed = frame["device_id"].isin(DEVICES_LISTED) | (
        (frame["device_id"] == EXPIRING) & (frame["occurred_at"] < EXPIRY)
    )
    hit = listed & (frame["amount"] > 10)
    known = frame["reported_at"].notna() & (frame["reported_at"] <= as_of)
    mature = frame["occurred_at"] <= as_of - pd.Timedelta(days=maturity)
    fraud = mature & known
    good = hit & ~known
    return {
        "attempts": len(frame),
        "hits": int(hit.sum()),
        "amount": frame[hit].groupby("currency")["amount"].sum().round(6).to_dict(),
        "frauds": int(fraud.sum()),
        "caught": int((hit & fraud).sum()),
        "mature_hits": int((hit & mature).sum()),
        "good": int(good.sum()),
        "good_accounts": frame.loc[good, "account_id"].nunique(),
        "good_amount": frame[good].groupby("currency")["amount"].sum().round(6).to_dict(),
        "blocked": int((hit & (frame["action"] == "block")).sum()),
        "reviewed": int((hit & (frame["action"] == "review")).sum()),
        "ids": set(frame.loc[hit, "attempt_id"]),
    }


def check_figures(answer: dict[str, Any], want: dict[str, Any]) -> None:
    assert answer["attempts"] == want["attempts"]
    assert answer["hits"]["attempts"] == want["hits"]
    assert answer["hits"]["share"] == pytest.approx(want["hits"] / want["attempts"])
    assert answer["hits"]["amount"] == pytest.approx(want["amount"])
    fraud = answer["fraud"]
    assert (fraud["frauds"], fraud["caught"], fraud["mature_hits"]) == (
        want["frauds"], want["caught"], want["mature_hits"],
    )  # fmt: skip
    assert fraud["immature_hits"] == want["hits"] - want["mature_hits"]
    assert fraud["recall"] == pytest.approx(want["caught"] / want["frauds"])
    assert answer["good"]["attempts"] == want["good"]
    assert answer["good"]["accounts"] == want["good_accounts"]
    assert answer["good"]["amount"] == pytest.approx(want["good_amount"])
    overlap = answer["overlap"]
    assert (overlap["already_blocked"], overlap["already_reviewed"]) == (want["blocked"], want["reviewed"])
    assert overlap["newly_touched"] == want["hits"] - want["blocked"] - want["reviewed"]
    assert set(answer["sample"]) <= want["ids"]


def test_a_draft_rule_with_a_draft_list_is_replayed_over_the_log(world: World, admin: TestClient) -> None:
    request = {
        "expression": DRAFT,
        "action": "block",
        "lists": [SUSPECTS],
        "start": T0.isoformat(),
        "sample": 5,
    }
    response = admin.post("/v1/rule-backtest", json=request, headers=ADMIN)
    assert response.status_code == 200, response.text
    answer = response.json()
    maturity = maturity_days(synthetic_bundle("fraud"))
    assert answer["fraud"]["maturity_days"] == maturity
    as_of = world.frame["reported_at"].max()
    assert answer["fraud"]["as_of"] == as_of.isoformat()
    want = expected(world.frame, as_of, maturity)
    assert want["caught"] > 0  # the world exercises every figure
    assert want["hits"] > want["mature_hits"] > 0
    check_figures(answer, want)
    assert len(answer["sample"]) == 5
    assert answer["rule"] == {"name": "draft", "action": "block", "expression": DRAFT}
    assert answer["unreadable"] == {"erased": 0, "without_fields": 0, "value_errors": 0}


def test_labels_are_judged_as_known_at_as_of_and_only_once_mature(world: World, admin: TestClient) -> None:
    as_of = T0 + timedelta(
        days=100
    )  # reports after it are not known; attempts after as_of - maturity are not mature
    request = {"expression": DRAFT, "lists": [SUSPECTS], "start": T0.isoformat(), "as_of": as_of.isoformat()}
    answer = admin.post("/v1/rule-backtest", json=request, headers=ADMIN).json()
    maturity = answer["fraud"]["maturity_days"]
    want = expected(world.frame, pd.Timestamp(as_of), maturity)
    check_figures(answer, want)
    later = expected(world.frame, world.frame["reported_at"].max(), maturity)
    assert want["frauds"] < later["frauds"]  # a fraud reported after as_of is not counted
    frame = world.frame
    reported_in_time = frame["reported_at"] <= pd.Timestamp(as_of)
    immature = frame["occurred_at"] > pd.Timestamp(as_of) - pd.Timedelta(days=maturity)
    assert (reported_in_time & immature).any()  # ... nor one reported in time on an immature attempt
    assert answer["fraud"]["frauds"] == int((reported_in_time & ~immature).sum())


def test_a_stored_rule_is_backtested_by_name(world: World, admin: TestClient) -> None:
    created = admin.post(
        "/v1/rules",
        json={"name": "foreign-ip", "action": "review", "expression": "ip_country == 'FR' and amount > 20",
              "enabled": False, "reason": "try it"},
        headers=ADMIN,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    answer = admin.post(
        "/v1/rule-backtest", json={"rule": "foreign-ip", "start": T0.isoformat()}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    frame = world.frame
    assert answer.json()["hits"]["attempts"] == int(
        ((frame["ip_country"] == "FR") & (frame["amount"] > 20)).sum()
    )
    assert answer.json()["rule"]["action"] == "review"
    missing = admin.post("/v1/rule-backtest", json={"rule": "nope"}, headers=ADMIN)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("request_body", "said"),
    [
        ({"expression": "amout > 100"}, "line 1, column 1 ('amout')"),
        ({"expression": "device_id in @nope"}, "@nope"),
        ({"expression": "account_id == 'acc-1'"}, "account_id, which the decision log keeps only as a keyed"),
        (
            {"expression": "amount > 1", "start": "2020-01-01", "end": "2020-02-01"},
            "the log holds decisions from",
        ),
        ({"expression": "amount > 1", "rule": "both"}, "not both"),
    ],
)
def test_refusals_say_what_is_wrong(admin: TestClient, request_body: dict[str, Any], said: str) -> None:
    response = admin.post("/v1/rule-backtest", json=request_body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert said in response.text


def test_an_empty_log_is_answered_clearly(tmp_path: Path) -> None:
    with client_over(tmp_path) as client:
        response = client.post("/v1/rule-backtest", json={"expression": "amount > 1"}, headers=ADMIN)
        assert response.status_code == 422
        assert "holds no decision yet" in response.json()["message"]
        assert (
            client.post("/v1/rule-backtest", json={"expression": "amount > 1"}, headers=SCORE).status_code
            == 403
        )


def test_the_command_line_answers_as_the_endpoint(world: World, admin: TestClient, tmp_path: Path) -> None:
    request = {"expression": DRAFT, "lists": [SUSPECTS], "start": T0.isoformat()}
    over_http = admin.post("/v1/rule-backtest", json=request, headers=ADMIN).json()
    csv = tmp_path / "suspects.csv"
    csv.write_text(
        "value,expires_at,reason\n" + "".join(f"{v},,seen\n" for v in DEVICES_LISTED)
        + f"{EXPIRING},{EXPIRY.isoformat()},seen\n"
    )  # fmt: skip
    state = str(world.tmp / "state")
    runner = CliRunner()
    maturity = str(over_http["fraud"]["maturity_days"])
    args = ["rules", "backtest", "--expression", DRAFT, "--list", f"suspects:device_id:{csv}",
            "--state-dir", state, "--start", T0.isoformat(), "--maturity-days", maturity]  # fmt: skip
    typed = runner.invoke(cli, [*args, "--json"])
    assert typed.exit_code == 0, typed.output
    answer = json.loads(typed.output)
    for part in ("attempts", "hits", "fraud", "good", "overlap", "sample", "unreadable"):
        assert answer[part] == over_http[part]
    text = runner.invoke(cli, args)
    assert text.exit_code == 0, text.output
    assert f"hits: {over_http['hits']['attempts']} (" in text.output
    assert "already blocked" in text.output
    refused = runner.invoke(cli, ["rules", "backtest", "--expression", "amout > 1", "--state-dir", state])
    assert refused.exit_code == 2
    assert "line 1, column 1 ('amout')" in refused.output
