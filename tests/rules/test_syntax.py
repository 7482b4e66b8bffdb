"""Parsing: the language's forms, and refusals that name the line, the column and the offending text."""

from __future__ import annotations

import pytest

from core.errors import EXIT_USAGE, InputError
from events.cardnumbers import MASK
from rules.errors import RuleSyntaxError
from rules.syntax import (
    And,
    Arithmetic,
    Between,
    Compare,
    InList,
    InLiterals,
    Literal,
    Name,
    Negate,
    Not,
    Or,
    parse,
)


def test_precedence_is_or_and_not_comparison_sum_product() -> None:
    root = parse("not a > 1 + 2 * b or c == 'x' and d").root
    assert isinstance(root, Or)
    left, right = root.operands
    assert isinstance(left, Not)
    assert isinstance(left.operand, Compare)
    total = left.operand.right
    assert isinstance(total, Arithmetic)
    assert total.op == "+"
    assert isinstance(total.right, Arithmetic)
    assert total.right.op == "*"
    assert isinstance(right, And)


def test_chains_of_and_and_or_are_flat_and_arithmetic_is_left_associative() -> None:
    root = parse("a and b and c and d").root
    assert isinstance(root, And)
    assert len(root.operands) == 4
    difference = parse("a - b - c > 0").root
    assert isinstance(difference, Compare)
    assert isinstance(difference.left, Arithmetic)
    assert isinstance(difference.left.left, Arithmetic)  # (a - b) - c


def test_literals_names_lists_and_between() -> None:
    root = parse("""kind in ('signup', "it's", 'a\\'b') and x not in (1, -2.5, 1e3) and device_id in @bad
                    and y between -1 and 2 and ok == TRUE and -z < .5""").root
    assert isinstance(root, And)
    texts, numbers, listed, between, boolean, negative = root.operands
    assert isinstance(texts, InLiterals)
    assert [i.value for i in texts.items] == ["signup", "it's", "a'b"]
    assert isinstance(numbers, InLiterals)
    assert numbers.negated
    assert [i.value for i in numbers.items] == [1.0, -2.5, 1000.0]
    assert isinstance(listed, InList)
    assert listed.list_name == "bad"
    assert not listed.negated
    assert isinstance(between, Between)
    assert isinstance(between.low, Negate)
    assert isinstance(boolean, Compare)
    assert boolean.right == Literal(True, boolean.right.span)
    assert isinstance(negative, Compare)
    assert isinstance(negative.left, Negate)


def test_keywords_are_words_not_prefixes_of_names() -> None:
    root = parse("android > 1 and notes == 'x' or inbox in @order_list").root
    assert isinstance(root, Or)
    first = root.operands[0]
    assert isinstance(first, And)
    assert [n.left.name for n in first.operands if isinstance(n, Compare) and isinstance(n.left, Name)] == [
        "android",
        "notes",
    ]


def test_spans_point_at_the_text_of_each_part_across_lines() -> None:
    expression = parse("amount > 10\n  and   device_id in @blocked_devices  # a comment\n")
    root = expression.root
    assert isinstance(root, And)
    listed = root.operands[1]
    assert isinstance(listed, InList)
    assert (listed.span.line, listed.span.column) == (2, 9)
    assert expression.text(listed) == "device_id in @blocked_devices"
    assert (listed.list_span.line, listed.list_span.column) == (2, 22)


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment", "says"),
    [
        ("amount = 1", 1, 8, "=", "=="),
        ("amount > ", 1, 8, ">", "ends too early"),
        ("(amount > 1", 1, 11, "1", "expected ) or or"),
        ("country in ['FR']", 1, 12, "[", "parentheses"),
        ("a && b", 1, 3, "&", "write and"),
        ("1 < amount < 3", 1, 12, "<", "between"),
        ("amount > 1 2", 1, 12, "2", "unexpected number"),
        ("a > 1 and\n  ) ", 2, 3, ")", "expected"),
        ("kind == 'renewal", 1, 9, "'", "quote"),
        ("device_id in @", 1, 14, "@", "a name"),
        ("amount > 1e999", 1, 10, "1e999", "too large"),
    ],
)
def test_a_syntax_error_names_line_column_and_text(
    text: str, line: int, column: int, fragment: str, says: str
) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert error.span is not None
    assert (error.span.line, error.span.column, error.text) == (line, column, fragment)
    assert says in str(error)
    assert str(error).startswith(f"line {line}, column {column} ({fragment!r}): ")


@pytest.mark.parametrize("text", ["", "   ", "# only a comment\n"])
def test_an_empty_expression_is_refused(text: str) -> None:
    with pytest.raises(RuleSyntaxError, match="empty"):
        parse(text)


def test_a_card_number_in_a_rule_is_refused_without_echoing_it() -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse("payment_method_id == '4111 1111 1111 1111'")
    error = caught.value
    assert "4111" not in str(error)
    assert error.text == MASK
    assert error.span is not None
    assert (error.span.line, error.span.column) == (1, 23)


def test_syntax_errors_are_input_errors_answered_422() -> None:
    with pytest.raises(InputError) as caught:
        parse("amount >")
    assert caught.value.http_status == 422
    assert caught.value.exit_code == EXIT_USAGE


def test_too_deep_or_too_long_expressions_are_refused() -> None:
    with pytest.raises(RuleSyntaxError, match="nested too deeply"):
        parse(" + ".join(["a"] * 200) + " > 1")
    with pytest.raises(RuleSyntaxError, match="characters long"):
        parse("a > 1 or " * 2_000 + "a > 1")
