"""The rules' shared vocabulary: names, actions and the evaluation order."""

from __future__ import annotations

import pytest

from rules.book import ORDER, RuleAction, RuleSpec, in_order
from rules.errors import RuleError


def test_rules_are_evaluated_allow_then_block_then_review_in_listing_order() -> None:
    specs = [
        RuleSpec("review-new-money", RuleAction.REVIEW, "kind == 'signup'"),
        RuleSpec("block-device", RuleAction.BLOCK, "device_id in @blocked_devices"),
        RuleSpec("allow-staff", RuleAction.ALLOW, "account_id in @staff"),
        RuleSpec("block-country", RuleAction.BLOCK, "card_country != ip_country"),
        RuleSpec("allow-off", RuleAction.ALLOW, "amount < 1", enabled=False),
    ]
    assert [spec.name for spec in in_order(specs)] == [
        "allow-staff",
        "block-device",
        "block-country",
        "review-new-money",
    ]
    assert ORDER == (RuleAction.ALLOW, RuleAction.BLOCK, RuleAction.REVIEW)


@pytest.mark.parametrize("name", ["", "Block", "1st", "block device", "x" * 65, "block/device"])
def test_a_name_that_cannot_name_a_rule_is_refused(name: str) -> None:
    with pytest.raises(RuleError, match="is not a rule name"):
        RuleSpec(name, RuleAction.BLOCK, "amount > 0")


def test_a_refused_name_is_an_input_error_for_the_api_and_the_cli() -> None:
    with pytest.raises(RuleError) as caught:
        RuleSpec("Bad Name", RuleAction.REVIEW, "amount > 0")
    assert caught.value.http_status == 422
    assert caught.value.exit_code == 2
