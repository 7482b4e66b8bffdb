"""The errors of rules and lists: what the analyst wrote cannot be used, and where.

Every one is an :class:`core.errors.InputError` (HTTP 422, exit status 2). An expression's errors carry the
position (:class:`Span`) and the offending text, so the API can point at it and the message reads
``line 1, column 5 ('amout'): unknown name; did you mean 'amount'?``. A list's import errors name the file,
the row and the column. No message ever carries a card number (:func:`events.cardnumbers.mask_card_numbers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError
from events.cardnumbers import mask_card_numbers


@dataclass(frozen=True)
class Span:
    """Where a piece of an expression is: 1-based line and column of its first and last character, and its
    0-based character offsets ``[start, end)`` in the text."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int

    def text(self, source: str) -> str:
        """The piece of ``source`` this span covers."""
        return source[self.start : self.end]

    def to(self, other: Span) -> Span:
        """The span from this one's start to ``other``'s end."""
        return Span(self.line, self.column, other.end_line, other.end_column, self.start, other.end)


class RuleError(InputError):
    """An expression that cannot be saved: a syntax error, an unknown name or list, a type error.

    ``span`` is where (None for the whole expression), ``text`` the offending text (card numbers masked).
    """

    code = "invalid_rule"

    def __init__(self, message: str, span: Span | None = None, text: str = "") -> None:
        self.reason = mask_card_numbers(message)
        self.span = span
        self.text = mask_card_numbers(text)
        where = "" if span is None else f"line {span.line}, column {span.column}"
        if self.text:
            where = f"{where} ({self.text!r})" if where else repr(self.text)
        super().__init__(f"{where}: {self.reason}" if where else self.reason)


class RuleSyntaxError(RuleError):
    """The text is not an expression of the language (an unexpected character or word, a missing part)."""


class UnknownNameError(RuleError):
    """A name that is not a field, a feature or a model output of the schema (with the closest known one)."""


class UnknownListError(RuleError):
    """``@name`` of a list that does not exist."""


class RuleTypeError(RuleError):
    """Parts that do not fit together: text compared with a number, arithmetic on text, ``and`` of numbers."""


class UnknownValueError(RuleError):
    """A text compared with a field of a closed vocabulary (``kind``, ``fraud_level``...) that is not one of
    its values (with the closest one)."""


class RuleValueError(InputError):
    """An attempt's value does not have the type the schema gives its name (a text where a number is due):
    the caller's values do not follow the schema the rule was checked against."""

    code = "invalid_rule_value"


class ListError(InputError):
    """A list or a list item that cannot be used (a bad value for the list's field, a bad CIDR range)."""

    code = "invalid_list"

    def __init__(self, message: str) -> None:
        super().__init__(mask_card_numbers(message))


class ListImportError(ListError):
    """A list file that cannot be imported; the message names the file and each bad row and column."""
