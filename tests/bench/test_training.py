from __future__ import annotations

from pathlib import Path

from bench.__main__ import default_set, discover
from bench.training import run_child


def test_the_ten_million_run_is_opt_in() -> None:
    runners = discover()
    assert "training_10m" in runners
    assert "training_10m" not in default_set(runners)
    assert "training" in default_set(runners)


def test_a_child_reports_its_result_and_its_own_peak_memory(tmp_path: Path) -> None:
    code = "import json, numpy as np; block = np.ones(40_000_000, np.uint8); print(json.dumps({'n': 3}))"
    result, facts = run_child(code, tmp_path / "child.log", timeout=120)
    assert result == {"n": 3}
    assert facts["status"] == "ok"
    assert facts["peak_rss_mb"] > 40


def test_a_child_past_its_time_limit_is_stopped_and_recorded(tmp_path: Path) -> None:
    result, facts = run_child("import time; time.sleep(60)", tmp_path / "child.log", timeout=1)
    assert result is None
    assert facts["status"].startswith("timed out")
    assert facts["seconds"] < 30


def test_a_failing_child_says_why(tmp_path: Path) -> None:
    result, facts = run_child("raise SystemExit('no world here')", tmp_path / "child.log", timeout=60)
    assert result is None
    assert "no world here" in facts["status"]
