"""The serving benchmark's server commands: the current code, or an older checkout run side by side."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import serving
from features.iptv import FEATURE_SET
from serving.store.operations import Change
from serving.store.operations_sqlite import open_operations
from serving.store.operations_yaml import load_file


def test_the_current_server_is_the_installed_riskgate(tmp_path: Path) -> None:
    command, env, ready, log = serving._riskgate(tmp_path, tmp_path / "mlruns", 8123, workers=2)
    assert Path(command[0]).name == "riskgate"
    assert command[1:] == ["serve", "--port", "8123", "--workers", "2"]
    assert "PYTHONPATH" not in env
    assert env["RISKGATE_STATE_DIR"] == str(tmp_path / "state-2w")
    assert ready == "http://127.0.0.1:8123/readyz"
    assert log.parent == tmp_path


def test_a_baseline_checkout_runs_its_own_code_over_its_own_state(tmp_path: Path) -> None:
    old = tmp_path / "old"
    command, env, _, _ = serving._riskgate(tmp_path, tmp_path / "mlruns", 8124, workers=1, source=old)
    current, _, _, _ = serving._riskgate(tmp_path, tmp_path / "mlruns", 8125, workers=1, name="after")
    assert env["PYTHONPATH"] == str(old.resolve())
    assert env["RISKGATE_STATE_DIR"] == str(tmp_path / "state-baseline")
    assert current[0] != sys.executable
    assert command[0] == sys.executable
    assert command[1] == "-c"
    assert "from riskgate.cli import app" in command[2]
    assert command[3:] == ["serve", "--port", "8124", "--workers", "1"]


def test_runs_get_disjoint_attempts() -> None:
    bodies = serving._attempts(serving.ATTEMPTS, 0)
    chunks = list(serving.iter_chunks(bodies))
    seen = [body for chunk in chunks for body in chunk]
    assert len(seen) == len(set(seen))


def test_the_rules_side_by_side_serves_the_benchmarks_rules_and_lists(tmp_path: Path) -> None:
    path = serving.write_rules_file(tmp_path / "rules", size=200)
    _, env, _, _ = serving._riskgate(tmp_path, tmp_path / "mlruns", 8126, workers=1, rules_file=path)
    assert env["RISKGATE_RULES_FILE"] == str(path)
    operations = open_operations(tmp_path / "state", FEATURE_SET)
    made = Change("bench", datetime.now(UTC), "the benchmark's rules")
    loaded = load_file(path, operations, made)
    assert len(loaded.rules_created) == 50
    assert {info.name: info.items for info in operations.store.list_infos()} == {
        name: 200
        for name in ("blocked_accounts", "blocked_cards", "blocked_devices", "blocked_ips", "risky_bins")
    }
    operations.store.close()
