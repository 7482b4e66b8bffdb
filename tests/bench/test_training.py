from __future__ import annotations

from pathlib import Path

from bench.__main__ import discover, selected
from bench.training import measure, run_child


def test_python_m_bench_runs_both_training_sizes_and_a_subset_on_request() -> None:
    runners = discover()
    everything = selected([], runners)
    assert {"training", "training_10m"} <= set(everything)
    assert everything == sorted(runners)
    assert selected(["training", "engine"], runners) == ["training", "engine"]


def test_a_child_reports_its_result_and_its_own_peak_memory(tmp_path: Path) -> None:
    code = "import json, numpy as np; block = np.ones(40_000_000, np.uint8); print(json.dumps({'n': 3}))"
    result, facts = run_child(code, tmp_path / "child.log", timeout=120)
    assert result == {"n": 3}
    assert facts["status"] == "ok"
    assert facts["peak_rss_mb"] > 40
    assert facts["load_average_max"] >= facts["load_average_mean"] >= 0


def test_a_child_past_its_time_limit_is_stopped_and_recorded(tmp_path: Path) -> None:
    result, facts = run_child("import time; time.sleep(60)", tmp_path / "child.log", timeout=1)
    assert result is None
    assert facts["status"].startswith("timed out")
    assert facts["seconds"] < 30


def test_a_failing_child_says_why(tmp_path: Path) -> None:
    result, facts = run_child("raise SystemExit('no world here')", tmp_path / "child.log", timeout=60)
    assert result is None
    assert "no world here" in facts["status"]


def test_a_size_is_simulated_once_then_reused_and_its_features_built_every_time(tmp_path: Path) -> None:
    folder = tmp_path / "world-13200"
    first = measure(13_200, folder, trials=1, timeout=600, mlruns_dir=tmp_path / "mlruns-1")
    assert first["simulate"]["status"] == "ok", first
    assert first["train"]["status"] == "ok", first
    assert first["train"]["attempts"] > 10_000
    assert first["train"]["peak_rss_mb"] > 100
    stale = folder / "data" / "features"
    stale.mkdir()
    (stale / "part-00000.parquet").write_text("a table of another run")
    again = measure(13_200, folder, trials=1, timeout=600, mlruns_dir=tmp_path / "mlruns-2")
    assert again["simulate"]["status"].startswith("reused the world")
    assert again["train"]["status"] == "ok", again
    assert again["train"]["test_fraud_roc_auc"] == first["train"]["test_fraud_roc_auc"]
