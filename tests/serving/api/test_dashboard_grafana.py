"""The Grafana board (serving/grafana/riskgate-operations.json) asks only for what /metrics exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.factories import ADMIN, SCORE, attempt

BOARD = Path(__file__).resolve().parents[3] / "serving" / "grafana" / "riskgate-operations.json"
#: Labels Prometheus attaches at scrape time (not in the exposition) and the histogram bucket label.
SCRAPE_LABELS = {"job", "instance", "le"}
_FUNCTIONS_AND_KEYWORDS = {
    "sum", "rate", "increase", "histogram_quantile", "clamp_min", "by", "without", "ignoring", "on",
    "group_left", "group_right", "bool", "and", "or", "unless", "offset", "label_values",
}  # fmt: skip
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without|ignoring|on)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)")  # Grafana's variable query


def _board() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(BOARD.read_text())
    return board


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _expressions(board: dict[str, Any]) -> list[str]:
    expressions = [t["expr"] for p in _panels(board) for t in p.get("targets", [])]
    expressions += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return expressions


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords, labels and strings removed)."""
    bare = _LABEL_VALUES.sub(r"\1", expression)
    bare = re.sub(r'"[^"]*"', '""', bare)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = _GROUPING.sub(" ", bare)
    names = set(re.findall(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w(])", bare))
    return {name for name in names if name not in _FUNCTIONS_AND_KEYWORDS and not re.fullmatch(r"e\d*", name)}


def labels_used(expression: str) -> dict[str, set[str]]:
    """Per metric selector, the label names its matchers use; under ``""`` the labels grouped by."""
    used: dict[str, set[str]] = {}
    for selector, label in _LABEL_VALUES.findall(expression):
        used.setdefault(selector.split("{")[0].strip(), set()).add(label)
    for metric, matchers in _SELECTOR.findall(expression):
        used.setdefault(metric, set()).update(_MATCHER.findall(matchers))
    for group in _GROUPING.findall(expression):
        used.setdefault("", set()).update(label.strip() for label in group.split(",") if label.strip())
    return used


@pytest.fixture
def exposed(client: TestClient) -> dict[str, set[str]]:
    """Every sample name /metrics exposes after real traffic, with its label names."""
    client.post("/v1/score", json=attempt(0), headers=SCORE)
    client.post("/v1/score", json={"attempt_id": "broken"}, headers=SCORE)  # a validation error
    client.post(
        "/v1/outcomes",
        json={"outcomes": [{"attempt_id": "att-000000", "occurred_at": attempt(0)["occurred_at"],
                            "status": "approved"}]},
        headers=SCORE,
    )  # fmt: skip
    client.post("/v1/admin/reload", headers=ADMIN)
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def test_the_metric_name_parser_finds_names_not_functions_or_labels() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le, route) (rate(riskgate_request_seconds_bucket{route="/v1/score"}'
        "[$__rate_interval]))) / ignoring(action) group_left sum(rate(riskgate_decisions_total[5m])) > 1e-9"
    )
    assert metric_names(expression) == {"riskgate_request_seconds_bucket", "riskgate_decisions_total"}
    assert labels_used(expression) == {
        "riskgate_request_seconds_bucket": {"route"},
        "": {"le", "route", "action"},
    }


def test_the_board_is_an_importable_grafana_dashboard() -> None:
    board = _board()
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    assert board["uid"] == "riskgate-operations"
    ids = [p["id"] for p in _panels(board)]
    assert len(ids) == len(set(ids))
    for panel in _panels(board):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
            assert panel["targets"], panel["title"]
            assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])


def test_every_expression_reads_metrics_and_labels_that_metrics_exposes(exposed: dict[str, set[str]]) -> None:
    expressions = _expressions(_board())
    assert len(expressions) >= 15
    read: set[str] = set()
    for expression in expressions:
        names = metric_names(expression)
        assert names, expression
        missing = names - set(exposed)
        assert not missing, f"{expression!r} reads {sorted(missing)}, not exposed by /metrics"
        read |= names
        available = set().union(*(exposed[name] for name in names)) | SCRAPE_LABELS
        for metric, labels in labels_used(expression).items():
            have = (exposed[metric] if metric else available) | SCRAPE_LABELS
            assert labels <= have, f"{expression!r}: labels {sorted(labels - have)} not on {metric or names}"
    families = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in read}
    for family in ("riskgate_request_seconds", "riskgate_scoring_seconds", "riskgate_decisions",
                   "riskgate_score", "riskgate_model_info", "riskgate_errors"):  # fmt: skip
        assert family in families, f"the board shows nothing of {family}"
