"""``python -m bench engine``'s side-by-side measure of the decision with and without 50 rules and 5 lists,
run small: both engines decide the same attempts, the ruled one by its rules where a listed device asks."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.engine
import bench.rules
from bench._models import synthetic_bundle


def test_the_side_by_side_run_times_both_engines_on_the_same_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = {"fraud": synthetic_bundle("fraud", seed=0), "failure": synthetic_bundle("failure", seed=1)}
    monkeypatch.setattr(bench.engine, "production_size_bundles", lambda: small)
    for module in (bench.engine, bench.rules):
        monkeypatch.setattr(module, "LIST_ITEMS", 300)
        monkeypatch.setattr(module, "LISTED_SHARE", 0.5)
    monkeypatch.setattr(bench.engine, "HISTORY", 4)
    monkeypatch.setattr(bench.engine, "TIMED", 20)
    rules, built = bench.engine._rules()
    assert (built["rules"], built["lists"], len(rules.current)) == (50, 5, 50)
    plain = bench.engine.build(tmp_path / "plain")
    ruled = bench.engine.build(tmp_path / "ruled", rules)
    result = bench.engine._side_by_side(plain, ruled)
    assert result["calls"] == 20
    assert 0.0 < result["decided_by_rule_share"] < 1.0  # the listed devices, at least
    assert result["with_rules"]["cpu_mean_us"] > 0
    assert result["cpu_ratio"] > 0
