"""Compiling a checked expression into a fast evaluator over one attempt: a tree of closures, no ``eval``.

**Values.** A rule is evaluated against a mapping of name -> value (the attempt's fields, its features, the
model outputs) and a time (µs since the epoch, UTC: list items expire by it). A number is an ``int`` or a
``float`` (numpy's too), a text a ``str``. A name absent from the mapping, ``None`` and NaN (pandas' ``NA``
and ``NaT`` too) are *missing*. A value of the wrong type for its name raises
:class:`rules.errors.RuleValueError`.

**Three-valued logic** (SQL's, Kleene's). Every expression is true, false or *unknown*:

* arithmetic with a missing value is unknown, and so is a division by zero;
* a comparison, ``in`` and ``between`` with an unknown part are unknown (``card_country != ip_country`` is
  unknown when either country is missing: a rule does not fire on what it cannot see); ``x in @list`` is
  unknown when ``x`` is missing or the list no longer exists;
* ``not unknown`` is unknown; ``false and unknown`` is false, ``true and unknown`` unknown; ``true or
  unknown`` is true, ``false or unknown`` unknown; ``x between a and b`` is ``x >= a and x <= b``;
* a rule **matches only when its expression is true** (:meth:`CompiledRule.matches`); write
  ``not (x > 3)`` to match ``x <= 3`` only where ``x`` is present.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from rules.checker import Checked, check
from rules.errors import RuleValueError
from rules.lists import Lists
from rules.schema import Schema, Type
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
    Node,
    Not,
    parse,
)

#: An attempt's values by name.
Values = Mapping[str, object]
#: An expression's value over one attempt at a time (µs): a number, a text, True, False, or None (unknown).
Evaluator = Callable[[Values, int], Any]

_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
#: The comparison that reads the same with its operands swapped (``3 < x`` is ``x > 3``).
_SWAPPED: Final = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class CompiledRule:
    """A checked expression and its evaluator; ``names`` and ``lists`` are what it reads."""

    source: str
    names: frozenset[str]
    lists: frozenset[str]
    evaluate: Evaluator

    def matches(self, values: Values, at_us: int) -> bool:
        """Whether the expression is true for these values at this time (false and unknown do not match)."""
        return self.evaluate(values, at_us) is True


def compile_rule(text: str, schema: Schema, lists: Lists) -> CompiledRule:
    """Parse, check and compile ``text``; ``@name`` reads ``lists[name]`` at each evaluation (replace an
    entry of the mapping to change a list without recompiling)."""
    return compile_checked(check(parse(text), schema), schema, lists)


def compile_checked(checked: Checked, schema: Schema, lists: Lists) -> CompiledRule:
    """The evaluator of an expression already checked against ``schema``."""
    evaluate = _Compiler(schema, lists).node(checked.expression.root)
    return CompiledRule(checked.expression.source, checked.names, checked.lists, evaluate)


# -- reading values ----------------------------------------------------------------------------------------


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT


def _number(name: str, value: object) -> float | None:
    """A number's value off the fast path (not a float): ints, numpy numbers, missing values."""
    if _missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RuleValueError(f"{name!r} holds a {type(value).__name__} where rules read a number")
    number = float(value)
    return None if math.isnan(number) else number


def _text(name: str, value: object) -> str | None:
    """A text's value off the fast path (not a str): missing values."""
    if _missing(value) or (isinstance(value, float) and math.isnan(value)):
        return None
    raise RuleValueError(f"{name!r} holds a {type(value).__name__} where rules read a text")


def _condition(name: str, value: object) -> bool | None:
    if _missing(value) or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise RuleValueError(f"{name!r} holds a {type(value).__name__} where rules read true or false")


def _reader(name: str, kind: Type) -> Evaluator:
    if kind is Type.NUMBER:

        def number(values: Values, at_us: int) -> float | None:
            value = values.get(name)
            if value.__class__ is float:
                return value if value == value else None  # noqa: PLR0124 (NaN is missing)
            if value.__class__ is int:
                return value
            return _number(name, value)

        return number
    if kind is Type.STRING:

        def text(values: Values, at_us: int) -> str | None:
            value = values.get(name)
            if value.__class__ is str:
                return value
            return _text(name, value)

        return text

    def condition(values: Values, at_us: int) -> bool | None:
        return _condition(name, values.get(name))

    return condition


