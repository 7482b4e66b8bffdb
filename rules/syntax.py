"""The expression language's grammar and syntax tree: text in, a tree of frozen nodes with positions out.

The grammar (lark, LALR: linear time, no backtracking; the text is never evaluated as Python), loosest
binding first::

    or > and > not > comparison (== != < <= > >=, in, not in, between ... and ...) > + - > * / > -x

Literals are numbers (``3``, ``0.25``, ``1e3``), texts in single or double quotes (``'FR'``, ``"it's"``; a
backslash escapes the quote) and ``true`` / ``false``; a name is a field, a feature or a model output;
``(...)`` after ``in`` is a list of literals, ``@name`` a list. Keywords are case-insensitive; ``#`` starts a
comment to the end of the line. A comparison does not chain (``1 < x < 3`` is refused: use ``between``).

:func:`parse` raises :class:`rules.errors.RuleSyntaxError` with the line and column of the first thing that
does not fit, and what was expected there.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from events.cardnumbers import MASK, find_card_numbers
from rules.errors import RuleError, RuleSyntaxError, Span

#: The longest expression accepted, in characters, and the deepest nesting of its parts.
MAX_LENGTH: Final = 10_000
MAX_DEPTH: Final = 60

GRAMMAR: Final = r"""
?start: or_
?or_: and_ | or_ _OR and_ -> or_op
?and_: not_ | and_ _AND not_ -> and_op
?not_: NOT not_ -> not_op | comparison
?comparison: sum
    | sum COMPARE sum -> compare
    | sum _IN choices -> in_op
    | sum NOT _IN choices -> not_in_op
    | sum _BETWEEN sum _AND sum -> between
?choices: "(" item ("," item)* ")" -> literals
    | AT NAME -> named_list
?item: literal | SUB NUMBER -> negative
?sum: product | sum ADD product -> arith
?product: unary | product MUL unary -> arith
?unary: atom | SUB unary -> neg
?atom: literal | NAME -> name | "(" or_ ")"
?literal: NUMBER -> number | STRING -> string | TRUE -> true | FALSE -> false
ADD: "+" | "-"
AT: "@"
SUB: "-"
MUL: "*" | "/"
COMPARE: "==" | "!=" | "<=" | ">=" | "<" | ">"
_OR: "or"i
_AND: "and"i
NOT: "not"i
_IN: "in"i
_BETWEEN: "between"i
TRUE: "true"i
FALSE: "false"i
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?/
STRING: /'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/
COMMENT: /#[^\n]*/
%ignore /[ \t\r\n]+/
%ignore COMMENT
"""

#: How the grammar's terminals read in an error message.
_EXPECTED: Final[dict[str, str]] = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a quoted text",
    "TRUE": "true",
    "FALSE": "false",
    "COMPARE": "a comparison (== != < <= > >=)",
    "ADD": "+ or -",
    "SUB": "-",
    "MUL": "* or /",
    "_OR": "or",
    "_AND": "and",
    "NOT": "not",
    "_IN": "in",
    "_BETWEEN": "between",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "AT": "@",
}
#: Hints for characters people bring from other languages.
_HINTS: Final[dict[str, str]] = {
    "=": "compare with == (a single = is not an operator)",
    "&": "write and",
    "|": "write or",
    "!": "write not, or != to compare",
    "[": "a list of values is written in parentheses: ('FR', 'DE')",
    "'": "a text ends with the quote it starts with, on the same line",
    '"': "a text ends with the quote it starts with, on the same line",
}
_COMMENT: Final = re.compile(r"#[^\n]*")
_QUOTED: Final = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")


# -- the syntax tree ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: float | str | bool
    span: Span


@dataclass(frozen=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True)
class Negate:
    operand: Node
    span: Span


@dataclass(frozen=True)
class Arithmetic:
    op: str  # + - * /
    left: Node
    right: Node
    span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # == != < <= > >=
    left: Node
    right: Node
    span: Span


@dataclass(frozen=True)
class InLiterals:
    operand: Node
    items: tuple[Literal, ...]
    negated: bool
    span: Span


@dataclass(frozen=True)
class InList:
    operand: Node
    list_name: str
    list_span: Span
    negated: bool
    span: Span


@dataclass(frozen=True)
class Between:
    operand: Node
    low: Node
    high: Node
    span: Span


@dataclass(frozen=True)
class Not:
    operand: Node
    span: Span


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]
    span: Span


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]
    span: Span


Node = Literal | Name | Negate | Arithmetic | Compare | InLiterals | InList | Between | Not | And | Or


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text and its tree."""

    source: str
    root: Node

    def text(self, node: Node) -> str:
        """The text a node was parsed from."""
        return node.span.text(self.source)


