"""What the dashboard shows beside the trends: the models served, the decision log's size, serving latency.

Latency percentiles are estimated from the service's own Prometheus histograms (:mod:`serving.metrics`), the
way Prometheus' ``histogram_quantile`` does it: linear interpolation inside the bucket that holds the rank.
They cover this process since it started (the histograms are in memory), which is what an operator glancing
at the page expects; a long-term view belongs in Prometheus/Grafana (``serving/grafana/``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client import Histogram

from registry.names import TASKS
from serving.scoring.models import ModelPair

QUANTILES: Final = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles (seconds) of one latency histogram; ``None`` while it holds no observation."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None


@dataclass(frozen=True)
class ModelSummary:
    task: str
    name: str | None
    version: str | None
    source: str | None
    feature_hash: str | None


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q``-quantile of a histogram given as cumulative ``(upper bound, count)`` pairs, ``+Inf`` last.

    Linear interpolation inside the bucket that holds rank ``q * total`` (the first bucket starts at 0). A
    rank that falls in the ``+Inf`` bucket answers the highest finite bound (the histogram cannot say more).
    ``None`` for an empty histogram.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is outside [0, 1]")
    if not buckets or not math.isinf(buckets[-1][0]):
        raise ValueError("a histogram's buckets end with the +Inf bucket (cumulative counts)")
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank and count > lower_count:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound  # pragma: no cover - the +Inf bucket holds the total, so the loop returns


def _cumulative_buckets(histogram: Histogram, labels: dict[str, str]) -> list[tuple[float, float]]:
    """One labelled child's cumulative buckets, read from the collector (no private attributes)."""
    pairs: list[tuple[float, float]] = []
    for metric in histogram.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_bucket"):
                continue
            bucket_labels = {k: v for k, v in sample.labels.items() if k != "le"}
            if bucket_labels == labels:
                pairs.append((float(sample.labels["le"]), float(sample.value)))
    return sorted(pairs)


def summarise(buckets: Sequence[tuple[float, float]]) -> LatencySummary:
    """Count and p50/p90/p99 of cumulative buckets (an empty list is an empty histogram)."""
    if not buckets:
        return LatencySummary(0, None, None, None)
    p50, p90, p99 = (histogram_quantile(q, buckets) for q in QUANTILES)
    return LatencySummary(int(buckets[-1][1]), p50, p90, p99)


def latency_of(histogram: Histogram, labels: dict[str, str] | None = None) -> LatencySummary:
    """Percentiles of a histogram's child with exactly ``labels`` (none: an unlabelled histogram)."""
    return summarise(_cumulative_buckets(histogram, labels or {}))


def route_latencies(histogram: Histogram, routes: Iterable[str]) -> dict[str, LatencySummary]:
    """Per route, the latency of its successful (2xx) requests over all methods, pooled by bucket."""
    wanted = set(routes)
    pooled: dict[str, dict[float, float]] = {route: {} for route in wanted}
    for metric in histogram.collect():
        for sample in metric.samples:
            route = sample.labels.get("route", "")
            if not sample.name.endswith("_bucket") or route not in wanted:
                continue
            if not sample.labels.get("status", "").startswith("2"):
                continue
            bound = float(sample.labels["le"])
            pooled[route][bound] = pooled[route].get(bound, 0.0) + float(sample.value)
    return {route: summarise(sorted(pooled[route].items())) for route in sorted(wanted)}


def models_of(pair: ModelPair) -> list[ModelSummary]:
    """Both tasks, in order; a task without a model is listed with ``None`` fields (the fallback)."""
    summaries = []
    for task in TASKS:
        model = pair.get(task)
        if model is None:
            summaries.append(ModelSummary(task, None, None, None, None))
        else:
            summaries.append(
                ModelSummary(task, model.name, model.version, model.source, model.bundle.features.hash)
            )
    return summaries