# -- the closures ------------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, schema: Schema, lists: Lists) -> None:
        self.schema, self.lists = schema, lists

    def node(self, node: Node) -> Evaluator:  # noqa: PLR0911
        if isinstance(node, Literal):
            return _constant(node.value)
        if isinstance(node, Name):
            return _reader(node.name, self.schema.names[node.name])
        if isinstance(node, Negate | Arithmetic) and isinstance(folded := _folded(node), Literal):
            return self.node(folded)
        if isinstance(node, Negate):
            return _negate(self.node(node.operand))
        if isinstance(node, Arithmetic):
            return _arithmetic(node.op, self.node(node.left), self.node(node.right))
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, InLiterals):
            return _in_literals(self.node(node.operand), node.items, node.negated)
        if isinstance(node, InList):
            if isinstance(node.operand, Name):  # the commonest: a field in a list, in one closure
                return _name_in_list(node.operand.name, node.list_name, self.lists, node.negated)
            return _in_list(self.node(node.operand), node.list_name, self.lists, node.negated)
        if isinstance(node, Between):
            return self._between(node)
        if isinstance(node, Not):
            return _not(self.node(node.operand))
        parts = tuple(self.node(operand) for operand in node.operands)
        return _and(parts) if isinstance(node, And) else _or(parts)

    def _compare(self, node: Compare) -> Evaluator:
        left, right, op = _folded(node.left), _folded(node.right), node.op
        if isinstance(left, Literal) and not isinstance(right, Literal):
            left, right, op = right, left, _SWAPPED[op]
        if isinstance(right, Literal) and isinstance(left, Name):
            kind = self.schema.names[left.name]
            return _compare_name_constant(_COMPARE[op], left.name, kind, right.value)
        if isinstance(right, Literal):
            return _compare_constant(_COMPARE[op], self.node(left), right.value)
        return _compare(_COMPARE[op], self.node(left), self.node(right))

    def _between(self, node: Between) -> Evaluator:
        operand, low_node, high_node = self.node(node.operand), _folded(node.low), _folded(node.high)
        if isinstance(low_node, Literal) and isinstance(high_node, Literal):
            low, high = float(low_node.value), float(high_node.value)

            def between_constants(values: Values, at_us: int) -> bool | None:
                x = operand(values, at_us)
                return None if x is None else low <= x <= high

            return between_constants
        at_least = _compare(operator.ge, operand, self.node(low_node))
        at_most = _compare(operator.le, operand, self.node(high_node))
        return _and((at_least, at_most))


def _folded(node: Node) -> Node:
    """``node`` with its arithmetic on literals done once (``-1``, ``3 * 100``): comparisons with it take the
    constant paths. A division by zero stays to be evaluated (it is unknown)."""
    if isinstance(node, Negate):
        operand = _folded(node.operand)
        if isinstance(operand, Literal) and isinstance(operand.value, float):
            return Literal(-operand.value, node.span)
        return replace(node, operand=operand)
    if isinstance(node, Arithmetic):
        left, right = _folded(node.left), _folded(node.right)
        if isinstance(left, Literal) and isinstance(right, Literal):
            value = _arithmetic(node.op, _constant(left.value), _constant(right.value))({}, 0)
            if value is not None:
                return Literal(value, node.span)
        return replace(node, left=left, right=right)
    return node


def _constant(value: object) -> Evaluator:
    return lambda values, at_us: value


def _negate(operand: Evaluator) -> Evaluator:
    def negate(values: Values, at_us: int) -> float | None:
        x = operand(values, at_us)
        return None if x is None else -x

    return negate


def _arithmetic(op: str, left: Evaluator, right: Evaluator) -> Evaluator:
    function = {"+": operator.add, "-": operator.sub, "*": operator.mul}.get(op)
    if function is None:

        def divide(values: Values, at_us: int) -> float | None:
            x = left(values, at_us)
            if x is None:
                return None
            y = right(values, at_us)
            if y is None or y == 0:
                return None
            result: float = x / y
            return result if result == result else None  # noqa: PLR0124 (NaN)

        return divide

    def arithmetic(values: Values, at_us: int) -> float | None:
        x = left(values, at_us)
        if x is None:
            return None
        y = right(values, at_us)
        if y is None:
            return None
        result: float = function(x, y)
        return result if result == result else None  # noqa: PLR0124 (inf - inf is NaN: unknown)

    return arithmetic


