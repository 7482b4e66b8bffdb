"""`riskgate simulate` as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.settings import get_settings
from events.io import read_table
from riskgate.cli import app

runner = CliRunner()


def simulate(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["simulate", "--accounts", "300", "--months", "2", *args])
    return result.exit_code, result.output


def test_writes_the_tables_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "data"
    code, output = simulate("--seed", "3", "--out", str(out))
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3
    assert summary["subscribers"] == 300
    assert summary["attempts"] == read_table(out, "attempts").num_rows > 0
    assert '"fraud_rate"' in output


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "data"
    assert simulate("--seed", "3", "--out", str(out))[0] == 0
    keep = out / "features"
    keep.mkdir()
    (keep / "mine.parquet").write_text("another engineer's table")
    before = (out / "summary.json").read_text()
    code, output = simulate("--seed", "4", "--out", str(out))
    assert code == 1
    assert "--force" in output
    assert (out / "summary.json").read_text() == before
    code, output = simulate("--seed", "4", "--out", str(out), "--force")
    assert code == 0, output
    assert json.loads((out / "summary.json").read_text())["seed"] == 4
    assert (keep / "mine.parquet").exists()


def test_refuses_a_file_as_output(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("not a folder")
    code, output = simulate("--out", str(target), "--force")
    assert code == 1
    assert "not a folder" in output


def test_reads_a_config_file_and_reports_its_errors(tmp_path: Path) -> None:
    config = tmp_path / "world.yaml"
    config.write_text("seed: 9\nmonths: 1\nfraud:\n  friendly_rate: 0.02\n")
    code, output = simulate("--config", str(config), "--out", str(tmp_path / "a"))
    assert code == 0, output
    written = (tmp_path / "a" / "world.yaml").read_text()
    assert "friendly_rate: 0.02" in written
    assert "months: 2" in written  # the command line wins over the file
    config.write_text("sead: 9\n")
    code, output = simulate("--config", str(config), "--out", str(tmp_path / "b"))
    assert code == 1
    assert "sead" in output


def test_defaults_to_the_settings_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKGATE_DATA_DIR", str(tmp_path / "settings-data"))
    get_settings.cache_clear()
    try:
        code, output = simulate()
    finally:
        get_settings.cache_clear()
    assert code == 0, output
    assert (tmp_path / "settings-data" / "attempts").is_dir()


def test_reports_an_invalid_option_value(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--months", "0", "--out", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "months" in result.output
    assert not (tmp_path / "data" / "attempts").exists()
