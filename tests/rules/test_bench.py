"""The benchmark's 50 rules are valid rules of the IPTV schema (``python -m bench rules`` times them)."""

from __future__ import annotations

from bench.rules import TEMPLATES, rule_texts
from features.iptv import FEATURE_SET
from rules.compiler import compile_rule
from rules.lists import ListItem, make_list
from rules.schema import schema_for


def test_the_benchmarks_rules_compile_over_the_iptv_schema_and_read_its_five_lists() -> None:
    fields = {
        "blocked_devices": "device_id",
        "blocked_cards": "payment_method_id",
        "blocked_accounts": "account_id",
        "risky_bins": "card_bin",
        "blocked_ips": "ip",
    }
    values = {"device_id": "dev-1", "payment_method_id": "pm_1", "account_id": "acc-1", "card_bin": "400001"}
    lists = {
        name: make_list(name, field, [ListItem(values.get(field, "10.0.0.0/8"), "bench")])
        for name, field in fields.items()
    }
    schema = schema_for(FEATURE_SET).with_lists(lists)
    rules = [compile_rule(text, schema, lists) for text in rule_texts()]
    assert len(rules) == 5 * len(TEMPLATES) == 50
    assert set().union(*(rule.lists for rule in rules)) == set(lists)
