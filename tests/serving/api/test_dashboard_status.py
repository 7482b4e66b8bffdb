"""GET /v1/status and the latency percentiles it estimates from the service's Prometheus histograms."""

from __future__ import annotations

import itertools
import math

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from serving.metrics import LATENCY_BUCKETS
from serving.readers.status import histogram_quantile, latency_of, route_latencies
from tests.serving.factories import SCORE, attempt


def test_histogram_quantile_interpolates_inside_the_bucket_by_hand() -> None:
    buckets = [(0.001, 2.0), (0.002, 6.0), (math.inf, 8.0)]
    # rank 4 of 8 lies in (0.001, 0.002], two observations into its four
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.0015)
    # rank 1 lies in the first bucket, which starts at 0
    assert histogram_quantile(0.125, buckets) == pytest.approx(0.0005)
    # rank 7.92 lies in +Inf: the histogram can only say "above the highest finite bound"
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.002)


def test_histogram_quantile_of_an_empty_histogram_is_none() -> None:
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


@pytest.mark.parametrize(
    ("q", "buckets"),
    [(1.5, [(math.inf, 1.0)]), (-0.1, [(math.inf, 1.0)]), (0.5, [(0.1, 1.0)]), (0.5, [])],
)
def test_histogram_quantile_refuses_a_bad_quantile_or_histogram(
    q: float, buckets: list[tuple[float, float]]
) -> None:
    with pytest.raises(ValueError, match=r"quantile|Inf"):
        histogram_quantile(q, buckets)


def _observed(values: list[float]) -> Histogram:
    histogram = Histogram("probe_seconds", "probe", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for value in values:
        histogram.observe(value)
    return histogram


latencies = st.lists(st.floats(min_value=0.0, max_value=2.0, allow_nan=False), min_size=1, max_size=200)


@given(values=latencies, q=st.floats(min_value=0.01, max_value=1.0))
def test_the_estimate_lies_in_the_bucket_of_the_true_quantile(values: list[float], q: float) -> None:
    estimate = latency_of(_observed(values))
    buckets = [(bound, float(sum(v <= bound for v in values))) for bound in (*LATENCY_BUCKETS, math.inf)]
    result = histogram_quantile(q, buckets)
    assert result is not None
    true = sorted(values)[math.ceil(q * len(values)) - 1]  # the observation at rank q*n
    upper = next(bound for bound in (*LATENCY_BUCKETS, math.inf) if true <= bound)
    lower = max((bound for bound in LATENCY_BUCKETS if bound < upper), default=0.0)
    assert lower - 1e-12 <= result <= (upper if math.isfinite(upper) else lower) + 1e-12
    assert estimate.count == len(values)


@given(values=latencies, qs=st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=2, max_size=5))
def test_the_estimate_never_decreases_with_the_quantile(values: list[float], qs: list[float]) -> None:
    buckets = [(bound, float(sum(v <= bound for v in values))) for bound in (*LATENCY_BUCKETS, math.inf)]
    estimates = [histogram_quantile(q, buckets) for q in sorted(qs)]
    assert all(a is not None and b is not None and a <= b + 1e-12 for a, b in itertools.pairwise(estimates))


def test_route_latencies_pool_methods_and_keep_only_successes() -> None:
    histogram = Histogram(
        "requests_seconds",
        "r",
        ["route", "method", "status"],
        buckets=(0.01, 0.1),
        registry=CollectorRegistry(),
    )
    histogram.labels("/v1/score", "POST", "200").observe(0.005)
    histogram.labels("/v1/score", "POST", "200").observe(0.05)
    histogram.labels("/v1/score", "POST", "422").observe(0.5)  # refused: not a scoring latency
    summaries = route_latencies(histogram, ["/v1/score", "/v1/score/batch"])
    assert summaries["/v1/score"].count == 2
    assert summaries["/v1/score"].p50 == pytest.approx(0.01)
    assert summaries["/v1/score/batch"].count == 0
    assert summaries["/v1/score/batch"].p99 is None


def test_status_needs_a_key(client: TestClient) -> None:
    assert client.get("/v1/status").status_code == 401
    assert client.get("/v1/status", headers={"X-API-Key": "not-a-key"}).status_code == 401


def test_status_shows_models_decisions_and_latency(client: TestClient) -> None:
    before = client.get("/v1/status", headers=SCORE).json()
    assert before["decisions_logged"] == 0
    assert before["scoring_latency"] == {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None}
    for n in range(3):
        assert client.post("/v1/score", json=attempt(n), headers=SCORE).status_code == 200
    status = client.get("/v1/status", headers=SCORE).json()
    assert [(m["task"], m["name"], m["version"]) for m in status["models"]] == [
        ("fraud", "riskgate-fraud", "1"),
        ("failure", "riskgate-failure", "1"),
    ]
    assert status["fallback"] is False
    assert all(m["feature_hash"] == status["feature_hash"] for m in status["models"])
    assert status["decisions_logged"] == 3
    assert status["scoring_latency"]["count"] == 3
    assert 0 < status["scoring_latency"]["p50_ms"] <= status["scoring_latency"]["p99_ms"]
    score_route = next(r for r in status["route_latency"] if r["route"] == "/v1/score")
    assert score_route["count"] == 3
    assert score_route["p50_ms"] > 0


def test_status_says_fallback_when_no_model_is_loaded(bare_client: TestClient) -> None:
    status = bare_client.get("/v1/status", headers=SCORE).json()
    assert status["fallback"] is True
    assert {m["task"]: m["name"] for m in status["models"]} == {"fraud": None, "failure": None}
