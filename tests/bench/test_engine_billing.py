"""``python -m bench engine``'s side-by-side measure of the decision without and with the billing checks, run
small: both engines decide the same attempts, the billed one blocking those its catalogue prices otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.engine
from bench._models import synthetic_bundle


def test_the_billing_side_by_side_times_both_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = {"fraud": synthetic_bundle("fraud", seed=0), "failure": synthetic_bundle("failure", seed=1)}
    monkeypatch.setattr(bench.engine, "production_size_bundles", lambda: small)
    monkeypatch.setattr(bench.engine, "HISTORY", 4)
    monkeypatch.setattr(bench.engine, "TIMED", 24)
    unbilled = bench.engine.build(tmp_path / "unbilled")
    billed = bench.engine.build(tmp_path / "billed", *bench.engine._billed(tmp_path / "billed"))
    result = bench.engine._side_by_side(unbilled, billed, "billing")
    assert result["calls"] == 24
    assert 0.0 < result["decided_by_rule_share"] < 1.0  # the prices off the bench's catalogue
    assert result["with_billing"]["cpu_mean_us"] > 0
    assert result["without_billing"]["cpu_mean_us"] > 0
    assert (tmp_path / "billed" / "billing.sqlite").exists()
