"""The compiled evaluator: equal to a plain reference interpreter on random expressions and values, and the
documented three-valued logic for missing values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.iptv import FEATURE_SET
from rules.compiler import compile_rule
from rules.errors import RuleValueError
from rules.lists import ListItem, make_list
from rules.schema import Schema, Type, schema_for

LETTERS = make_list("letters", "device_id", [ListItem("a", "test")])
LISTS = {"letters": LETTERS}
SCHEMA = Schema(
    {"x": Type.NUMBER, "y": Type.NUMBER, "z": Type.NUMBER, "s": Type.STRING, "t": Type.STRING},
    {"letters": LETTERS.kind},
)

# -- a reference interpreter over its own trees: text rendered with only the parentheses precedence needs ----

OR, AND, NOT, COMPARISON, SUM, PRODUCT, UNARY, ATOM = range(1, 9)


@dataclass(frozen=True)
class Ref:
    """A node of the reference: its kind, its parts, its precedence level and its own parentheses."""

    kind: str
    parts: tuple[Any, ...]
    wrap: bool = False


def render(node: Ref) -> tuple[str, int]:
    """The text of a node and its precedence level (ATOM when parenthesised)."""
    text, level = _render(node)
    return (f"({text})", ATOM) if node.wrap else (text, level)


def _at(node: Ref, least: int) -> str:
    text, level = render(node)
    return text if level >= least else f"({text})"


def _render(node: Ref) -> tuple[str, int]:
    k, p = node.kind, node.parts
    if k == "num":
        return repr(p[0]) if isinstance(p[0], int) else str(p[0]), ATOM
    if k in ("var", "text_var"):
        return p[0], ATOM
    if k == "text":
        return f"'{p[0]}'", ATOM
    if k == "bool":
        return ("true" if p[0] else "false"), ATOM
    if k == "neg":
        return f"-{_at(p[0], UNARY)}", UNARY
    if k == "arith":
        op, left, right = p
        level = SUM if op in "+-" else PRODUCT
        return f"{_at(left, level)} {op} {_at(right, level + 1)}", level
    if k == "cmp":
        op, left, right = p
        return f"{_at(left, SUM)} {op} {_at(right, SUM)}", COMPARISON
    if k == "in":
        operand, items, negated = p
        listed = ", ".join(render(i)[0] for i in items)
        return f"{_at(operand, SUM)} {'not in' if negated else 'in'} ({listed})", COMPARISON
    if k == "listed":
        operand, negated = p
        return f"{_at(operand, SUM)} {'not in' if negated else 'in'} @letters", COMPARISON
    if k == "between":
        operand, low, high = p
        return f"{_at(operand, SUM)} between {_at(low, SUM)} and {_at(high, SUM)}", COMPARISON
    if k == "not":
        return f"not {_at(p[0], NOT)}", NOT
    left, right = p
    level = AND if k == "and" else OR
    return f"{_at(left, level)} {k} {_at(right, level + 1)}", level


def evaluate(node: Ref, values: dict[str, Any]) -> Any:
    """The reference semantics: None is unknown, Kleene's tables written out."""
    k, p = node.kind, node.parts
    if k in ("num", "text", "bool"):
        return float(p[0]) if k == "num" else p[0]
    if k in ("var", "text_var"):
        value = values.get(p[0])
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    if k == "neg":
        x = evaluate(p[0], values)
        return None if x is None else -x
    if k == "arith":
        op, a, b = p[0], evaluate(p[1], values), evaluate(p[2], values)
        if a is None or b is None or (op == "/" and b == 0):
            return None
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if op == "/" else 0}[op]
    if k == "cmp":
        op, a, b = p[0], evaluate(p[1], values), evaluate(p[2], values)
        if a is None or b is None:
            return None
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if k == "in":
        x = evaluate(p[0], values)
        return None if x is None else (x in [evaluate(i, values) for i in p[1]]) != p[2]
    if k == "listed":
        x = evaluate(p[0], values)
        return None if x is None else (x == "a") != p[1]
    if k == "between":
        x, low, high = (evaluate(q, values) for q in p)
        above = None if x is None or low is None else x >= low
        below = None if x is None or high is None else x <= high
        return kleene_and(above, below)
    if k == "not":
        x = evaluate(p[0], values)
        return None if x is None else not x
    a, b = evaluate(p[0], values), evaluate(p[1], values)
    return kleene_and(a, b) if k == "and" else kleene_or(a, b)


def kleene_and(a: bool | None, b: bool | None) -> bool | None:
    if a is False or b is False:
        return False
    return None if a is None or b is None else True


