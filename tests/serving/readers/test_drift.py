"""Drift: the PSI definition (properties), reference bins, a hand-computed table, and GET /v1/drift."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from serving.readers.drift import EPSILON, MIN_ROWS, Bins, DriftModel, band, drift, psi
from serving.readers.trends import drift_csv
from serving.scoring.schemas import DriftOut
from serving.store.base import DecisionRecord, features_blob
from serving.store.decisions import DecisionLog, DecisionReader
from tests.serving.factories import SCORE, attempt

LEVELS = [round(x, 2) for x in np.linspace(0, 1, 11)]
START = datetime(2026, 3, 1, tzinfo=UTC)

shares = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=20).filter(lambda v: sum(v) > 0)


def _normalised(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values]


@given(shares, st.data())
def test_psi_is_never_negative(expected: list[float], data: st.DataObject) -> None:
    actual = data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(expected), max_size=len(expected)))
    assert psi(_normalised(expected), actual) >= 0.0


@given(shares)
def test_psi_of_identical_distributions_is_zero(values: list[float]) -> None:
    normalised = _normalised(values)
    assert psi(normalised, normalised) == 0.0


def test_psi_by_hand_and_the_epsilon_for_empty_bins() -> None:
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    )
    # an empty bin counts as EPSILON: large but finite
    assert psi([0.5, 0.5], [0.0, 1.0]) == pytest.approx(
        (EPSILON - 0.5) * math.log(EPSILON / 0.5) + 0.5 * math.log(2.0)
    )
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])


def test_bands_follow_the_usual_cut_offs() -> None:
    assert [band(v) for v in (0.0, 0.099, 0.1, 0.249, 0.25, 3.0, None)] == [
        "stable", "stable", "moderate", "moderate", "significant", "significant", "insufficient_data"
    ]  # fmt: skip


def test_tied_quantiles_make_one_bin_with_their_whole_weight() -> None:
    # 60 % of the reference is 0, then 1, 2, 3, 5
    bins = Bins.from_reference([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 5], LEVELS, missing_share=0.2)
    assert bins.edges.tolist() == [0, 1, 2, 3]
    assert bins.expected.tolist() == pytest.approx([0.48, 0.08, 0.08, 0.08, 0.08, 0.2])
    assert bins.shares(np.array([0, 0, 1, 7, np.nan])).tolist() == pytest.approx([0.4, 0.2, 0, 0, 0.2, 0.2])


def test_a_sample_from_the_reference_is_stable() -> None:
    rng = np.random.default_rng(0)
    reference = rng.gamma(2.0, 1.0, 50_000)
    bins = Bins.from_reference(np.quantile(reference, LEVELS).tolist(), LEVELS)
    assert psi(bins.expected, bins.shares(rng.gamma(2.0, 1.0, 5_000))) < 0.01
    assert psi(bins.expected, bins.shares(rng.gamma(3.0, 1.0, 5_000))) >= 0.25


def _model(reference: Mapping[str, object]) -> DriftModel:
    return DriftModel("fraud", "riskgate-fraud/7", reference, ("amount", "card_attempts_count_1h"))


def _log_with(tmp_path: Path, scores: list[float], amounts: list[float], model: str) -> Path:
    log = DecisionLog(tmp_path / "decisions.sqlite")
    for i, (score, amount) in enumerate(zip(scores, amounts, strict=True)):
        log.record(
            DecisionRecord(
                attempt_id=f"a{i}", occurred_at=START + timedelta(minutes=i), account_key=None,
                method_key=None, kind="renewal", fingerprint="f", action="approve", rule="r", fallback=False,
                fraud_probability=score, failure_probability=None, answer={}, fraud_model=model,
                features=features_blob([amount, math.nan]),
            )
        )  # fmt: skip
    log.close()
    return tmp_path / "decisions.sqlite"


def test_drift_table_by_hand(tmp_path: Path) -> None:
    """Reference: score deciles 0.0..1.0 (uniform); amount quartiles at 10/20 with 10 % missing."""
    n = 200
    scores = [0.05] * (n // 2) + [0.95] * (n // 2)  # half in the first decile, half in the last
    amounts = [15.0] * n
    path = _log_with(tmp_path, scores, amounts, "riskgate-fraud/7")
    reference = {
        "window": "validation",
        "quantile_levels": LEVELS,
        "score_quantiles": LEVELS,
        "features": {
            "amount": {"quantiles": [10.0] * 6 + [20.0] * 5, "missing_share": 0.1},
            "card_attempts_count_1h": {"quantiles": [], "missing_share": 1.0},
        },
    }
    with DecisionReader(path) as reader:
        result = drift(
            reader, START, START + timedelta(days=1), {"fraud": _model(reference), "failure": None}
        )
    DriftOut.model_validate(result)
    fraud, failure = result["models"]
    assert failure == {
        "task": "failure",
        "model": None,
        "reference_window": None,
        "status": "no_model",
        "rows": [],
    }
    assert fraud["model"] == "riskgate-fraud/7"
    assert fraud["reference_window"] == "validation"
    score, amount, count = fraud["rows"]
    expected_score = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (EPSILON - 0.1) * math.log(EPSILON / 0.1)
    assert score == {"name": "score", "kind": "score", "psi": pytest.approx(expected_score, rel=1e-5),
                     "band": "significant", "n": n}  # fmt: skip
    # amount bins: (-inf, 10] 0.45, (10, 20] 0.45, (20, inf) 0, missing 0.1; all values (15) in the second
    expected_amount = (
        (EPSILON - 0.45) * math.log(EPSILON / 0.45)
        + (1 - 0.45) * math.log(1 / 0.45)
        + (EPSILON - 0.1) * math.log(EPSILON / 0.1)
    )
    assert amount["psi"] == pytest.approx(expected_amount, rel=1e-5)
    assert count["psi"] == pytest.approx(0.0, abs=1e-9)  # always missing, as in the reference
    assert count["band"] == "stable"


def test_too_few_decisions_or_no_reference_say_so(tmp_path: Path) -> None:
    path = _log_with(tmp_path, [0.5] * (MIN_ROWS - 1), [1.0] * (MIN_ROWS - 1), "riskgate-fraud/7")
    reference = {"window": "validation", "quantile_levels": LEVELS, "score_quantiles": LEVELS, "features": {}}
    with DecisionReader(path) as reader:
        few = drift(reader, START, START + timedelta(days=1), {"fraud": _model(reference)})
        other = drift(reader, START, START + timedelta(days=1), {"fraud": _model({})})
    [row] = few["models"][0]["rows"]
    assert (row["psi"], row["band"], row["n"]) == (None, "insufficient_data", MIN_ROWS - 1)
    assert other["models"][0]["status"] == "no_reference"
    csv_rows = list(csv.DictReader(io.StringIO(drift_csv(other))))
    assert csv_rows[0]["status"] == "no_reference"


def test_drift_compares_only_what_the_model_version_scored(tmp_path: Path) -> None:
    path = _log_with(tmp_path, [0.5] * 150, [1.0] * 150, "riskgate-fraud/6")
    reference = {"window": "validation", "quantile_levels": LEVELS, "score_quantiles": LEVELS, "features": {}}
    with DecisionReader(path) as reader:
        result = drift(reader, START, START + timedelta(days=1), {"fraud": _model(reference)})
    assert result["models"][0]["rows"][0]["n"] == 0


def test_drift_endpoint_over_the_served_models(client: TestClient) -> None:
    for i in range(5):
        assert client.post("/v1/score", json=attempt(i), headers=SCORE).status_code == 200
    response = client.get("/v1/drift", headers=SCORE)
    assert response.status_code == 200, response.text
    body = response.json()
    DriftOut.model_validate(body)
    assert [m["task"] for m in body["models"]] == ["fraud", "failure"]
    fraud = body["models"][0]
    assert fraud["model"] == "riskgate-fraud/1"
    assert fraud["status"] == "ok"
    assert fraud["rows"][0]["name"] == "score"
    assert all(r["n"] == 5 and r["band"] == "insufficient_data" for r in fraud["rows"])
    assert len(fraud["rows"]) == 11  # the score and the ten reference features
    exported = client.get("/v1/drift", params={"format": "csv"}, headers=SCORE)
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 22


def test_drift_without_models_is_an_explicit_empty_state(bare_client: TestClient) -> None:
    response = bare_client.get("/v1/drift", headers=SCORE)
    assert response.status_code == 200
    assert [m["status"] for m in response.json()["models"]] == ["no_model", "no_model"]
    assert (
        bare_client.get("/v1/drift", params={"end": "2026-01-01T00:00:00"}, headers=SCORE).status_code == 200
    )
    assert bare_client.get("/v1/drift").status_code == 401


def test_feature_vectors_are_sampled_evenly_and_every_score_is_kept(tmp_path: Path) -> None:
    path = _log_with(tmp_path, [0.5] * 200, [1.0] * 200, "riskgate-fraud/7")
    with DecisionReader(path) as reader:
        scores, vectors = reader.scored_by(0, 2**62, "fraud", "riskgate-fraud/7", 2, sample=10)
    assert len(scores) == 200
    assert len(vectors) == 10  # every 20th decision
    assert vectors.shape == (10, 2)
