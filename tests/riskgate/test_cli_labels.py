"""The label loop end to end, as a fraud team and a data scientist run it: a simulated world's attempt is
scored over HTTP and reviewed, an analyst resolves the case as fraud, `riskgate labels pull --data DIR` writes
the report into the data directory (once, however often it is run), and the training's label builder marks
that attempt fraud from the resolution's time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench._models import synthetic_bundle as make_bundle
from core.settings import get_settings
from events.io import read_events
from events.schema import EventKind
from features.registry import DEFAULT_SPEC
from riskgate.cli import app
from serving.api.app import create_app
from simulator import WorldConfig, simulate
from tests.serving.documented import DocumentedClient
from tests.serving.factories import ADMIN, SCORE, seed_cache, service_for
from training.baselines import IPTV_BASELINES
from training.data import ChosenFeatureSet, load_inputs
from training.dataset import REPORTED_AT_COLUMN


@pytest.fixture
def world(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    simulate(WorldConfig(accounts=150, months=2, seed=3, chunk_accounts=150), data_dir)
    return data_dir


def unreported_attempt(data_dir: Path) -> dict[str, Any]:
    """An attempt of the world nobody reported, as the billing system would send it (JSON-ready)."""
    attempts = read_events(data_dir, EventKind.ATTEMPTS)
    reported = set(read_events(data_dir, EventKind.FRAUD_REPORTS)["attempt_id"])
    row = attempts[~attempts["attempt_id"].isin(reported)].iloc[-1]
    body: dict[str, Any] = {}
    for name, value in row.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        body[str(name)] = value.isoformat() if isinstance(value, pd.Timestamp | datetime) else value
    for name, value in body.items():
        if hasattr(value, "item"):  # numpy scalars
            body[name] = value.item()
    return body


def pull(tmp_path: Path, data_dir: Path) -> str:
    result = CliRunner().invoke(app, ["labels", "pull", "--data", str(data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_case_resolved_as_fraud_becomes_the_label_the_next_training_reads(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    seed_cache(tmp_path / "state" / "models", {"fraud": make_bundle("fraud", seed=0)})
    attempt = unreported_attempt(world)
    with DocumentedClient(create_app(service=service_for(tmp_path))) as client:
        rule = {"name": "review-all", "action": "review", "expression": "amount >= 0", "reason": "audit"}
        assert client.post("/v1/rules", json=rule, headers=ADMIN).status_code == 201  # the team's review rule
        scored = client.post("/v1/score", json=attempt, headers=SCORE)
        assert scored.status_code == 200, scored.text
        assert scored.json()["decision"]["action"] == "review", scored.json()["decision"]
        case = f"/v1/review/cases/{attempt['attempt_id']}"
        resolved = client.post(f"{case}/resolve", json={"outcome": "fraud", "note": "bank"}, headers=ADMIN)
        assert resolved.status_code == 200, resolved.text
    reported_at = pd.Timestamp(resolved.json()["resolution"]["resolved_at"])
    before = len(read_events(world, EventKind.FRAUD_REPORTS))

    assert "1 new written" in pull(tmp_path, world)
    assert "0 new written, 1 already in the data directory" in pull(tmp_path, world)  # idempotent
    assert len(read_events(world, EventKind.FRAUD_REPORTS)) == before + 1

    inputs = load_inputs(world, ChosenFeatureSet.named(DEFAULT_SPEC), IPTV_BASELINES)
    frame = inputs.frame.set_index("attempt_id")
    assert frame.loc[attempt["attempt_id"], REPORTED_AT_COLUMN] == reported_at
    get_settings.cache_clear()


def test_a_report_whose_attempt_the_data_lacks_waits_for_it(tmp_path: Path, world: Path) -> None:
    from serving.store.decisions import DecisionLog  # noqa: PLC0415

    log = DecisionLog(tmp_path / "state" / "decisions.sqlite")
    log.record_report(
        "r-1", "not-in-the-data", datetime.fromisoformat("2026-01-01T00:00:00+00:00"), "chargeback"
    )
    log.close()
    result = CliRunner().invoke(
        app, ["labels", "pull", "--data", str(world), "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 0, result.output
    assert "0 new written, 0 already in the data directory, 1 left out" in result.output
    missing = CliRunner().invoke(app, ["labels", "pull", "--data", str(world), "--state-dir", str(tmp_path)])
    assert missing.exit_code != 0
    assert "no decision log" in missing.output