# -- parsing -----------------------------------------------------------------------------------------------


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> Expression:
    """The expression written in ``text``, or a :class:`RuleSyntaxError` saying where and why not."""
    if len(text) > MAX_LENGTH:
        raise RuleSyntaxError(f"the expression is {len(text)} characters long; at most {MAX_LENGTH}")
    cards = find_card_numbers(text)
    if cards:
        start, end = cards[0]
        raise RuleSyntaxError(
            "holds what looks like a card number: card numbers must never enter riskgate; test the payment "
            "method's token (payment_method_id) instead",
            _span_of(text, start, end),
            MASK,
        )
    if not _COMMENT.sub("", text).strip():
        raise RuleSyntaxError("the expression is empty: write a condition, e.g. amount > 100")
    try:
        tree = _parser().parse(text)
        root: Node = _ToNodes().transform(tree)
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    except VisitError as error:  # a node refused while built (e.g. a number too large)
        if isinstance(error.orig_exc, RuleError):
            raise error.orig_exc from None
        raise
    except RecursionError:
        raise RuleSyntaxError(f"the expression is nested too deeply; at most {MAX_DEPTH} levels") from None
    if _depth(root) > MAX_DEPTH:
        raise RuleSyntaxError(f"the expression is nested too deeply; at most {MAX_DEPTH} levels")
    return Expression(text, root)


def _depth(node: Node) -> int:
    children = _children(node)
    return 1 + max((_depth(child) for child in children), default=0)


def _children(node: Node) -> tuple[Node, ...]:  # noqa: PLR0911
    if isinstance(node, Literal | Name):
        return ()
    if isinstance(node, Negate | Not):
        return (node.operand,)
    if isinstance(node, Arithmetic | Compare):
        return (node.left, node.right)
    if isinstance(node, InLiterals):
        return (node.operand, *node.items)
    if isinstance(node, InList):
        return (node.operand,)
    if isinstance(node, Between):
        return (node.operand, node.low, node.high)
    return node.operands


def _span_of(text: str, start: int, end: int) -> Span:
    """The span of ``text[start:end]`` (1-based lines and columns)."""

    def line_column(offset: int) -> tuple[int, int]:
        line = text.count("\n", 0, offset) + 1
        return line, offset - (text.rfind("\n", 0, offset) + 1) + 1

    return Span(*line_column(start), *line_column(end), start, end)


def _syntax_error(text: str, error: UnexpectedInput) -> RuleSyntaxError:
    """A lark error as the language's: where, what was found, what was expected there."""
    position = error.pos_in_stream if error.pos_in_stream is not None else len(text)
    if isinstance(error, UnexpectedCharacters):
        char = text[position]
        expected = _readable(error.allowed, text, position)
        hint = _HINTS.get(char)
        why = f"{hint}; " if hint else ""
        return RuleSyntaxError(
            f"unexpected character; {why}expected {expected}", _span_of(text, position, position + 1), char
        )
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        token = error.token
        expected = _readable(error.expected, text, position)
        if token.type == "COMPARE" and "COMPARE" not in error.expected:
            why = "comparisons do not chain (write x between 1 and 3, or two comparisons joined by and)"
            return RuleSyntaxError(why, _span_of(text, position, position + len(token)), str(token))
        span = _span_of(text, position, position + len(token))
        return RuleSyntaxError(f"unexpected {_what(token)}; expected {expected}", span, str(token))
    expected_set = error.expected if isinstance(error, UnexpectedToken) else set()
    end = len(text.rstrip())
    return RuleSyntaxError(
        f"the expression ends too early; expected {_readable(expected_set, text, end)}",
        _span_of(text, max(end - 1, 0), end),
        text[max(end - 1, 0) : end],
    )


