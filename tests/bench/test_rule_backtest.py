"""The rule backtest benchmark's log and drafts are valid: ``python -m bench rule_backtest`` times them."""

from __future__ import annotations

from pathlib import Path

from bench.rule_backtest import DRAFTS, MONTH, write_month
from features.iptv import FEATURE_SET
from rules.book import RuleAction, RuleSpec
from rules.lists import ListItem, make_list
from rules.schema import schema_for
from serving.readers.rule_backtest import Draft, Sources, log_backtest
from serving.store.decisions import DecisionReader


def test_every_draft_of_the_benchmark_replays_over_its_log(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    write_month(path, n=400)
    lists = {
        "suspects": make_list("suspects", "device_id", [ListItem(f"dev-{2 * i}", "t") for i in range(1000)])
    }
    schema = schema_for(FEATURE_SET).with_lists(lists)
    sources = Sources(tuple(FEATURE_SET.names))
    with DecisionReader(path) as reader:
        for expression in DRAFTS.values():
            draft = Draft(RuleSpec("draft", RuleAction.BLOCK, expression), lists)
            answer = log_backtest(reader, draft, schema, sources, MONTH, 90.0)
            assert answer["attempts"] == 400
            assert answer["unreadable"] == {"erased": 0, "without_fields": 0, "value_errors": 0}