def kleene_or(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def ordered_bounds(operand: Ref, low: Ref, high: Ref) -> tuple[Ref, Ref, Ref]:
    """Literal bounds in order (the checker refuses ``between 2 and 1``, which matches nothing)."""
    if low.kind == high.kind == "num" and low.parts[0] > high.parts[0]:
        return operand, high, low
    return operand, low, high


def wrapped(nodes: st.SearchStrategy[Ref]) -> st.SearchStrategy[Ref]:
    """Nodes, sometimes with parentheses of their own."""
    return st.builds(lambda n, w: Ref(n.kind, n.parts, w), nodes, st.booleans())


NUMBER_LITERALS = st.one_of(st.integers(0, 20), st.sampled_from([0.5, 2.25, 10.0])).map(
    lambda v: Ref("num", (v,))
)
NUMBERS = st.recursive(
    st.one_of(NUMBER_LITERALS, st.sampled_from(["x", "y", "z"]).map(lambda n: Ref("var", (n,)))),
    lambda inner: wrapped(
        st.one_of(
            inner.map(lambda e: Ref("neg", (e,))),
            st.tuples(st.sampled_from("+-*/"), inner, inner).map(lambda t: Ref("arith", t)),
        )
    ),
    max_leaves=6,
)
TEXTS = st.one_of(
    st.sampled_from(["s", "t"]).map(lambda n: Ref("text_var", (n,))),
    st.sampled_from(["a", "b"]).map(lambda v: Ref("text", (v,))),
)
COMPARISONS = st.one_of(
    st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), NUMBERS, NUMBERS).map(
        lambda t: Ref("cmp", t)
    ),
    st.tuples(st.sampled_from(["==", "!="]), TEXTS, TEXTS).map(lambda t: Ref("cmp", t)),
    st.tuples(NUMBERS, st.lists(NUMBER_LITERALS, min_size=1, max_size=3).map(tuple), st.booleans()).map(
        lambda t: Ref("in", t)
    ),
    st.tuples(TEXTS, st.booleans()).map(lambda t: Ref("listed", t)),
    st.tuples(NUMBERS, NUMBERS, NUMBERS).map(lambda t: Ref("between", ordered_bounds(*t))),
    st.booleans().map(lambda v: Ref("bool", (v,))),
)
CONDITIONS = st.recursive(
    wrapped(COMPARISONS),
    lambda inner: wrapped(
        st.one_of(
            inner.map(lambda c: Ref("not", (c,))),
            st.tuples(inner, inner).map(lambda t: Ref("and", t)),
            st.tuples(inner, inner).map(lambda t: Ref("or", t)),
        )
    ),
    max_leaves=8,
)
NUMBER_VALUES = st.one_of(
    st.none(), st.just(math.nan), st.integers(-3, 3), st.sampled_from([0.0, 0.5, -2.5, 7.0])
)
VALUES = st.fixed_dictionaries(
    {
        "x": NUMBER_VALUES,
        "y": NUMBER_VALUES,
        "z": NUMBER_VALUES,
        "s": st.sampled_from([None, "a", "b"]),
        "t": st.sampled_from([None, "a", "b"]),
    }
)


@settings(max_examples=250, deadline=None)
@given(CONDITIONS, st.lists(VALUES, min_size=1, max_size=5))
def test_the_compiled_evaluator_equals_the_reference_interpreter(
    tree: Ref, attempts: list[dict[str, Any]]
) -> None:
    text = render(tree)[0]
    rule = compile_rule(text, SCHEMA, LISTS)
    for values in attempts:
        assert rule.evaluate(values, 0) == evaluate(tree, values), (text, values)
        assert rule.matches(values, 0) is (evaluate(tree, values) is True)


# -- three-valued logic, as documented ---------------------------------------------------------------------


def truth(text: str, **values: Any) -> bool | None:
    result: bool | None = compile_rule(text, SCHEMA, LISTS).evaluate(values, 0)
    return result


@pytest.mark.parametrize("missing", [None, math.nan, np.float64("nan"), pd.NA], ids=repr)
def test_a_comparison_with_a_missing_value_is_unknown_and_does_not_match(missing: object) -> None:
    for text in ("x > 1", "x <= 1", "x == 1", "x != 1", "x + 1 > 0", "x between 0 and 9", "x in (1, 2)"):
        assert truth(text, x=missing) is None, text
        assert truth(f"not ({text})", x=missing) is None, text
        assert not compile_rule(text, SCHEMA, LISTS).matches({"x": missing}, 0)