def _what(token: Token) -> str:
    return {"NAME": "name", "NUMBER": "number", "STRING": "text"}.get(
        token.type, "word" if token.isalpha() else "symbol"
    )


def _readable(terminals: set[str] | frozenset[str], text: str, position: int) -> str:
    """What was expected, in words; a closing parenthesis or a comma only inside an open parenthesis."""
    before = _QUOTED.sub("", text[:position])
    open_parentheses = before.count("(") > before.count(")")
    words = sorted(
        {_EXPECTED.get(name, name) for name in terminals if open_parentheses or name not in ("RPAR", "COMMA")}
    )
    if not words:
        return "nothing more"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _token_span(token: Token) -> Span:
    return Span(
        int(token.line or 1),
        int(token.column or 1),
        int(token.end_line or 1),
        int(token.end_column or 1),
        int(token.start_pos or 0),
        int(token.end_pos or 0),
    )


def _unquote(token: Token) -> str:
    """A quoted text's value: without its quotes, each backslash escaping the character after it."""
    return re.sub(r"\\(.)", r"\1", str(token)[1:-1])


def _number(token: Token, negative: bool = False) -> float:
    value = float(str(token))
    if value == float("inf"):
        raise RuleSyntaxError("the number is too large", _token_span(token), str(token))
    return -value if negative else value


@v_args(inline=True)
class _ToNodes(Transformer[Token, Node]):
    """Lark's tree as the language's nodes, each with its span (``and`` and ``or`` chains flattened)."""

    def number(self, token: Token) -> Literal:
        return Literal(_number(token), _token_span(token))

    def negative(self, sign: Token, token: Token) -> Literal:
        return Literal(_number(token, negative=True), _token_span(sign).to(_token_span(token)))

    def string(self, token: Token) -> Literal:
        return Literal(_unquote(token), _token_span(token))

    def true(self, token: Token) -> Literal:
        return Literal(True, _token_span(token))

    def false(self, token: Token) -> Literal:
        return Literal(False, _token_span(token))

    def name(self, token: Token) -> Name:
        return Name(str(token), _token_span(token))

    def neg(self, sign: Token, operand: Node) -> Negate:
        return Negate(operand, _token_span(sign).to(operand.span))

    def arith(self, left: Node, op: Token, right: Node) -> Arithmetic:
        return Arithmetic(str(op), left, right, left.span.to(right.span))

    def compare(self, left: Node, op: Token, right: Node) -> Compare:
        return Compare(str(op), left, right, left.span.to(right.span))

    def literals(self, *items: Literal) -> tuple[Literal, ...]:
        return items

    def named_list(self, at: Token, token: Token) -> _ListRef:
        return _ListRef(str(token), _token_span(at).to(_token_span(token)))

    def in_op(self, operand: Node, choices: tuple[Literal, ...] | _ListRef) -> InLiterals | InList:
        return _membership(operand, choices, negated=False)

    def not_in_op(
        self, operand: Node, word: Token, choices: tuple[Literal, ...] | _ListRef
    ) -> InLiterals | InList:
        return _membership(operand, choices, negated=True)

    def between(self, operand: Node, low: Node, high: Node) -> Between:
        return Between(operand, low, high, operand.span.to(high.span))

    def not_op(self, word: Token, operand: Node) -> Not:
        return Not(operand, _token_span(word).to(operand.span))

    def and_op(self, left: Node, right: Node) -> And:
        operands = (*left.operands, right) if isinstance(left, And) else (left, right)
        return And(operands, left.span.to(right.span))

    def or_op(self, left: Node, right: Node) -> Or:
        operands = (*left.operands, right) if isinstance(left, Or) else (left, right)
        return Or(operands, left.span.to(right.span))


@dataclass(frozen=True)
class _ListRef:
    """``@name`` while the tree is built."""

    name: str
    span: Span


def _membership(operand: Node, choices: tuple[Literal, ...] | _ListRef, negated: bool) -> InLiterals | InList:
    if isinstance(choices, _ListRef):
        return InList(operand, choices.name, choices.span, negated, operand.span.to(choices.span))
    return InLiterals(operand, choices, negated, operand.span.to(choices[-1].span))