def _compare_constant(op: Callable[[Any, Any], bool], operand: Evaluator, constant: object) -> Evaluator:
    def compare_constant(values: Values, at_us: int) -> bool | None:
        x = operand(values, at_us)
        return None if x is None else op(x, constant)

    return compare_constant


def _compare_name_constant(
    op: Callable[[Any, Any], bool], name: str, kind: Type, constant: object
) -> Evaluator:
    """``name op constant`` in one closure (the commonest comparison): the reading of :func:`_reader`
    inlined."""
    if kind is Type.NUMBER:

        def number_constant(values: Values, at_us: int) -> bool | None:
            x = values.get(name)
            cls = x.__class__
            if cls is float:
                if x != x:  # noqa: PLR0124 (NaN is missing)
                    return None
            elif cls is not int:
                x = _number(name, x)
                if x is None:
                    return None
            return op(x, constant)

        return number_constant
    if kind is Type.STRING:

        def text_constant(values: Values, at_us: int) -> bool | None:
            x = values.get(name)
            if x.__class__ is not str:
                x = _text(name, x)
                if x is None:
                    return None
            return op(x, constant)

        return text_constant
    return _compare_constant(op, _reader(name, kind), constant)


def _compare(op: Callable[[Any, Any], bool], left: Evaluator, right: Evaluator) -> Evaluator:
    def compare(values: Values, at_us: int) -> bool | None:
        x = left(values, at_us)
        if x is None:
            return None
        y = right(values, at_us)
        return None if y is None else op(x, y)

    return compare


def _in_literals(operand: Evaluator, items: tuple[Literal, ...], negated: bool) -> Evaluator:
    choices = frozenset(item.value for item in items)

    def is_in(values: Values, at_us: int) -> bool | None:
        x = operand(values, at_us)
        return None if x is None else (x in choices) is not negated

    return is_in


def _in_list(operand: Evaluator, name: str, lists: Lists, negated: bool) -> Evaluator:
    def is_listed(values: Values, at_us: int) -> bool | None:
        x = operand(values, at_us)
        if x is None:
            return None
        member = lists.get(name)
        return None if member is None else member.contains(x, at_us) is not negated

    return is_listed


def _name_in_list(name: str, list_name: str, lists: Lists, negated: bool) -> Evaluator:
    def name_is_listed(values: Values, at_us: int) -> bool | None:
        x = values.get(name)
        if x.__class__ is not str:
            x = _text(name, x)
            if x is None:
                return None
        member = lists.get(list_name)
        return None if member is None else member.contains(x, at_us) is not negated

    return name_is_listed


def _not(operand: Evaluator) -> Evaluator:
    def negation(values: Values, at_us: int) -> bool | None:
        x = operand(values, at_us)
        return None if x is None else not x

    return negation


def _and(parts: tuple[Evaluator, ...]) -> Evaluator:
    return _junction(parts, decisive=False)


def _or(parts: tuple[Evaluator, ...]) -> Evaluator:
    return _junction(parts, decisive=True)


def _junction(parts: tuple[Evaluator, ...], decisive: bool) -> Evaluator:
    """``and`` (``decisive`` False) or ``or`` (True) in three-valued logic: the first part that is
    ``decisive`` decides; otherwise an unknown part makes the whole unknown; otherwise the other value."""
    other = not decisive
    decided: bool | None = decisive  # what a decisive part answers (mypy narrows `decisive` to Any)
    if len(parts) == 2:
        first, second = parts

        def pair(values: Values, at_us: int) -> bool | None:
            x = first(values, at_us)
            if x is decisive:
                return decided
            y = second(values, at_us)
            if y is decisive:
                return decided
            return None if x is None or y is None else other

        return pair

    def chain(values: Values, at_us: int) -> bool | None:
        unknown = False
        for part in parts:
            x = part(values, at_us)
            if x is decisive:
                return decided
            if x is None:
                unknown = True
        return None if unknown else other

    return chain
