"""Backtesting a draft rule over a data directory: the period is scored through the engine first (as
`riskgate backtest` does), then the rule reads every attempt field of the events (a device list, an account
id the decision log keeps only as a pseudonym) and the events' fraud reports as labels; every figure checked
against pandas over the events."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench._models import register, synthetic_bundle
from core.settings import get_settings
from events.io import read_events
from events.schema import EventKind
from features.iptv import FEATURE_SET
from riskgate.cli import app as cli
from rules.book import RuleAction, RuleSpec
from rules.lists import ListItem, make_list
from rules.schema import schema_for
from serving.readers.rule_backtest import Draft, data_backtest
from serving.scoring.models import ModelPair
from simulator import WorldConfig, simulate
from simulator.config import FraudConfig
from tests.serving.readers.test_backtest import models  # noqa: F401 (a fixture)

MATURITY = 10.0
#: A small world with much fraud (card-testing rings, risky sign-ups), so that fraud reports label the period.
RISKY = WorldConfig(
    accounts=250, months=2, seed=3, chunk_accounts=250,
    fraud=FraudConfig(card_testing_rings_per_10k_month=300, risky_signups_per_10k_month=600),
)  # fmt: skip


@pytest.fixture(scope="module")
def risky_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rule-backtest-world") / "data"
    simulate(RISKY, out)
    return out


def test_a_device_and_account_rule_is_replayed_over_a_data_directory(
    risky_world: Path,
    models: ModelPair,  # noqa: F811 (a fixture)
    tmp_path: Path,
) -> None:
    attempts = read_events(risky_world, EventKind.ATTEMPTS)
    attempts["occurred_at"] = pd.to_datetime(attempts["occurred_at"], utc=True)
    devices = sorted(attempts["device_id"].dropna().unique())[::7]
    accounts = sorted(attempts["account_id"].unique())[:20]
    lists = {"suspects": make_list("suspects", "device_id", [ListItem(d, "test") for d in devices])}
    expression = "device_id in @suspects or account_id in ({})".format(", ".join(f"'{a}'" for a in accounts))
    draft = Draft(RuleSpec("draft", RuleAction.REVIEW, expression), lists)
    schema = schema_for(FEATURE_SET).with_lists(lists)
    answer = data_backtest(
        risky_world, tmp_path / "replay", models, FEATURE_SET, draft, schema, fraud_maturity_days=MATURITY
    )
    start, end = pd.Timestamp(answer["start"]), pd.Timestamp(answer["end"])
    period = attempts[(attempts["occurred_at"] >= start) & (attempts["occurred_at"] < end)]
    hit = period["device_id"].isin(devices) | period["account_id"].isin(accounts)
    reports = read_events(risky_world, EventKind.FRAUD_REPORTS)
    reported_at = pd.to_datetime(reports["reported_at"], utc=True)
    as_of = reported_at.max()
    known = period["attempt_id"].isin(reports["attempt_id"])  # every report is known as of the newest
    mature = period["occurred_at"] <= as_of - pd.Timedelta(days=MATURITY)
    assert answer["attempts"] == len(period)
    assert answer["hits"]["attempts"] == int(hit.sum()) > 0
    assert answer["fraud"]["as_of"] == as_of.isoformat()
    assert answer["fraud"]["frauds"] == int((known & mature).sum()) > 0
    assert answer["fraud"]["caught"] == int((hit & known & mature).sum())
    assert answer["good"]["accounts"] == period.loc[hit & ~known, "account_id"].nunique()
    assert answer["good"]["attempts"] == int((hit & ~known).sum())
    overlap = answer["overlap"]
    assert sum(overlap[k] for k in ("already_blocked", "already_reviewed", "newly_touched")) == int(hit.sum())
    assert set(answer["sample"]) <= set(period.loc[hit, "attempt_id"])
    again = data_backtest(  # the scored period is reused, not scored again
        risky_world, tmp_path / "replay", models, FEATURE_SET, draft, schema, fraud_maturity_days=MATURITY
    )
    assert again["hits"] == answer["hits"]


def test_the_command_line_backtests_over_a_data_directory_with_the_registered_models(
    risky_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlruns = tmp_path / "mlruns"
    for task, seed in (("fraud", 0), ("failure", 1)):
        register(f"sqlite:///{mlruns / 'mlflow.db'}", mlruns / "artifacts", synthetic_bundle(task, seed=seed))
    monkeypatch.setenv("RISKGATE_MLRUNS_DIR", str(mlruns))
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    attempts = read_events(risky_world, EventKind.ATTEMPTS)
    accounts = sorted(attempts["account_id"].unique())[:30]
    expression = "account_id in ({}) and amount > 5".format(", ".join(f"'{a}'" for a in accounts))
    args = ["rules", "backtest", "--expression", expression, "--data-dir", str(risky_world),
            "--replay-dir", str(tmp_path / "replay"), "--maturity-days", str(MATURITY), "--json"]  # fmt: skip
    typed = CliRunner().invoke(cli, args)
    get_settings.cache_clear()
    assert typed.exit_code == 0, typed.output
    answer = json.loads(typed.output)
    occurred = pd.to_datetime(attempts["occurred_at"], utc=True)
    period = attempts[(occurred >= pd.Timestamp(answer["start"])) & (occurred < pd.Timestamp(answer["end"]))]
    hit = period["account_id"].isin(accounts) & (period["amount"] > 5)
    assert answer["hits"]["attempts"] == int(hit.sum()) > 0
    assert answer["fraud"]["maturity_days"] == MATURITY