def test_a_name_absent_from_the_values_is_missing() -> None:
    assert truth("s != t", s="a") is None
    assert truth("s in @letters") is None
    assert truth("s not in @letters") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x > 1 and y > 1", False),  # false and unknown
        ("y > 1 and x > 1", False),
        ("x < 1 and y > 1", None),  # true and unknown
        ("x < 1 or y > 1", True),  # true or unknown
        ("y > 1 or x < 1", True),
        ("x > 1 or y > 1", None),  # false or unknown
        ("x > 1 or y > 1 or x < 1", True),
        ("x < 1 and x < 2 and y > 1", None),
        ("x < 1 and y > 1 and x > 2", False),
    ],
)
def test_and_or_follow_kleene(text: str, expected: bool | None) -> None:
    assert truth(text, x=0.0, y=None) is expected


def test_division_by_zero_is_unknown() -> None:
    assert truth("x / y > 1", x=1.0, y=0) is None
    assert truth("x / y > 1", x=3.0, y=2) is True


def test_between_is_inclusive() -> None:
    assert [truth("x between 1 and 2", x=v) for v in (0.99, 1, 1.5, 2, 2.01)] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert truth("x between y and 2", x=3, y=None) is False  # x <= 2 is false whatever y is


def test_numbers_of_any_kind_are_read_and_other_types_are_refused() -> None:
    assert truth("x == 2", x=np.int64(2)) is True
    assert truth("x == 2", x=np.float32(2.0)) is True
    with pytest.raises(RuleValueError, match="'x' holds a bool where rules read a number"):
        truth("x > 1", x=True)
    with pytest.raises(RuleValueError, match="'x' holds a str where rules read a number"):
        truth("x > 1", x="2")
    with pytest.raises(RuleValueError, match="'s' holds a int where rules read a text"):
        truth("s == 'a'", s=3)


def test_conditions_are_read_from_python_and_numpy_booleans() -> None:
    schema = Schema({"flagged": Type.BOOL})
    rule = compile_rule("flagged == true", schema, {})
    assert rule.evaluate({"flagged": np.bool_(True)}, 0) is True
    assert rule.evaluate({"flagged": False}, 0) is False
    assert rule.evaluate({"flagged": None}, 0) is None
    with pytest.raises(RuleValueError, match="where rules read true or false"):
        rule.evaluate({"flagged": 1}, 0)


def test_a_list_removed_after_compiling_makes_membership_unknown_and_a_swapped_list_is_read() -> None:
    lists = dict(LISTS)
    rule = compile_rule("s in @letters", SCHEMA, lists)
    assert rule.matches({"s": "a"}, 0)
    lists["letters"] = make_list("letters", "device_id", [ListItem("b", "swapped")])
    assert not rule.matches({"s": "a"}, 0)
    assert rule.matches({"s": "b"}, 0)
    del lists["letters"]
    assert rule.evaluate({"s": "b"}, 0) is None


def test_the_issues_examples_over_an_iptv_attempt() -> None:
    devices = make_list("blocked_devices", "device_id", [ListItem("dev-1", "chargebacks")])
    lists = {"blocked_devices": devices}
    schema = schema_for(FEATURE_SET).with_lists(lists)
    mismatch = compile_rule("card_country != ip_country and fraud_probability > 0.3", schema, lists)
    assert mismatch.matches({"card_country": "FR", "ip_country": "DE", "fraud_probability": 0.4}, 0)
    assert not mismatch.matches({"card_country": "FR", "ip_country": "FR", "fraud_probability": 0.4}, 0)
    assert not mismatch.matches({"card_country": "FR", "fraud_probability": 0.4}, 0)  # ip_country unknown
    blocked = compile_rule("device_id in @blocked_devices", schema, lists)
    assert blocked.matches({"device_id": "dev-1"}, 0)
    assert not blocked.matches({"device_id": "dev-2"}, 0)
    usual = compile_rule("amount > 3 * account_attempts_max_amount_30d", schema, lists)
    assert usual.matches({"amount": 40.0, "account_attempts_max_amount_30d": 12.99}, 0)
    assert not usual.matches({"amount": 30.0, "account_attempts_max_amount_30d": 12.99}, 0)
    assert not usual.matches({"amount": 40.0, "account_attempts_max_amount_30d": math.nan}, 0)  # no history
    assert usual.names == {"amount", "account_attempts_max_amount_30d"}
    assert blocked.lists == {"blocked_devices"}
