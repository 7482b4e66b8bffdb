"""`riskgate features ...` as a user types it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.settings import get_settings
from events.io import to_arrow, write_part
from events.schema import EventKind
from features.batch import read_features
from features.iptv import FEATURE_SET
from riskgate.cli import app
from serving.store.journal import Journal
from tests.features.factory import random_history


@pytest.fixture(autouse=True)
def fresh_settings() -> None:
    get_settings.cache_clear()


def test_features_build_writes_the_table(tmp_path: Path) -> None:
    history = random_history(60, 2)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path, kind.value, 0, to_arrow(kind, frame))
    result = CliRunner().invoke(app, ["features", "build", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert FEATURE_SET.hash in result.output
    assert len(read_features(tmp_path)) == 60


def test_features_build_without_data_explains_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["features", "build", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "riskgate simulate" in result.output


def test_features_list_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["features", "list"])
    assert result.exit_code == 0
    assert result.output.splitlines()[1:] == [
        f"{name}\tcategorical" if name in FEATURE_SET.categorical else name for name in FEATURE_SET.names
    ]
    monkeypatch.setenv("RISKGATE_FEATURE_SET", "nowhere")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["features", "list"])
    assert result.exit_code == 2
    assert "must look like" in result.output


def test_features_load_state_loads_the_history_into_the_service_store_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = random_history(40, 3)
    for kind, frame in zip(EventKind, (history.attempts, history.outcomes, history.reports), strict=True):
        write_part(tmp_path / "data", kind.value, 0, to_arrow(kind, frame))
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    command = ["features", "load-state", "--data-dir", str(tmp_path / "data"), "--until", "2026-01-20"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    until = pd.Timestamp("2026-01-20", tz="UTC")
    before = (
        int((history.attempts["occurred_at"] < until).sum())
        + int((history.outcomes["occurred_at"] < until).sum())
        + int((history.reports["reported_at"] < until).sum())
    )
    assert 0 < before < 40 + len(history.outcomes) + len(history.reports)
    assert f"loaded {before} events" in result.output
    assert (tmp_path / "state" / "online.sqlite").exists()
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 2
    assert "already holds state" in again.output


def test_features_load_state_refuses_while_a_service_writes_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKGATE_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    serving = Journal(tmp_path / "state" / "journal")  # what a running `riskgate serve` holds
    try:
        result = CliRunner().invoke(app, ["features", "load-state", "--data-dir", str(tmp_path / "data")])
    finally:
        serving.close()
    assert result.exit_code == 2
    assert "in use by another riskgate process" in result.output
    assert not (tmp_path / "state" / "online.sqlite").exists()
