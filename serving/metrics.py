"""Prometheus metrics of one service instance, in its own registry (so tests can run several apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SCORE_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


class ServiceMetrics:
    """Latency histograms, decisions by action, score distributions, model versions and errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "riskgate_request_seconds",
            "Time to answer an HTTP request, by route and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scoring = Histogram(
            "riskgate_scoring_seconds",
            "Server-side time to score one attempt (features, both models, reasons, policy, durable log).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "riskgate_decisions_total",
            "Decisions by action, policy rule and fallback.",
            ["action", "rule", "fallback"],
            registry=self.registry,
        )
        self.scores = Histogram(
            "riskgate_score",
            "Calibrated probabilities answered, by model.",
            ["model"],
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.models = Gauge(
            "riskgate_model_info",
            "1 for each model version being served.",
            ["task", "name", "version", "source"],
            registry=self.registry,
        )
        self.errors = Counter(
            "riskgate_errors_total",
            "Errors by kind (validation, auth, feature_store, model, internal...).",
            ["kind"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "riskgate_model_reloads_total",
            "Model reload checks by result.",
            ["result"],
            registry=self.registry,
        )
        self.rule_books = Counter(
            "riskgate_rule_books_total",
            "Books of rules and lists served (at start-up, after each change of the store).",
            registry=self.registry,
        )
        self.outcomes = Counter(
            "riskgate_outcomes_total", "Outcomes and fraud reports received, by kind and whether new.",
            ["kind", "new"], registry=self.registry,
        )  # fmt: skip
        # labelled children by label values: ``labels()`` costs microseconds per call on the request path
        self._request_children: dict[tuple[str, str, int], Histogram] = {}
        self._error_children: dict[str, Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered HTTP request: ``route`` is its template (never a path holding values)."""
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.observe(seconds)

    def count_error(self, kind: str) -> None:
        """One error answered, by kind (an error code, ``validation`` or ``internal``)."""
        child = self._error_children.get(kind)
        if child is None:
            child = self._error_children[kind] = self.errors.labels(kind)
        child.inc()

    def show_models(self, served: list[tuple[str, str, str, str]]) -> None:
        """Replace the model-version gauge with the pairs (task, name, version, source) now served."""
        self.models.clear()
        for task, name, version, source in served:
            self.models.labels(task, name, version, source).set(1)
