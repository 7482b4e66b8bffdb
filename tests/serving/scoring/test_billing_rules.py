"""The billing checks as rules: the rule schema knows their fields, the built-in rules compile and block, and
a stored rule of a built-in rule's name replaces it."""

from __future__ import annotations

from billing.checks import BILLING_FIELD_NAMES, BillingCheck, BillingFields
from features.iptv import FEATURE_SET
from rules.book import RuleAction, RuleBook, RuleSpec
from rules.schema import BILLING_CHECKS, Type, schema_for
from serving.scoring.billing import BUILTIN_RULES, NOT_CHECKED, decision_reasons, with_builtin
from serving.scoring.rulebook import RuleBookHolder

FIELDS = BillingFields(True, False, None, 7.99, None)


def test_the_rule_schema_knows_every_billing_field_with_its_type() -> None:
    assert tuple(BILLING_CHECKS) == BILLING_FIELD_NAMES
    schema = schema_for(FEATURE_SET)
    assert {name: schema.names[name] for name in BILLING_FIELD_NAMES} == BILLING_CHECKS
    assert all(BILLING_CHECKS[check.value] is Type.BOOL for check in BillingCheck)


def test_the_built_in_rules_block_the_failed_checks_only() -> None:
    book = RuleBook.compile(BUILTIN_RULES, {}, schema_for(FEATURE_SET))
    decided = book.decide(FIELDS.values(), 0)
    assert decided is not None
    assert (decided.name, decided.action) == ("billing_double_charge", RuleAction.BLOCK)
    assert decision_reasons(decided.name) == ["billing_error"]
    assert book.decide(NOT_CHECKED.values(), 0) is None  # not checked: never blocked
    assert decision_reasons("block-device") == []


def test_a_stored_rule_of_a_built_in_name_replaces_it() -> None:
    off = RuleSpec("billing_double_charge", RuleAction.BLOCK, "billing_double_charge", enabled=False)
    mine = RuleSpec("mine", RuleAction.REVIEW, "amount > 1")
    specs = with_builtin([mine, off], BUILTIN_RULES)
    assert [spec.name for spec in specs] == [
        "billing_price_mismatch",
        "billing_early_renewal",
        "mine",
        off.name,
    ]
    book = RuleBook.compile(specs, {}, schema_for(FEATURE_SET))
    assert book.decide({**FIELDS.values(), "amount": 0.5}, 0) is None


def test_the_holder_knows_when_it_serves_the_built_in_rules_alone() -> None:
    """Then no rule can match an attempt that fails no check, and the decision path skips the rules."""
    holder = RuleBookHolder(schema_for(FEATURE_SET), builtin=BUILTIN_RULES)
    holder.install((), {})
    assert (len(holder.current), holder.builtin_only) == (3, True)
    holder.install([RuleSpec("billing_double_charge", RuleAction.BLOCK, "billing_double_charge", False)], {})
    assert (len(holder.current), holder.builtin_only) == (2, True)
    holder.install([RuleSpec("mine", RuleAction.REVIEW, "amount > 1")], {})
    assert (len(holder.current), holder.builtin_only) == (4, False)
    holder.install([RuleSpec("billing_early_renewal", RuleAction.REVIEW, "billing_early_renewal")], {})
    assert holder.builtin_only is False  # a built-in rule changed is the provider's rule
