"""Type-checking against a schema, and the schema of the served IPTV feature set."""

from __future__ import annotations

import pytest

from events.schema import ExtensionField, FieldType
from features.definitions import ACCOUNT, Aggregate, FeatureSet, Op, Source, days
from features.iptv import FEATURE_SET
from rules.checker import check
from rules.errors import (
    RuleError,
    RuleTypeError,
    UnknownListError,
    UnknownNameError,
    UnknownValueError,
)
from rules.lists import ListKind
from rules.schema import FRAUD_LEVELS, Schema, Type, schema_for
from rules.syntax import parse

LISTS = {"blocked_devices": ListKind.VALUES, "blocked_ips": ListKind.IP}
IPTV = schema_for(FEATURE_SET, lists=LISTS)


def checked(text: str, schema: Schema = IPTV) -> tuple[frozenset[str], frozenset[str]]:
    result = check(parse(text), schema)
    return result.names, result.lists


def refusal(text: str, schema: Schema = IPTV) -> RuleError:
    with pytest.raises(RuleError) as caught:
        check(parse(text), schema)
    return caught.value


def test_the_issues_examples_are_accepted_over_the_iptv_feature_set() -> None:
    names, lists = checked("card_country != ip_country and fraud_probability > 0.3")
    assert names == {"card_country", "ip_country", "fraud_probability"}
    assert not lists
    names, lists = checked("device_id in @blocked_devices")
    assert names == {"device_id"}
    assert lists == {"blocked_devices"}
    # The IPTV set's amounts of the account over 30 days: its largest attempt (no 30-day mean is declared;
    # the usual amount is amount_to_account_outcomes_approved_mean_amount_90d, a ratio already).
    assert "account_attempts_max_amount_30d" in FEATURE_SET.names
    assert checked("amount > 3 * account_attempts_max_amount_30d")[0] == {
        "amount",
        "account_attempts_max_amount_30d",
    }
    assert checked("amount_to_account_outcomes_approved_mean_amount_90d > 3")[0]


def test_a_set_declaring_the_accounts_30_day_mean_amount_reads_it_by_its_generated_name() -> None:
    mean = Aggregate(ACCOUNT, Source.ATTEMPTS, Op.MEAN, days(30), value="amount")
    extended = FeatureSet("iptv_with_mean", (*FEATURE_SET.definitions, mean))
    assert mean.name == "account_attempts_mean_amount_30d"
    names, _ = checked("amount > 3 * account_attempts_mean_amount_30d", schema_for(extended))
    assert names == {"amount", "account_attempts_mean_amount_30d"}


def test_the_schema_holds_fields_features_outputs_and_vocabularies() -> None:
    assert IPTV.names["amount"] is Type.NUMBER
    assert IPTV.names["retry_number"] is Type.NUMBER
    assert IPTV.names["card_country"] is Type.STRING
    assert IPTV.names["kind"] is Type.STRING
    assert IPTV.names["kind_code"] is Type.NUMBER  # the categorical feature is the code
    assert all(IPTV.names[name] is Type.NUMBER for name in FEATURE_SET.names)
    assert IPTV.names["fraud_level"] is Type.STRING
    assert IPTV.values["fraud_level"] == FRAUD_LEVELS
    assert IPTV.names["fraud_probability"] is IPTV.names["failure_probability"] is Type.NUMBER
    assert IPTV.values["kind"] == ("signup", "renewal", "retry", "upgrade", "one_off")
    assert "occurred_at" in IPTV.unreadable
    assert "occurred_at" not in IPTV.names


def test_extension_fields_are_readable_by_their_type() -> None:
    fields = (
        ExtensionField("terminal_id", FieldType.KEY),
        ExtensionField("channel", FieldType.CATEGORY, values=("web", "app")),
        ExtensionField("loyalty_points", FieldType.NUMBER),
        ExtensionField("box_activated_at", FieldType.TIME),
    )
    schema = schema_for(FEATURE_SET, fields)
    assert checked("terminal_id == 't-1' and channel == 'app' and loyalty_points < 10", schema)[0]
    assert isinstance(refusal("channel == 'shop'", schema), UnknownValueError)
    assert "age" in str(refusal("box_activated_at > 1", schema))
    with pytest.raises(RuleError, match="declare it once"):
        schema_for(FEATURE_SET, (ExtensionField("terminal_id", FieldType.NUMBER), fields[0]))


@pytest.mark.parametrize(
    ("text", "error", "column", "fragment", "says"),
    [
        ("amout > 10", UnknownNameError, 1, "amout", "did you mean 'amount'?"),
        ("card_attempts_count_2h > 1", UnknownNameError, 1, "card_attempts_count_2h", "did you mean"),
        ("zzz > 1", UnknownNameError, 1, "zzz", "riskgate features list"),
        ("device_id in @blocked_device", UnknownListError, 14, "@blocked_device", "@blocked_devices?"),
        ("device_id in @nothing_like_it", UnknownListError, 14, "@nothing_like_it", "create the list"),
        ("card_country == 3", RuleTypeError, 1, "card_country == 3", "a text and 3 is a number"),
        ("amount > 'ten'", RuleTypeError, 10, "'ten'", "> compares numbers"),
        ("card_country < ip_country", RuleTypeError, 1, "card_country", "compares numbers"),
        ("card_country + 1 > 2", RuleTypeError, 1, "card_country", "arithmetic (+) takes numbers"),
        ("-kind == 'x'", RuleTypeError, 2, "kind", "- (minus) takes a number"),
        ("amount and fraud_probability > 0.5", RuleTypeError, 1, "amount", "and takes conditions"),
        ("not amount", RuleTypeError, 5, "amount", "not takes conditions"),
        ("amount", RuleTypeError, 1, "amount", "a rule is a condition"),
        ("kind", RuleTypeError, 1, "kind", "a rule is a condition"),
        ("amount in @blocked_ips", RuleTypeError, 1, "amount", "@blocked_ips holds IP addresses and ranges"),
        ("retry_number in @blocked_devices", RuleTypeError, 1, "retry_number", "holds texts"),
        ("amount in (1, 'two')", RuleTypeError, 15, "'two'", "this item is a text"),
        ("kind between 1 and 2", RuleTypeError, 1, "kind", "between compares numbers"),
        ("amount between 10 and 1", RuleTypeError, 1, "amount between 10 and 1", "lower bound first"),
        ("kind == 'renwal'", UnknownValueError, 9, "'renwal'", "did you mean 'renewal'?"),
        ("fraud_level in ('high', 'normal')", UnknownValueError, 17, "'high'", "normal, elevated, highest"),
        ("occurred_at > 1", RuleTypeError, 1, "occurred_at", "hour_of_day"),
        ("account_created_at > 1", RuleTypeError, 1, "account_created_at", "age"),
    ],
)
def test_a_refusal_names_the_position_the_text_and_the_fix(
    text: str, error: type[RuleError], column: int, fragment: str, says: str
) -> None:
    refused = refusal(text)
    assert type(refused) is error
    assert refused.span is not None
    assert (refused.span.line, refused.span.column) == (1, column)
    assert refused.text == fragment
    assert says in str(refused)
    assert refused.http_status == 422


def test_texts_and_conditions_compare_with_equality_and_literals_of_vocabularies_are_checked_both_ways() -> (
    None
):
    assert checked("'renewal' == kind and (amount > 1) == true and fraud_level != 'normal'")[0]
    assert isinstance(refusal("'renwal' == kind"), UnknownValueError)
