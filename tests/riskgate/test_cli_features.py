"""`riskgate features ...` as a user types it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.io import to_arrow, write_part
from events.schema import EventKind
from features.batch import read_features
from features.iptv import FEATURE_SET
from riskgate.cli import app
from riskgate.settings import get_settings
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
