"""The fleet benchmark end to end, in its shortest shape: every party measured, the result complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fleet
from bench._models import synthetic_bundle
from tests.serving.factories import seed_cache

pytestmark = pytest.mark.slow

SHORT = fleet.Shape(steady_rate=40.0, steady_seconds=1.0, rounds=1, max_seconds=1.0, max_connections=4)


def test_a_short_run_measures_one_instance_and_two_behind_the_proxy(tmp_path: Path) -> None:
    bundles = {"fraud": synthetic_bundle("fraud", seed=0), "failure": synthetic_bundle("failure", seed=1)}
    layouts = (fleet.LAYOUTS[0], fleet.LAYOUTS[-1])  # SQLite alone; Redis + PostgreSQL, two behind HAProxy
    result = fleet.run(
        tmp_path,
        SHORT,
        layouts,
        models=lambda scratch: (scratch / "no-mlruns", "small synthetic models (local copy)"),
        prepare=lambda state: seed_cache(state / "models", bundles),
    )
    json.dumps(result)  # the results writer stores it as JSON
    alone, two = (result["summary"][layout.name] for layout in layouts)
    for row in (alone, two):
        assert row["errors"] == 0
        assert row["throughput_rps"] > 0
        assert row["steady_p50_ms"] is not None
        assert row["instances_cpu_ms_per_decision"] > 0
        assert row["decisions_per_core_s"] > 0
    assert alone["proxy_cpu_ms_per_decision"] is None  # no proxy, no PostgreSQL: not measured
    assert alone["postgres_cpu_ms_per_decision"] is None
    assert two["instances"] == 2
    assert two["proxy_cpu_ms_per_decision"] > 0
    assert two["postgres_cpu_ms_per_decision"] is not None
    assert two["redis_cpu_ms_per_decision"] > 0
    assert alone["decision_log"] == "sqlite"
    assert two["decision_log"].startswith(("postgresql", "sqlite (per instance"))
    assert result["shape"]["steady_seconds"] == 1.0


def test_the_scale_shortens_every_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(fleet.SCALE_ENV, "0.1")
    shape = fleet.Shape.from_env()
    assert (shape.steady_seconds, shape.max_seconds) == (3.0, 1.5)
    assert shape.steady_rate == fleet.Shape().steady_rate
