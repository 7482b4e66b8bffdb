"""The rules' shared vocabulary (names, actions, the evaluation order) and the book the decision path
evaluates."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import pytest

from features.iptv import FEATURE_SET
from rules.book import ORDER, RuleAction, RuleBook, RuleBookError, RuleSpec, in_order
from rules.errors import RuleError
from rules.lists import ListItem, make_list
from rules.schema import schema_for


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


# -- the book: compiled rules answering which one decides ---------------------------------------------------

SCHEMA = schema_for(FEATURE_SET)
DEVICES = make_list("blocked_devices", "device_id", [ListItem("dev-1", "card testing")])


def book(*specs: RuleSpec, on_error: Callable[[RuleSpec], None] | None = None) -> RuleBook:
    return RuleBook.compile(list(specs), {"blocked_devices": DEVICES}, SCHEMA, on_error)


def test_the_first_matching_rule_in_the_documented_order_decides() -> None:
    rules = book(
        RuleSpec("review-big", RuleAction.REVIEW, "amount > 100"),
        RuleSpec("block-device", RuleAction.BLOCK, "device_id in @blocked_devices"),
        RuleSpec("block-big", RuleAction.BLOCK, "amount > 500"),
        RuleSpec("allow-staff", RuleAction.ALLOW, "account_id == 'staff'"),
        RuleSpec("allow-off", RuleAction.ALLOW, "amount > 0", enabled=False),
    )
    decided = partial(_decided, rules)
    assert decided(amount=1000.0, device_id="dev-1", account_id="staff") == "allow-staff"
    assert decided(amount=1000.0, device_id="dev-1", account_id="a") == "block-device"
    assert decided(amount=1000.0, device_id="dev-2", account_id="a") == "block-big"
    assert decided(amount=200.0, device_id="dev-2", account_id="a") == "review-big"
    assert decided(amount=20.0, device_id="dev-2", account_id="a") is None  # the disabled rule is skipped
    assert [spec.name for spec in rules.specs] == ["allow-staff", "block-device", "block-big", "review-big"]


def _decided(rules: RuleBook, **values: object) -> str | None:
    spec = rules.decide(values, 0)
    return None if spec is None else spec.name


def test_a_value_of_the_wrong_type_does_not_match_is_counted_and_logged_once_without_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed: list[str] = []
    rules = book(
        RuleSpec("block-big", RuleAction.BLOCK, "amount > 100"),
        RuleSpec("review-any", RuleAction.REVIEW, "retry_number >= 0"),
        on_error=lambda spec: failed.append(spec.name),
    )
    with caplog.at_level(logging.WARNING, logger="rules.book"):
        for _ in range(3):
            spec = rules.decide({"amount": "secret-12345", "retry_number": 0}, 0)
            assert spec is not None
            assert spec.name == "review-any"
    assert failed == ["block-big"] * 3
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 1
    assert "block-big" in logged[0]
    assert "secret-12345" not in logged[0]


def test_a_rule_that_does_not_compile_is_refused_by_name_and_position() -> None:
    with pytest.raises(RuleBookError, match=r"rule 'block-typo': line 1, column 1 \('amout'\)") as caught:
        book(RuleSpec("block-typo", RuleAction.BLOCK, "amout > 3"))
    assert caught.value.rule == "block-typo"
    assert caught.value.span is not None
    assert caught.value.span.column == 1
    with pytest.raises(RuleError, match="given twice"):
        book(RuleSpec("a", RuleAction.BLOCK, "amount > 3"), RuleSpec("a", RuleAction.REVIEW, "amount > 1"))


def test_an_empty_book_decides_nothing_and_is_false() -> None:
    assert not RuleBook()
    assert RuleBook().decide({"amount": 1.0}, 0) is None
