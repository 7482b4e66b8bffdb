"""Type-checking an expression against a :class:`rules.schema.Schema`, when it is saved.

The rules of the language's types (number, text, condition):

* ``+ - * /`` and unary ``-`` take numbers and give a number;
* ``== !=`` compare two values of one type; ``< <= > >=`` and ``between`` compare numbers only;
* ``in (...)``: the literals are of the tested value's type; ``in @list``: the value is a text (a list holds
  texts, or IP addresses and ranges);
* ``and or not`` take conditions; a rule as a whole is a condition;
* a text compared with a field of a closed vocabulary (``kind``, ``plan_tier``, ``fraud_level``, a category
  extension field) must be one of its values.

The first problem found raises a :class:`rules.errors.RuleError` (an unknown name or list with the closest
known one, a type error, a value outside a vocabulary) naming its position and text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from rules.errors import RuleError, RuleTypeError, UnknownListError, UnknownNameError, UnknownValueError
from rules.schema import MODEL_OUTPUTS, Schema, Type
from rules.syntax import (
    And,
    Arithmetic,
    Between,
    Compare,
    Expression,
    InList,
    InLiterals,
    Literal,
    Name,
    Negate,
    Node,
    Not,
    Or,
)

_ORDERING = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True)
class Checked:
    """A well-typed expression and what it reads: names (fields, features, model outputs) and lists."""

    expression: Expression
    names: frozenset[str]
    lists: frozenset[str]


def check(expression: Expression, schema: Schema) -> Checked:
    """``expression`` if it is a well-typed condition over ``schema``'s names and lists (see the module's
    docstring), else the first problem as a :class:`rules.errors.RuleError`."""
    checker = _Checker(expression, schema)
    kind = checker.type_of(expression.root)
    if kind is not Type.BOOL:
        example = f", e.g. {expression.source.strip()} > 0" if kind is Type.NUMBER else ""
        raise RuleTypeError(
            f"a rule is a condition (true or false) and this is {kind.described}: compare it{example}",
            expression.root.span,
            expression.text(expression.root),
        )
    return Checked(expression, frozenset(checker.names), frozenset(checker.lists))


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to a misspelt one, if any is close enough."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


class _Checker:
    def __init__(self, expression: Expression, schema: Schema) -> None:
        self.expression, self.schema = expression, schema
        self.names: set[str] = set()
        self.lists: set[str] = set()

    def type_of(self, node: Node) -> Type:  # noqa: PLR0911
        if isinstance(node, Literal):
            return _literal_type(node)
        if isinstance(node, Name):
            return self._name(node)
        if isinstance(node, Negate):
            self._expect(node.operand, Type.NUMBER, "- (minus) takes a number")
            return Type.NUMBER
        if isinstance(node, Arithmetic):
            for operand in (node.left, node.right):
                self._expect(operand, Type.NUMBER, f"arithmetic ({node.op}) takes numbers")
            return Type.NUMBER
        if isinstance(node, Compare):
            self._compare(node)
            return Type.BOOL
        if isinstance(node, InLiterals):
            self._in_literals(node)
            return Type.BOOL
        if isinstance(node, InList):
            self._in_list(node)
            return Type.BOOL
        if isinstance(node, Between):
            self._between(node)
            return Type.BOOL
        operands = (node.operand,) if isinstance(node, Not) else node.operands
        word = {Not: "not", And: "and", Or: "or"}[type(node)]
        for operand in operands:
            self._expect(operand, Type.BOOL, f"{word} takes conditions (true or false)")
        return Type.BOOL

    def _fail(self, error: type[RuleError], message: str, node: Node) -> RuleError:
        return error(message, node.span, self.expression.text(node))

    def _expect(self, node: Node, wanted: Type, what: str) -> None:
        found = self.type_of(node)
        if found is not wanted:
            raise self._fail(RuleTypeError, f"{what}; this is {found.described}", node)

    def _name(self, node: Name) -> Type:
        schema = self.schema
        found = schema.names.get(node.name)
        if found is not None:
            self.names.add(node.name)
            return found
        if node.name in schema.unreadable:
            raise RuleTypeError(schema.unreadable[node.name], node.span, node.name)
        suggestion = closest(node.name, schema.names)
        hint = (
            f"did you mean {suggestion!r}?"
            if suggestion
            else "use a field of the attempt, a feature of the feature set (riskgate features list) or a "
            f"model output ({', '.join(MODEL_OUTPUTS)})"
        )
        raise UnknownNameError(f"unknown name; {hint}", node.span, node.name)

    def _compare(self, node: Compare) -> None:
        left, right = self.type_of(node.left), self.type_of(node.right)
        if node.op in _ORDERING:
            for operand, found in ((node.left, left), (node.right, right)):
                if found is not Type.NUMBER:
                    raise self._fail(
                        RuleTypeError,
                        f"{node.op} compares numbers; this is {found.described} (texts and conditions are "
                        "compared with == and !=)",
                        operand,
                    )
            return
        if left is not right:
            raise self._fail(
                RuleTypeError,
                f"{node.op} compares values of one type; {self.expression.text(node.left)} is "
                f"{left.described} and {self.expression.text(node.right)} is {right.described}",
                node,
            )
        self._in_vocabulary(node.left, (node.right,))
        self._in_vocabulary(node.right, (node.left,))

    def _in_literals(self, node: InLiterals) -> None:
        wanted = self.type_of(node.operand)
        for item in node.items:
            found = _literal_type(item)
            if found is not wanted:
                raise self._fail(
                    RuleTypeError,
                    f"{self.expression.text(node.operand)} is {wanted.described}; this item is "
                    f"{found.described}",
                    item,
                )
        self._in_vocabulary(node.operand, node.items)

    def _in_list(self, node: InList) -> None:
        kind = self.schema.lists.get(node.list_name)
        if kind is None:
            suggestion = closest(node.list_name, self.schema.lists)
            hint = f"did you mean @{suggestion}?" if suggestion else "create the list first"
            raise UnknownListError(f"unknown list; {hint}", node.list_span, f"@{node.list_name}")
        self.lists.add(node.list_name)
        found = self.type_of(node.operand)
        if found is not Type.STRING:
            raise self._fail(
                RuleTypeError,
                f"@{node.list_name} holds {kind.described}; this is {found.described}",
                node.operand,
            )

    def _between(self, node: Between) -> None:
        for operand in (node.operand, node.low, node.high):
            self._expect(operand, Type.NUMBER, "between compares numbers")
        low, high = node.low, node.high
        if isinstance(low, Literal) and isinstance(high, Literal) and float(low.value) > float(high.value):
            raise self._fail(
                RuleTypeError,
                "between matches nothing when its first bound is above its second: write the lower bound "
                "first",
                node,
            )

    def _in_vocabulary(self, node: Node, others: Iterable[Node]) -> None:
        """A text literal compared with a field of a closed vocabulary is one of its values."""
        if not isinstance(node, Name) or node.name not in self.schema.values:
            return
        allowed = self.schema.values[node.name]
        for other in others:
            if isinstance(other, Literal) and isinstance(other.value, str) and other.value not in allowed:
                suggestion = closest(other.value, allowed)
                hint = f"did you mean {suggestion!r}? " if suggestion else ""
                raise self._fail(
                    UnknownValueError,
                    f"{other.value!r} is not a value of {node.name}; {hint}its values are "
                    f"{', '.join(allowed)}",
                    other,
                )


def _literal_type(node: Literal) -> Type:
    if isinstance(node.value, bool):
        return Type.BOOL
    return Type.STRING if isinstance(node.value, str) else Type.NUMBER
