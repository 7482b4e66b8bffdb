"""The benchmark's reference servers answer what the fraud model @champion answers, over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bench import _reference
from bench._models import register
from bench._models import synthetic_bundle as make_bundle
from features.iptv import FEATURE_SET


@pytest.mark.parametrize("factory", [_reference.create_app, _reference.create_asgi_app])
def test_it_answers_the_champion_boosters_probability_for_a_ready_row(
    factory: Callable[[], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bundle = make_bundle("fraud", seed=3)
    register(uri, tmp_path / "artifacts", bundle)
    monkeypatch.setenv(_reference.TRACKING_URI_ENV, uri)
    rows = np.random.default_rng(0).gamma(1.0, 2.0, size=(2, len(FEATURE_SET.names)))
    body = {"dataframe_split": {"columns": list(FEATURE_SET.names), "data": rows.tolist()}}
    with TestClient(factory()) as client:
        assert client.get("/ping").status_code == 200
        answer = client.post("/invocations", json=body)
    assert answer.status_code == 200
    expected = np.asarray(bundle.booster.predict(rows, num_threads=1))
    assert answer.json()["predictions"] == pytest.approx(expected.tolist(), rel=1e-12)


def test_it_refuses_to_start_without_a_tracking_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_reference.TRACKING_URI_ENV, raising=False)
    with pytest.raises(RuntimeError, match="MLFLOW_TRACKING_URI"):
        _reference.create_app()
